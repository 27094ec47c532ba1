//! RMSNorm `y = x / √(mean(x²) + ε) · w` over the last dimension, forward and backward each in
//! one pass per row.
//!
//! With `r = (mean(x²) + ε)^{-1/2}` per row of `n` elements and incoming gradient `g`:
//! `∂L/∂x_j = r·g_j·w_j − (r³/n)·x_j·Σ_i g_i·w_i·x_i` and `∂L/∂w_i = Σ_rows g_i·x_i·r`.
//! Replaces candle's `rms_norm_slow` (square, mean, add, sqrt, divide, multiply: six
//! temporaries forward) on CPU f32; the statistics are summed in f64.

use super::{chunk, f32s, map_chunks, rows_per_task};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, Layout, Result, Shape, Tensor};

/// RMSNorm of `x` `(…, n)` f32 on the CPU (see [`super::applies`]) with weight `w` `(n)` f32
/// and `eps` added to the mean square; the result is shaped like `x`. Differentiable in both.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    let n = x.dim(D::Minus1)?;
    if w.dims() != [n] {
        candle_core::bail!("rms_norm: weight {:?} for rows of {n}", w.shape());
    }
    let shape = x.shape().clone();
    x.contiguous()?
        .reshape((shape.elem_count() / n.max(1), n))?
        .apply_op2(&w.contiguous()?, RmsNorm { eps })?
        .reshape(shape)
}

/// Forward: `x` `(rows, n)`, `w` `(n)` → `(rows, n)`.
struct RmsNorm {
    eps: f32,
}

