//! Checked tests on wasm: the trusted checker and the runner of the submission (the two roles
//! of the judge's `check.py`) as two instances in one store each, linked by the host line by
//! line. Neither instance can see the other's memory; the runner's output reaches the checker
//! only as reply lines, and only the checker's `R ` lines reach the report.
//!
//! Limits: the wall clock covers both instances together; each instance gets the memory limit
//! on its own; a reply line may be as large as the checker's memory allows, a request line at
//! most the stdout cap.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use wasmtime_wasi::cli::AsyncStdinStream;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::channel::{self, ChanReader, ChanWriter};
use super::{Limiter, WasmSandbox, new_store, run_start, setup};
use crate::sandbox::{Exit, RunOutcome, RunSpec, SandboxError};

/// The WASI context of one role: `python FLAGS… SCRIPT ROLE`, the spec's environment and binds
/// (read-only preopens).
fn context(
    spec: &RunSpec,
    role: &str,
    stdin: ChanReader,
    stdout: ChanWriter,
    stderr: &MemoryOutputPipe,
    seed: u128,
) -> Result<WasiCtxBuilder, SandboxError> {
    let mut b = WasiCtxBuilder::new();
    let mut args = vec!["python".to_owned()];
    args.extend(
        spec.argv
            .iter()
            .skip(1)
            .take(spec.argv.len().saturating_sub(2))
            .cloned(),
    );
    args.push(role.to_owned());
    b.args(&args);
    for (k, v) in &spec.env {
        b.env(k, v);
    }
    b.stdin(AsyncStdinStream::new(stdin));
    b.stdout(stdout);
    b.stderr(stderr.clone());
    b.insecure_random_seed(seed);
    for bind in &spec.binds {
        b.preopened_dir(&bind.host, &bind.inside, FsPerms::ReadOnly)
            .map_err(setup)?;
    }
    Ok(b)
}

/// How a guest ended: its exit, and a trap message for stderr.
fn exit_of(r: &wasmtime::Result<()>) -> (Exit, Option<String>) {
    match r {
        Ok(()) => (Exit::Code(0), None),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(code) => (Exit::Code(code.0), None),
            None => (Exit::Signal(6), Some(format!("\nwasm trap: {e}\n"))),
        },
    }
}

/// Splits complete lines off `buf`.
fn lines(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(i) = buf.iter().position(|&b| b == b'\n') {
        let rest = buf.split_off(i + 1);
        out.push(std::mem::replace(buf, rest));
    }
    out
}

/// The host's view of the checker's stdout: request lines go to the runner, report lines are
/// kept.
struct Relay {
    pending: Vec<u8>,
    report: Vec<u8>,
    line_cap: usize,
    over: bool,
}

impl Relay {
    fn take(&mut self, chunk: &[u8], runner: Option<&UnboundedSender<Bytes>>) {
        self.pending.extend_from_slice(chunk);
        for line in lines(&mut self.pending) {
            if let Some(req) = line.strip_prefix(b"C ") {
                if let Some(tx) = runner {
                    let _ = tx.send(Bytes::copy_from_slice(req));
                }
            } else if line.starts_with(b"R ") {
                self.report.extend_from_slice(&line);
            }
        }
        if self.pending.len() > self.line_cap {
            self.over = true;
            self.pending.clear();
        }
    }
}

/// What the linked instances did before the wall clock: how each ended (the runner may not
/// have), and the relay.
type Linked = (wasmtime::Result<()>, Option<wasmtime::Result<()>>, Relay);

