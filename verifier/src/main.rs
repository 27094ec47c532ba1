//! `verifier`: serve the grading API, or grade JSON Lines offline.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use protocol::{ApiError, CodeItem, ErrorCode, MathItem};
use verifier::http::Tokens;
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};
use verifier::{AppState, Limits, app, math};

/// RLVR verifier: math grading (and code judging) for reinforcement-learning rewards.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGINT/SIGTERM, then finish in-flight requests and exit.
    Serve(ServeArgs),
    /// Grade math items from JSON Lines (one `MathItem` per line) and print one result per line.
    /// A malformed line prints `{"error": …}` in its place; the exit status is 1 if any did.
    GradeMath {
        /// Input file, or `-` for standard input.
        #[arg(default_value = "-")]
        input: String,
    },
    /// Judge code items from JSON Lines (one `CodeItem` per line, e.g. the conformance cases)
    /// and print one result per line, in input order. Needs root for the namespace sandbox.
    /// A malformed line prints `{"error": …}` in its place; the exit status is 1 if any did.
    JudgeCode {
        /// Input file, or `-` for standard input.
        #[arg(default_value = "-")]
        input: String,
        /// Items judged at once (default: the number of CPUs; each run gets one CPU).
        #[arg(long)]
        jobs: Option<usize>,
        /// The CPython WASI runtime for the wasm backend (default: `$RLVR_PYTHON_WASM`, else
        /// where `sandbox-images/fetch-python-wasm.sh` installs it).
        #[arg(long, env = "RLVR_PYTHON_WASM")]
        python_wasm: Option<PathBuf>,
    },
    /// Internal: the sandbox helper the namespace backend re-executes (not for direct use).
    #[command(name = "__sandbox-helper", hide = true)]
    SandboxHelper {
        /// JSON array of the `cgroup.procs` files to join (the run's configuration follows on
        /// standard input).
        cgroups: String,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on. The default binds loopback only; expose it deliberately.
    #[arg(long, env = "VERIFIER_LISTEN", default_value = "127.0.0.1:8470")]
    listen: SocketAddr,
    /// Largest request body in bytes (413 above it).
    #[arg(long, env = "VERIFIER_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most items per math batch (422 above it).
    #[arg(long, env = "VERIFIER_MAX_BATCH_ITEMS", default_value_t = Limits::default().max_batch_items)]
    max_batch_items: usize,
    /// CPU permits: chunks of work graded at once (default: the number of CPUs).
    #[arg(long, env = "VERIFIER_MAX_CONCURRENCY", default_value_t = Limits::default().max_concurrency)]
    max_concurrency: usize,
    /// Requests that may wait for a CPU permit; beyond it new requests get 429.
    #[arg(long, env = "VERIFIER_MAX_QUEUE", default_value_t = Limits::default().max_queue)]
    max_queue: usize,
    /// Per-request deadline in seconds; past it the client gets 504.
    #[arg(long, env = "VERIFIER_REQUEST_TIMEOUT_SECS", default_value_t = Limits::default().request_timeout.as_secs())]
    request_timeout_secs: u64,
    /// Most items per code batch (422 above it).
    #[arg(long, env = "VERIFIER_MAX_CODE_ITEMS", default_value_t = Limits::default().max_code_items)]
    max_code_items: usize,
    /// Largest program in bytes (422 above it).
    #[arg(long, env = "VERIFIER_MAX_CODE_BYTES", default_value_t = Limits::default().max_code_bytes)]
    max_code_bytes: usize,
    /// Most tests per code item (422 above it).
    #[arg(long, env = "VERIFIER_MAX_TESTS_PER_ITEM", default_value_t = Limits::default().max_tests_per_item)]
    max_tests_per_item: usize,
    /// Total test input (stdin) of one request in bytes (422 above it).
    #[arg(long, env = "VERIFIER_MAX_STDIN_BYTES", default_value_t = Limits::default().max_stdin_bytes)]
    max_stdin_bytes: usize,
    /// Disable code judging (`/v1/code/judge` and `/run_code` answer 503); math only.
    #[arg(long, env = "VERIFIER_NO_CODE")]
    no_code: bool,
    /// Root-only directory for sandbox run files. Default `$TMPDIR/rlvr-verifier`.
    #[arg(long, env = "VERIFIER_SANDBOX_DIR")]
    sandbox_dir: Option<PathBuf>,
    /// Language table replacing the built-in one (format: sandbox-images/languages.toml);
    /// read and validated at start, unknown keys refused.
    #[arg(long, env = "VERIFIER_LANGUAGES")]
    languages: Option<PathBuf>,
    /// The CPython WASI runtime for the wasm backend (default: where
    /// `sandbox-images/fetch-python-wasm.sh` installs it). Its SHA-256 is checked at start.
    #[arg(long, env = "RLVR_PYTHON_WASM")]
    python_wasm: Option<PathBuf>,
    /// Host uid (and gid) that sandboxed programs run as; never 0.
    #[arg(long, env = "VERIFIER_SANDBOX_UID", default_value_t = 65534)]
    sandbox_uid: u32,
    /// File of bearer tokens (one per line, `#` comments) required on `/v1/*`; without it the
    /// API is open. Tokens travel in clear over plain HTTP: put TLS in front off-host.
    #[arg(long, env = "VERIFIER_AUTH_TOKEN_FILE")]
    auth_token_file: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::GradeMath { input } => grade_math_lines(&input),
        Command::JudgeCode {
            input,
            jobs,
            python_wasm,
        } => judge_code_lines(&input, jobs, python_wasm),
        Command::SandboxHelper { cgroups } => {
            std::process::exit(verifier::sandbox::linux_ns::helper::helper_main(&cgroups))
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let limits = Limits {
            max_body_bytes: args.max_body_bytes,
            max_batch_items: args.max_batch_items,
            max_concurrency: args.max_concurrency,
            max_queue: args.max_queue,
            request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
            max_code_items: args.max_code_items,
            max_code_bytes: args.max_code_bytes,
            max_tests_per_item: args.max_tests_per_item,
            max_stdin_bytes: args.max_stdin_bytes,
        };
        let tokens = match &args.auth_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let t = Tokens::parse(&text);
                anyhow::ensure!(!t.is_empty(), "{} holds no token", path.display());
                Some(t)
            }
            None => None,
        };
        let mut state = AppState::new(limits, tokens);
        if !args.no_code {
            let mut cfg = NsConfig {
                uid: args.sandbox_uid,
                gid: args.sandbox_uid,
                ..NsConfig::default()
            };
            if let Some(dir) = &args.sandbox_dir {
                cfg.work_dir.clone_from(dir);
            }
            let mut judge = load_judge(cfg, args.python_wasm.clone());
            if let Some(why) = judge.wasm_unavailable_reason() {
                tracing::warn!(reason = why, "wasm sandbox unavailable: Python runs on ns");
            }
            if let Some(path) = &args.languages {
                judge = judge.with_languages(verifier::judge::language::Languages::load(path)?);
            }
            let (ready, missing): (Vec<_>, Vec<_>) = judge
                .languages()
                .all()
                .iter()
                .partition(|l| l.ready_binds().is_ok());
            tracing::info!(
                ready = %ready.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(","),
                not_offered = %missing.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(","),
                "languages"
            );
            match judge.unavailable_reason() {
                None => tracing::info!("code judging ready (namespace sandbox)"),
                Some(why) => tracing::warn!(
                    reason = why,
                    "code judging unavailable: items will be sandbox_error"
                ),
            }
            state = state.with_judge(judge);
        }
        let lifecycle = state.lifecycle.clone();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(addr = %listener.local_addr()?, "verifier listening");
        let shutdown = async move {
            shutdown_signal().await;
            tracing::info!("draining: finishing in-flight requests");
            lifecycle.start_draining();
        };
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown)
            .await?;
        tracing::info!("verifier stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

fn open_input(input: &str) -> Result<Box<dyn BufRead>> {
    Ok(if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let path = PathBuf::from(input);
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?,
        ))
    })
}

