//! `trainer audit`: canned questions over the rollout store, as readable tables or JSON.
//!
//! * [`table`]: terminal tables.
//! * [`export`]: JSON Lines and Parquet exports of a run's rollouts.

pub mod export;
pub mod table;

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::store::{RolloutFilter, RolloutView, SourceVerdict, Store, StoreError};
use export::ExportError;
use table::Align;

/// The audit questions.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Every run: method, start and end, steps, rollouts, overall accuracy.
    #[command(
        after_help = "Example:\n  trainer audit runs --database-url postgres://root@127.0.0.1/test"
    )]
    Runs,
    /// Per-step reward, accuracy, entropy, loss, length and verdict mix of one run, then its
    /// rollouts per data source and verdict (with `--json`: the per-step rows only; `sources`
    /// gives the rest).
    #[command(after_help = "Example:\n  trainer audit summary --run RUN --json")]
    Summary {
        /// Run id.
        #[arg(long)]
        run: String,
    },
    /// A run's rollouts per data source and verdict: how many, their share of the source,
    /// their mean reward.
    #[command(after_help = "Example:\n  trainer audit sources --run RUN --json")]
    Sources {
        /// Run id.
        #[arg(long)]
        run: String,
    },
    /// Rollouts of a run, filtered.
    #[command(
        after_help = "Example:\n  trainer audit rollouts --run RUN --verdict incorrect --step 0 --limit 20"
    )]
    Rollouts {
        /// Run id.
        #[arg(long)]
        run: String,
        /// Only this step (0-based).
        #[arg(long)]
        step: Option<i64>,
        /// Only this verdict (correct, incorrect, no_answer, unparseable, limit_exceeded, …).
        #[arg(long)]
        verdict: Option<String>,
        /// Only rewards at least this.
        #[arg(long)]
        min_reward: Option<f64>,
        /// Only responses containing this text (case-insensitive).
        #[arg(long)]
        contains: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Every sample of one prompt, step by step.
    #[command(after_help = "Example:\n  trainer audit prompt --run RUN --prompt-id max-3815")]
    Prompt {
        /// Run id.
        #[arg(long)]
        run: String,
        /// Prompt id (e.g. `max-3815` in the demo, `add-2-3` in the addition task).
        #[arg(long)]
        prompt_id: String,
    },
    /// Rollouts worth a second look: reward without an extracted answer, accepted code with
    /// exit hacks, responses far longer than their group, one response rewarded differently,
    /// and code smells (accepted trivial programs, one output for every test, runs near the
    /// time limit, sandbox errors).
    #[command(after_help = "Example:\n  trainer audit suspicious --run RUN")]
    Suspicious {
        /// Run id.
        #[arg(long)]
        run: String,
    },
    /// All rollouts of a run as JSON Lines (to `--out` or standard output) or Parquet.
    #[command(
        after_help = "Example:\n  trainer audit export --run RUN --format parquet --out run.parquet"
    )]
    Export {
        /// Run id.
        #[arg(long)]
        run: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Output file (required for Parquet).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Export file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// Audit failures.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store query failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Export failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    /// A usage error.
    #[error("{0}")]
    Usage(String),
}

