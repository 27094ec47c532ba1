//! `trainer`: fine-tune a causal LM with verifier rewards.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use trainer::algo::Method;
use trainer::audit::{self, AuditCommand};
use trainer::config::TrainConfig;
use trainer::device::ComputeDevice;
use trainer::reward::{EmbeddedVerifier, spawn_embedded_verifier};
use trainer::store::Store;
use trainer::train::{self, RunOptions, RunSummary, StoreTarget};

/// GRPO/STEER trainer with verifiable rewards.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Examples:\n  trainer demo\n  trainer audit runs --database-url sqlite://runs/demo/rollouts.sqlite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a run keeps its files, stores rollouts and gets rewards.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run directory: checkpoint, store journal, metrics.jsonl, eval.jsonl, curves.png, the
    /// final model, and the SQLite store by default (default `runs/demo` for `demo`,
    /// `runs/train` for `train`).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// `postgres://…` or `sqlite://PATH`; default `sqlite://RUN_DIR/rollouts.sqlite`.
    #[arg(long, env = "TRAINER_DATABASE_URL")]
    database_url: Option<String>,
    #[command(flatten)]
    verifier: VerifierArgs,
    /// Seconds an unreachable or overloaded verifier is waited for (retries with backoff up to
    /// 5 s apart) before the run fails.
    #[arg(long, default_value_t = train::DEFAULT_VERIFIER_PATIENCE.as_secs())]
    verifier_patience: u64,
    /// Continue the run checkpointed in the run directory (same run id, next step); rows the
    /// interrupted process journaled but did not store are written first.
    #[arg(long)]
    resume: bool,
}