/// The judge with both backends (the wasm one where this build has it).
fn load_judge(ns: NsConfig, python_wasm: Option<PathBuf>) -> Judge {
    let judge = Judge::new(NsSandbox::new(ns));
    #[cfg(feature = "wasm")]
    let judge = {
        use verifier::sandbox::wasm::{WasmConfig, WasmSandbox};
        let mut cfg = WasmConfig::default();
        if let Some(p) = python_wasm {
            if std::env::var_os("RLVR_WASM_CACHE_DIR").is_none() {
                cfg.cache_dir = p.parent().map_or_else(std::env::temp_dir, PathBuf::from);
            }
            cfg.python_wasm = p;
        }
        judge.with_wasm(WasmSandbox::new(&cfg))
    };
    #[cfg(not(feature = "wasm"))]
    let _ = python_wasm;
    judge
}

fn judge_code_lines(input: &str, jobs: Option<usize>, python_wasm: Option<PathBuf>) -> Result<()> {
    let mut lines = Vec::new();
    for (n, line) in open_input(input)?.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        if !line.trim().is_empty() {
            lines.push((n + 1, line));
        }
    }
    let judge = load_judge(NsConfig::default(), python_wasm);
    if let Some(why) = judge.unavailable_reason() {
        eprintln!("warning: namespace sandbox unavailable: {why}");
    }
    if let Some(why) = judge.wasm_unavailable_reason() {
        eprintln!("warning: wasm sandbox unavailable: {why}");
    }
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<(bool, String)>>> =
        lines.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(lines.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((n, line)) = lines.get(i) else { break };
                    let out = judge_code_line(&judge, *n, line);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(out);
                    }
                }
            });
        }
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for slot in results {
        let (ok, json) = slot
            .into_inner()
            .map_err(|_| anyhow::anyhow!("a judging thread panicked"))?
            .context("an item was not judged")?;
        failed += usize::from(!ok);
        writeln!(out, "{json}")?;
    }
    out.flush()?;
    if failed > 0 {
        anyhow::bail!("{failed} malformed input line(s)");
    }
    Ok(())
}

