//! The output head's empirical neural tangent kernel between response positions.
//!
//! Logits `z_s = W h_s / τ` (head input `h_s`, temperature `τ`), `π_s = softmax(z_s)`,
//! `u_s = π_s ⊙ (log π_s + H_s)` so that `∂H_s/∂z_s = −u_s`. A policy-gradient step of size
//! `η` on `L = −Σ_t a_t r_t` moves `W` by `η Σ_t a_t (e_{y_t} − π_t) h_tᵀ / τ` (at `r = 1`),
//! hence the logits at `s` by `η/τ² Σ_t (h_s·h_t) a_t (e_{y_t} − π_t)` and the entropy by
//!
//! ```text
//! ΔH_s = η Σ_t C_st,   C_st = −(h_s·h_t)/τ² · a_t · (u_{s,y_t} − u_s·π_t)
//! ```
//!
//! The diagonal `t = s` is Wang et al.'s tabular change times `‖h_s‖²/τ²`; every other term is
//! the coupling through the shared head. Row sums are the target side (what each position's
//! entropy does), column sums the source side (what each token does to all entropies).
//! `u_s·π_t` runs over the vocabulary; it is truncated to the `k` most probable tokens of
//! `π_t` (the terms dropped are weighted by `π_t`'s tail mass). `u_{s,j}` is never truncated:
//! each value comes from the exact `log π_{s,j} = z_{s,j} − logsumexp(z_s)`.

use std::collections::HashMap;

use candle_core::{D, DType, Result, Tensor};

/// What the kernel needs of `N` response positions.
#[derive(Debug, Clone)]
pub struct HeadInputs {
    /// Head inputs `(N, d)` f32.
    pub h: Tensor,
    /// The sampled token at each position.
    pub y: Vec<u32>,
    /// `logsumexp(z_s)` of the temperature-scaled logits.
    pub lse: Vec<f32>,
    /// Entropy `H_s`, nats.
    pub entropy: Vec<f32>,
    /// The `k` most probable tokens of each position, row-major `(N, k)`.
    pub top_ids: Vec<u32>,
    /// Their probabilities.
    pub top_p: Vec<f32>,
    /// Tokens kept per position.
    pub k: usize,
}

impl HeadInputs {
    /// From the head inputs `h` `(N, d)`, the raw logits `(N, V)` and the sampled tokens `y`
    /// of `N` positions, under `softmax(logits / temperature)`, keeping the `k` most probable
    /// tokens of each (at most `V`).
    pub fn from_logits(
        h: Tensor,
        logits: &Tensor,
        y: Vec<u32>,
        temperature: f64,
        k: usize,
    ) -> Result<Self> {
        let (n, v) = logits.dims2()?;
        let k = k.clamp(1, v);
        let scaled = (logits.to_dtype(DType::F32)? / temperature)?;
        let lse = scaled.log_sum_exp(D::Minus1)?;
        let logp = scaled.broadcast_sub(&lse.unsqueeze(1)?)?;
        let entropy = (logp.exp()? * &logp)?.sum(D::Minus1)?.neg()?;
        let lse = lse.to_vec1::<f32>()?;
        let host = scaled.flatten_all()?.to_vec1::<f32>()?;
        let (mut top_ids, mut top_p) = (Vec::with_capacity(n * k), Vec::with_capacity(n * k));
        for (row, &l) in host.chunks(v).zip(&lse) {
            for j in top_k(row, k) {
                top_ids.push(j as u32);
                top_p.push((row[j] - l).exp());
            }
        }
        Ok(HeadInputs {
            h: h.to_dtype(DType::F32)?,
            y,
            lse,
            entropy: entropy.to_vec1::<f32>()?,
            top_ids,
            top_p,
            k,
        })
    }

