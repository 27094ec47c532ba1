//! `verifier`: serve the grading API, or grade JSON Lines offline.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use protocol::{ApiError, ErrorCode, MathItem};
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::GradeMath { input } => grade_math_lines(&input),
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
        let state = AppState {
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                max_batch_items: args.max_batch_items,
            },
        };
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(addr = %listener.local_addr()?, "verifier listening");
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown_signal())
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

fn grade_math_lines(input: &str) -> Result<()> {
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let path = PathBuf::from(input);
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?,
        ))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let json = match serde_json::from_str::<MathItem>(&line) {
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