/// Judges one input line: `(well-formed, output JSON)`.
fn judge_code_line(judge: &Judge, n: usize, line: &str) -> (bool, String) {
    let err = |msg: String| {
        let body = ApiError::new(ErrorCode::Unprocessable, format!("line {n}: {msg}"));
        (false, serde_json::to_string(&body).unwrap_or_default())
    };
    match serde_json::from_str::<CodeItem>(line) {
        Err(e) => err(e.to_string()),
        Ok(item) => match item.validate() {
            Err(msg) => err(msg),
            Ok(()) => (
                true,
                serde_json::to_string(&judge.judge(&item)).unwrap_or_default(),
            ),
        },
    }
}

fn grade_math_lines(input: &str) -> Result<()> {
    let reader = open_input(input)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let json = match serde_json::from_str::<MathItem>(&line) {
            Ok(item) if item.options.as_ref().is_some_and(|o| o.validate().is_err()) => {
                failed += 1;
                let msg = item
                    .options
                    .as_ref()
                    .and_then(|o| o.validate().err())
                    .unwrap_or_default();
                serde_json::to_string(&ApiError::new(
                    ErrorCode::Unprocessable,
                    format!("line {}: {msg}", n + 1),
                ))?
            }
            Ok(item) => serde_json::to_string(&math::grade(&item))?,
            Err(e) => {
                failed += 1;
                serde_json::to_string(&ApiError::new(
                    ErrorCode::Unprocessable,
                    format!("line {}: {e}", n + 1),
                ))?
            }
        };
        writeln!(out, "{json}")?;
    }
    out.flush()?;
    if failed > 0 {
        anyhow::bail!("{failed} malformed input line(s)");
    }
    Ok(())
}