impl WasmSandbox {
    /// Runs a checked test (see [`crate::sandbox::Sandbox::run_checked`]): `spec.argv` is
    /// `[python, FLAGS…, SCRIPT, "fork"]`; the checker instance runs `SCRIPT checker` with
    /// `spec.stdin` as its first line, the runner instance `SCRIPT runner`.
    pub(super) fn run_linked(&self, spec: &RunSpec) -> Result<RunOutcome, SandboxError> {
        let limits = spec.limits;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(setup)?;
        let seed = u128::from(self.runs.fetch_add(1, Ordering::Relaxed));
        let (c_err, r_err) = (
            MemoryOutputPipe::new(limits.stderr_bytes),
            MemoryOutputPipe::new(limits.stderr_bytes),
        );
        let start = Instant::now();
        let (run, limiters): (Result<Linked, _>, [Limiter; 2]) = rt.block_on(async {
            let (c_in_tx, c_in) = channel::input();
            let (r_in_tx, r_in) = channel::input();
            let (c_out_w, mut c_out) = channel::output();
            let (r_out_w, mut r_out) = channel::output();
            let mut first = spec.stdin.clone();
            first.push(b'\n');
            let _ = c_in_tx.send(Bytes::from(first));
            let mut cb = context(spec, "checker", c_in, c_out_w, &c_err, seed)?;
            let mut rb = context(spec, "runner", r_in, r_out_w, &r_err, seed ^ (1 << 64))?;
            let (mut c_store, c_lim) = new_store(&self.engine, &mut cb, limits.memory_bytes);
            let (mut r_store, r_lim) = new_store(&self.engine, &mut rb, limits.memory_bytes);
            let pre = &self.pre;
            let checker = run_start(pre, &mut c_store);
            // The runner's store (and with it its stdout) goes as soon as it ends, so the
            // checker then reads the end of its input.
            let runner = async move {
                let r = run_start(pre, &mut r_store).await;
                drop(r_store);
                r
            };
            let linked = async {
                tokio::pin!(checker, runner);
                let (mut c_in_tx, mut r_in_tx) = (Some(c_in_tx), Some(r_in_tx));
                let (mut runner_end, mut r_open) = (None, true);
                let mut relay = Relay {
                    pending: Vec::new(),
                    report: Vec::new(),
                    line_cap: limits.stdout_bytes,
                    over: false,
                };
                let checker_end = loop {
                    tokio::select! {
                        r = &mut checker => break r,
                        r = &mut runner, if runner_end.is_none() => runner_end = Some(r),
                        Some(chunk) = c_out.recv() => relay.take(&chunk, r_in_tx.as_ref()),
                        chunk = r_out.recv(), if r_open => match chunk {
                            Some(c) => {
                                if let Some(tx) = c_in_tx.as_ref() {
                                    let _ = tx.send(c);
                                }
                            }
                            None => {
                                r_open = false;
                                c_in_tx = None;
                            }
                        },
                    }
                };
                // The checker's last writes are already in the channel.
                while let Ok(chunk) = c_out.try_recv() {
                    relay.take(&chunk, None);
                }
                r_in_tx.take();
                (checker_end, runner_end, relay)
            };
            let run = tokio::time::timeout(limits.wall, linked).await;
            Ok::<_, SandboxError>((run, [c_lim, r_lim]))
        })?;
        let wall = start.elapsed();
        let mut stderr = r_err.contents().to_vec();
        stderr.extend_from_slice(&c_err.contents());
        let mut outcome = RunOutcome {
            exit: Exit::Killed,
            timed_out: true,
            oom_killed: limiters.iter().any(Limiter::denied),
            pids_limited: false,
            stdout: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: r_err.contents().len() >= limits.stderr_bytes
                || c_err.contents().len() >= limits.stderr_bytes,
            stderr,
            wall,
            cpu: None,
            memory_peak: limiters.iter().map(|l| l.peak() as u64).max(),
        };
        let Ok((checker_end, runner_end, relay)) = run else {
            return Ok(outcome);
        };
        let (exit, trap) = exit_of(&checker_end);
        outcome.exit = exit;
        outcome.timed_out = false;
        outcome.stdout_truncated = relay.over;
        if let Some(t) = trap {
            outcome.stderr.extend_from_slice(t.as_bytes());
        }
        // The checker cannot see how the runner instance ended: the host says it.
        let ended = match &runner_end {
            Some(r) => match exit_of(r) {
                (Exit::Code(c), _) => format!("R exit {c}\n"),
                (_, trap) => {
                    if let Some(t) = trap {
                        outcome.stderr.extend_from_slice(t.as_bytes());
                    }
                    "R signal 6\n".to_owned()
                }
            },
            None => "R exit 0\n".to_owned(),
        };
        outcome.stdout = String::from_utf8_lossy(&relay.report)
            .lines()
            .map(|l| {
                if l.trim_end() == "R ended" {
                    ended.clone()
                } else {
                    format!("{l}\n")
                }
            })
            .collect::<String>()
            .into_bytes();
        Ok(outcome)
    }
}