    /// The valid positions (row-major) of a micro-batch: head inputs `(b, t, d)`, raw logits
    /// `(b, t, V)`, target ids `(b, t)` and the row-major response `mask` of those `b × t`
    /// cells, under `softmax(logits / temperature)`, keeping `k` tokens per position.
    pub fn at_valid(
        head_input: &Tensor,
        logits: &Tensor,
        targets: &Tensor,
        mask: &[bool],
        temperature: f64,
        k: usize,
    ) -> Result<Self> {
        let dev = head_input.device();
        let valid: Vec<u32> = (0..mask.len() as u32)
            .filter(|&i| mask[i as usize])
            .collect();
        let idx = Tensor::from_vec(valid.clone(), valid.len(), dev)?;
        let flat = |x: &Tensor| -> Result<Tensor> {
            let last = x.dim(2)?;
            x.reshape((mask.len(), last))?.index_select(&idx, 0)
        };
        let y = targets
            .flatten_all()?
            .index_select(&idx, 0)?
            .to_vec1::<u32>()?;
        HeadInputs::from_logits(flat(head_input)?, &flat(logits)?, y, temperature, k)
    }

    /// The positions of `parts`, one after the other (all with the same `k`).
    pub fn cat(parts: &[HeadInputs]) -> Result<Self> {
        let Some(first) = parts.first() else {
            candle_core::bail!("no positions");
        };
        if parts.iter().any(|p| p.k != first.k) {
            candle_core::bail!("head inputs with different k");
        }
        let hs: Vec<&Tensor> = parts.iter().map(|p| &p.h).collect();
        let flat = |f: fn(&HeadInputs) -> &[f32]| parts.iter().flat_map(f).copied().collect();
        Ok(HeadInputs {
            h: Tensor::cat(&hs, 0)?,
            y: parts.iter().flat_map(|p| p.y.iter().copied()).collect(),
            lse: flat(|p| &p.lse),
            entropy: flat(|p| &p.entropy),
            top_ids: parts
                .iter()
                .flat_map(|p| p.top_ids.iter().copied())
                .collect(),
            top_p: flat(|p| &p.top_p),
            k: first.k,
        })
    }

    /// Positions.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True without positions.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Indices of the `k` largest values of `row`, largest first.
fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    for (j, &x) in row.iter().enumerate() {
        if best.len() == k && x <= row[best[k - 1]] {
            continue;
        }
        let at = best.partition_point(|&b| row[b] >= x);
        best.insert(at, j);
        best.truncate(k);
    }
    best
}

/// `C_st` for every pair of `N` positions, per unit learning rate (row-major `(N, N)`).
#[derive(Debug, Clone, PartialEq)]
pub struct PairMatrix {
    n: usize,
    c: Vec<f32>,
}

impl PairMatrix {
    /// Target side: `Σ_t C_st`, the predicted entropy change at each position `s`.
    pub fn target(&self) -> Vec<f64> {
        self.c
            .chunks(self.n.max(1))
            .map(|row| row.iter().map(|&x| f64::from(x)).sum())
            .collect()
    }

    /// Source side: `Σ_s C_st`, each token's contribution to the summed entropy change.
    pub fn source(&self) -> Vec<f64> {
        let mut out = vec![0f64; self.n];
        for row in self.c.chunks(self.n.max(1)) {
            for (o, &x) in out.iter_mut().zip(row) {
                *o += f64::from(x);
            }
        }
        out
    }

    /// `C_st`.
    pub fn get(&self, s: usize, t: usize) -> f32 {
        self.c[s * self.n + t]
    }
}

/// `u_{s,j} = π_{s,j} (log π_{s,j} + H_s)` for every position `s` over the tokens both sides
/// of the kernel need (every sampled token and every kept top token), with `log π` exact
/// (each position's full-vocabulary log-sum-exp).
struct KeptU {
    /// A kept token's column in `u`.
    col: HashMap<u32, usize>,
    /// The number of kept tokens.
    m: usize,
    /// `(N, m)`, row-major.
    u: Vec<f32>,
}

fn kept_u(x: &HeadInputs, w: &Tensor, temperature: f64) -> Result<KeptU> {
    let mut vocab: Vec<u32> = x.y.iter().chain(&x.top_ids).copied().collect();
    vocab.sort_unstable();
    vocab.dedup();
    let col: HashMap<u32, usize> = vocab.iter().enumerate().map(|(c, &j)| (j, c)).collect();
    let m = vocab.len();
    let rows = w
        .to_dtype(DType::F32)?
        .index_select(&Tensor::from_vec(vocab, m, x.h.device())?, 0)?;
    // z_{s,j} / τ over the kept tokens, then u_{s,j} from the exact log π_{s,j}.
    let z = (x.h.matmul(&rows.t()?)? / temperature)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let u = z
        .chunks(m)
        .zip(x.lse.iter().zip(&x.entropy))
        .flat_map(|(row, (&l, &h))| {
            row.iter().map(move |&zj| {
                let lp = zj - l;
                lp.exp() * (lp + h)
            })
        })
        .collect();
    Ok(KeptU { col, m, u })
}