/// `(mean(x²) + ε)^{-1/2}` of one row, summed in f64.
fn inv_rms(x: &[f32], eps: f32) -> f64 {
    let (n, mut ss, mut i) = (x.len(), 0f64, 0);
    while i < n {
        ss += x[i] as f64 * x[i] as f64;
        i += 1;
    }
    1.0 / (ss / n as f64 + eps as f64).sqrt()
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let (rows, n) = l1.shape().dims2()?;
        if w.len() != n {
            candle_core::bail!("{}: weight of {} for rows of {n}", self.name(), w.len());
        }
        let mut y = vec![0f32; rows * n];
        let per = rows_per_task(n);
        map_chunks(&mut y, n * per, |k, y| {
            for (y, x) in y.chunks_mut(n).zip(chunk(x, n * per, k).chunks(n)) {
                let r = inv_rms(x, self.eps) as f32;
                let mut j = 0;
                while j < n {
                    y[j] = x[j] * r * w[j];
                    j += 1;
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (rows, n) = x.dims2()?;
        let both =
            x.apply_op3_no_bwd(w, &grad_res.contiguous()?, &RmsNormGrad { eps: self.eps })?;
        Ok((
            Some(both.narrow(0, 0, rows)?),
            Some(both.narrow(0, rows, 1)?.reshape(n)?),
        ))
    }
}

/// Backward: `x` `(rows, n)`, `w` `(n)`, `g` `(rows, n)` → `(rows + 1, n)`: the gradient of `x`,
/// then that of `w` as the last row.
struct RmsNormGrad {
    eps: f32,
}

impl CustomOp3 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "rms-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let w = f32s(s2, l2, self.name())?;
        let g = f32s(s3, l3, self.name())?;
        let (rows, n) = l1.shape().dims2()?;
        if w.len() != n || g.len() != x.len() {
            candle_core::bail!("{}: mismatched inputs", self.name());
        }
        let mut out = vec![0f32; (rows + 1) * n];
        let (dx, dw) = out.split_at_mut(rows * n);
        let per = rows_per_task(n);
        // Each task's share of ∂L/∂w, in task order: the sum below does not depend on how
        // rayon scheduled the tasks.
        let partials = map_chunks(dx, n * per, |k, dx| {
            let (x, g) = (chunk(x, n * per, k), chunk(g, n * per, k));
            let mut dw = vec![0f64; n];
            for ((dx, x), g) in dx.chunks_mut(n).zip(x.chunks(n)).zip(g.chunks(n)) {
                let r = inv_rms(x, self.eps);
                let (mut dot, mut j) = (0f64, 0);
                while j < n {
                    dot += g[j] as f64 * w[j] as f64 * x[j] as f64;
                    j += 1;
                }
                let c = (r * r * r * dot / n as f64) as f32;
                let rf = r as f32;
                j = 0;
                while j < n {
                    dx[j] = rf * g[j] * w[j] - c * x[j];
                    dw[j] += g[j] as f64 * x[j] as f64 * r;
                    j += 1;
                }
            }
            dw
        });
        let mut sum = vec![0f64; n];
        for p in &partials {
            for (s, &p) in sum.iter_mut().zip(p) {
                *s += p;
            }
        }
        for (dw, s) in dw.iter_mut().zip(sum) {
            *dw = s as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from((rows + 1, n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::agreement::{max_rel_diff, uniform, values};
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    #[test]
    fn values_and_gradients_match_the_unfused_ops() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for (b, t, n) in [(2, 3, 32), (3, 70, 576)] {
            for scale in [1.0f32, 50.0] {
                let x =
                    Var::from_vec(uniform(&mut rng, b * t * n, scale), (b, t, n), &dev).unwrap();
                let w = Var::from_vec(uniform(&mut rng, n, 2.0), n, &dev).unwrap();
                let g =
                    Tensor::from_vec(uniform(&mut rng, b * t * n, 1.0), (b, t, n), &dev).unwrap();
                let y = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
                let y0 = candle_nn::ops::rms_norm_slow(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
                let what = format!("({b},{t},{n}) scale {scale}");
                assert!(max_rel_diff(&y, &y0) < 1e-5, "{what}: values");
                let gr = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let gr0 = (&y0 * &g).unwrap().sum_all().unwrap().backward().unwrap();
                for (name, v) in [("x", &x), ("w", &w)] {
                    let diff = max_rel_diff(gr.get(v).unwrap(), gr0.get(v).unwrap());
                    assert!(diff < 1e-5, "{what}: ∂/∂{name} off by {diff}");
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (rows, n) = (3, 6);
        let x0 = uniform(&mut rng, rows * n, 2.0);
        let w0 = uniform(&mut rng, n, 1.5);
        let g = Tensor::from_vec(uniform(&mut rng, rows * n, 1.0), (rows, n), &dev).unwrap();
        let eval = |x: &[f32], w: &[f32]| -> f64 {
            let x = Tensor::from_vec(x.to_vec(), (rows, n), &dev).unwrap();
            let w = Tensor::from_vec(w.to_vec(), n, &dev).unwrap();
            let y = rms_norm(&x, &w, 1e-5).unwrap();
            f64::from(
                (y * &g)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        };
        let x = Var::from_vec(x0.clone(), (rows, n), &dev).unwrap();
        let w = Var::from_vec(w0.clone(), n, &dev).unwrap();
        let y = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let h = 1e-2f32;
        let check = |auto: f32, fd: f64, what: String| {
            let err = (fd - f64::from(auto)).abs();
            assert!(
                err < 2e-3 * fd.abs().max(0.1),
                "{what}: autograd {auto} vs {fd}"
            );
        };
        let gx = values(grads.get(&x).unwrap());
        for i in 0..rows * n {
            let (mut up, mut down) = (x0.clone(), x0.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (eval(&up, &w0) - eval(&down, &w0)) / (2.0 * f64::from(h));
            check(gx[i], fd, format!("x[{i}]"));
        }
        let gw = values(grads.get(&w).unwrap());
        for i in 0..n {
            let (mut up, mut down) = (w0.clone(), w0.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (eval(&x0, &up) - eval(&x0, &down)) / (2.0 * f64::from(h));
            check(gw[i], fd, format!("w[{i}]"));
        }
    }
}
