//! RL objectives. One file per piece; this module defines the method enum and dispatches.
//!
//! * [`advantage`]: GRPO, RLOO, OPO, W-REINFORCE advantages.
//! * [`logprob`]: per-token log-probabilities and full-vocabulary entropies from logits.
//! * [`ppo_clip`]: the dual-clip PPO surrogate per token.
//! * [`steer`]: STEER's per-token entropy-change estimate Ω and its weights.
//! * [`coupled`]: entropy-change estimates that see the coupling between positions;
//!   [`steer_coupled`]: STEER's weights from the output head's coupled estimate.
//! * [`cov`], [`clip_cov`], [`kl_cov`]: the covariance methods of Cui et al.
//! * [`forking`], [`entropy_adv`]: entropy-based advantage shaping.
//! * [`kl`]: KL to a frozen reference. [`agg`]: loss aggregation.
//!
//! `../shared/STEER.md` is the specification.

pub mod advantage;
pub mod agg;
pub mod clip_cov;
pub mod coupled;
pub mod cov;
pub mod entropy_adv;
pub mod forking;
pub mod kl;
pub mod kl_cov;
pub mod logprob;
pub mod ppo_clip;
pub mod steer;
pub mod steer_coupled;

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

pub use agg::LossAgg;
pub use kl::{KlConfig, KlEstimator};
pub use ppo_clip::ClipConfig;
pub use steer::{SteerConfig, WeightMapping, WeightStats};
pub use steer_coupled::{CoupledTokens, Normaliser, SourceEstimate, SteerCoupledConfig};

/// The policy-loss method (STEER.md §3 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Dual-clip PPO surrogate on group-normalised advantages, ε_low = ε_high = 0.2.
    Grpo,
    /// GRPO with DAPO's asymmetric clip (ε_high 0.28).
    ClipHigher,
    /// GRPO minus β·token-mean entropy of the current policy (gradient through H).
    EntropyBonus,
    /// Detach a random few high-covariance tokens (Cui et al.).
    ClipCov,
    /// No clip; KL-like penalty on the top-covariance tokens (Cui et al.).
    KlCov,
    /// Policy gradient only on the top-ρ entropy tokens (80/20).
    ForkingTokens,
    /// `A + min(α·H, |A|/κ)` (Cheng et al.).
    EntropyAdv,
    /// REINFORCE with reward +λ / −1 (Zhu et al.).
    WReinforce,
    /// Leave-one-out advantages.
    Rloo,
    /// Length-weighted optimal baseline, on-policy.
    Opo,
    /// GRPO reweighted by STEER with the exponential mapping (the paper's method).
    Steer,
    /// STEER with the linear mapping onto [0.8, 1.2].
    SteerLinear,
    /// STEER's mappings over each token's contribution to the entropy change of every position
    /// of the batch, through the output head's empirical NTK ([`steer_coupled`]).
    SteerCoupled,
}

impl Method {
    /// Every method, in the order of STEER.md §3.
    pub const ALL: [Method; 13] = [
        Method::Grpo,
        Method::ClipHigher,
        Method::EntropyBonus,
        Method::ClipCov,
        Method::KlCov,
        Method::ForkingTokens,
        Method::EntropyAdv,
        Method::WReinforce,
        Method::Rloo,
        Method::Opo,
        Method::Steer,
        Method::SteerLinear,
        Method::SteerCoupled,
    ];

    /// The method's config/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Grpo => "grpo",
            Method::ClipHigher => "clip-higher",
            Method::EntropyBonus => "entropy-bonus",
            Method::ClipCov => "clip-cov",
            Method::KlCov => "kl-cov",
            Method::ForkingTokens => "forking-tokens",
            Method::EntropyAdv => "entropy-adv",
            Method::WReinforce => "w-reinforce",
            Method::Rloo => "rloo",
            Method::Opo => "opo",
            Method::Steer => "steer",
            Method::SteerLinear => "steer-linear",
            Method::SteerCoupled => "steer-coupled",
        }
    }

    /// The clip settings the method is defined with (applied when `--method` picks it).
    pub fn default_clip(self) -> ClipConfig {
        match self {
            Method::Grpo => ClipConfig {
                eps_low: 0.2,
                eps_high: 0.2,
                dual_clip_c: Some(10.0),
            },
            _ => ClipConfig::default(),
        }
    }

    /// Which advantage estimator the method uses.
    pub fn advantage(self) -> AdvantageKind {
        match self {
            Method::Rloo => AdvantageKind::Rloo,
            Method::Opo => AdvantageKind::Opo,
            Method::WReinforce => AdvantageKind::WReinforce,
            _ => AdvantageKind::Grpo,
        }
    }
}

