//! Where a run's tensors live and in which dtype its matrix products run.
//!
//! CPU is the tested default. CUDA needs a binary built with `--features cuda`
//! (`scripts/build-cuda.sh`); such a binary links the CUDA driver, cuBLAS, cuRAND and the CUDA
//! runtime dynamically, so it starts only where those libraries are found (README, "Running on
//! a GPU").

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

/// A compute device named on the command line (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDevice {
    /// The CPU. The default.
    #[default]
    Cpu,
    /// The first NVIDIA GPU (ordinal 0; `CUDA_VISIBLE_DEVICES` picks which one that is).
    Cuda,
}

/// Opening a device failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// This binary was built without the `cuda` feature.
    #[error(
        "--device cuda: this binary was built without CUDA support; build one with \
         `bash scripts/build-cuda.sh` (README, \"Running on a GPU\")"
    )]
    CudaNotBuilt,
    /// The CUDA driver or device could not be opened.
    #[error("--device cuda: opening GPU 0 failed: {0}")]
    Cuda(String),
}

impl ComputeDevice {
    /// Opens the device. CUDA never falls back to the CPU: a missing driver or GPU is an error.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            ComputeDevice::Cpu => Ok(Device::Cpu),
            ComputeDevice::Cuda => open_cuda(),
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Device, DeviceError> {
    Device::new_cuda(0).map_err(|e| DeviceError::Cuda(e.to_string()))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Device, DeviceError> {
    Err(DeviceError::CudaNotBuilt)
}

/// The dtype of the forward pass's matrix products (`precision` in the config).
///
/// Master weights, gradients, AdamW moments, checkpoints and every loss quantity stay f32 in
/// both modes. With `bf16` the weights are cast to bf16 as they enter each forward (the cast is
/// differentiable, so gradients arrive in f32), projections and the residual stream run in
/// bf16, while RMSNorm statistics, attention scores and softmax, and the output logits are f32:
/// what PyTorch's `autocast(dtype=bfloat16)` does for these ops. Meant for CUDA; on the CPU
/// bf16 products are slower than f32 and serve tests only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 everywhere. The default.
    #[default]
    F32,
    /// bf16 matrix products over f32 master weights.
    Bf16,
}

impl Precision {
    /// The compute dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_opens() {
        assert!(ComputeDevice::Cpu.open().unwrap().is_cpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_the_build_script() {
        let e = ComputeDevice::Cuda.open().unwrap_err();
        assert!(matches!(e, DeviceError::CudaNotBuilt), "{e}");
        assert!(e.to_string().contains("scripts/build-cuda.sh"), "{e}");
    }

    /// A CUDA build opens the GPU or says why (no driver, no device): never the CPU instead.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_build_opens_a_gpu_or_says_why() {
        match ComputeDevice::Cuda.open() {
            Ok(d) => assert!(d.is_cuda()),
            Err(DeviceError::Cuda(msg)) => assert!(!msg.is_empty()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn precision_parses_lowercase() {
        #[derive(Deserialize)]
        struct P {
            p: Precision,
        }
        let p: P = toml::from_str("p = \"bf16\"").unwrap();
        assert_eq!(p.p.dtype(), DType::BF16);
        assert!(toml::from_str::<P>("p = \"fp16\"").is_err());
    }
}