/// The verifier a command grades with.
#[derive(Debug, clap::Args)]
struct VerifierArgs {
    /// Verifier base URL, or several separated by commas (requests are spread over them);
    /// without it a verifier is started in-process on loopback.
    #[arg(long, env = "TRAINER_VERIFIER_URL")]
    verifier_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job: a tiny random-init model learns the built-in task from the verifier's
    /// rewards alone (format warm-up, then RL), on 2 CPU cores in a couple of minutes. Prints
    /// held-out accuracy and token entropy before and after, where the rollouts are and how to
    /// audit them, and writes the run's curves to RUN_DIR/curves.png.
    #[command(
        after_help = "Examples:\n  trainer demo\n  trainer demo --seed 2 --method grpo --run-dir runs/grpo-2"
    )]
    Demo {
        /// RL steps (default: the embedded config's).
        #[arg(long)]
        steps: Option<usize>,
        /// Policy loss (default: the embedded config's `steer`).
        #[arg(long, value_enum)]
        method: Option<Method>,
        /// RL learning rate (default: the embedded config's).
        #[arg(long)]
        lr: Option<f64>,
        /// Seed of every random choice: initial weights, warm-up data, prompts, samples (default:
        /// the embedded config's 0).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Train with a TOML config (see `trainer/configs/`). Unknown keys are an error; the resolved
    /// config is stored with the run.
    #[command(
        after_help = "Example:\n  trainer train --config trainer/configs/tiny-cpu.toml --method steer --steps 10 --run-dir runs/t1"
    )]
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
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Compute device: `cuda` needs a binary built with `--features cuda`
        /// (`scripts/build-cuda.sh`) and never falls back to the CPU.
        #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu)]
        device: ComputeDevice,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Measure how well STEER's estimate (and the covariance estimate) predict the entropy
    /// change of one SGD step, against the exact first-order change and the realised one.
    /// Writes `OUT/report.md` (Pearson, Spearman, MSE overall and per quadrant),
    /// `OUT/points.csv` and `OUT/scatter.png`.
    #[command(
        after_help = "Example:\n  trainer entropy-probe --config trainer/configs/demo.toml --lr 1e-3 --samples 8 --out runs/probe"
    )]
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
        /// Block counts `k` of the `coupled_top{k}` estimators (the output head, the final norm
        /// and the last `k` blocks, rerun along the step), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        coupled_blocks: Vec<usize>,
        /// Tokens of each position's distribution kept by `coupled_head`.
        #[arg(long, default_value_t = 16)]
        head_top_k: usize,
        /// Skip the source side (each token's contribution to the summed entropy change,
        /// against the exact first order: one backward and two forward passes more).
        #[arg(long)]
        no_source: bool,
        /// Rows per forward/backward pass (default: the config's `algo.micro_batch_size`);
        /// lower it when a large vocabulary runs out of memory. The step is the same.
        #[arg(long)]
        micro_batch: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "runs/entropy-probe")]
        out: PathBuf,
        #[command(flatten)]
        verifier: VerifierArgs,
    },
    /// Several methods on the same task and budget, each over the same seeds, one run after
    /// the other. Writes `OUT/compare.md` (every figure's mean and 95 % interval over the
    /// seeds: held-out accuracy before and after, pass@k, reward, entropy, its half-life, run
    /// time), `OUT/compare.json`, `OUT/curves.csv`, `OUT/curves.png` (mean curves with 95 %
    /// bands) and each run's directory `OUT/METHOD/seed-S`.
    #[command(
        after_help = "Examples:\n  trainer compare --seeds 5\n  trainer compare --config trainer/configs/tiny-cpu.toml --methods grpo,steer --steps 20 --out runs/compare-tiny"
    )]
    Compare {
        /// The config file (default: the demo's embedded config).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Methods, comma-separated.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "grpo,steer,clip-cov,entropy-bonus"
        )]
        methods: Vec<Method>,
        /// Seeds per method: the config's seed and the ones after it.
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// The first seed (default: the config's).
        #[arg(long)]
        seed: Option<u64>,
        /// RL steps per run (default: the config's).
        #[arg(long)]
        steps: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "runs/compare")]
        out: PathBuf,
        #[command(flatten)]
        verifier: VerifierArgs,
    },
    /// Draw reward, entropy and response-length curves of one or more run directories (their
    /// `metrics.jsonl`) into one PNG.
    #[command(
        after_help = "Example:\n  trainer plot runs/compare/grpo runs/compare/steer --out runs/compare/both.png"
    )]
    Plot {
        /// Run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The PNG to write (default `FIRST_DIR/curves.png`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check this trainer on a GPU against the CPU and time it: correctness (logits, gradients,
    /// an AdamW step, KV-cache sampling; f32 and bf16), speed of a model shape, and the
    /// random-init checkpoint PyTorch is timed on (docs/gpu.md).
    #[command(
        after_help = "Examples:\n  trainer gpu-check correctness --device cuda --out runs/gpu-check\n  trainer gpu-check speed --shape qwen2-0.5b --device cuda --out runs/gpu-check"
    )]
    GpuCheck {
        #[command(subcommand)]
        command: trainer::gpu_check::GpuCheckCommand,
    },
    /// Question the rollout store: what was the model rewarded for?
    #[command(
        after_help = "Examples:\n  trainer audit runs\n  trainer audit summary --run RUN --database-url postgres://root@127.0.0.1/test"
    )]
    Audit {
        /// `postgres://…` or `sqlite://PATH`; before or after the audit subcommand.
        #[arg(
            long,
            global = true,
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
    args: VerifierArgs,
) -> Result<(String, Option<EmbeddedVerifier>)> {
    Ok(match args.verifier_url {
        Some(url) => (url, None),
        None => {
            let v = rt
                .block_on(spawn_embedded_verifier())
                .context("starting the embedded verifier")?;
            (v.url.clone(), Some(v))
        }
    })
}

