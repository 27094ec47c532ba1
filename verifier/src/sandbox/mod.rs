//! Running untrusted programs: one [`Sandbox`] trait and two backends, Linux namespaces
//! ([`linux_ns`]) and wasmtime running CPython for WASI (`wasm`, feature `wasm`).
//!
//! A backend runs one process tree ([`RunSpec`]) under [`RunLimits`] and reports what it did
//! ([`RunOutcome`]). Judging (what the outcome means for a test) lives in [`crate::judge`];
//! a backend never sees expected outputs.

pub mod linux_ns;
#[cfg(feature = "wasm")]
pub mod wasm;

use std::path::PathBuf;
use std::time::Duration;

use protocol::Backend;

pub use linux_ns::{Fetched, NsConfig, NsSandbox};

/// Why a run could not happen (never "the program failed": that is a [`RunOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The backend is not usable on this host (no cgroups, not root, …).
    #[error("sandbox unavailable: {0}")]
    Unavailable(String),
    /// Setting up the box failed (mounts, cgroups, namespaces).
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    /// The program could not be started inside the box.
    #[error("could not start the program: {0}")]
    Exec(String),
    /// Host-side I/O failed.
    #[error("sandbox I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Resource limits of one run. Every limit covers the whole process tree unless noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock limit; the tree is killed at it.
    pub wall: Duration,
    /// CPU-time limit per process (`RLIMIT_CPU`, rounded up to whole seconds); the cgroup
    /// also caps the tree at one CPU, so CPU time cannot outrun wall time.
    pub cpu: Duration,
    /// Memory of the tree (cgroup, swap 0), bytes.
    pub memory_bytes: u64,
    /// Processes and threads of the tree (cgroup `pids.max`). Mandatory: `pid_max` is small.
    pub pids: u32,
    /// Standard output kept and allowed, bytes; one byte more stops the run.
    pub stdout_bytes: usize,
    /// Standard error kept and allowed, bytes; one byte more stops the run.
    pub stderr_bytes: usize,
    /// Size of the private writable `/tmp` (tmpfs), bytes.
    pub scratch_bytes: u64,
    /// Inodes of the private `/tmp`.
    pub scratch_inodes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`), bytes.
    pub file_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Stack per process (`RLIMIT_STACK`), bytes.
    pub stack_bytes: u64,
}

impl RunLimits {
    /// Limits for a test run: `wall`, `memory_bytes`, and the defaults of the design notes
    /// (64 processes, 8 MiB stdout, 1 MiB stderr, 64 MiB scratch with 20 000 inodes, 64 MiB
    /// files, 256 open files, 64 MiB stack).
    pub fn for_run(wall: Duration, memory_bytes: u64) -> Self {
        RunLimits {
            wall,
            cpu: wall,
            memory_bytes,
            pids: 64,
            stdout_bytes: 8 << 20,
            stderr_bytes: 1 << 20,
            scratch_bytes: 64 << 20,
            scratch_inodes: 20_000,
            file_bytes: 64 << 20,
            open_files: 256,
            stack_bytes: 64 << 20,
        }
    }

    /// Limits for a compiler: 30 s, 2 GiB, 256 processes/threads, 256 MiB scratch, 64 KiB of
    /// output each way.
    pub fn for_compile() -> Self {
        RunLimits {
            wall: Duration::from_secs(30),
            cpu: Duration::from_secs(60),
            memory_bytes: 2 << 30,
            pids: 256,
            stdout_bytes: 64 << 10,
            stderr_bytes: 64 << 10,
            scratch_bytes: 256 << 20,
            scratch_inodes: 20_000,
            file_bytes: 256 << 20,
            open_files: 256,
            stack_bytes: 64 << 20,
        }
    }
}

/// A host directory made visible inside the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Host path (a directory). It must not be writable by the sandbox user unless
    /// `writable` is meant.
    pub host: PathBuf,
    /// Absolute path inside the box.
    pub inside: String,
    /// Writable bind (compile output); read-only otherwise.
    pub writable: bool,
}

/// One run: a program (already present through `binds`), its input and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// Program and arguments; `argv[0]` is an absolute path inside the box.
    pub argv: Vec<String>,
    /// Environment of the program (nothing is inherited from the verifier).
    pub env: Vec<(String, String)>,
    /// Directories bound into the box.
    pub binds: Vec<Bind>,
    /// Standard input.
    pub stdin: Vec<u8>,
    /// Limits.
    pub limits: RunLimits,
    /// Namespace backend: a host directory (the verifier's own, never sandbox-writable)
    /// whose contents are copied into `/box`, the program's writable working directory.
    /// `None`: `/box` starts empty.
    pub workdir: Option<PathBuf>,
    /// Namespace backend: files to read back after the run (relative to `/box`, or
    /// absolute inside the box), see [`NsSandbox::run_fetching`].
    pub fetch: Vec<String>,
}

/// How the program's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// The verifier killed the tree (time or output limit) before it ended.
    Killed,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Main process status.
    pub exit: Exit,
    /// The wall-clock limit was reached.
    pub timed_out: bool,
    /// A process of the tree was killed for memory (or the allocator was refused memory).
    pub oom_killed: bool,
    /// A process or thread was refused because the tree was at its `pids` cap.
    pub pids_limited: bool,
    /// Standard output (at most the cap).
    pub stdout: Vec<u8>,
    /// Standard output went past its cap.
    pub stdout_truncated: bool,
    /// Standard error (at most the cap).
    pub stderr: Vec<u8>,
    /// Standard error went past its cap.
    pub stderr_truncated: bool,
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU time of the tree, where measured.
    pub cpu: Option<Duration>,
    /// Peak memory of the tree in bytes, where measured.
    pub memory_peak: Option<u64>,
}

/// A backend.
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// Which backend this is.
    fn kind(&self) -> Backend;
    /// Runs `spec` to completion (or its limits) and reports what happened. Blocking: call it
    /// off the async threads.
    fn run(&self, spec: &RunSpec) -> Result<RunOutcome, SandboxError>;
    /// Runs a checked test (the judge's `check.py`): `spec.argv` is `[python, FLAGS…, SCRIPT,
    /// "fork"]`, which on Linux forks the runner of the submission from the trusted checker
    /// inside one box. A backend without processes runs `SCRIPT checker` and `SCRIPT runner`
    /// as two linked programs instead. Only the checker's `R ` report lines are `stdout`.
    fn run_checked(&self, spec: &RunSpec) -> Result<RunOutcome, SandboxError> {
        self.run(spec)
    }
}
