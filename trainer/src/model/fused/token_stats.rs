//! Token log-probability and full-vocabulary entropy of softmax rows, in one pass per row.
//!
//! For logits `x` `(…, V)` f32 and targets `y` `(…)` u32, with `ℓ = log_softmax(x)` and
//! `p = exp(ℓ)`: `log p(y) = ℓ_y` and `H = −Σ p·ℓ`, both `(…)` f32. The unfused composition
//! (`log_softmax`, `gather`, `exp`, multiply, sum) streams five `(…, V)` temporaries forward and
//! as many backward; here the forward reads each row twice (its maximum, then `Σ e^{x−m}` and
//! `Σ e^{x−m}(x−m)` in f64) and writes three numbers, and the backward reads it once more and
//! writes the gradient:
//!
//! `∂ℓ_y/∂x_j = δ_jy − p_j`, `∂H/∂x_j = −p_j·(ℓ_j + H)`, so
//! `∂L/∂x_j = g_ℓ·δ_jy − p_j·(g_ℓ + g_H·(ℓ_j + H))`.

use super::{chunk, f32s, map_chunks, rows_per_task, u32s};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, Layout, Result, Shape, Tensor};

/// Columns of the op's output: the two differentiable results, then the saved row statistics
/// the backward reads (the row maximum and `ln Σ e^{x−m}`; never exposed, never differentiated).
const COLS: usize = 4;

/// `(log p(target), H)`, both shaped like `targets`, of `softmax(logits)` over the last
/// dimension; `logits` `(…, V)` f32 on the CPU (see [`super::applies`]), `targets` `(…)` u32
/// (each `< V`). Differentiable in `logits`. Temperature scaling stays with the caller.
pub fn token_logprob_entropy(logits: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    let v = logits.dim(D::Minus1)?;
    let rows_shape = targets.shape().clone();
    if logits.dims()[..logits.rank() - 1] != *rows_shape.dims() {
        candle_core::bail!(
            "token_logprob_entropy: logits {:?} against targets {:?}",
            logits.shape(),
            rows_shape
        );
    }
    let rows = rows_shape.elem_count();
    let stats = logits
        .contiguous()?
        .reshape((rows, v))?
        .apply_op2(&targets.flatten_all()?.contiguous()?, TokenStats)?; // (rows, COLS)
    let logp = stats.narrow(1, 0, 1)?.reshape(&rows_shape)?;
    let entropy = stats.narrow(1, 1, 1)?.reshape(&rows_shape)?;
    Ok((logp, entropy))
}

/// Forward: logits `(rows, V)` f32, targets `(rows)` u32 → `(rows, COLS)` f32.
struct TokenStats;

impl CustomOp2 for TokenStats {
    fn name(&self) -> &'static str {
        "token-logprob-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s(s1, l1, self.name())?;
        let y = u32s(s2, l2, self.name())?;
        let (rows, v) = l1.shape().dims2()?;
        check_targets(y, rows, v)?;
        let mut out = vec![0f32; rows * COLS];
        let per = rows_per_task(v);
        map_chunks(&mut out, COLS * per, |k, out| {
            let (x, y) = (chunk(x, v * per, k), chunk(y, per, k));
            for ((o, x), &t) in out.chunks_mut(COLS).zip(x.chunks(v)).zip(y) {
                o.copy_from_slice(&row_stats(x, t as usize));
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((rows, COLS))))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // Per row: the saved statistics and the incoming gradients of log p(y) and H.
        let coef =
            Tensor::cat(&[&res.narrow(1, 1, 3)?, &grad_res.narrow(1, 0, 2)?], 1)?.contiguous()?; // (rows, 5): H, m, ln s, g_ℓ, g_H
        let grad = logits.apply_op3_no_bwd(targets, &coef, &TokenStatsGrad)?;
        Ok((Some(grad), None))
    }
}

fn check_targets(y: &[u32], rows: usize, v: usize) -> Result<()> {
    if y.len() != rows {
        candle_core::bail!("token-logprob-entropy: {} targets for {rows} rows", y.len());
    }
    if let Some(&t) = y.iter().find(|&&t| t as usize >= v) {
        candle_core::bail!("token-logprob-entropy: target {t} outside a vocabulary of {v}");
    }
    Ok(())
}

