//! AdamW's update as three in-place passes over CPU memory: `m`, then `v`, then the weight.
//!
//! The tensor-op formulation of the same update ([`super::AdamW::step`]'s general path, also
//! the CUDA one) allocates a fresh tensor for each of its ~15 operations per parameter; for a
//! 135M-parameter model that is gigabytes of page-faulted memory per step. These kernels read
//! and write the existing storage instead. They only take contiguous f32 tensors on the CPU;
//! [`applies`] says when, and the caller falls back to tensor ops otherwise.

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Tensor};

/// Whether every tensor is a contiguous f32 CPU tensor (the kernels' precondition).
pub(super) fn applies(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
}

/// The contiguous f32 slice of a CPU storage.
fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::msg("fused AdamW: non-contiguous tensor"))?;
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => candle_core::bail!("fused AdamW: f32 tensors only"),
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::msg("fused AdamW: non-contiguous tensor"))?;
    match s {
        CpuStorage::F32(v) => Ok(&mut v[start..end]),
        _ => candle_core::bail!("fused AdamW: f32 tensors only"),
    }
}

/// `m ← β·m + (1 − β)·s·g` (first moment), or with `square` `v ← β·v + (1 − β)·(s·g)²`.
pub(super) struct Moment {
    /// β₁ or β₂.
    pub(super) beta: f32,
    /// The clipping scale applied to the gradient.
    pub(super) scale: f32,
    /// Second moment (squares the scaled gradient).
    pub(super) square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = slice(s2, l2)?;
        let m = slice_mut(s1, l1)?;
        if m.len() != g.len() {
            candle_core::bail!(
                "fused AdamW: moment of {} for a gradient of {}",
                m.len(),
                g.len()
            );
        }
        let (beta, rest) = (self.beta, 1.0 - self.beta);
        if self.square {
            for (m, &g) in m.iter_mut().zip(g) {
                let g = g * self.scale;
                *m = beta * *m + rest * g * g;
            }
        } else {
            for (m, &g) in m.iter_mut().zip(g) {
                *m = beta * *m + rest * (g * self.scale);
            }
        }
        Ok(())
    }
}

/// `w ← w·decay − lr·(m / bc1) / (√(v / bc2) + ε)`.
pub(super) struct Weight {
    /// `1 − lr·weight_decay` (1 for parameters without decay).
    pub(super) decay: f32,
    /// Learning rate.
    pub(super) lr: f32,
    /// Bias corrections `1 − β₁ᵗ`, `1 − β₂ᵗ`.
    pub(super) bc1: f32,
    /// See `bc1`.
    pub(super) bc2: f32,
    /// ε.
    pub(super) eps: f32,
}

impl InplaceOp3 for Weight {
    fn name(&self) -> &'static str {
        "adamw-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (m, v) = (slice(s2, l2)?, slice(s3, l3)?);
        let w = slice_mut(s1, l1)?;
        if w.len() != m.len() || w.len() != v.len() {
            candle_core::bail!("fused AdamW: weight, m and v sizes differ");
        }
        for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
            let update = (m / self.bc1) / ((v / self.bc2).sqrt() + self.eps);
            *w = *w * self.decay - self.lr * update;
        }
        Ok(())
    }
}
