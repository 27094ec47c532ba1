//! Fused CPU kernels with their own backward, for the decoder's hot elementwise and row-wise
//! ops.
//!
//! Each op here computes in one pass over its rows what the unfused composition of candle ops
//! computes through several full-size temporaries, and differentiates itself with a second
//! fused kernel (candle `CustomOp2`/`CustomOp3` with `bwd`). They run on CPU f32 tensors only
//! ([`applies`]); callers keep the unfused composition for every other device and dtype, so a
//! CUDA build keeps its current path. Rows are spread over candle's rayon pool; every sum runs
//! in a fixed order, so results do not depend on the number of threads.

#[cfg(test)]
pub(crate) mod agreement;
pub mod rms_norm;
pub mod rope;
pub mod swiglu;
pub mod token_stats;

pub use rms_norm::rms_norm;
pub use rope::rope;
pub use swiglu::swiglu;
pub use token_stats::token_logprob_entropy;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Result, Tensor};
use rayon::prelude::*;

/// Whether the fused kernels take `t`: an f32 tensor on the CPU.
pub fn applies(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// The contiguous f32 elements of a CPU storage under `l`.
fn f32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::msg(format!("{op}: non-contiguous input")))?;
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => candle_core::bail!("{op}: f32 inputs only, got {:?}", s.dtype()),
    }
}

/// The contiguous u32 elements of a CPU storage under `l`.
fn u32s<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [u32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::msg(format!("{op}: non-contiguous input")))?;
    match s {
        CpuStorage::U32(v) => Ok(&v[start..end]),
        _ => candle_core::bail!("{op}: u32 indices only, got {:?}", s.dtype()),
    }
}

// The per-element loops of these kernels index with `while` rather than iterator adaptors:
// in unoptimised builds (tests, `cargo run`, the demo in CI) every `zip`/`next` is a function
// call per element, which made the fused kernels slower there than the unfused ops. Optimised
// builds compile both forms alike.

/// Elements per parallel task: below it a kernel runs on the calling thread (a decoding step's
/// rows are too small to be worth waking the pool).
const TASK: usize = 16_384;

/// Rows per task for rows of `width` elements (at least one).
fn rows_per_task(width: usize) -> usize {
    (TASK / width.max(1)).max(1)
}

/// `f(k, chunk)` for the `k`-th chunk of `size` elements of `out`, results in chunk order; on
/// the rayon pool when there is more than one chunk.
fn map_chunks<T, R, F>(out: &mut [T], size: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, &mut [T]) -> R + Sync + Send,
{
    let size = size.max(1);
    if out.len() <= size {
        return out
            .chunks_mut(size)
            .enumerate()
            .map(|(k, c)| f(k, c))
            .collect();
    }
    out.par_chunks_mut(size)
        .enumerate()
        .map(|(k, c)| f(k, c))
        .collect()
}

/// [`map_chunks`] over two outputs of one length, chunked alike.
fn map_chunks2<T, F>(a: &mut [T], b: &mut [T], size: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T], &mut [T]) + Sync + Send,
{
    let size = size.max(1);
    if a.len() <= size {
        a.chunks_mut(size)
            .zip(b.chunks_mut(size))
            .enumerate()
            .for_each(|(k, (a, b))| f(k, a, b));
        return;
    }
    a.par_chunks_mut(size)
        .zip(b.par_chunks_mut(size))
        .enumerate()
        .for_each(|(k, (a, b))| f(k, a, b));
}

/// The `k`-th chunk of `size` elements of `x` (shorter at the end).
fn chunk<T>(x: &[T], size: usize, k: usize) -> &[T] {
    let start = (k * size).min(x.len());
    &x[start..(start + size).min(x.len())]
}