/// `[ℓ_t, H, m, ln s]` of one row: `m = max x`, `s = Σ e^{x−m}`, `ℓ_t = x_t − m − ln s`,
/// `H = ln s − Σ e^{x−m}(x−m) / s` (shifted by `m`, so large logits lose no precision).
fn row_stats(x: &[f32], target: usize) -> [f32; COLS] {
    let n = x.len();
    let mut m = f32::NEG_INFINITY;
    let mut i = 0;
    while i < n {
        if x[i] > m {
            m = x[i];
        }
        i += 1;
    }
    let (mut s, mut sd) = (0f64, 0f64);
    i = 0;
    while i < n {
        let d = x[i] - m;
        let e = d.exp();
        s += e as f64;
        // e = 0 only where d = −∞ (a masked logit), which adds nothing to the entropy.
        if e > 0.0 {
            sd += (e * d) as f64;
        }
        i += 1;
    }
    let ln_s = s.ln();
    let logp = (x[target] - m) as f64 - ln_s;
    let entropy = ln_s - sd / s;
    [logp as f32, entropy as f32, m, ln_s as f32]
}

/// Backward: logits `(rows, V)`, targets `(rows)`, per-row `[H, m, ln s, g_ℓ, g_H]` `(rows, 5)`
/// → the gradient `(rows, V)` of the logits.
struct TokenStatsGrad;

impl CustomOp3 for TokenStatsGrad {
    fn name(&self) -> &'static str {
        "token-logprob-entropy-grad"
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
        let y = u32s(s2, l2, self.name())?;
        let coef = f32s(s3, l3, self.name())?;
        let (rows, v) = l1.shape().dims2()?;
        check_targets(y, rows, v)?;
        if coef.len() != rows * 5 {
            candle_core::bail!(
                "{}: {} coefficients for {rows} rows",
                self.name(),
                coef.len()
            );
        }
        let mut grad = vec![0f32; rows * v];
        let per = rows_per_task(v);
        map_chunks(&mut grad, v * per, |k, grad| {
            let (x, y, c) = (
                chunk(x, v * per, k),
                chunk(y, per, k),
                chunk(coef, 5 * per, k),
            );
            for (((g, x), &t), c) in grad.chunks_mut(v).zip(x.chunks(v)).zip(y).zip(c.chunks(5)) {
                row_grad(g, x, t as usize, c);
            }
        });
        Ok((CpuStorage::F32(grad), l1.shape().clone()))
    }
}