/// Advantage estimators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvantageKind {
    /// Group-normalised.
    Grpo,
    /// Leave-one-out.
    Rloo,
    /// Length-weighted baseline.
    Opo,
    /// Shaped reward, no baseline.
    WReinforce,
}

/// The baselines' hyper-parameters (defaults from STEER.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MethodParams {
    /// Entropy-bonus coefficient β. Default 0.001.
    pub entropy_coef: f64,
    /// Clip-Cov settings.
    pub clip_cov: clip_cov::ClipCovConfig,
    /// KL-Cov settings.
    pub kl_cov: kl_cov::KlCovConfig,
    /// Forking tokens: fraction of highest-entropy tokens kept. Default 0.2.
    pub forking_rho: f64,
    /// Entropy-aware advantage settings.
    pub entropy_adv: entropy_adv::EntropyAdvConfig,
    /// W-REINFORCE reward for a correct response. Default 0.1.
    pub w_reinforce_lambda: f64,
    /// KL to the initial policy (any method). Default β = 0: no reference pass.
    pub kl: KlConfig,
}

impl Default for MethodParams {
    fn default() -> Self {
        MethodParams {
            entropy_coef: 0.001,
            clip_cov: clip_cov::ClipCovConfig::default(),
            kl_cov: kl_cov::KlCovConfig::default(),
            forking_rho: 0.2,
            entropy_adv: entropy_adv::EntropyAdvConfig::default(),
            w_reinforce_lambda: 0.1,
            kl: KlConfig::default(),
        }
    }
}

/// Per-token inputs of one micro-batch, all `(b, t)` f32 on the model's device; `mask` is 1.0 on
/// response tokens and 0.0 elsewhere. Host copies are kept for the weight computations.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// log π_old of the sampled tokens.
    pub old_logp: Tensor,
    /// Advantage broadcast over each response.
    pub adv: Tensor,
    /// Response mask.
    pub mask: Tensor,
    /// Host copy of `old_logp`, row-major.
    pub old_logp_host: Vec<f32>,
    /// Host copy of `adv`.
    pub adv_host: Vec<f32>,
    /// Full-vocabulary entropy under π_old, host.
    pub entropy_old_host: Vec<f32>,
    /// Host copy of `mask`.
    pub mask_host: Vec<bool>,
    /// `steer-coupled`'s per-token contributions and weights, computed under π_old for the
    /// whole batch (`None` for every other method).
    pub coupled: Option<CoupledTokens>,
}

/// The differentiable inputs of a micro-batch loss.
#[derive(Debug, Clone, Copy)]
pub struct PolicyOutputs<'a> {
    /// log π_θ of the sampled tokens `(b, t)`, with gradient.
    pub logp: &'a Tensor,
    /// Full-vocabulary entropy of π_θ `(b, t)`, with gradient (needed by `entropy-bonus`).
    pub entropy: Option<&'a Tensor>,
    /// log π_ref `(b, t)` of a frozen reference (needed when `kl.beta > 0`).
    pub ref_logp: Option<&'a Tensor>,
}

/// What a micro-batch's loss reports besides the loss tensor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossStats {
    /// Fraction of valid tokens clipped on the low side (A<0, r<1−ε_low).
    pub clip_frac_low: f64,
    /// Fraction clipped on the high side (A>0, r>1+ε_high).
    pub clip_frac_high: f64,
    /// STEER weight statistics over valid tokens (all 1.0 for other methods).
    pub weights: WeightStats,
    /// Σ over valid tokens of STEER's Theorem-1 predicted entropy change, without the −η/L
    /// constant: `−Σ I_clip·A/π_old·π(1−π)(log π + H)`.
    pub predicted_entropy_change: f64,
    /// Token-mean KL to the reference (when computed).
    pub kl: Option<f64>,
}

/// Everything that configures a loss.
#[derive(Debug, Clone, Copy)]
pub struct LossConfig<'a> {
    /// The method.
    pub method: Method,
    /// PPO clipping.
    pub clip: &'a ClipConfig,
    /// STEER settings (`steer`; `steer-linear` uses the linear mapping onto [0.8, 1.2]).
    pub steer: &'a SteerConfig,
    /// Baseline hyper-parameters.
    pub params: &'a MethodParams,
    /// Aggregation.
    pub agg: LossAgg,
    /// Seeds the random token choice of Clip-Cov.
    pub seed: u64,
}