/// Runs training on its own thread (it blocks on the runtime for HTTP and SQL); returns the
/// summary and the run directory.
fn run_training(
    cfg: &TrainConfig,
    run: RunArgs,
    default_dir: &str,
    device: ComputeDevice,
) -> Result<(RunSummary, PathBuf)> {
    cfg.validate()?;
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let (verifier_url, _embedded) = verifier_or_embedded(&rt, run.verifier)?;
    let run_dir = run.run_dir.unwrap_or_else(|| PathBuf::from(default_dir));
    let opts = RunOptions {
        run_dir: run_dir.clone(),
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
    Ok((summary, run_dir))
}

/// How to invoke this program again: `cargo run -p trainer --` when cargo started it, else
/// the path it was started by.
fn this_program() -> String {
    if std::env::var("CARGO_PKG_NAME").is_ok_and(|n| n == "trainer") {
        "cargo run -p trainer --".into()
    } else {
        std::env::args().next().unwrap_or_else(|| "trainer".into())
    }
}

/// Draws the run's curves into `RUN_DIR/curves.png` and prints the closing lines: what the
/// run learned (held-out accuracy and token entropy, first → last), where its rollouts are and
/// the commands that show them, and the figure's path.
fn print_outcome(summary: &RunSummary, run_dir: &Path) {
    let curves = run_dir.join("curves.png");
    // The run is done and stored: a figure that cannot be drawn is reported, not fatal.
    let drawn = trainer::plot::plot_run(run_dir, &curves)
        .map_err(|e| eprintln!("warning: drawing {}: {e}", curves.display()))
        .is_ok();
    if let (Some((0, first)), Some((n, last))) = (summary.evals.first(), summary.evals.last())
        && *n > 0
    {
        let what = if summary.eval_held_out {
            "held-out accuracy"
        } else {
            "accuracy on the training problems"
        };
        println!(
            "{what} {:.3} → {:.3}  (avg@{} over {} problems, before the first RL step and after step {n})",
            first.avg_at_k, last.avg_at_k, last.k, last.problems
        );
    }
    if let (Some(first), Some(last)) = (summary.history.first(), summary.history.last()) {
        println!(
            "token entropy {:.4} → {:.4} nats  (steps {} and {})",
            first.entropy,
            last.entropy,
            first.step + 1,
            last.step + 1
        );
    }
    println!(
        "done: run {} wrote {} rollouts to {}",
        summary.run_id, summary.rollouts_written, summary.database_url
    );
    let program = this_program();
    let db = &summary.database_url;
    println!("look at them:");
    println!("  {program} audit runs --database-url {db}");
    println!(
        "  {program} audit summary --run {} --database-url {db}",
        summary.run_id
    );
    if drawn {
        println!(
            "curves (reward, held-out accuracy, entropy): {}",
            curves.display()
        );
    }
}

fn read_config(path: &PathBuf) -> Result<TrainConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    TrainConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))
}

