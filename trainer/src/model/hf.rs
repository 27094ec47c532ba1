//! Hugging Face checkpoint directories: `config.json`, `model.safetensors` (or shards listed by
//! `model.safetensors.index.json`), `tokenizer.json` and `tokenizer_config.json` (EOS token and
//! chat template).
//!
//! Loading casts every tensor to f32 master weights and registers it in a `VarMap` under its
//! checkpoint name, which is what [`super::Decoder::new`] then reads. Saving writes the same
//! layout back, so other tools (transformers, candle, vLLM) load it.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::{Family, ModelConfig};
use crate::tokenizer::TextTokenizer;

/// Checkpoint I/O failures.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `config.json` or the index is malformed or names an unsupported model.
    #[error("{0}")]
    Config(String),
    /// Tensor (de)serialisation.
    #[error("tensors: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// The fields of a Qwen2/Llama `config.json` the model needs; other keys are ignored (HF
/// configs carry many), but `model_type` must be one this trainer implements and features it
/// does not implement (RoPE scaling, Llama attention biases) are refused.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct HfConfig {
    model_type: String,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default)]
    mlp_bias: Option<bool>,
}

fn default_theta() -> f64 {
    10_000.0
}
fn default_eps() -> f64 {
    1e-6
}
fn default_positions() -> usize {
    32_768
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HfError + '_ {
    move |source| HfError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads `dir/config.json` as a [`ModelConfig`] (model types `qwen2` and `llama`, RoPE scaling
/// `linear` and `llama3`; anything else is refused with a message naming what is unsupported).
pub fn read_config(dir: &Path) -> Result<ModelConfig, HfError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let c: HfConfig = serde_json::from_str(&text)
        .map_err(|e| HfError::Config(format!("{}: {e}", path.display())))?;
    let family = match c.model_type.as_str() {
        "qwen2" => Family::Qwen2,
        "llama" => Family::Llama,
        other => {
            return Err(HfError::Config(format!(
                "model_type {other:?} is not supported (qwen2 and llama are)"
            )));
        }
    };
    let rope_scaling = match &c.rope_scaling {
        Some(v) => super::RopeScaling::from_hf(v).map_err(HfError::Config)?,
        None => None,
    };
    if family == Family::Llama && (c.attention_bias == Some(true) || c.mlp_bias == Some(true)) {
        return Err(HfError::Config(
            "Llama with attention_bias or mlp_bias is not supported".into(),
        ));
    }
    let cfg = ModelConfig {
        family,
        vocab_size: c.vocab_size,
        hidden_size: c.hidden_size,
        intermediate_size: c.intermediate_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        num_key_value_heads: c.num_key_value_heads.unwrap_or(c.num_attention_heads),
        rope_theta: c.rope_theta,
        rms_norm_eps: c.rms_norm_eps,
        max_position_embeddings: c.max_position_embeddings,
        tie_word_embeddings: c.tie_word_embeddings,
        rope_scaling,
    };
    cfg.validate().map_err(HfError::Config)?;
    Ok(cfg)
}

/// Loads the weights of `dir` into `varmap` as f32 `Var`s (single file or sharded).
pub fn load_weights(dir: &Path, varmap: &VarMap, device: &Device) -> Result<usize, HfError> {
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<std::path::PathBuf> = if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(io(&index))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| HfError::Config(format!("{}: {e}", index.display())))?;
        let map = v["weight_map"]
            .as_object()
            .ok_or_else(|| HfError::Config("index without weight_map".into()))?;
        let mut names: Vec<&str> = map.values().filter_map(|f| f.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter().map(|f| dir.join(f)).collect()
    } else {
        vec![dir.join("model.safetensors")]
    };
    let mut data = varmap
        .data()
        .lock()
        .map_err(|_| HfError::Config("varmap lock poisoned".into()))?;
    let mut count = 0;
    for f in files {
        for (name, t) in candle_core::safetensors::load(&f, device)? {
            data.insert(name, Var::from_tensor(&t.to_dtype(DType::F32)?)?);
            count += 1;
        }
    }
    Ok(count)
}

/// Writes `dir/{config.json, model.safetensors}` (and `tokenizer.json` when given).
pub fn save(
    dir: &Path,
    cfg: &ModelConfig,
    varmap: &VarMap,
    tokenizer: Option<&TextTokenizer>,
) -> Result<(), HfError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut hf = serde_json::json!({
        "architectures": [cfg.family.architecture()],
        "model_type": cfg.family.model_type(),
        "torch_dtype": "float32",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "rope_theta": cfg.rope_theta,
        "rms_norm_eps": cfg.rms_norm_eps,
        "max_position_embeddings": cfg.max_position_embeddings,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "hidden_act": "silu",
    });
    if let Some(s) = &cfg.rope_scaling {
        hf["rope_scaling"] = s.to_hf();
    }
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&hf).unwrap_or_default()).map_err(io(&path))?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| HfError::Config("varmap lock poisoned".into()))?;
    let tensors: HashMap<String, Tensor> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    drop(data);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    if let Some(t) = tokenizer {
        t.inner()
            .save(dir.join("tokenizer.json"), false)
            .map_err(|e| HfError::Config(format!("tokenizer.json: {e}")))?;
        let eos = t.inner().id_to_token(t.eos_id()).ok_or_else(|| {
            HfError::Config(format!("eos id {} is not in the vocabulary", t.eos_id()))
        })?;
        let mut tc = serde_json::json!({ "eos_token": eos });
        if let Some(template) = t.chat_template() {
            tc["chat_template"] = template.into();
        }
        let path = dir.join("tokenizer_config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&tc).unwrap_or_default())
            .map_err(io(&path))?;
    }
    Ok(())
}

