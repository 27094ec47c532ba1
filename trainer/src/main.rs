//! `trainer`: fine-tune a causal LM with verifier rewards.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use trainer::algo::Method;
use trainer::audit::{self, AuditCommand};
use trainer::config::TrainConfig;
use trainer::device::ComputeDevice;
use trainer::reward::{EmbeddedVerifier, spawn_embedded_verifier};
use trainer::store::Store;
use trainer::train::{self, RunOptions, StoreTarget};

/// GRPO/STEER trainer with verifiable rewards.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a run keeps its files, stores rollouts and gets rewards.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run directory: checkpoint, store journal, metrics.jsonl, the final model, and the SQLite
    /// store by default (default `runs/demo` for `demo`, `runs/train` for `train`).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// `postgres://…` or `sqlite://PATH`; default `sqlite://RUN_DIR/rollouts.sqlite`.
    #[arg(long, env = "TRAINER_DATABASE_URL")]
    database_url: Option<String>,
    /// Verifier base URL, or several separated by commas (requests are spread over them);
    /// without it a verifier is started in-process on loopback.
    #[arg(long, env = "TRAINER_VERIFIER_URL")]
    verifier_url: Option<String>,
    /// Seconds an unreachable or overloaded verifier is waited for (retries with backoff up to
    /// 5 s apart) before the run fails.
    #[arg(long, default_value_t = train::DEFAULT_VERIFIER_PATIENCE.as_secs())]
    verifier_patience: u64,
    /// Continue the run checkpointed in the run directory (same run id, next step); rows the
    /// interrupted process journaled but did not store are written first.
    #[arg(long)]
    resume: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole loop on the built-in addition task and a tiny random-init model, in about a
    /// minute on 2 CPU cores: format warm-up, then RL with rewards from the verifier over HTTP.
    Demo {
        /// RL steps (default: the embedded config's 100).
        #[arg(long)]
        steps: Option<usize>,
        /// Policy loss (default: the embedded config's `steer`).
        #[arg(long, value_enum)]
        method: Option<Method>,
        /// RL learning rate (default: the embedded config's).
        #[arg(long)]
        lr: Option<f64>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Train with a TOML config (see `trainer/configs/`). Unknown keys are an error; the resolved
    /// config is stored with the run.
    Train {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Override the method (its standard clip settings come with it).
        #[arg(long, value_enum)]
        method: Option<Method>,
        /// Override the number of RL steps.
        #[arg(long)]
        steps: Option<usize>,
        /// Compute device: `cuda` needs a binary built with `--features cuda`
        /// (`scripts/build-cuda.sh`) and never falls back to the CPU.
        #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu)]
        device: ComputeDevice,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Measure how well STEER's estimate (and the covariance estimate) predict the entropy
    /// change of one SGD step, against the exact first-order change and the realised one.
    /// Writes `OUT/report.md` (Pearson, Spearman, MSE overall and per quadrant) and
    /// `OUT/points.csv`.
    EntropyProbe {
        /// The config file (model, task, sampling, seed).
        #[arg(long)]
        config: PathBuf,
        /// SGD step size η.
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// Prompts to sample (each with the config's group size).
        #[arg(long, default_value_t = 8)]
        samples: usize,
        /// Positions that get the autograd first-order value (one backward pass each).
        #[arg(long, default_value_t = 2000)]
        max_first_order: usize,
        /// Rows per forward/backward pass (default: the config's `algo.micro_batch_size`);
        /// lower it when a large vocabulary runs out of memory. The step is the same.
        #[arg(long)]
        micro_batch: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "runs/entropy-probe")]
        out: PathBuf,
        /// Verifier base URL; without it one is started in-process on loopback.
        #[arg(long, env = "TRAINER_VERIFIER_URL")]
        verifier_url: Option<String>,
    },
    /// The same task, seed and budget for several methods, one after the other; writes
    /// `OUT/compare.md` (reward, held-out avg@k and pass@k, final entropy, entropy half-life),
    /// `OUT/curves.csv`, and each method's run directory `OUT/METHOD`.
    Compare {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Methods, comma-separated.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "grpo,steer,clip-cov,entropy-bonus"
        )]
        methods: Vec<Method>,
        /// RL steps per method (default: the config's).
        #[arg(long)]
        steps: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "runs/compare")]
        out: PathBuf,
        /// Verifier base URL; without it one is started in-process on loopback.
        #[arg(long, env = "TRAINER_VERIFIER_URL")]
        verifier_url: Option<String>,
    },
    /// Draw reward, entropy and response-length curves of one or more run directories (their
    /// `metrics.jsonl`) into one PNG.
    Plot {
        /// Run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The PNG to write (default `FIRST_DIR/curves.png`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Question the rollout store: what was the model rewarded for?
    Audit {
        /// `postgres://…` or `sqlite://PATH`.
        #[arg(
            long,
            env = "TRAINER_DATABASE_URL",
            default_value = "sqlite://runs/demo/rollouts.sqlite"
        )]
        database_url: String,
        /// JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// The given verifier URL(s), or a verifier started in-process (kept alive by the guard).
fn verifier_or_embedded(
    rt: &tokio::runtime::Runtime,
    url: Option<String>,
) -> Result<(String, Option<EmbeddedVerifier>)> {
    Ok(match url {
        Some(url) => (url, None),
        None => {
            let v = rt
                .block_on(spawn_embedded_verifier())
                .context("starting the embedded verifier")?;
            (v.url.clone(), Some(v))
        }
    })
}