/// The kernel matrix of the positions in `x` for output head `w` `(V, d)`, with per-position
/// loss coefficients `a` (`−∂L/∂r_t`: token-mean weight × advantage, 0 where clipped).
pub fn pair_matrix(x: &HeadInputs, w: &Tensor, a: &[f32], temperature: f64) -> Result<PairMatrix> {
    let n = x.len();
    if a.len() != n {
        candle_core::bail!("{} coefficients for {n} positions", a.len());
    }
    let KeptU { col, m, u } = kept_u(x, w, temperature)?;
    let kern = (x.h.matmul(&x.h.t()?)? / (temperature * temperature))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let y_col: Vec<usize> = x.y.iter().map(|j| col[j]).collect();
    let top_col: Vec<usize> = x.top_ids.iter().map(|j| col[j]).collect();
    let k = x.k;
    let mut c = vec![0f32; n * n];
    for s in 0..n {
        let us = &u[s * m..(s + 1) * m];
        for t in 0..n {
            if a[t] == 0.0 {
                continue;
            }
            let spread: f32 = top_col[t * k..(t + 1) * k]
                .iter()
                .zip(&x.top_p[t * k..(t + 1) * k])
                .map(|(&j, &p)| us[j] * p)
                .sum();
            c[s * n + t] = -kern[s * n + t] * a[t] * (us[y_col[t]] - spread);
        }
    }
    Ok(PairMatrix { n, c })
}

