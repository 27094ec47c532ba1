//! AdamW with f32 moments, decoupled weight decay, a decay mask and global grad-norm clipping.
//!
//! candle's own `AdamW` keeps moments in the weight dtype and has no clipping; this one keeps
//! m and v in f32 whatever the weights are, and skips (and counts) a step whose gradient norm
//! is not finite instead of corrupting the weights. On the CPU the update runs in place over
//! the weights' and moments' memory (`fused_cpu`); elsewhere as tensor ops.

mod fused_cpu;

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Optimizer settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// Learning rate. Default 1e-6 (STEER's released setting; the demo raises it).
    pub lr: f64,
    /// First-moment decay. Default 0.9.
    pub beta1: f64,
    /// Second-moment decay. Default 0.999.
    pub beta2: f64,
    /// Denominator epsilon. Default 1e-8.
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices only (not to norms or biases). Default 0.01.
    pub weight_decay: f64,
    /// Clip the global L2 gradient norm to this; `None` disables clipping. Default 1.0.
    pub max_grad_norm: Option<f64>,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
        }
    }
}

/// Learning-rate schedule after the linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrDecay {
    /// The base rate throughout (verl's and STEER's default).
    #[default]
    Constant,
    /// Cosine decay from the base rate to `min_lr_ratio × base` at the last step.
    Cosine,
}

/// Warm-up plus decay, as verl's `lr_warmup_steps` and `lr_scheduler_type`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSchedule {
    /// Steps of linear warm-up from 0 to the base rate. Default 0.
    pub warmup_steps: usize,
    /// Decay after warm-up. Default constant.
    pub decay: LrDecay,
    /// Floor of the cosine decay, as a fraction of the base rate. Default 0.
    pub min_lr_ratio: f64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule {
            warmup_steps: 0,
            decay: LrDecay::Constant,
            min_lr_ratio: 0.0,
        }
    }
}

