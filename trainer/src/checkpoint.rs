//! Training checkpoints for exact resume: weights, optimizer moments and counters, the next
//! step and the run id, in `RUN_DIR/checkpoint/`.
//!
//! Files: `model.safetensors` (HF tensor names), `optimizer.safetensors` (`m.*`, `v.*`, f32),
//! `state.json`. A save writes a fresh `checkpoint.tmp/` and swaps it in with renames, so a
//! kill at any moment leaves a complete checkpoint (the new one, or the previous one as
//! `checkpoint.old/`, which [`load`] falls back to). Sampling randomness is derived from
//! `(seed, step)`, so no RNG state needs saving.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::optim::{AdamW, OptimCounters};

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    /// The run the checkpoint belongs to.
    pub run_id: String,
    /// First step not yet taken.
    pub next_step: usize,
    /// Optimizer counters.
    pub optimizer: OptimCounters,
    /// The resolved config of the run (compared on resume).
    pub config: serde_json::Value,
}

/// Checkpoint failures.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// No checkpoint in the run directory.
    #[error("no checkpoint in {0}")]
    Missing(PathBuf),
    /// File I/O.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Tensors could not be saved or restored.
    #[error("checkpoint tensors: {0}")]
    Tensor(#[from] candle_core::Error),
    /// `state.json` is malformed.
    #[error("checkpoint state: {0}")]
    State(#[from] serde_json::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Saves a checkpoint into `run_dir/checkpoint`, replacing the previous one atomically.
pub fn save(
    run_dir: &Path,
    varmap: &VarMap,
    opt: &AdamW,
    state: &CheckpointState,
) -> Result<(), CheckpointError> {
    let tmp = run_dir.join("checkpoint.tmp");
    let cur = run_dir.join("checkpoint");
    let old = run_dir.join("checkpoint.old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    varmap.save(tmp.join("model.safetensors"))?;
    let (moments, _) = opt.state();
    candle_core::safetensors::save(&moments, tmp.join("optimizer.safetensors"))?;
    let state_path = tmp.join("state.json");
    std::fs::write(&state_path, serde_json::to_vec_pretty(state)?).map_err(io(&state_path))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    if cur.exists() {
        std::fs::rename(&cur, &old).map_err(io(&cur))?;
    }
    std::fs::rename(&tmp, &cur).map_err(io(&tmp))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// The directory holding the latest complete checkpoint, if any.
pub fn latest(run_dir: &Path) -> Option<PathBuf> {
    ["checkpoint", "checkpoint.old"]
        .iter()
        .map(|d| run_dir.join(d))
        .find(|d| d.join("state.json").is_file() && d.join("model.safetensors").is_file())
}

/// Reads a checkpoint's state without touching any weights.
pub fn read_state(run_dir: &Path) -> Result<CheckpointState, CheckpointError> {
    let dir = latest(run_dir).ok_or_else(|| CheckpointError::Missing(run_dir.to_path_buf()))?;
    state_in(&dir)
}

/// `state.json` of one checkpoint directory.
fn state_in(dir: &Path) -> Result<CheckpointState, CheckpointError> {
    let path = dir.join("state.json");
    Ok(serde_json::from_slice(
        &std::fs::read(&path).map_err(io(&path))?,
    )?)
}

/// Restores weights into `varmap` and moments into `opt`; returns the saved state.
pub fn load(
    run_dir: &Path,
    varmap: &mut VarMap,
    opt: &mut AdamW,
    device: &Device,
) -> Result<CheckpointState, CheckpointError> {
    // Everything from the one directory chosen here, even if a save swaps directories meanwhile.
    let dir = latest(run_dir).ok_or_else(|| CheckpointError::Missing(run_dir.to_path_buf()))?;
    let state = state_in(&dir)?;
    varmap.load(dir.join("model.safetensors"))?;
    let moments: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("optimizer.safetensors"), device)?;
    opt.load_state(&moments, state.optimizer)?;
    Ok(state)
}
