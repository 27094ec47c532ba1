//! Where a run's model comes from: a seeded random init of the config's `[model]` with the
//! built-in character tokenizer, or a pretrained checkpoint (`[pretrained] gguf` or
//! `[pretrained] hf`) with its own architecture, tokenizer and chat template.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use super::{Decoder, ModelConfig, gguf, hf};
use crate::device::Precision;
use crate::tokenizer::{TextTokenizer, TokenizerError};

/// Where a run's starting weights come from (a config's `[model]` or `[pretrained]`, see
/// `TrainConfig::origin`).
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A random init of this architecture: normal with std `init_std`, seeded by `seed`, and
    /// the built-in character tokenizer.
    RandomInit {
        /// The architecture.
        model: &'a ModelConfig,
        /// Seeds the init.
        seed: u64,
        /// Std of the normal init (HF `initializer_range`).
        init_std: f64,
    },
    /// A llama.cpp GGUF file (`[pretrained] gguf`); a leading `~/` is the home directory.
    Gguf(&'a std::path::Path),
    /// A Hugging Face model directory (`[pretrained] hf`); a leading `~/` is the home
    /// directory.
    Hf(&'a std::path::Path),
}

/// Failures building the starting model.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The config names neither or both sources, or the tokenizer does not fit the model.
    #[error("{0}")]
    Config(String),
    /// Reading the GGUF file.
    #[error(transparent)]
    Gguf(#[from] gguf::GgufError),
    /// Reading the Hugging Face directory.
    #[error(transparent)]
    Hf(#[from] hf::HfError),
    /// Tensor math.
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    /// The built-in tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// A run's starting point: the policy (its weights are `Var`s in the caller's `VarMap`), its
/// architecture and tokenizer, and a one-line description for the run record.
#[derive(Debug, Clone)]
pub struct Start {
    /// The architecture.
    pub config: ModelConfig,
    /// The trainable policy.
    pub policy: Decoder,
    /// The tokenizer prompts and responses go through.
    pub tokenizer: TextTokenizer,
    /// E.g. `qwen2-random-init (layers 2, hidden 64, vocab 99)`.
    pub description: String,
}

/// `~/…` → `$HOME/…`; other paths unchanged.
fn expand_home(path: &std::path::Path) -> std::path::PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// Builds the starting policy into `varmap`, computing in `precision`: from a pretrained
/// file or directory, or as a seeded random init.
pub fn start(
    origin: Origin<'_>,
    precision: Precision,
    varmap: &VarMap,
    device: &Device,
) -> Result<Start, SourceError> {
    match origin {
        Origin::RandomInit {
            model,
            seed,
            init_std,
        } => {
            let tokenizer = TextTokenizer::char_level()?;
            if tokenizer.vocab_size() != model.vocab_size {
                return Err(SourceError::Config(format!(
                    "model.vocab_size is {} but the built-in tokenizer has {} tokens",
                    model.vocab_size,
                    tokenizer.vocab_size()
                )));
            }
            let policy = policy_over(model, varmap, device, precision)?;
            super::init_weights(varmap, seed, init_std)?;
            Ok(Start {
                description: format!(
                    "{}-random-init (layers {}, hidden {}, vocab {})",
                    model.family.model_type(),
                    model.num_hidden_layers,
                    model.hidden_size,
                    model.vocab_size
                ),
                config: model.clone(),
                policy,
                tokenizer,
            })
        }
        Origin::Hf(dir) => {
            let dir = expand_home(dir);
            let config = hf::read_config(&dir)?;
            hf::load_weights(&dir, varmap, device)?;
            let policy = policy_over(&config, varmap, device, precision)?;
            let tokenizer = hf::read_tokenizer(&dir)?;
            if tokenizer.vocab_size() > config.vocab_size {
                return Err(SourceError::Config(format!(
                    "{}: tokenizer.json has {} tokens but the model's vocab_size is {}",
                    dir.display(),
                    tokenizer.vocab_size(),
                    config.vocab_size
                )));
            }
            Ok(Start {
                description: describe(dir.display(), &config),
                config,
                policy,
                tokenizer,
            })
        }
        Origin::Gguf(file) => {
            let g = gguf::load(&expand_home(file), varmap, device)?;
            let inner = g.tokenizer.ok_or_else(|| {
                SourceError::Config(format!("{} holds no tokenizer", file.display()))
            })?;
            let eos = g.eos_id.ok_or_else(|| {
                SourceError::Config(format!("{} names no EOS token", file.display()))
            })?;
            let policy = policy_over(&g.config, varmap, device, precision)?;
            let name = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            Ok(Start {
                description: describe(name, &g.config),
                config: g.config,
                policy,
                tokenizer: TextTokenizer::new(inner, eos, g.chat_template),
            })
        }
    }
}

/// The policy over `varmap`'s Vars (created by [`Decoder::new`] where a checkpoint did not
/// already register them), in the config's compute precision.
fn policy_over(
    model: &ModelConfig,
    varmap: &VarMap,
    device: &Device,
    precision: Precision,
) -> Result<Decoder, SourceError> {
    Ok(
        Decoder::new(model, VarBuilder::from_varmap(varmap, DType::F32, device))?
            .with_compute_dtype(precision.dtype()),
    )
}

/// `NAME (family, layers L, hidden H, vocab V)`: a pretrained start's line in the run record.
fn describe(name: impl std::fmt::Display, c: &ModelConfig) -> String {
    format!(
        "{name} ({}, layers {}, hidden {}, vocab {})",
        c.family.model_type(),
        c.num_hidden_layers,
        c.hidden_size,
        c.vocab_size
    )
}