/// The scalar loss of one micro-batch and its statistics.
pub fn micro_batch_loss(
    c: &LossConfig<'_>,
    out: &PolicyOutputs<'_>,
    batch: &TokenBatch,
) -> Result<(Tensor, LossStats)> {
    let mask = &batch.mask_host;
    let logp_host = out.logp.detach().flatten_all()?.to_vec1::<f32>()?;

    // 1. Token-level advantage shaping.
    let adv_host = match c.method {
        Method::EntropyAdv => entropy_adv::shape(
            &batch.adv_host,
            &batch.entropy_old_host,
            &c.params.entropy_adv,
        ),
        Method::ForkingTokens => forking::keep_high_entropy(
            &batch.adv_host,
            &batch.entropy_old_host,
            mask,
            c.params.forking_rho,
        ),
        _ => batch.adv_host.clone(),
    };
    let adv = if adv_host == batch.adv_host {
        batch.adv.clone()
    } else {
        Tensor::from_vec(adv_host.clone(), batch.adv.shape(), batch.adv.device())?
    };

    // 2. The surrogate.
    let clip_stats =
        ppo_clip::clip_stats(&logp_host, &batch.old_logp_host, &adv_host, mask, c.clip);
    let mut token_loss = match c.method {
        Method::KlCov => {
            let ratio = (out.logp - &batch.old_logp)?.clamp(-20.0, 20.0)?.exp()?;
            (adv.neg()? * ratio)?
        }
        _ => ppo_clip::token_loss(out.logp, &batch.old_logp, &adv, c.clip)?,
    };

    // 3. STEER: Ω from the current and old policies; the weights are constants.
    let omega = steer::omega(
        &logp_host,
        &batch.old_logp_host,
        &adv_host,
        &batch.entropy_old_host,
    );
    let predicted = -omega
        .iter()
        .zip(&clip_stats.gradient_flows)
        .filter(|&(_, &flows)| flows)
        .map(|(o, _)| f64::from(*o))
        .sum::<f64>();
    let mut weights = WeightStats::ones(mask);
    let steer_cfg = match c.method {
        Method::Steer => Some(*c.steer),
        Method::SteerLinear => Some(SteerConfig {
            mapping: WeightMapping::Linear {
                w_min: 0.8,
                w_max: 1.2,
            },
        }),
        _ => None,
    };
    let w = match (c.method, steer_cfg) {
        (_, Some(cfg)) => Some(steer::weights(&omega, mask, &cfg)),
        (Method::SteerCoupled, _) => Some(
            batch
                .coupled
                .as_ref()
                .ok_or_else(|| {
                    candle_core::Error::msg("steer-coupled needs the batch's coupled weights")
                })?
                .weights
                .clone(),
        ),
        _ => None,
    };
    if let Some(w) = w {
        weights = WeightStats::of(&w, mask);
        token_loss = (token_loss * Tensor::from_vec(w, batch.adv.shape(), batch.adv.device())?)?;
    }

    // 4. The covariance methods.
    if matches!(c.method, Method::ClipCov | Method::KlCov) {
        let cov = cov::token_cov(&adv_host, &logp_host, mask);
        let to_tensor = |v: Vec<bool>| -> Result<Tensor> {
            let f: Vec<f32> = v.into_iter().map(|b| f32::from(u8::from(b))).collect();
            Tensor::from_vec(f, batch.adv.shape(), batch.adv.device())
        };
        if c.method == Method::ClipCov {
            let detached = to_tensor(clip_cov::select(
                &cov,
                &clip_stats.gradient_flows,
                mask,
                &c.params.clip_cov,
                c.seed,
            ))?;
            let keep = (detached.neg()? + 1.0)?;
            token_loss = ((&token_loss * &keep)? + (token_loss.detach() * &detached)?)?;
        } else {
            let chosen = to_tensor(kl_cov::select(&cov, mask, &c.params.kl_cov))?;
            let penalty = ((out.logp - &batch.old_logp)?.abs()? * c.params.kl_cov.coef)?;
            token_loss = (token_loss + (penalty * chosen)?)?;
        }
    }

    // 5. Aggregate, then the loss-level terms.
    let mut loss = c.agg.aggregate(&token_loss, &batch.mask)?;
    if c.method == Method::EntropyBonus {
        let h = out
            .entropy
            .ok_or_else(|| candle_core::Error::msg("entropy-bonus needs the current entropy"))?;
        loss = (loss - (c.agg.aggregate(h, &batch.mask)? * c.params.entropy_coef)?)?;
    }
    let mut kl_value = None;
    if c.params.kl.beta > 0.0 {
        let r = out
            .ref_logp
            .ok_or_else(|| candle_core::Error::msg("kl.beta > 0 needs reference log-probs"))?;
        let kl = c.agg.aggregate(
            &kl::token_kl(out.logp, r, c.params.kl.estimator)?,
            &batch.mask,
        )?;
        kl_value = Some(f64::from(kl.to_scalar::<f32>()?));
        loss = (loss + (kl * c.params.kl.beta)?)?;
    }
    Ok((
        loss,
        LossStats {
            clip_frac_low: clip_stats.frac_low,
            clip_frac_high: clip_stats.frac_high,
            weights,
            predicted_entropy_change: predicted,
            kl: kl_value,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    // Inputs shared by the golden tests (two rows of three tokens, the last one padding);
    // the expected numbers come from the independent Python reimplementation quoted per test.
    const ADV: [f32; 6] = [1.5, 1.5, -0.5, -0.5, 0.0, 2.0];
    const LOGP: [f32; 6] = [-0.1, -3.0, -0.05, -4.0, -1.0, -20.0];
    const OLD: [f32; 6] = [-0.2, -2.5, -0.05, -3.5, -1.0, -20.0];
    const ENT: [f32; 6] = [0.8, 2.0, 0.3, 2.5, 1.0, 3.0];
    const MASK: [bool; 6] = [true, true, true, true, true, false];

    fn batch() -> TokenBatch {
        let dev = Device::Cpu;
        let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), (2, 3), &dev).unwrap();
        let maskf: Vec<f32> = MASK.iter().map(|&m| f32::from(u8::from(m))).collect();
        TokenBatch {
            old_logp: t(&OLD),
            adv: t(&ADV),
            mask: t(&maskf),
            old_logp_host: OLD.to_vec(),
            adv_host: ADV.to_vec(),
            entropy_old_host: ENT.to_vec(),
            mask_host: MASK.to_vec(),
            coupled: None,
        }
    }

    /// Loss value and the gradient of the loss w.r.t. each token's logp.
    fn run(
        method: Method,
        params: MethodParams,
        ref_logp: Option<[f32; 6]>,
    ) -> (f32, Vec<f32>, LossStats) {
        let dev = Device::Cpu;
        let logp =
            Var::from_tensor(&Tensor::from_vec(LOGP.to_vec(), (2, 3), &dev).unwrap()).unwrap();
        let ent = Tensor::from_vec(ENT.to_vec(), (2, 3), &dev).unwrap();
        let refp = ref_logp.map(|r| Tensor::from_vec(r.to_vec(), (2, 3), &dev).unwrap());
        let clip = ClipConfig::default();
        let steer_cfg = SteerConfig::default();
        let c = LossConfig {
            method,
            clip: &clip,
            steer: &steer_cfg,
            params: &params,
            agg: LossAgg::TokenMean,
            seed: 7,
        };
        let out = PolicyOutputs {
            logp: logp.as_tensor(),
            entropy: Some(&ent),
            ref_logp: refp.as_ref(),
        };
        let (loss, stats) = micro_batch_loss(&c, &out, &batch()).unwrap();
        let grads = loss.backward().unwrap();
        let g = grads
            .get(logp.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        (loss.to_scalar::<f32>().unwrap(), g, stats)
    }

    fn close(got: f32, want: f32) {
        assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
    }

    // Python: tm = sum(ppo(a,lp,lo)*m)/sum(m) with the dual-clip ppo of `ppo_clip::tests`
    //   -> -0.33351; STEER (exponential, λ_min 0.8) -> -0.296669
    #[test]
    fn grpo_and_steer_golden_numbers() {
        let (grpo, _, gs) = run(Method::ClipHigher, MethodParams::default(), None);
        let (steer, _, ss) = run(Method::Steer, MethodParams::default(), None);
        close(grpo, -0.33351);
        close(steer, -0.296_669);
        assert_eq!(gs.weights.mean, 1.0);
        assert!((ss.weights.min - 0.8).abs() < 1e-6);
        assert!((ss.weights.frac_below_099 - 0.6).abs() < 1e-9); // 0.972, 0.8 and 0.891 of 5
        assert!((gs.clip_frac_low - 0.2).abs() < 1e-9); // token 3: A<0, r = e^-0.5 < 0.8
        assert_eq!(gs.clip_frac_high, 0.0);
        let (lin, _, ls) = run(Method::SteerLinear, MethodParams::default(), None);
        assert!(
            ls.weights.max > 1.0 && ls.weights.min >= 0.8 - 1e-6,
            "{ls:?}"
        );
        assert!(lin.is_finite());
    }

    // Python: the per-token dual-clip ppo values [-1.657756, -0.909796, 0.5, 0.4, 0, -2.0]
    //   weighted by w = [0.9, 0.8, 1.0, 0.85, 0.95, 0] over 5 valid tokens -> -0.275964
    #[test]
    fn steer_coupled_applies_the_batch_weights() {
        let dev = Device::Cpu;
        let w = vec![0.9f32, 0.8, 1.0, 0.85, 0.95, 0.0];
        let mut b = batch();
        let logp =
            Var::from_tensor(&Tensor::from_vec(LOGP.to_vec(), (2, 3), &dev).unwrap()).unwrap();
        let (clip, steer_cfg, params) = (
            ClipConfig::default(),
            SteerConfig::default(),
            MethodParams::default(),
        );
        let c = LossConfig {
            method: Method::SteerCoupled,
            clip: &clip,
            steer: &steer_cfg,
            params: &params,
            agg: LossAgg::TokenMean,
            seed: 7,
        };
        let out = PolicyOutputs {
            logp: logp.as_tensor(),
            entropy: None,
            ref_logp: None,
        };
        assert!(
            micro_batch_loss(&c, &out, &b).is_err(),
            "no weights, no loss"
        );
        b.coupled = Some(CoupledTokens {
            contribution: vec![0.0; 6],
            weights: w,
        });
        let (loss, stats) = micro_batch_loss(&c, &out, &b).unwrap();
        close(loss.to_scalar::<f32>().unwrap(), -0.275_964);
        assert!((stats.weights.mean - 0.9).abs() < 1e-6 && stats.weights.count == 5);
        assert!((stats.weights.min - 0.8).abs() < 1e-6);
    }

    // Python: tm - 0.001 * sum(h*m)/sum(m) -> -0.33483
    #[test]
    fn entropy_bonus_golden_number() {
        close(
            run(Method::EntropyBonus, MethodParams::default(), None).0,
            -0.33483,
        );
    }

    // Python: Aea = [a + min(0.4*h, abs(a)/2)]; loss with Aea -> -0.559221
    #[test]
    fn entropy_adv_golden_number() {
        close(
            run(Method::EntropyAdv, MethodParams::default(), None).0,
            -0.559_221,
        );
    }

    // Python: tau = ceil(0.2*5)=1st largest valid H = 2.5; only token 3 keeps A -> 0.08
    #[test]
    fn forking_tokens_golden_number() {
        let (loss, g, _) = run(Method::ForkingTokens, MethodParams::default(), None);
        close(loss, 0.08);
        assert_eq!(g[0], 0.0);
    }

    // Python: cov -> top token 3 (2.133); l = -a*exp(lp-lo) + 1.0*|lp-lo| on it -> -0.252857
    #[test]
    fn kl_cov_golden_number() {
        close(
            run(Method::KlCov, MethodParams::default(), None).0,
            -0.252_857,
        );
    }

    // Only token 0 is eligible (1 < cov 1.683 < 5, not clipped; token 3 is clipped low): its
    // gradient stops while the loss value is unchanged.
    #[test]
    fn clip_cov_detaches_the_selected_token() {
        let (loss, g, _) = run(Method::ClipCov, MethodParams::default(), None);
        let (_, g_plain, _) = run(Method::ClipHigher, MethodParams::default(), None);
        close(loss, -0.33351);
        assert_eq!(g[0], 0.0);
        assert!(g_plain[0] != 0.0 && g[1] == g_plain[1]);
    }

    // Python: d = logp - ref; k3 = exp(-d) - 1 + d; token mean 0.295051; loss = tm + 0.1*0.295051
    #[test]
    fn kl_penalty_golden_number() {
        let params = MethodParams {
            kl: KlConfig {
                beta: 0.1,
                estimator: KlEstimator::K3,
            },
            ..MethodParams::default()
        };
        let (loss, _, stats) = run(
            Method::ClipHigher,
            params,
            Some([-0.3, -2.0, -0.1, -3.0, -1.2, -20.0]),
        );
        close(loss, -0.33351 + 0.1 * 0.295_051);
        assert!((stats.kl.unwrap() - 0.295_051).abs() < 1e-5);
    }
}