impl LrSchedule {
    /// The rate for 0-based `step` of `total` steps with base rate `base`.
    pub fn lr(&self, base: f64, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return base * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.decay {
            LrDecay::Constant => base,
            LrDecay::Cosine => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
                let floor = base * self.min_lr_ratio;
                floor + (base - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// One trainable tensor.
#[derive(Debug, Clone)]
pub struct Param {
    /// Checkpoint name.
    pub name: String,
    /// The variable.
    pub var: Var,
    /// Whether weight decay applies (matrices yes, vectors no).
    pub decay: bool,
}

/// Step counters saved with the moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OptimCounters {
    /// Updates applied (drives bias correction).
    pub steps_taken: u64,
    /// Updates skipped for a non-finite gradient norm.
    pub steps_skipped: u64,
}

/// What one [`AdamW::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// Global L2 norm of the gradient before clipping.
    pub grad_norm: f64,
    /// True if the step was skipped because the norm was not finite.
    pub skipped: bool,
}

/// The optimizer.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<Param>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    steps_taken: u64,
    steps_skipped: u64,
    cfg: AdamWConfig,
}

impl AdamW {
    /// Creates zeroed f32 moments for `params` (sorted by name for a stable order).
    pub fn new(mut params: Vec<Param>, cfg: AdamWConfig) -> Result<Self> {
        params.sort_by(|a, b| a.name.cmp(&b.name));
        let zeros = |p: &Param| Tensor::zeros(p.var.shape(), DType::F32, p.var.device());
        let m = params.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        let v = params.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            params,
            m,
            v,
            steps_taken: 0,
            steps_skipped: 0,
            cfg,
        })
    }

    /// The parameters, in optimizer order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Steps skipped so far for a non-finite gradient norm.
    pub fn steps_skipped(&self) -> u64 {
        self.steps_skipped
    }

    /// The optimizer state: `m.<name>`/`v.<name>` moments and the step counters. The tensors
    /// share storage with the live moments, which the next [`Self::step`] updates in place on
    /// the CPU: save them before stepping again.
    pub fn state(&self) -> (std::collections::HashMap<String, Tensor>, OptimCounters) {
        let mut tensors = std::collections::HashMap::new();
        for ((p, m), v) in self.params.iter().zip(&self.m).zip(&self.v) {
            tensors.insert(format!("m.{}", p.name), m.clone());
            tensors.insert(format!("v.{}", p.name), v.clone());
        }
        (
            tensors,
            OptimCounters {
                steps_taken: self.steps_taken,
                steps_skipped: self.steps_skipped,
            },
        )
    }

    /// Restores a state saved by [`Self::state`]; every moment must be present with its shape.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        counters: OptimCounters,
    ) -> Result<()> {
        for (i, p) in self.params.iter().enumerate() {
            for (slot, prefix) in [(&mut self.m[i], "m"), (&mut self.v[i], "v")] {
                let key = format!("{prefix}.{}", p.name);
                let t = tensors.get(&key).ok_or_else(|| {
                    candle_core::Error::msg(format!("optimizer state lacks {key}"))
                })?;
                if t.shape() != p.var.shape() {
                    candle_core::bail!(
                        "optimizer state {key} has shape {:?}, parameter has {:?}",
                        t.shape(),
                        p.var.shape()
                    );
                }
                *slot = t.to_dtype(DType::F32)?.to_device(p.var.device())?;
            }
        }
        self.steps_taken = counters.steps_taken;
        self.steps_skipped = counters.steps_skipped;
        Ok(())
    }

    /// Applies one update with learning rate `lr` from gradients aligned with [`Self::params`]
    /// (`None`: the parameter received no gradient this step and is left unchanged).
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<StepOutcome> {
        if grads.len() != self.params.len() {
            candle_core::bail!(
                "{} gradients for {} parameters",
                grads.len(),
                self.params.len()
            );
        }
        let mut sq = 0f64;
        for g in grads.iter().flatten() {
            sq += f64::from(
                g.to_dtype(DType::F32)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f32>()?,
            );
        }
        let grad_norm = sq.sqrt();
        if !grad_norm.is_finite() {
            self.steps_skipped += 1;
            return Ok(StepOutcome {
                grad_norm,
                skipped: true,
            });
        }
        let scale = match self.cfg.max_grad_norm {
            Some(max) if grad_norm > max => max / (grad_norm + 1e-6),
            _ => 1.0,
        };
        self.steps_taken += 1;
        let t = self.steps_taken as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for (i, g) in grads.iter().enumerate() {
            let Some(g) = g else { continue };
            let p = &self.params[i];
            let w = p.var.as_tensor();
            if fused_cpu::applies(&[g, w, &self.m[i], &self.v[i]]) {
                let moment = |beta: f64, square| fused_cpu::Moment {
                    beta: beta as f32,
                    scale: scale as f32,
                    square,
                };
                self.m[i].inplace_op2(g, &moment(b1, false))?;
                self.v[i].inplace_op2(g, &moment(b2, true))?;
                w.inplace_op3(
                    &self.m[i],
                    &self.v[i],
                    &fused_cpu::Weight {
                        decay: if p.decay {
                            (1.0 - lr * self.cfg.weight_decay) as f32
                        } else {
                            1.0
                        },
                        lr: lr as f32,
                        bc1: bc1 as f32,
                        bc2: bc2 as f32,
                        eps: self.cfg.eps as f32,
                    },
                )?;
                continue;
            }
            let g = (g.to_dtype(DType::F32)? * scale)?;
            self.m[i] = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            self.v[i] = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&self.m[i] / bc1)? / ((&self.v[i] / bc2)?.sqrt()? + self.cfg.eps)?)?;
            let w = w.to_dtype(DType::F32)?;
            let decayed = if p.decay {
                (&w * (1.0 - lr * self.cfg.weight_decay))?
            } else {
                w
            };
            let next = (decayed - (update * lr)?)?.to_dtype(p.var.dtype())?;
            p.var.set(&next)?;
        }
        Ok(StepOutcome {
            grad_norm,
            skipped: false,
        })
    }
}

/// Sums gradients over micro-batches, aligned with an optimizer's parameter order.
#[derive(Debug)]
pub struct GradAccumulator {
    sums: Vec<Option<Tensor>>,
}

impl GradAccumulator {
    /// An empty accumulator for `n` parameters.
    pub fn new(n: usize) -> Self {
        GradAccumulator {
            sums: vec![None; n],
        }
    }

