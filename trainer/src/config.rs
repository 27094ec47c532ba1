//! Training configuration: TOML, every key known (unknown keys are an error at load time).
//!
//! `configs/demo.toml` is embedded in the binary and is what `trainer demo` runs.

use serde::{Deserialize, Serialize};

use crate::algo::{ClipConfig, LossAgg, Method, MethodParams, SteerConfig};
use crate::model::ModelConfig;
use crate::model::source::Origin;
use crate::optim::AdamWConfig;
use crate::reward::RewardConfig;
use crate::rollout::SamplingConfig;
use crate::task::TaskConfig;

/// The demo's configuration, embedded at build time.
pub const DEMO_TOML: &str = include_str!("../configs/demo.toml");

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seeds weight init, problem sampling and token sampling.
    pub seed: u64,
    /// RL optimizer steps.
    pub steps: usize,
    /// Std of the normal weight init (HF `initializer_range`).
    pub init_std: f64,
    /// Save a checkpoint (weights, optimizer, next step) every this many steps, and at the end.
    pub checkpoint_every: usize,
    /// Architecture of a random-init model (`[model]`); exactly one of this and
    /// `pretrained`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    /// A pretrained checkpoint to start from (`[pretrained]`); its architecture and tokenizer
    /// come from the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PretrainedConfig>,
    /// The task.
    pub task: TaskConfig,
    /// Reward routing overrides and code judging options (`[reward]`, `[reward.kinds]`,
    /// `[reward.code]`); absent: the defaults.
    #[serde(default, skip_serializing_if = "RewardConfig::is_default")]
    pub reward: RewardConfig,
    /// Rollout generation.
    pub rollout: RolloutConfig,
    /// The RL objective.
    pub algo: AlgoConfig,
    /// Optimizer for the RL steps.
    pub optim: AdamWConfig,
    /// Learning-rate warm-up and decay over the RL steps.
    #[serde(default)]
    pub schedule: crate::optim::LrSchedule,
    /// Supervised format warm-up before RL.
    pub warmup: WarmupConfig,
    /// Periodic and final evaluation (avg@k, pass@k) over every problem of the task.
    #[serde(default)]
    pub eval: crate::eval::EvalConfig,
    /// Compute dtype of the forward passes: `"f32"` (default) or `"bf16"` (bf16 products over
    /// f32 master weights, for CUDA; see [`crate::device::Precision`]).
    #[serde(default, skip_serializing_if = "is_default_precision")]
    pub precision: crate::device::Precision,
}

/// Runs from before `precision` existed store configs without it; f32 keeps them equal on
/// `--resume`.
fn is_default_precision(p: &crate::device::Precision) -> bool {
    *p == crate::device::Precision::F32
}

/// A pretrained starting point: exactly one of `gguf` and `hf`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainedConfig {
    /// A llama.cpp GGUF file (`llama` or `qwen2` architecture, byte-level BPE tokenizer in the
    /// metadata), dequantized to f32 master weights; e.g. SmolLM2-135M-Instruct from
    /// `scripts/fetch-smollm2.sh`. Prompts go through its chat template. A leading `~/` is
    /// the home directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf: Option<std::path::PathBuf>,
    /// A Hugging Face model directory (`config.json` of a `qwen2` or `llama` model,
    /// `model.safetensors` or shards with their index, `tokenizer.json`,
    /// `tokenizer_config.json` with `eos_token` and, for chat models, `chat_template`), e.g. a
    /// downloaded Qwen2.5-0.5B-Instruct or a run's `final/`. Weights become f32 masters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<std::path::PathBuf>,
}