/// Runs training on its own thread (it blocks on the runtime for HTTP and SQL) and prints a
/// summary.
fn run_training(
    cfg: &TrainConfig,
    run: RunArgs,
    default_dir: &str,
    device: ComputeDevice,
) -> Result<()> {
    cfg.validate()?;
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let (verifier_url, _embedded) = verifier_or_embedded(&rt, run.verifier_url)?;
    let opts = RunOptions {
        run_dir: run.run_dir.unwrap_or_else(|| PathBuf::from(default_dir)),
        store: run
            .database_url
            .map_or(StoreTarget::RunDirSqlite, StoreTarget::Url),
        verifier_url,
        verifier_patience: std::time::Duration::from_secs(run.verifier_patience),
        resume: run.resume,
        progress: true,
        device,
    };
    let handle = rt.handle().clone();
    let summary = std::thread::scope(|s| s.spawn(|| train::run(cfg, &opts, &handle)).join())
        .map_err(|_| anyhow::anyhow!("training thread panicked"))??;
    let first = summary.history.first().map_or(0.0, |m| m.accuracy);
    let last = summary.history.last().map_or(0.0, |m| m.accuracy);
    println!(
        "done: run {} wrote {} rollouts to {} (accuracy {first:.3} → {last:.3})",
        summary.run_id, summary.rollouts_written, summary.database_url
    );
    Ok(())
}

fn read_config(path: &PathBuf) -> Result<TrainConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    TrainConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo {
            steps,
            method,
            lr,
            run,
        } => {
            let mut cfg = TrainConfig::demo();
            if let Some(s) = steps {
                cfg.steps = s;
            }
            if let Some(lr) = lr {
                cfg.optim.lr = lr;
            }
            if let Some(m) = method {
                cfg.algo.method = m;
            }
            run_training(&cfg, run, "runs/demo", ComputeDevice::Cpu)
        }
        Command::Train {
            config,
            method,
            steps,
            device,
            run,
        } => {
            let mut cfg = read_config(&config)?;
            if let Some(m) = method {
                cfg.algo.method = m;
                cfg.algo.clip = m.default_clip();
            }
            if let Some(s) = steps {
                cfg.steps = s;
            }
            run_training(&cfg, run, "runs/train", device)
        }
        Command::EntropyProbe {
            config,
            lr,
            samples,
            max_first_order,
            micro_batch,
            out,
            verifier_url,
        } => {
            let cfg = read_config(&config)?;
            let micro_rows = micro_batch.unwrap_or(cfg.algo.micro_batch_size);
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            let (verifier_url, _embedded) = verifier_or_embedded(&rt, verifier_url)?;
            let opts = trainer::probe::ProbeOptions {
                lr,
                prompts: samples,
                max_first_order,
                micro_rows,
                out_dir: out.clone(),
                verifier_url,
            };
            let handle = rt.handle().clone();
            let points = std::thread::scope(|s| {
                s.spawn(|| trainer::probe::run_probe(&cfg, &opts, &handle))
                    .join()
            })
            .map_err(|_| anyhow::anyhow!("probe thread panicked"))??;
            print!("{}", trainer::probe::report_markdown(&points, lr));
            println!(
                "\nwrote {}/report.md, points.csv and scatter.png",
                out.display()
            );
            Ok(())
        }
        Command::Compare {
            config,
            methods,
            steps,
            out,
            verifier_url,
        } => {
            let mut cfg = read_config(&config)?;
            if let Some(s) = steps {
                cfg.steps = s;
            }
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            let (verifier_url, _embedded) = verifier_or_embedded(&rt, verifier_url)?;
            let handle = rt.handle().clone();
            let mut runs = Vec::new();
            for m in methods {
                let mut c = cfg.clone();
                c.algo.method = m;
                c.algo.clip = m.default_clip();
                c.validate()?;
                let dir = out.join(m.as_str());
                let _ = std::fs::remove_dir_all(&dir);
                let opts = RunOptions {
                    run_dir: dir,
                    store: StoreTarget::RunDirSqlite,
                    verifier_url: verifier_url.clone(),
                    verifier_patience: train::DEFAULT_VERIFIER_PATIENCE,
                    resume: false,
                    progress: false,
                    device: ComputeDevice::Cpu,
                };
                println!("running {} for {} steps", m.as_str(), c.steps);
                let summary =
                    std::thread::scope(|s| s.spawn(|| train::run(&c, &opts, &handle)).join())
                        .map_err(|_| anyhow::anyhow!("training thread panicked"))??;
                runs.push((m, summary));
            }
            let md = trainer::compare::write_report(&out, &runs, cfg.steps, cfg.seed)?;
            let dirs: Vec<PathBuf> = runs.iter().map(|(m, _)| out.join(m.as_str())).collect();
            trainer::plot::plot_runs(&dirs, &out.join("curves.png"))?;
            print!("{md}");
            println!(
                "\nwrote {}/compare.md, curves.csv and curves.png",
                out.display()
            );
            Ok(())
        }
        Command::Plot { dirs, out } => {
            let out = out.unwrap_or_else(|| dirs[0].join("curves.png"));
            trainer::plot::plot_runs(&dirs, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Audit {
            database_url,
            json,
            command,
        } => {
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            rt.block_on(async {
                let store = Store::connect(&database_url)
                    .await
                    .with_context(|| format!("opening {database_url}"))?;
                let stdout = std::io::stdout();
                let result = audit::run(&store, &command, json, &mut stdout.lock()).await;
                store.close().await;
                Ok(result?)
            })
        }
    }
}
