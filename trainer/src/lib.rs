//! The RLVR trainer: GRPO and STEER on a differentiable candle model, rewarded by the verifier
//! over HTTP, every graded rollout stored in SQL.
//!
//! Read [`train`] first: it is the run, top to bottom; [`step`] is one RL step, phase by phase.

pub mod algo;
pub mod audit;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod device;
pub mod eval;
pub mod gpu_check;
pub mod model;
pub mod optim;
pub mod plot;
pub mod probe;
pub mod reward;
pub mod rollout;
pub mod stats;
pub mod step;
pub mod store;
pub mod task;
pub mod tokenizer;
pub mod train;
pub mod warmup;
pub mod weights;