/// Rollout settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Distinct prompts per step.
    pub prompts_per_step: usize,
    /// Responses per prompt (G); at least 2 for group advantages.
    pub group_size: usize,
    /// Sampling.
    pub sampling: SamplingConfig,
    /// Stop strings: a response (in training and evaluation) also ends with the token whose
    /// text completes one of these; the graded text is cut before it, the tokens are kept.
    /// Default none (EOS and `max_new_tokens` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// DAPO's soft overlong penalty: responses longer than `max_new_tokens − overlong_buffer`
    /// lose `overlong_penalty × (excess / overlong_buffer)` reward (at most the full factor).
    /// 0 (default) disables it.
    #[serde(default)]
    pub overlong_buffer: usize,
    /// The penalty factor. Default 1.0.
    #[serde(default = "unit")]
    pub overlong_penalty: f64,
    /// DAPO's dynamic sampling: drop groups whose rewards are all equal (zero advantage, no
    /// learning signal) and draw fresh prompts until `prompts_per_step` groups remain.
    /// Default false.
    #[serde(default)]
    pub dynamic_sampling: bool,
    /// Sampling rounds per step before training on what was kept (verl's
    /// `max_num_gen_batches`). Default 10.
    #[serde(default = "ten")]
    pub max_sampling_rounds: usize,
}

fn ten() -> usize {
    10
}

fn unit() -> f64 {
    1.0
}

fn one_epoch() -> usize {
    1
}

impl RolloutConfig {
    /// `reward` shaped by the overlong penalty for a response of `len` tokens.
    pub fn shaped_reward(&self, reward: f64, len: usize) -> f64 {
        if self.overlong_buffer == 0 {
            return reward;
        }
        let start = self
            .sampling
            .max_new_tokens
            .saturating_sub(self.overlong_buffer);
        let excess = len.saturating_sub(start) as f64;
        reward - (excess / self.overlong_buffer as f64).min(1.0) * self.overlong_penalty
    }
}

/// Objective settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlgoConfig {
    /// Policy loss.
    pub method: Method,
    /// PPO clipping.
    pub clip: ClipConfig,
    /// STEER weights (used by `steer`).
    #[serde(default)]
    pub steer: SteerConfig,
    /// `steer-coupled`'s mapping, normaliser and vocabulary truncation (used by
    /// `steer-coupled`; every key optional).
    #[serde(default)]
    pub steer_coupled: crate::algo::SteerCoupledConfig,
    /// Divide group-centred rewards by the group std (false: Dr. GRPO).
    pub norm_adv_by_std: bool,
    /// Responses per micro-batch; STEER's normaliser spans one micro-batch.
    pub micro_batch_size: usize,
    /// Responses per optimizer step (verl's `ppo_mini_batch_size`, rounded up to whole
    /// micro-batches); absent (default): the whole batch is one optimizer step.
    #[serde(default)]
    pub mini_batch_size: Option<usize>,
    /// Passes over each rollout batch (verl's `ppo_epochs`). Default 1.
    #[serde(default = "one_epoch")]
    pub ppo_epochs: usize,
    /// Loss aggregation.
    #[serde(default)]
    pub loss_agg: LossAgg,
    /// The baselines' hyper-parameters (entropy coefficient, Clip-Cov/KL-Cov ratios, KL to the
    /// reference, …); every key optional with STEER.md §3 defaults.
    #[serde(default)]
    pub params: MethodParams,
}

/// Format warm-up: a few supervised steps on responses in the task's answer format carrying
/// random (not correct) answers, so a random-init model emits gradeable answers before RL.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupConfig {
    /// Supervised steps (0 disables the warm-up).
    pub steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
}

/// Config errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// TOML syntax or unknown/missing keys.
    #[error("config: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value out of range.
    #[error("config: {0}")]
    Invalid(String),
}

