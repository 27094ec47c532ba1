//! A random-init model of a [`Shape`] built on a device, and written as a Hugging Face
//! checkpoint (`config.json` + `model.safetensors`, f32) that transformers' `Qwen2ForCausalLM`
//! and `LlamaForCausalLM` load: the weights PyTorch is timed on are the ones this trainer is
//! timed on, generated on the GPU host from the seed instead of carried there.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use super::{GpuCheckError, INIT_STD, Shape};
use crate::model::{Decoder, hf};

/// A [`Shape`]'s model with weights drawn from `seed` ([`crate::model::init_weights`], std
/// [`INIT_STD`]) on `device`, f32 master weights in the returned `VarMap`. The draw is made on
/// the host, so the weights are the same on every device.
pub fn random_model(
    shape: Shape,
    seed: u64,
    device: &Device,
) -> Result<(VarMap, Decoder), GpuCheckError> {
    let cfg = shape.config();
    let varmap = VarMap::new();
    let model = Decoder::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
    crate::model::init_weights(&varmap, seed, INIT_STD)?;
    Ok((varmap, model))
}

/// Writes the random-init model of `shape` and `seed` to `dir` (created) as a Hugging Face
/// checkpoint without a tokenizer. Returns the number of parameters.
pub fn export(shape: Shape, seed: u64, dir: &Path) -> Result<usize, GpuCheckError> {
    let (varmap, model) = random_model(shape, seed, &Device::Cpu)?;
    hf::save(dir, model.config(), &varmap, None)?;
    Ok(varmap.all_vars().iter().map(|v| v.elem_count()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    /// The exported checkpoint loads through this trainer's own Hugging Face loader into a
    /// model with the same logits, bit for bit.
    #[test]
    fn the_export_loads_back_with_identical_logits() {
        let dir = std::env::temp_dir().join(format!("gpu-check-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let n = export(Shape::Tiny, 3, &dir).unwrap();
        // Products and embedding, the final norm, per layer two norms and the q/k/v biases.
        assert_eq!(n, 86_400 + 64 + 2 * (2 * 64 + 64 + 32 + 32));

        let dev = Device::Cpu;
        let (_, want) = random_model(Shape::Tiny, 3, &dev).unwrap();
        let cfg = hf::read_config(&dir).unwrap();
        assert_eq!(cfg, Shape::Tiny.config());
        let vm = VarMap::new();
        hf::load_weights(&dir, &vm, &dev).unwrap();
        let got = Decoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        let ids = Tensor::new(&[[3u32, 1, 4, 1, 5, 9, 2, 6]], &dev).unwrap();
        let (a, b) = (want.forward(&ids).unwrap(), got.forward(&ids).unwrap());
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
        // Another seed is another model.
        let (_, other) = random_model(Shape::Tiny, 4, &dev).unwrap();
        let c = other
            .forward(&ids)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_ne!(a, c);
        let hf_json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(hf_json["architectures"][0], "Qwen2ForCausalLM");
        std::fs::remove_dir_all(&dir).ok();
    }
}
