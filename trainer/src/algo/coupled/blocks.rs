//! The top blocks of the network, rerun from a cached residual stream: the entropy change a
//! parameter move of the output head, the final norm and the last `k` blocks causes at every
//! response position (target side), and each sampled token's contribution to the entropy
//! change of all positions (source side). Everything below the rerun layers is held fixed, so
//! the cost is `k` blocks plus the output head per rerun, not a whole forward pass.
//!
//! * Target side: `ΔH_s ≈ H_s(θ_top + Δθ_top) − H_s(θ_top)`, one rerun along the update.
//! * Source side: with `v = ∇_top Σ_s H_s` (one backward through the rerun layers only) and a
//!   preconditioner `P` (1 for SGD, `1/(√v̂ + ε)` for Adam), token `t` moves the summed entropy
//!   by `C_t = a_t·D_{P⊙v} log π(y_t)` per unit learning rate (`a_t = −∂L/∂r_t`), the
//!   directional derivative by a central difference along `P⊙v` (two more reruns).

use candle_core::{Result, Tensor};

use crate::algo::logprob;
use crate::model::Decoder;
use crate::optim::Param;

/// Finite-difference step of the source-side estimates: the parameters move by this fraction
/// of their norm.
pub const FD_SCALE: f64 = 1e-4;

/// One micro-batch as the rerun needs it: the residual stream entering the first rerun layer
/// and the targets of the response columns.
#[derive(Debug, Clone)]
pub struct Cached {
    /// Residual stream `(b, t, h)` entering layer [`TopBlocks::first_layer`], detached.
    pub residual: Tensor,
    /// First response column: the head runs over columns `from..t` only.
    pub from: usize,
    /// Target ids `(b, t − from)` of those columns.
    pub targets: Tensor,
    /// Response mask over those columns, row-major `(b, t − from)`.
    pub mask: Vec<bool>,
}

impl Cached {
    /// Caches rows of `inputs`/`targets` `(b, t)` with response `mask` (row-major `(b, t)`)
    /// for reruns from layer `first_layer` of `model`. The response columns start at the
    /// first column any row's mask covers.
    pub fn new(
        model: &Decoder,
        first_layer: usize,
        inputs: &Tensor,
        targets: &Tensor,
        mask: &[bool],
    ) -> Result<Self> {
        let (b, t) = inputs.dims2()?;
        let from = (0..t)
            .find(|&c| (0..b).any(|r| mask[r * t + c]))
            .unwrap_or(0);
        Ok(Cached {
            residual: model.residual_before(inputs, first_layer)?.detach(),
            from,
            targets: targets.narrow(1, from, t - from)?,
            mask: (0..b)
                .flat_map(|r| mask[r * t + from..(r + 1) * t].iter().copied())
                .collect(),
        })
    }

    /// Valid (response) positions.
    pub fn positions(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }

    /// The values of `(b, t − from)` `x` at the valid positions, in row-major order.
    fn valid(&self, x: &Tensor) -> Result<Vec<f32>> {
        Ok(x.flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .zip(&self.mask)
            .filter(|&(_, &m)| m)
            .map(|(v, _)| v)
            .collect())
    }
}

/// Runs `f` with each parameter `params[idx[j]]` moved by `scale × dir[j]` (`None` leaves it),
/// then puts the weights back, also when `f` fails.
pub fn with_moved<T>(
    params: &[Param],
    idx: &[usize],
    dir: &[Option<Tensor>],
    scale: f64,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let mut saved = Vec::with_capacity(idx.len());
    let mut outcome = Ok(());
    for (&i, d) in idx.iter().zip(dir) {
        let Some(d) = d else { continue };
        let var = &params[i].var;
        let moved = var.as_tensor().copy().and_then(|old| {
            let new = (var.as_tensor() + (d * scale)?)?;
            var.set(&new)?;
            Ok(old)
        });
        match moved {
            Ok(old) => saved.push((i, old)),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let result = outcome.and_then(|()| f());
    for (i, old) in saved {
        params[i].var.set(&old)?;
    }
    result
}

/// The step along `dir` that moves `params[idx]` by `fd_scale` of their norm: a
/// finite-difference step in the linear regime whatever the scale of the direction. `None`
/// when the direction is zero or not finite.
pub fn fd_step(
    params: &[Param],
    idx: &[usize],
    dir: &[Option<Tensor>],
    fd_scale: f64,
) -> Result<Option<f64>> {
    let sq = |t: &Tensor| -> Result<f64> { Ok(f64::from(t.sqr()?.sum_all()?.to_scalar::<f32>()?)) };
    let (mut d2, mut w2) = (0f64, 0f64);
    for (d, &i) in dir.iter().zip(idx) {
        if let Some(d) = d {
            d2 += sq(d)?;
            w2 += sq(params[i].var.as_tensor())?;
        }
    }
    Ok((d2 > 0.0 && d2.is_finite()).then(|| fd_scale * w2.sqrt().max(1e-6) / d2.sqrt()))
}

/// The network the estimates run through: the model, its parameters (under their Hugging Face
/// names) and the sampling temperature of `softmax(logits / temperature)`.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// The trainable model (its forward pass builds the graph the source side needs).
    pub model: &'a Decoder,
    /// Its parameters.
    pub params: &'a [Param],
    /// Temperature of the policy.
    pub temperature: f64,
}

/// The output head, the final norm and the last `k` blocks of a model: which parameters they
/// are, and where the rerun starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopBlocks {
    /// The first rerun block (`layers − k`).
    pub first_layer: usize,
    /// Indices into the parameter list of the rerun parameters (the output head — the
    /// embedding when tied —, the final norm, the blocks from `first_layer` on).
    pub params: Vec<usize>,
}