/// `g_j = g_ℓ·δ_jt − p_j·(g_ℓ + g_H·(ℓ_j + H))` with `ℓ_j = x_j − m − ln s`, `p_j = e^{ℓ_j}`.
fn row_grad(g: &mut [f32], x: &[f32], target: usize, c: &[f32]) {
    let (h, m, ln_s, g_lp, g_h) = (c[0], c[1], c[2], c[3], c[4]);
    let n = x.len().min(g.len());
    let mut i = 0;
    while i < n {
        let l = (x[i] - m) - ln_s;
        let p = l.exp();
        g[i] = if p > 0.0 {
            -p * (g_lp + g_h * (l + h))
        } else {
            0.0
        };
        i += 1;
    }
    g[target] += g_lp;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::agreement::{max_rel_diff, uniform, values};
    use candle_core::{DType, Device, Var};
    use rand::{Rng, SeedableRng};

    /// The unfused composition the op replaces.
    fn unfused(logits: &Tensor, targets: &Tensor) -> (Tensor, Tensor) {
        let logp_all = candle_nn::ops::log_softmax(logits, D::Minus1).unwrap();
        let logp = logp_all
            .gather(&targets.unsqueeze(D::Minus1).unwrap(), D::Minus1)
            .unwrap()
            .squeeze(D::Minus1)
            .unwrap();
        let h = (logp_all.exp().unwrap() * &logp_all)
            .unwrap()
            .sum(D::Minus1)
            .unwrap()
            .neg()
            .unwrap();
        (logp, h)
    }

    /// A loss mixing both outputs with random per-token weights, as the policy losses do.
    fn loss(lp: &Tensor, h: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
        ((lp * a).unwrap().sum_all().unwrap() + (h * b).unwrap().sum_all().unwrap()).unwrap()
    }

    #[test]
    fn values_and_gradients_match_the_unfused_ops() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (b, t, v) in [(2, 3, 99), (1, 2, 49_153)] {
            for scale in [1.0f32, 8.0, 60.0] {
                for temperature in [1.0, 0.7] {
                    let x = Var::from_vec(uniform(&mut rng, b * t * v, scale), (b, t, v), &dev)
                        .unwrap();
                    let ids: Vec<u32> = (0..b * t).map(|_| rng.random_range(0..v as u32)).collect();
                    let y = Tensor::from_vec(ids, (b, t), &dev).unwrap();
                    let a = Tensor::from_vec(uniform(&mut rng, b * t, 1.0), (b, t), &dev).unwrap();
                    let c = Tensor::from_vec(uniform(&mut rng, b * t, 1.0), (b, t), &dev).unwrap();
                    let scaled = (x.as_tensor() / temperature).unwrap();
                    let (lp, h) = token_logprob_entropy(&scaled, &y).unwrap();
                    let (lp0, h0) = unfused(&scaled, &y);
                    let what = format!("({b},{t},{v}) scale {scale} T {temperature}");
                    assert_eq!(lp.dims(), &[b, t]);
                    assert!(max_rel_diff(&lp, &lp0) < 1e-5, "{what}: log p");
                    assert!(max_rel_diff(&h, &h0) < 1e-5, "{what}: entropy");
                    let g = loss(&lp, &h, &a, &c).backward().unwrap();
                    let g0 = loss(&lp0, &h0, &a, &c).backward().unwrap();
                    let (g, g0) = (g.get(&x).unwrap(), g0.get(&x).unwrap());
                    let diff = max_rel_diff(g, g0);
                    assert!(diff < 1e-5, "{what}: gradient off by {diff}");
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (rows, v) = (3, 11);
        let base = uniform(&mut rng, rows * v, 3.0);
        let y = Tensor::new(&[4u32, 0, 10], &dev).unwrap();
        let a = Tensor::new(&[0.7f32, -1.3, 0.4], &dev).unwrap();
        let b = Tensor::new(&[-0.5f32, 0.9, 1.6], &dev).unwrap();
        let eval = |x: &[f32]| -> f64 {
            let x = Tensor::from_vec(x.to_vec(), (rows, v), &dev).unwrap();
            let (lp, h) = token_logprob_entropy(&x, &y).unwrap();
            f64::from(loss(&lp, &h, &a, &b).to_scalar::<f32>().unwrap())
        };
        let x = Var::from_vec(base.clone(), (rows, v), &dev).unwrap();
        let (lp, h) = token_logprob_entropy(x.as_tensor(), &y).unwrap();
        let grads = loss(&lp, &h, &a, &b).backward().unwrap();
        let g = values(grads.get(&x).unwrap());
        let step = 1e-2f32;
        for i in 0..rows * v {
            let (mut up, mut down) = (base.clone(), base.clone());
            up[i] += step;
            down[i] -= step;
            let fd = (eval(&up) - eval(&down)) / (2.0 * f64::from(step));
            let err = (fd - f64::from(g[i])).abs();
            assert!(
                err < 2e-3 * fd.abs().max(0.1),
                "element {i}: autograd {} vs {fd}",
                g[i]
            );
        }
    }

    #[test]
    fn rejects_out_of_range_targets_and_mismatched_shapes() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 5), DType::F32, &dev).unwrap();
        assert!(token_logprob_entropy(&x, &Tensor::new(&[1u32, 5], &dev).unwrap()).is_err());
        assert!(token_logprob_entropy(&x, &Tensor::new(&[1u32, 2, 3], &dev).unwrap()).is_err());
    }
}