/// Source side without the `(N, N)` matrix: `Σ_s C_st` for every position `t`, per unit
/// learning rate, equal to `pair_matrix(x, w, a, temperature).source()` (same truncation) in
/// `O(N·m·d)` time and `O(N·m)` memory (`m`: the distinct tokens kept over all positions).
/// With `G_j = Σ_s u_{s,j} h_s` (`m × d`),
///
/// ```text
/// Σ_s C_st = −a_t/τ² · (h_t·G_{y_t} − Σ_{j ∈ top_k(π_t)} π_{t,j} h_t·G_j)
/// ```
///
/// (the note's `M_H = Σ_s u_s h_sᵀ`, NTHR's `M = GᵀH` with the entropy gradients as anchors).
pub fn source(x: &HeadInputs, w: &Tensor, a: &[f32], temperature: f64) -> Result<Vec<f64>> {
    let n = x.len();
    if a.len() != n {
        candle_core::bail!("{} coefficients for {n} positions", a.len());
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let KeptU { col, m, u } = kept_u(x, w, temperature)?;
    let u = Tensor::from_vec(u, (n, m), x.h.device())?;
    // G = Uᵀ H (m × d), then Q = H Gᵀ / τ² (n × m): Q_tj = Σ_s K_st u_{s,j}.
    let g = u.t()?.matmul(&x.h)?;
    let q = (x.h.matmul(&g.t()?)? / (temperature * temperature))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let k = x.k;
    Ok((0..n)
        .map(|t| {
            let qt = &q[t * m..(t + 1) * m];
            let spread: f64 = x.top_ids[t * k..(t + 1) * k]
                .iter()
                .zip(&x.top_p[t * k..(t + 1) * k])
                .map(|(j, &p)| f64::from(qt[col[j]]) * f64::from(p))
                .sum();
            -f64::from(a[t]) * (f64::from(qt[col[&x.y[t]]]) - spread)
        })
        .collect())
}

/// Target side along a given move `dw` `(V, d)` of the output head `w` (any optimizer's
/// actual update: momentum, weight decay and clipping included): the first-order entropy
/// change `−u_s·(dw h_s)/τ` at every position, over the whole vocabulary (two head-sized
/// products per position). The head inputs stay as they are: what the final norm and the
/// layers below do to `h_s` is not counted.
pub fn entropy_change_along(
    x: &HeadInputs,
    w: &Tensor,
    dw: &Tensor,
    temperature: f64,
) -> Result<Vec<f64>> {
    if x.is_empty() {
        return Ok(Vec::new());
    }
    let dev = x.h.device();
    let n = x.len();
    let z = (x.h.matmul(&w.to_dtype(DType::F32)?.t()?)? / temperature)?;
    let lse = Tensor::from_vec(x.lse.clone(), (n, 1), dev)?;
    let ent = Tensor::from_vec(x.entropy.clone(), (n, 1), dev)?;
    let logp = z.broadcast_sub(&lse)?;
    let u = (logp.exp()? * logp.broadcast_add(&ent)?)?;
    let dz = (x.h.matmul(&dw.to_dtype(DType::F32)?.t()?)? / temperature)?;
    Ok((u * dz)?
        .sum(D::Minus1)?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|v| -f64::from(v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn top_k_keeps_the_largest_in_order() {
        assert_eq!(top_k(&[0.1, 3.0, -1.0, 2.0, 3.5], 3), vec![4, 1, 3]);
        assert_eq!(top_k(&[1.0, 1.0], 5), vec![0, 1]);
    }

    /// A seeded head `W` `(V, d)` (a Var), head inputs `(N, d)`, sampled tokens and
    /// coefficients.
    fn setting(n: usize, d: usize, v: usize, seed: u64) -> (Var, Tensor, Vec<u32>, Vec<f32>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dev = Device::Cpu;
        let mut draw = |len: usize, s: f32| -> Vec<f32> {
            (0..len).map(|_| rng.random_range(-s..s)).collect()
        };
        let w =
            Var::from_tensor(&Tensor::from_vec(draw(v * d, 1.5), (v, d), &dev).unwrap()).unwrap();
        let h = Tensor::from_vec(draw(n * d, 1.0), (n, d), &dev).unwrap();
        let a = draw(n, 1.0);
        let y = (0..n).map(|i| ((i * 7 + 3) % v) as u32).collect();
        (w, h, y, a)
    }

    /// With every token kept the kernel is the head's exact first-order change: an SGD step
    /// of `W` by autograd moves each position's entropy by `η·Σ_t C_st` (target side), and
    /// each token's own gradient moves the summed entropy by `η·Σ_s C_st` (source side).
    #[test]
    fn untruncated_kernel_is_the_heads_first_order_change() {
        let (n, d, v, tau) = (9, 4, 11, 0.7);
        let (w, h, y, a) = setting(n, d, v, 3);
        let dev = Device::Cpu;
        // In f64, so that a small step's change is resolved.
        let h64 = h.to_dtype(DType::F64).unwrap();
        let entropy = |w: &Tensor| -> Tensor {
            let w = w.to_dtype(DType::F64).unwrap();
            let lp = candle_nn::ops::log_softmax(
                &(h64.matmul(&w.t().unwrap()).unwrap() / tau).unwrap(),
                D::Minus1,
            )
            .unwrap();
            (lp.exp().unwrap() * lp)
                .unwrap()
                .sum(D::Minus1)
                .unwrap()
                .neg()
                .unwrap()
        };
        let logp_y = |w: &Tensor| -> Tensor {
            let lp = candle_nn::ops::log_softmax(
                &(h.matmul(&w.t().unwrap()).unwrap() / tau).unwrap(),
                D::Minus1,
            )
            .unwrap();
            lp.gather(&Tensor::from_vec(y.clone(), (n, 1), &dev).unwrap(), 1)
                .unwrap()
                .squeeze(1)
                .unwrap()
        };
        let logits = h.matmul(&w.as_tensor().t().unwrap()).unwrap();
        let x = HeadInputs::from_logits(h.clone(), &logits, y.clone(), tau, v).unwrap();
        let pm = pair_matrix(&x, w.as_tensor(), &a, tau).unwrap();
        // Target side against an SGD step of L = −Σ a_t log π(y_t).
        let at = Tensor::from_vec(a.clone(), n, &dev).unwrap();
        let loss = (logp_y(w.as_tensor()) * &at)
            .unwrap()
            .sum_all()
            .unwrap()
            .neg()
            .unwrap();
        let g = loss.backward().unwrap().get(w.as_tensor()).unwrap().clone();
        let eta = 1e-4;
        let h0 = entropy(w.as_tensor()).to_vec1::<f64>().unwrap();
        let stepped = (w.as_tensor().to_dtype(DType::F64).unwrap()
            - (g.to_dtype(DType::F64).unwrap() * eta).unwrap())
        .unwrap();
        let h1 = entropy(&stepped).to_vec1::<f64>().unwrap();
        for (s, want) in pm.target().iter().enumerate() {
            let got = (h1[s] - h0[s]) / eta;
            assert!(
                (got - want).abs() < 2e-2 * want.abs().max(0.05),
                "s={s}: {got} vs {want}"
            );
        }
        // The same step given as a head move: the kernel's target side, position by position.
        let along = entropy_change_along(&x, w.as_tensor(), &(&g * -1.0).unwrap(), tau).unwrap();
        for (got, want) in along.iter().zip(pm.target()) {
            assert!(
                (got - want).abs() < 1e-4 * want.abs().max(1.0),
                "{along:?} vs {:?}",
                pm.target()
            );
        }
        // Source side: ⟨∇_W Σ_s H_s, a_t ∇_W log π(y_t)⟩ per token.
        let entropy32 = |w: &Tensor| -> Tensor {
            let lp = candle_nn::ops::log_softmax(
                &(h.matmul(&w.t().unwrap()).unwrap() / tau).unwrap(),
                D::Minus1,
            )
            .unwrap();
            (lp.exp().unwrap() * lp)
                .unwrap()
                .sum(D::Minus1)
                .unwrap()
                .neg()
                .unwrap()
        };
        let vh = entropy32(w.as_tensor())
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(w.as_tensor())
            .unwrap()
            .clone();
        for (t, want) in pm.source().iter().enumerate() {
            let gt = logp_y(w.as_tensor())
                .get(t)
                .unwrap()
                .backward()
                .unwrap()
                .get(w.as_tensor())
                .unwrap()
                .clone();
            let got = f64::from(a[t])
                * f64::from(
                    (&vh * gt)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap(),
                );
            assert!(
                (got - want).abs() < 1e-4 * want.abs().max(1.0),
                "t={t}: {got} vs {want}"
            );
        }
    }

    /// The linear-time source side is the pair matrix's column sums, truncated or not.
    #[test]
    fn linear_time_source_matches_the_pair_matrix() {
        let (n, d, v, tau) = (15, 6, 40, 0.8);
        let (w, h, y, a) = setting(n, d, v, 21);
        let logits = h.matmul(&w.as_tensor().t().unwrap()).unwrap();
        for k in [v, 5] {
            let x = HeadInputs::from_logits(h.clone(), &logits, y.clone(), tau, k).unwrap();
            let want = pair_matrix(&x, w.as_tensor(), &a, tau).unwrap().source();
            let got = source(&x, w.as_tensor(), &a, tau).unwrap();
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() < 1e-4 * e.abs().max(1.0),
                    "k={k}: {got:?} {want:?}"
                );
            }
        }
        assert!(
            source(
                &HeadInputs::from_logits(h, &logits, y, tau, 3).unwrap(),
                w.as_tensor(),
                &a[1..],
                tau
            )
            .is_err()
        );
    }

    /// Keeping only the most probable tokens of each π_t changes little when they hold most
    /// of the mass.
    #[test]
    fn truncation_to_the_top_tokens_stays_close() {
        let (n, d, v, tau) = (12, 6, 200, 0.5);
        let (w, h, y, a) = setting(n, d, v, 8);
        let logits = h.matmul(&w.as_tensor().t().unwrap()).unwrap();
        let exact = pair_matrix(
            &HeadInputs::from_logits(h.clone(), &logits, y.clone(), tau, v).unwrap(),
            w.as_tensor(),
            &a,
            tau,
        )
        .unwrap();
        let cut = pair_matrix(
            &HeadInputs::from_logits(h.clone(), &logits, y.clone(), tau, 16).unwrap(),
            w.as_tensor(),
            &a,
            tau,
        )
        .unwrap();
        let (e, c) = (exact.source(), cut.source());
        let r = crate::stats::pearson(&e, &c).unwrap();
        assert!(r > 0.99, "Pearson {r}: {e:?} {c:?}");
    }
}