impl TrainConfig {
    /// Parses and validates a TOML config.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: TrainConfig = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Where the starting weights come from: `[model]` (a random init seeded by `seed`) or
    /// `[pretrained]`.
    pub fn origin(&self) -> Result<Origin<'_>, ConfigError> {
        match (&self.model, &self.pretrained) {
            (Some(model), None) => Ok(Origin::RandomInit {
                model,
                seed: self.seed,
                init_std: self.init_std,
            }),
            (
                None,
                Some(PretrainedConfig {
                    gguf: Some(file),
                    hf: None,
                }),
            ) => Ok(Origin::Gguf(file)),
            (
                None,
                Some(PretrainedConfig {
                    gguf: None,
                    hf: Some(dir),
                }),
            ) => Ok(Origin::Hf(dir)),
            _ => Err(ConfigError::Invalid(
                "the config needs exactly one of [model] and [pretrained] (gguf or hf)".into(),
            )),
        }
    }

    /// The embedded demo config.
    pub fn demo() -> Self {
        Self::from_toml(DEMO_TOML).expect("the embedded demo config is valid (checked by a test)")
    }

    /// Checks ranges and cross-field constraints.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        match (&self.model, &self.pretrained) {
            (Some(m), None) => m.validate().map_err(ConfigError::Invalid)?,
            (None, Some(p)) if p.gguf.is_some() != p.hf.is_some() => {}
            (None, Some(_)) => return bad("[pretrained] needs exactly one of gguf and hf"),
            _ => return bad("the config needs exactly one of [model] and [pretrained]"),
        }
        if self.rollout.group_size < 2 {
            return bad("rollout.group_size must be at least 2");
        }
        if self.algo.ppo_epochs == 0 || self.algo.mini_batch_size == Some(0) {
            return bad("algo.ppo_epochs and algo.mini_batch_size must be positive");
        }
        let t = &self.task;
        let tasks = [
            t.max_operand.is_some(),
            t.largest.is_some() || t.programs.is_some(),
            t.dataset.is_some(),
        ];
        if tasks.iter().filter(|&&set| set).count() != 1 {
            return bad(crate::task::AMBIGUOUS);
        }
        self.reward.code.validate().map_err(ConfigError::Invalid)?;
        if self.eval.k == 0 {
            return bad("eval.k must be positive");
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every must be positive");
        }
        if self.rollout.prompts_per_step == 0 || self.algo.micro_batch_size == 0 {
            return bad("rollout.prompts_per_step and algo.micro_batch_size must be positive");
        }
        if self.rollout.sampling.temperature.is_nan() || self.rollout.sampling.temperature <= 0.0 {
            return bad("rollout.sampling.temperature must be > 0");
        }
        if self.rollout.sampling.max_new_tokens == 0 {
            return bad("rollout.sampling.max_new_tokens must be positive");
        }
        if [self.optim.lr, self.warmup.lr]
            .iter()
            .any(|lr| lr.is_nan() || *lr <= 0.0)
        {
            return bad("learning rates must be > 0");
        }
        if !(0.0..1.0).contains(&self.algo.clip.eps_low) || self.algo.clip.eps_high < 0.0 {
            return bad("algo.clip: eps_low must be in [0, 1) and eps_high ≥ 0");
        }
        if self.algo.clip.dual_clip_c.is_some_and(|c| c <= 1.0) {
            return bad("algo.clip.dual_clip_c must be > 1");
        }
        for (key, mapping) in [
            ("algo.steer", self.algo.steer.mapping),
            ("algo.steer_coupled", self.algo.steer_coupled.mapping),
        ] {
            match mapping {
                crate::algo::steer::WeightMapping::Exponential { lambda_min }
                    if !(lambda_min > 0.0 && lambda_min <= 1.0) =>
                {
                    return bad(&format!("{key}.mapping.lambda_min must be in (0, 1]"));
                }
                crate::algo::steer::WeightMapping::Linear { w_min, w_max }
                    if !(0.0 <= w_min && w_min <= w_max) =>
                {
                    return bad(&format!("{key}.mapping needs 0 ≤ w_min ≤ w_max"));
                }
                _ => {}
            }
        }
        if self.algo.steer_coupled.top_k == 0 {
            return bad("algo.steer_coupled.top_k must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid() {
        let cfg = TrainConfig::demo();
        assert_eq!(cfg.algo.method, Method::Steer);
    }

    #[test]
    fn shipped_configs_parse_and_name_exactly_one_model_source() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");
        for name in [
            "demo.toml",
            "tiny-cpu.toml",
            "smollm2-cpu.toml",
            "code-tiny.toml",
            "mixed-tiny.toml",
            "smollm2-code.toml",
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let cfg = TrainConfig::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(cfg.model.is_some() != cfg.pretrained.is_some(), "{name}");
        }
        let smol = std::fs::read_to_string(format!("{dir}/smollm2-cpu.toml")).unwrap();
        let parsed = TrainConfig::from_toml(&smol).unwrap();
        assert!(
            parsed
                .pretrained
                .unwrap()
                .gguf
                .unwrap()
                .ends_with("SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        // `[task.grading]` is the verifier's MathOptions, unknown keys refused.
        let grading = parsed.task.grading.unwrap();
        assert!(!grading.require_boxed);
        assert_eq!(
            grading.float_rounding,
            protocol::MathOptions::default().float_rounding
        );
        let typo = smol.replace("require_boxed = false", "require_box = false");
        assert!(matches!(
            TrainConfig::from_toml(&typo),
            Err(ConfigError::Parse(_))
        ));
        // Both sources, or neither: refused.
        let both = format!(
            "{smol}\n[model]\n{}",
            &DEMO_TOML[DEMO_TOML.find("[model]").unwrap() + 7..DEMO_TOML.find("[task").unwrap()]
        );
        let e = TrainConfig::from_toml(&both).unwrap_err().to_string();
        assert!(e.contains("exactly one of [model] and [pretrained]"), "{e}");
        let neither = smol.replace("[pretrained]", "[unused]");
        assert!(TrainConfig::from_toml(&neither).is_err());
        // `[reward.code]`: validated, unknown keys refused.
        let code = std::fs::read_to_string(format!("{dir}/code-tiny.toml")).unwrap();
        let cfg = TrainConfig::from_toml(&code).unwrap();
        assert_eq!(cfg.reward.code.time_limit_s, 5.0);
        assert!(cfg.task.programs.is_some());
        let typo = code.replace("memory_limit_mb = 256", "memory_limit = 256");
        assert!(matches!(
            TrainConfig::from_toml(&typo),
            Err(ConfigError::Parse(_))
        ));
        let slow = code.replace("time_limit_s = 5.0", "time_limit_s = 90.0");
        let e = TrainConfig::from_toml(&slow).unwrap_err().to_string();
        assert!(e.contains("reward.code.time_limit_s = 90"), "{e}");
        let kinds = format!("{code}\n[reward.kinds]\nmy-set = \"code\"\n");
        let cfg = TrainConfig::from_toml(&kinds).unwrap();
        assert_eq!(
            cfg.reward.kinds.get("my-set"),
            Some(&crate::reward::RewardKind::Code)
        );
        let bad_kind = kinds.replace("\"code\"", "\"poetry\"");
        assert!(TrainConfig::from_toml(&bad_kind).is_err());
        // A config without `[reward]` serializes without it (resumable runs compare equal).
        let tiny = TrainConfig::from_toml(
            &std::fs::read_to_string(format!("{dir}/tiny-cpu.toml")).unwrap(),
        )
        .unwrap();
        assert!(serde_json::to_value(&tiny).unwrap().get("reward").is_none());
    }

    // DAPO: penalty = min(-(L - (max - buf)) / buf * factor, 0); max 12, buf 4, factor 1:
    //   L=8 -> 0, L=10 -> -0.5, L=12 -> -1.0
    #[test]
    fn overlong_penalty_golden_numbers() {
        let mut r = TrainConfig::demo().rollout;
        r.sampling.max_new_tokens = 12;
        r.overlong_buffer = 4;
        assert_eq!(r.shaped_reward(1.0, 8), 1.0);
        assert!((r.shaped_reward(1.0, 10) - 0.5).abs() < 1e-12);
        assert!((r.shaped_reward(1.0, 12) - 0.0).abs() < 1e-12);
        r.overlong_buffer = 0;
        assert_eq!(r.shaped_reward(1.0, 12), 1.0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let with_unknown = format!("{DEMO_TOML}\nbogus = 1\n");
        assert!(matches!(
            TrainConfig::from_toml(&with_unknown),
            Err(ConfigError::Parse(_))
        ));
        let bad_method = DEMO_TOML.replace("method = \"steer\"", "method = \"nope\"");
        assert!(matches!(
            TrainConfig::from_toml(&bad_method),
            Err(ConfigError::Parse(_))
        ));
        let bad_group = DEMO_TOML.replace("group_size = 8", "group_size = 1");
        assert!(matches!(
            TrainConfig::from_toml(&bad_group),
            Err(ConfigError::Invalid(_))
        ));
    }
}