fn main() -> Result<()> {
    // The embedded verifier's namespace sandbox starts this executable as its helper
    // (`__sandbox-helper CGROUPS`, the run's configuration on stdin) when no
    // `verifier-sandbox-helper` lies next to it.
    let mut args = std::env::args().skip(1);
    if let (Some(arg), Some(cgroups), None) = (args.next(), args.next(), args.next())
        && arg == verifier::sandbox::linux_ns::helper::HELPER_ARG
    {
        std::process::exit(verifier::sandbox::linux_ns::helper::helper_main(&cgroups));
    }
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
            seed,
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
            if let Some(s) = seed {
                cfg.seed = s;
            }
            let (summary, dir) = run_training(&cfg, run, "runs/demo", ComputeDevice::Cpu)?;
            print_outcome(&summary, &dir);
            Ok(())
        }
        Command::Train {
            config,
            method,
            steps,
            seed,
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
            if let Some(s) = seed {
                cfg.seed = s;
            }
            let (summary, dir) = run_training(&cfg, run, "runs/train", device)?;
            print_outcome(&summary, &dir);
            Ok(())
        }
        Command::EntropyProbe {
            config,
            lr,
            samples,
            max_first_order,
            coupled_blocks,
            head_top_k,
            no_source,
            micro_batch,
            out,
            verifier,
        } => {
            let cfg = read_config(&config)?;
            let micro_rows = micro_batch.unwrap_or(cfg.algo.micro_batch_size);
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            let (verifier_url, _embedded) = verifier_or_embedded(&rt, verifier)?;
            let opts = trainer::probe::ProbeOptions {
                prompts: samples,
                out_dir: out.clone(),
                verifier_url,
                measure: trainer::probe::MeasureOptions {
                    lr,
                    max_first_order,
                    micro_rows,
                    blocks: coupled_blocks,
                    head_top_k,
                    source: !no_source,
                },
            };
            let handle = rt.handle().clone();
            let measured = std::thread::scope(|s| {
                s.spawn(|| trainer::probe::run_probe(&cfg, &opts, &handle))
                    .join()
            })
            .map_err(|_| anyhow::anyhow!("probe thread panicked"))??;
            print!("{}", trainer::probe::report_markdown(&measured));
            println!(
                "\nwrote {}/report.md, points.csv and scatter.png",
                out.display()
            );
            Ok(())
        }
        Command::Compare {
            config,
            methods,
            seeds,
            seed,
            steps,
            out,
            verifier,
        } => {
            let mut cfg = match &config {
                Some(path) => read_config(path)?,
                None => TrainConfig::demo(),
            };
            if let Some(s) = steps {
                cfg.steps = s;
            }
            anyhow::ensure!(seeds >= 1, "--seeds must be at least 1");
            let first_seed = seed.unwrap_or(cfg.seed);
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            let (verifier_url, _embedded) = verifier_or_embedded(&rt, verifier)?;
            let handle = rt.handle().clone();
            let mut runs = Vec::new();
            for m in methods {
                for s in first_seed..first_seed + seeds {
                    let mut c = cfg.clone();
                    c.algo.method = m;
                    c.algo.clip = m.default_clip();
                    c.seed = s;
                    c.validate()?;
                    let dir = out.join(m.as_str()).join(format!("seed-{s}"));
                    let opts = RunOptions {
                        run_dir: dir,
                        store: StoreTarget::RunDirSqlite,
                        verifier_url: verifier_url.clone(),
                        verifier_patience: train::DEFAULT_VERIFIER_PATIENCE,
                        resume: false,
                        progress: false,
                        device: ComputeDevice::Cpu,
                    };
                    let t = std::time::Instant::now();
                    let summary =
                        std::thread::scope(|sc| sc.spawn(|| train::run(&c, &opts, &handle)).join())
                            .map_err(|_| anyhow::anyhow!("training thread panicked"))??;
                    let run = trainer::compare::SeedRun {
                        method: m,
                        seed: s,
                        summary,
                        seconds: t.elapsed().as_secs_f64(),
                    };
                    let f = trainer::compare::figures(&run);
                    println!(
                        "{} seed {s}: {} steps in {:.0} s, held-out accuracy {:.3} → {:.3}, entropy {:.4} → {:.4}",
                        m.as_str(),
                        c.steps,
                        run.seconds,
                        f.eval_start,
                        f.eval_end,
                        f.entropy_first,
                        f.entropy_last
                    );
                    runs.push(run);
                }
            }
            let md = trainer::compare::write_report(&out, &runs, cfg.steps)?;
            print!("\n{md}");
            println!(
                "\nwrote {0}/compare.md, {0}/compare.json, {0}/curves.csv and {0}/curves.png",
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
        Command::GpuCheck { command } => {
            anyhow::ensure!(
                trainer::gpu_check::run(&command)?,
                "a correctness check failed (see the table above)"
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every (sub)command, with its path of names from `trainer`.
    fn all_commands() -> Vec<(String, clap::Command)> {
        let mut out = Vec::new();
        let mut stack = vec![("trainer".to_string(), Cli::command())];
        while let Some((path, cmd)) = stack.pop() {
            for sub in cmd.get_subcommands() {
                stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
            out.push((path, cmd));
        }
        out
    }

    /// Every subcommand's `--help` ends with an example, and every example parses.
    #[test]
    fn every_help_has_an_example_that_parses() {
        Cli::command().debug_assert();
        for (path, mut cmd) in all_commands() {
            if path.ends_with(" help") {
                continue;
            }
            let help = cmd.render_long_help().to_string();
            let examples: Vec<&str> = help
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("trainer "))
                .collect();
            assert!(
                help.contains("Example") && !examples.is_empty(),
                "`{path} --help` shows no example:\n{help}"
            );
            for ex in examples {
                let words: Vec<&str> = ex.split_whitespace().collect();
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("`{path} --help` example `{ex}` does not parse: {e}");
                }
                assert!(
                    ex.starts_with(&path) || path == "trainer",
                    "`{path} --help` shows an example of another command: {ex}"
                );
            }
        }
    }

    /// Flags shared by a command group work before and after its subcommand.
    #[test]
    fn audit_flags_go_before_or_after_the_subcommand() {
        for args in [
            &["trainer", "audit", "runs", "--database-url", "sqlite://x"][..],
            &["trainer", "audit", "--database-url", "sqlite://x", "runs"][..],
            &[
                "trainer",
                "audit",
                "summary",
                "--run",
                "r",
                "--json",
                "--database-url",
                "sqlite://x",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Command::Audit { database_url, .. } = cli.command else {
                panic!("{args:?} is not audit");
            };
            assert_eq!(database_url, "sqlite://x", "{args:?}");
        }
    }
}