/// Reads the tokenizer of a Hugging Face directory: `tokenizer.json`, and from
/// `tokenizer_config.json` the `eos_token` (a string or `{"content": …}`; it ends responses,
/// so for instruct models the end-of-turn token) and the `chat_template` (a string, or a list
/// of `{name, template}` of which `default` is used).
pub fn read_tokenizer(dir: &Path) -> Result<TextTokenizer, HfError> {
    let path = dir.join("tokenizer.json");
    let inner = tokenizers::Tokenizer::from_file(&path)
        .map_err(|e| HfError::Config(format!("{}: {e}", path.display())))?;
    let path = dir.join("tokenizer_config.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let tc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| HfError::Config(format!("{}: {e}", path.display())))?;
    let eos = match &tc["eos_token"] {
        serde_json::Value::String(s) => s.as_str(),
        v => v["content"].as_str().unwrap_or_default(),
    };
    let eos_id = inner.token_to_id(eos).ok_or_else(|| {
        HfError::Config(format!(
            "{}: eos_token {eos:?} is missing or not in tokenizer.json",
            path.display()
        ))
    })?;
    let template = match &tc["chat_template"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => list
            .iter()
            .find(|t| t["name"] == "default")
            .and_then(|t| t["template"].as_str())
            .map(str::to_string),
        _ => None,
    };
    Ok(TextTokenizer::new(inner, eos_id, template))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decoder;
    use crate::model::decoder::tests::tiny_config;
    use candle_nn::VarBuilder;

    fn logits(m: &Decoder) -> Vec<f32> {
        let ids = Tensor::new(&[[1u32, 5, 3, 9]], &Device::Cpu).unwrap();
        m.forward(&ids)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    }

    #[test]
    fn save_and_load_round_trip_single_and_sharded() {
        round_trip(Family::Qwen2, 27);
    }

    #[test]
    fn llama_saves_and_loads_too() {
        // No q/k/v biases: 27 − 2 layers × 3.
        round_trip(Family::Llama, 21);
    }

    fn round_trip(family: Family, tensors: usize) {
        let dev = Device::Cpu;
        // Llama with Llama 3.1's RoPE scaling, so the scaling is written and read back too.
        let rope_scaling = (family == Family::Llama).then_some(crate::model::RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 16,
        });
        let cfg = ModelConfig {
            family,
            rope_scaling,
            ..tiny_config(13)
        };
        let vm = VarMap::new();
        let model = Decoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        crate::model::init_weights(&vm, 9, 0.1).unwrap();
        let want = logits(&model);
        let template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}\n{% endfor %}<assistant>";
        let tok = TextTokenizer::new(
            TextTokenizer::char_level().unwrap().inner().clone(),
            crate::tokenizer::EOS_ID,
            Some(template.into()),
        );
        let dir = std::env::temp_dir().join(format!(
            "hf-roundtrip-{}-{}",
            family.model_type(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        save(&dir, &cfg, &vm, Some(&tok)).unwrap();
        // The tokenizer comes back with its EOS token and chat template.
        let tok2 = read_tokenizer(&dir).unwrap();
        assert_eq!(tok2.eos_id(), tok.eos_id());
        assert_eq!(tok2.chat_template(), Some(template));
        assert_eq!(
            tok2.prompt_text("2+2?").unwrap(),
            "<user>2+2?<eos>\n<assistant>"
        );
        assert!(dir.join("tokenizer.json").is_file());
        assert_eq!(
            tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))
                .unwrap()
                .get_vocab_size(true),
            tok.vocab_size()
        );

        let load = |d: &Path| {
            let cfg2 = read_config(d).unwrap();
            assert_eq!(cfg2, cfg);
            let vm2 = VarMap::new();
            let n = load_weights(d, &vm2, &dev).unwrap();
            assert_eq!(n, tensors);
            let m2 = Decoder::new(&cfg2, VarBuilder::from_varmap(&vm2, DType::F32, &dev)).unwrap();
            logits(&m2)
        };
        assert_eq!(load(&dir), want);

        // Shard it: two files and an index, bf16 on disk (cast back to f32 master weights).
        let all = candle_core::safetensors::load(dir.join("model.safetensors"), &dev).unwrap();
        let (mut a, mut b) = (HashMap::new(), HashMap::new());
        let mut map = serde_json::Map::new();
        for (i, (k, v)) in all.into_iter().enumerate() {
            let (dst, file) = if i % 2 == 0 {
                (&mut a, "model-00001-of-00002.safetensors")
            } else {
                (&mut b, "model-00002-of-00002.safetensors")
            };
            dst.insert(k.clone(), v.to_dtype(DType::BF16).unwrap());
            map.insert(k, serde_json::Value::String(file.into()));
        }
        std::fs::remove_file(dir.join("model.safetensors")).unwrap();
        candle_core::safetensors::save(&a, dir.join("model-00001-of-00002.safetensors")).unwrap();
        candle_core::safetensors::save(&b, dir.join("model-00002-of-00002.safetensors")).unwrap();
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            serde_json::json!({"metadata": {}, "weight_map": map}).to_string(),
        )
        .unwrap();
        let got = load(&dir);
        let max_diff = got
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            max_diff < 0.05,
            "bf16 round trip moved logits by {max_diff}"
        );

        let hf: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(hf["model_type"], family.model_type());
        for (patch, why) in [
            (serde_json::json!({"model_type": "gpt2"}), "model_type"),
            (
                serde_json::json!({"rope_scaling": {"type": "yarn", "factor": 2.0}}),
                "yarn",
            ),
        ] {
            let mut bad = hf.clone();
            for (k, v) in patch.as_object().unwrap() {
                bad[k] = v.clone();
            }
            std::fs::write(dir.join("config.json"), bad.to_string()).unwrap();
            let e = read_config(&dir).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