impl TopBlocks {
    /// The top `blocks` blocks (at most all of them) of `model`, whose parameters are `params`
    /// under their Hugging Face names.
    pub fn new(model: &Decoder, params: &[Param], blocks: usize) -> Self {
        let cfg = model.config();
        let layers = cfg.num_hidden_layers;
        let first_layer = layers - blocks.min(layers);
        let top = |name: &str| {
            name.starts_with("lm_head")
                || name == "model.norm.weight"
                || (cfg.tie_word_embeddings && name.starts_with("model.embed_tokens"))
                || name
                    .strip_prefix("model.layers.")
                    .and_then(|rest| rest.split('.').next()?.parse::<usize>().ok())
                    .is_some_and(|l| l >= first_layer)
        };
        TopBlocks {
            first_layer,
            params: (0..params.len())
                .filter(|&i| top(&params[i].name))
                .collect(),
        }
    }

    /// Log-probabilities of the targets and entropies `(b, t − from)` from the cached
    /// residual, under `softmax(logits / temperature)`, differentiable in the top parameters.
    fn rerun(&self, net: &Network<'_>, c: &Cached) -> Result<(Tensor, Tensor)> {
        let head_input = net
            .model
            .head_input_from_layer(&c.residual, self.first_layer, c.from)?;
        logprob::logprobs_and_entropy(
            &net.model.logits_of(&head_input)?,
            &c.targets,
            net.temperature,
        )
    }

    /// Runs `f` with the rerun parameters moved by `scale × dir` (see [`with_moved`]).
    fn moved<T>(
        &self,
        net: &Network<'_>,
        dir: &[Option<Tensor>],
        scale: f64,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        with_moved(net.params, &self.params, dir, scale, f)
    }

    /// Target side: the entropy change `H_after − H_before` at every valid position of every
    /// cached micro-batch (in order) when the rerun parameters move by `step` (order of
    /// [`TopBlocks::params`]), everything below `first_layer` held fixed. `before` holds the
    /// entropies at the current weights, as [`TopBlocks::entropies`] gives them.
    pub fn entropy_change(
        &self,
        net: &Network<'_>,
        cached: &[Cached],
        step: &[Option<Tensor>],
        before: &[f32],
    ) -> Result<Vec<f32>> {
        let after = self.moved(net, step, 1.0, || self.entropies(net, cached))?;
        Ok(after.iter().zip(before).map(|(a, b)| a - b).collect())
    }

