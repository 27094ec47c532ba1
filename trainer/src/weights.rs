//! The policy's weights as a run uses them: the trainable parameters, the detached view
//! π_old is scored (and the sampler copied) from, and the frozen reference for a KL penalty.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::model::Decoder;
use crate::optim::Param;

/// Trainable parameters; weight decay on matrices only.
pub fn params_of(varmap: &VarMap) -> candle_core::Result<Vec<Param>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::msg("varmap lock poisoned"))?;
    Ok(data
        .iter()
        .map(|(name, var)| Param {
            name: name.clone(),
            var: var.clone(),
            decay: var.rank() >= 2,
        })
        .collect())
}

/// A model over detached views of the VarMap's tensors (shared storage, no graph): π_old's
/// view of the policy, and what the sampler's per-step [`Decoder::fused`] copy is taken from.
pub fn detached_view(varmap: &VarMap, policy: &Decoder) -> candle_core::Result<Decoder> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::msg("varmap lock poisoned"))?;
    let tensors: HashMap<String, Tensor> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    drop(data);
    Ok(Decoder::new(
        policy.config(),
        VarBuilder::from_tensors(tensors, DType::F32, policy.device()),
    )?
    .with_compute_dtype(policy.compute_dtype()))
}

/// The frozen reference policy: the weights at the start of RL, saved in the run directory
/// (`reference.safetensors`) so a resumed run keeps the same reference.
pub fn reference_model(
    varmap: &VarMap,
    policy: &Decoder,
    run_dir: &Path,
    resumed: bool,
) -> candle_core::Result<Decoder> {
    let device = policy.device();
    let path = run_dir.join("reference.safetensors");
    let tensors: HashMap<String, Tensor> = if resumed && path.is_file() {
        candle_core::safetensors::load(&path, device)?
    } else {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::msg("varmap lock poisoned"))?;
        let copies = data
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?;
        drop(data);
        candle_core::safetensors::save(&copies, &path)?;
        copies
    };
    Ok(Decoder::new(
        policy.config(),
        VarBuilder::from_tensors(tensors, DType::F32, device),
    )?
    .with_compute_dtype(policy.compute_dtype()))
}