    /// Adds the gradients in `store` for `params`.
    pub fn add(&mut self, params: &[Param], store: &GradStore) -> Result<()> {
        for (slot, p) in self.sums.iter_mut().zip(params) {
            if let Some(g) = store.get(p.var.as_tensor()) {
                let g = g.detach();
                *slot = Some(match slot.take() {
                    Some(acc) => (acc + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// The accumulated gradients.
    pub fn into_grads(self) -> Vec<Option<Tensor>> {
        self.sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// An optimizer over one parameter `w` starting at `init`.
    fn one_param(init: &Tensor, cfg: AdamWConfig, decay: bool) -> (Var, AdamW) {
        let var = Var::from_tensor(init).unwrap();
        let param = Param {
            name: "w".into(),
            var: var.clone(),
            decay,
        };
        (var, AdamW::new(vec![param], cfg).unwrap())
    }

    // Two AdamW steps on w = [1, -2] with constant grad [0.5, -1], lr 0.1, wd 0.1 (decay on):
    // independent Python:
    //   m=v=0; w=[1,-2]
    //   for t in (1,2):
    //     for i,g in enumerate([0.5,-1]):
    //       m[i]=0.9*m[i]+0.1*g; v[i]=0.999*v[i]+0.001*g*g
    //       u=(m[i]/(1-0.9**t))/(math.sqrt(v[i]/(1-0.999**t))+1e-8)
    //       w[i]=w[i]*(1-0.1*0.1)-0.1*u
    //   -> [0.7811, -1.7612]
    #[test]
    fn matches_reference_adamw() {
        let dev = Device::Cpu;
        let cfg = AdamWConfig {
            lr: 0.1,
            weight_decay: 0.1,
            max_grad_norm: None,
            ..AdamWConfig::default()
        };
        let (var, mut opt) = one_param(&Tensor::new(&[1f32, -2.0], &dev).unwrap(), cfg, true);
        let g = Tensor::new(&[0.5f32, -1.0], &dev).unwrap();
        for _ in 0..2 {
            opt.step(&[Some(g.clone())], 0.1).unwrap();
        }
        let w = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (w[0] - 0.7811).abs() < 1e-4 && (w[1] + 1.7612).abs() < 1e-4,
            "{w:?}"
        );
    }

    /// The in-place CPU kernels and the tensor-op path give the same weights and moments (a
    /// non-contiguous gradient takes the tensor-op path).
    #[test]
    fn in_place_cpu_update_equals_the_tensor_path() {
        let dev = Device::Cpu;
        let init: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
        let make = || {
            let cfg = AdamWConfig {
                max_grad_norm: Some(0.5),
                ..AdamWConfig::default()
            };
            one_param(
                &Tensor::from_vec(init.clone(), (3, 4), &dev).unwrap(),
                cfg,
                true,
            )
        };
        let (fast_var, mut fast) = make();
        let (slow_var, mut slow) = make();
        for step in 0..3 {
            let g: Vec<f32> = (0..12).map(|i| ((i + step) as f32 * 0.91).cos()).collect();
            let g = Tensor::from_vec(g, (3, 4), &dev).unwrap();
            let strided = g.t().unwrap().contiguous().unwrap().t().unwrap();
            assert!(fused_cpu::applies(&[&g]) && !fused_cpu::applies(&[&strided]));
            let a = fast.step(&[Some(g)], 0.01).unwrap();
            let b = slow.step(&[Some(strided)], 0.01).unwrap();
            assert!((a.grad_norm - b.grad_norm).abs() < 1e-9);
        }
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let close = |x: Vec<f32>, y: Vec<f32>| {
            x.iter()
                .zip(&y)
                .all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs()))
        };
        assert!(close(
            flat(fast_var.as_tensor()),
            flat(slow_var.as_tensor())
        ));
        assert!(close(flat(&fast.m[0]), flat(&slow.m[0])));
        assert!(close(flat(&fast.v[0]), flat(&slow.v[0])));
        assert_ne!(flat(fast_var.as_tensor()), init, "the weights moved");
    }

    #[test]
    fn schedules() {
        let c = LrSchedule {
            warmup_steps: 4,
            decay: LrDecay::Cosine,
            min_lr_ratio: 0.1,
        };
        let lrs: Vec<f64> = (0..14).map(|s| c.lr(1.0, s, 14)).collect();
        assert!((lrs[0] - 0.25).abs() < 1e-12 && (lrs[3] - 1.0).abs() < 1e-12);
        assert!((lrs[4] - 1.0).abs() < 1e-12);
        assert!(
            (lrs[9] - 0.55).abs() < 1e-12,
            "half-way: 0.1 + 0.9 * 0.5 = 0.55, got {}",
            lrs[9]
        );
        assert!(lrs.windows(2).skip(4).all(|w| w[1] <= w[0]));
        assert_eq!(LrSchedule::default().lr(2e-3, 7, 10), 2e-3);
    }

    #[test]
    fn clips_and_skips_non_finite() {
        let dev = Device::Cpu;
        let cfg = AdamWConfig {
            lr: 0.1,
            weight_decay: 0.0,
            max_grad_norm: Some(1.0),
            ..AdamWConfig::default()
        };
        let (var, mut opt) = one_param(&Tensor::new(&[0f32, 0.0], &dev).unwrap(), cfg, false);
        let out = opt
            .step(&[Some(Tensor::new(&[3f32, 4.0], &dev).unwrap())], 0.1)
            .unwrap();
        assert!((out.grad_norm - 5.0).abs() < 1e-6 && !out.skipped);
        let before = var.as_tensor().to_vec1::<f32>().unwrap();
        let out = opt
            .step(&[Some(Tensor::new(&[f32::NAN, 1.0], &dev).unwrap())], 0.1)
            .unwrap();
        assert!(out.skipped);
        assert_eq!(opt.steps_skipped(), 1);
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap(), before);
    }
}