/// Runs one audit command, writing a table (or JSON with `json`) to `out`.
pub async fn run<W: Write>(
    store: &Store,
    cmd: &AuditCommand,
    json: bool,
    out: &mut W,
) -> Result<(), AuditError> {
    match cmd {
        AuditCommand::Runs => {
            let runs = store.runs().await?;
            emit(
                out,
                json,
                &runs,
                &[
                    ("run", Align::Left),
                    ("method", Align::Left),
                    ("started", Align::Left),
                    ("finished", Align::Left),
                    ("steps", Align::Right),
                    ("rollouts", Align::Right),
                    ("accuracy", Align::Right),
                ],
                |r| {
                    vec![
                        r.run_id.clone(),
                        r.method.clone(),
                        r.started_at.clone(),
                        r.finished_at.clone().unwrap_or_default(),
                        r.steps.to_string(),
                        r.rollouts.to_string(),
                        r.accuracy.map_or_else(String::new, |a| format!("{a:.3}")),
                    ]
                },
            )
        }
        AuditCommand::Summary { run } => {
            let steps = store.summary(run).await?;
            if steps.is_empty() {
                return Err(AuditError::Usage(format!(
                    "no rollouts for run {run:?} (see `trainer audit runs`)"
                )));
            }
            emit(
                out,
                json,
                &steps,
                &[
                    ("step", Align::Right),
                    ("rollouts", Align::Right),
                    ("reward", Align::Right),
                    ("accuracy", Align::Right),
                    ("entropy", Align::Right),
                    ("loss", Align::Right),
                    ("tokens", Align::Right),
                    ("verdicts", Align::Left),
                ],
                |s| {
                    vec![
                        s.step.to_string(),
                        s.rollouts.to_string(),
                        format!("{:.3}", s.reward_mean),
                        format!("{:.3}", s.accuracy),
                        s.entropy.map_or_else(String::new, |e| format!("{e:.4}")),
                        s.loss.map_or_else(String::new, |l| format!("{l:+.4}")),
                        format!("{:.1}", s.tokens_mean),
                        s.verdicts.clone(),
                    ]
                },
            )?;
            if json {
                return Ok(());
            }
            writeln!(out)?;
            emit_sources(out, false, &store.by_source(run).await?)
        }
        AuditCommand::Sources { run } => emit_sources(out, json, &store.by_source(run).await?),
        AuditCommand::Rollouts {
            run,
            step,
            verdict,
            min_reward,
            contains,
            limit,
        } => {
            let filter = RolloutFilter {
                step: *step,
                verdict: verdict.clone(),
                min_reward: *min_reward,
                contains: contains.clone(),
                prompt_id: None,
                limit: Some(*limit),
            };
            let rows = store.rollouts(run, &filter).await?;
            emit_rollouts(out, json, &rows)
        }
        AuditCommand::Prompt { run, prompt_id } => {
            let filter = RolloutFilter {
                prompt_id: Some(prompt_id.clone()),
                ..RolloutFilter::default()
            };
            let rows = store.rollouts(run, &filter).await?;
            emit_rollouts(out, json, &rows)
        }
        AuditCommand::Suspicious { run } => {
            let rows = store.suspicious(run).await?;
            emit(
                out,
                json,
                &rows,
                &[
                    ("kind", Align::Left),
                    ("step", Align::Right),
                    ("prompt", Align::Left),
                    ("sample", Align::Right),
                    ("reward", Align::Right),
                    ("detail", Align::Left),
                ],
                |s| {
                    vec![
                        s.kind.clone(),
                        s.step.to_string(),
                        s.prompt_id.clone(),
                        s.sample_idx.to_string(),
                        format!("{:.3}", s.reward),
                        s.detail.clone(),
                    ]
                },
            )
        }
        AuditCommand::Export {
            run,
            format,
            out: path,
        } => {
            let rows = store.rollouts(run, &RolloutFilter::default()).await?;
            match (format, path) {
                (ExportFormat::Parquet, None) => {
                    return Err(AuditError::Usage(
                        "--format parquet needs --out FILE".into(),
                    ));
                }
                (ExportFormat::Parquet, Some(p)) => export::write_parquet(&rows, p)?,
                (ExportFormat::Jsonl, Some(p)) => export::write_jsonl(
                    &rows,
                    &mut std::io::BufWriter::new(std::fs::File::create(p)?),
                )?,
                (ExportFormat::Jsonl, None) => return Ok(export::write_jsonl(&rows, out)?),
            }
            // Written to a file: say so on standard output, where the rows would have gone.
            let p = path.as_deref().unwrap_or(std::path::Path::new("-"));
            writeln!(out, "wrote {} rollouts to {}", rows.len(), p.display())?;
            Ok(())
        }
    }
}

fn emit_sources<W: Write>(
    out: &mut W,
    json: bool,
    rows: &[SourceVerdict],
) -> Result<(), AuditError> {
    emit(
        out,
        json,
        rows,
        &[
            ("source", Align::Left),
            ("verdict", Align::Left),
            ("rollouts", Align::Right),
            ("share", Align::Right),
            ("reward", Align::Right),
        ],
        |r| {
            vec![
                r.data_source.clone(),
                r.verdict.clone(),
                r.rollouts.to_string(),
                format!("{:.3}", r.share),
                format!("{:.3}", r.reward_mean),
            ]
        },
    )
}

fn emit_rollouts<W: Write>(
    out: &mut W,
    json: bool,
    rows: &[RolloutView],
) -> Result<(), AuditError> {
    emit(
        out,
        json,
        rows,
        &[
            ("step", Align::Right),
            ("prompt", Align::Left),
            ("source", Align::Left),
            ("sample", Align::Right),
            ("verdict", Align::Left),
            ("reward", Align::Right),
            ("adv", Align::Right),
            ("gold", Align::Left),
            ("extracted", Align::Left),
            ("response", Align::Left),
        ],
        |r| {
            vec![
                r.step.to_string(),
                r.prompt_id.clone(),
                r.data_source.clone(),
                r.sample_idx.to_string(),
                r.verdict.clone(),
                format!("{:.3}", r.reward),
                format!("{:+.3}", r.advantage),
                r.ground_truth.clone(),
                r.extracted.clone().unwrap_or_default(),
                r.response.clone(),
            ]
        },
    )
}

fn emit<W: Write, T: Serialize>(
    out: &mut W,
    json: bool,
    rows: &[T],
    headers: &[(&str, Align)],
    cells: impl Fn(&T) -> Vec<String>,
) -> Result<(), AuditError> {
    if json {
        serde_json::to_writer_pretty(&mut *out, rows).map_err(ExportError::from)?;
        writeln!(out)?;
    } else {
        let rows: Vec<Vec<String>> = rows.iter().map(cells).collect();
        write!(out, "{}", table::render(headers, &rows))?;
    }
    Ok(())
}