    /// Entropies at every valid position of every cached micro-batch, in order (no graph).
    pub fn entropies(&self, net: &Network<'_>, cached: &[Cached]) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for c in cached {
            out.extend(c.valid(&self.rerun(net, c)?.1.detach())?);
        }
        Ok(out)
    }

    /// `v = ∇_top Σ_s H_s` over the valid positions of every cached micro-batch, one tensor
    /// per rerun parameter (backward passes through the rerun layers only).
    pub fn entropy_gradient(
        &self,
        net: &Network<'_>,
        cached: &[Cached],
    ) -> Result<Vec<Option<Tensor>>> {
        let mut grad: Vec<Option<Tensor>> = vec![None; self.params.len()];
        for c in cached {
            let entropy = self.rerun(net, c)?.1;
            let mask = Tensor::from_vec(
                c.mask.iter().map(|&m| f32::from(u8::from(m))).collect(),
                entropy.shape(),
                entropy.device(),
            )?;
            let grads = (entropy * mask)?.sum_all()?.backward()?;
            for (slot, &i) in grad.iter_mut().zip(&self.params) {
                if let Some(g) = grads.get(net.params[i].var.as_tensor()) {
                    let g = g.detach();
                    *slot = Some(match slot.take() {
                        Some(acc) => (acc + g)?,
                        None => g,
                    });
                }
            }
        }
        Ok(grad)
    }

    /// Source side: per valid position `t` (in order over the cached micro-batches) the
    /// contribution `a_t · D_{P⊙v} log π(y_t)` of its loss term to the change of the summed
    /// entropy over all positions, per unit learning rate, with `v = ∇_top Σ_s H_s`. `a` holds
    /// `−∂L/∂r_t` per valid position; `precond` one tensor per rerun parameter (missing or
    /// `None`: 1, plain SGD). A central difference whose step moves the rerun parameters by
    /// `fd_scale` of their norm (see [`fd_step`]).
    pub fn source(
        &self,
        net: &Network<'_>,
        cached: &[Cached],
        a: &[f32],
        precond: &[Option<Tensor>],
        fd_scale: f64,
    ) -> Result<Vec<f64>> {
        let n: usize = cached.iter().map(Cached::positions).sum();
        let dir: Vec<Option<Tensor>> = self
            .entropy_gradient(net, cached)?
            .into_iter()
            .enumerate()
            .map(
                |(j, g)| match (g, precond.get(j).and_then(Option::as_ref)) {
                    (Some(g), Some(p)) => Ok(Some((g * p)?)),
                    (g, _) => Ok(g),
                },
            )
            .collect::<Result<_>>()?;
        let Some(eps) = fd_step(net.params, &self.params, &dir, fd_scale)? else {
            return Ok(vec![0.0; n]);
        };
        let logps = |scale: f64| {
            self.moved(net, &dir, scale, || {
                let mut out = Vec::with_capacity(n);
                for c in cached {
                    out.extend(c.valid(&self.rerun(net, c)?.0.detach())?);
                }
                Ok(out)
            })
        };
        let (up, down) = (logps(eps)?, logps(-eps)?);
        Ok(up
            .iter()
            .zip(&down)
            .zip(a)
            .map(|((&u, &d), &a)| f64::from(a) * (f64::from(u) - f64::from(d)) / (2.0 * eps))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decoder::tests::tiny_config;
    use candle_core::{D, DType, Device};
    use candle_nn::{VarBuilder, VarMap};

    /// The entropy of each row of logits, written out (an independent check of the rerun).
    fn entropy_rows(logits: &Tensor) -> Tensor {
        let lp = candle_nn::ops::log_softmax(logits, D::Minus1).unwrap();
        (lp.exp().unwrap() * lp)
            .unwrap()
            .sum(D::Minus1)
            .unwrap()
            .neg()
            .unwrap()
    }

    fn model(tied: bool) -> (VarMap, Decoder, Vec<Param>) {
        let vm = VarMap::new();
        let mut cfg = tiny_config(19);
        cfg.tie_word_embeddings = tied;
        let m = Decoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
        crate::model::init_weights(&vm, 4, 0.3).unwrap();
        let params = crate::weights::params_of(&vm).unwrap();
        (vm, m, params)
    }

    #[test]
    fn picks_the_head_the_norm_and_the_last_blocks() {
        for tied in [false, true] {
            let (_, m, params) = model(tied);
            let top = TopBlocks::new(&m, &params, 1);
            assert_eq!(top.first_layer, 1);
            let names: Vec<&str> = top
                .params
                .iter()
                .map(|&i| params[i].name.as_str())
                .collect();
            assert!(names.iter().all(|n| n.starts_with("model.layers.1.")
                || *n == "model.norm.weight"
                || *n
                    == if tied {
                        "model.embed_tokens.weight"
                    } else {
                        "lm_head.weight"
                    }));
            assert!(names.contains(&"model.norm.weight"));
            assert_eq!(TopBlocks::new(&m, &params, 9).first_layer, 0);
        }
    }

    /// The rerun from the cached residual gives the full forward's entropies, and moving the
    /// weights inside `moved` leaves them as they were.
    #[test]
    fn rerun_matches_the_full_forward_and_restores_the_weights() {
        let (_, m, params) = model(true);
        let dev = Device::Cpu;
        let ids = Tensor::new(&[[1u32, 5, 3, 9, 7], [4, 4, 8, 0, 16]], &dev).unwrap();
        let tg = Tensor::new(&[[5u32, 3, 9, 7, 2], [4, 8, 0, 16, 1]], &dev).unwrap();
        let mask = [
            false, false, true, true, true, false, true, true, true, false,
        ];
        let top = TopBlocks::new(&m, &params, 1);
        let c = Cached::new(&m, top.first_layer, &ids, &tg, &mask).unwrap();
        assert_eq!((c.from, c.positions()), (1, 6));
        let net = Network {
            model: &m,
            params: &params,
            temperature: 1.0,
        };
        let got = top.entropies(&net, std::slice::from_ref(&c)).unwrap();
        let full = entropy_rows(&m.forward(&ids).unwrap());
        let want: Vec<f32> = full.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want: Vec<f32> = want
            .into_iter()
            .zip(mask)
            .filter(|&(_, m)| m)
            .map(|(v, _)| v)
            .collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} {want:?}");
        }
        let before: Vec<Vec<f32>> = params
            .iter()
            .map(|p| p.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect();
        let dir: Vec<Option<Tensor>> = top
            .params
            .iter()
            .map(|&i| Some(params[i].var.as_tensor().ones_like().unwrap()))
            .collect();
        let moved = top
            .moved(&net, &dir, 0.5, || {
                top.entropies(&net, std::slice::from_ref(&c))
            })
            .unwrap();
        assert!(moved.iter().zip(&got).any(|(a, b)| (a - b).abs() > 1e-3));
        let failed: Result<()> = top.moved(&net, &dir, 0.5, || candle_core::bail!("inside"));
        assert!(failed.is_err());
        for (p, b) in params.iter().zip(&before) {
            assert_eq!(
                &p.var
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
                b,
                "{}",
                p.name
            );
        }
    }
}
