//! The Linux-namespace backend: every run gets its own cgroup ([`cgroup`]), a helper process
//! that builds the box ([`helper`], [`mounts`]) and a seccomp policy ([`seccomp`]); this
//! module supervises it from the verifier: output caps, the wall clock, the kill, the
//! accounting.
//!
//! Security caveats: the verifier must run as root (or with `CAP_SYS_ADMIN`, `CAP_SETUID`,
//! `CAP_SETGID` and write access to a cgroup subtree); programs run as an unprivileged host
//! uid (default 65534) inside user, pid, mount, net, ipc, uts and cgroup namespaces. The
//! kernel remains the attack surface; the seccomp filter narrows it.

mod cgroup;
pub mod helper;
mod mounts;
mod netns;
mod seccomp;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use protocol::Backend;

pub use cgroup::CgroupRoot;
pub use helper::Fetched;
use helper::{BindCfg, HELPER_ARG, HelperConfig, HelperStatus};

/// Largest file `fetch` returns, bytes (16 MiB).
pub const FETCH_FILE_BYTES: u64 = 16 << 20;
/// All files one run's `fetch` returns, bytes (32 MiB).
pub const FETCH_TOTAL_BYTES: u64 = 32 << 20;

use super::{Exit, RunOutcome, RunSpec, Sandbox, SandboxError};

/// Configuration of the namespace backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsConfig {
    /// The helper executable, started as `HELPER __sandbox-helper CGROUPS` ahead of every run.
    /// Default: `verifier-sandbox-helper` next to this process's executable if it exists (a
    /// small binary, about 1 ms faster to start), else this executable itself (`verifier`
    /// has the same hidden subcommand).
    pub helper: PathBuf,
    /// Root-only working directory for run files (stdin, status, sources, binaries).
    /// Default `$TMPDIR/rlvr-verifier`.
    pub work_dir: PathBuf,
    /// Host uid programs run as. Default 65534 (`nobody`). Never 0.
    pub uid: u32,
    /// Host gid programs run as. Default 65534 (`nogroup`).
    pub gid: u32,
}

impl Default for NsConfig {
    fn default() -> Self {
        NsConfig {
            helper: default_helper(),
            work_dir: std::env::temp_dir().join("rlvr-verifier"),
            uid: 65534,
            gid: 65534,
        }
    }
}

fn default_helper() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let small = me.with_file_name("verifier-sandbox-helper");
    if small.is_file() { small } else { me }
}

/// The namespace backend.
#[derive(Debug)]
pub struct NsSandbox {
    cfg: NsConfig,
    cgroups: CgroupRoot,
    mountpoint: PathBuf,
    runs: AtomicU64,
    netns: Arc<netns::NetnsPool>,
    spares: Arc<SparePool>,
    refill: Mutex<Option<mpsc::Sender<()>>>,
    refiller: Mutex<Option<std::thread::JoinHandle<()>>>,
    remover: Arc<cgroup::Remover>,
}

impl Drop for NsSandbox {
    fn drop(&mut self) {
        drop(lock(&self.refill).take());
        if let Some(t) = lock(&self.refiller).take() {
            let _ = t.join();
        }
        for mut spare in std::mem::take(&mut *lock(&self.spares.idle)) {
            let _ = spare.child.kill();
            let _ = spare.child.wait();
        }
        self.remover.finish();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A helper started ahead of its run: already in its own fresh cgroup, waiting for its
/// configuration on standard input.
#[derive(Debug)]
struct Spare {
    child: std::process::Child,
    group: cgroup::RunCgroup,
}

/// Spares, kept topped up by a background thread so that creating a cgroup, starting the
/// helper and moving it into the cgroup happen off the runs' critical path. Moving a process
/// into a cgroup right after the host's cgroups were idle waits for an RCU grace period
/// (about 15 ms here), which a run would otherwise pay whenever runs are more than ~20 ms
/// apart.
#[derive(Debug)]
struct SparePool {
    idle: Mutex<Vec<Spare>>,
    target: usize,
    helper: PathBuf,
    cgroups: CgroupRoot,
    remover: Arc<cgroup::Remover>,
}

impl SparePool {
    fn spawn(&self) -> Result<Spare, SandboxError> {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{n}", std::process::id());
        let placeholder = super::RunLimits::for_run(Duration::from_secs(10), 1 << 30);
        let group = self.cgroups.create(&name, &placeholder, &self.remover)?;
        let procs = serde_json::to_string(&group.procs_files())
            .map_err(|e| SandboxError::Setup(format!("helper configuration: {e}")))?;
        let child = Command::new(&self.helper)
            .arg(HELPER_ARG)
            .arg(procs)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SandboxError::Setup(format!("spawning the helper: {e}")))?;
        Ok(Spare { child, group })
    }

    fn refill(&self) {
        while lock(&self.idle).len() < self.target {
            match self.spawn() {
                Ok(s) => lock(&self.idle).push(s),
                Err(_) => break,
            }
        }
    }
}

/// Process-wide counter that keeps run names unique even across several sandboxes.
static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

impl NsSandbox {
    /// Checks the host (root, cgroups, the helper binary) and prepares the working directory.
    pub fn new(cfg: NsConfig) -> Result<NsSandbox, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(SandboxError::Unavailable(
                "the namespace backend needs root (cgroups, mounts, uid switch)".into(),
            ));
        }
        if cfg.uid == 0 || cfg.gid == 0 {
            return Err(SandboxError::Unavailable(
                "programs must not run as uid/gid 0".into(),
            ));
        }
        if !cfg.helper.is_file() {
            return Err(SandboxError::Unavailable(format!(
                "helper executable {} not found",
                cfg.helper.display()
            )));
        }
        let cgroups = CgroupRoot::detect()?;
        cgroups.sweep_stale();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.work_dir)?;
        fs::set_permissions(&cfg.work_dir, fs::Permissions::from_mode(0o700))?;
        let mountpoint = cfg.work_dir.join("mnt");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&mountpoint)?;
        let remover = Arc::new(cgroup::Remover::new());
        let spares = Arc::new(SparePool {
            idle: Mutex::new(Vec::new()),
            target: std::thread::available_parallelism()
                .map_or(2, usize::from)
                .max(2),
            helper: cfg.helper.clone(),
            cgroups: cgroups.clone(),
            remover: Arc::clone(&remover),
        });
        let (tx, rx) = mpsc::channel::<()>();
        let pool = Arc::clone(&spares);
        let netns = Arc::new(netns::NetnsPool::default());
        let nets = Arc::clone(&netns);
        let refiller = std::thread::Builder::new()
            .name("sandbox-spares".into())
            .spawn(move || {
                pool.refill();
                nets.top_up();
                while rx.recv().is_ok() {
                    pool.refill();
                    nets.top_up();
                }
            })
            .ok();
        Ok(NsSandbox {
            cfg,
            cgroups,
            mountpoint,
            runs: AtomicU64::new(0),
            netns,
            refill: Mutex::new(refiller.as_ref().map(|_| tx)),
            refiller: Mutex::new(refiller),
            spares,
            remover,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NsConfig {
        &self.cfg
    }

    /// The cgroup layout in use.
    pub fn cgroups(&self) -> &CgroupRoot {
        &self.cgroups
    }

    /// Runs started so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// A spare helper (or a new one when none is ready), and a nudge to make more.
    fn take_spare(&self) -> Result<Spare, SandboxError> {
        let spare = lock(&self.spares.idle).pop();
        if let Some(tx) = lock(&self.refill).as_ref() {
            let _ = tx.send(());
        }
        match spare {
            Some(s) => Ok(s),
            None => self.spares.spawn(),
        }
    }
}

/// What the supervisor's threads report.
enum Event {
    Exited,
    OutputCap,
}

/// Reads a stream up to `cap` bytes; past it, reports the cap once and keeps draining (the
/// tree is being killed) so the writers never block on a full pipe.
fn drain(mut r: impl Read, cap: usize, tx: mpsc::Sender<Event>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut over = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if over {
                    continue;
                }
                let room = cap - kept.len();
                if n > room {
                    kept.extend_from_slice(&buf[..room]);
                    over = true;
                    let _ = tx.send(Event::OutputCap);
                } else {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (kept, over)
}

impl Sandbox for NsSandbox {
    fn kind(&self) -> Backend {
        Backend::Ns
    }

    fn run(&self, spec: &RunSpec) -> Result<RunOutcome, SandboxError> {
        self.run_fetching(spec).map(|(out, _)| out)
    }
}

impl NsSandbox {
    /// Runs `spec` like [`Sandbox::run`] and also returns the files `spec.fetch` named, read
    /// after the run with the program's own rights (regular files only, at most
    /// [`FETCH_FILE_BYTES`] each and [`FETCH_TOTAL_BYTES`] in all; the others are listed in
    /// [`Fetched::skipped`]).
    pub fn run_fetching(&self, spec: &RunSpec) -> Result<(RunOutcome, Fetched), SandboxError> {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
        let run_dir = self
            .cfg
            .work_dir
            .join(format!("run-{}-{n}", std::process::id()));
        fs::DirBuilder::new().mode(0o700).create(&run_dir)?;
        let _cleanup = RemoveDir(run_dir.clone());
        let stdin_file = run_dir.join("stdin");
        fs::write(&stdin_file, &spec.stdin)?;
        let status_file = run_dir.join("status");
        let fetch_file = run_dir.join("fetched");
        let limits = spec.limits;
        let Spare { mut child, group } = self.take_spare()?;
        group.apply_limits(&limits)?;
        let net = self.netns.acquire()?;
        let cfg = HelperConfig {
            netns: net.path(),
            mountpoint: self.mountpoint.clone(),
            status_file: status_file.clone(),
            stdin_file,
            binds: spec
                .binds
                .iter()
                .map(|b| BindCfg {
                    host: b.host.clone(),
                    inside: b.inside.clone(),
                    writable: b.writable,
                })
                .collect(),
            argv: spec.argv.clone(),
            env: spec.env.clone(),
            uid: self.cfg.uid,
            gid: self.cfg.gid,
            scratch_bytes: limits.scratch_bytes,
            scratch_inodes: limits.scratch_inodes,
            file_bytes: limits.file_bytes,
            open_files: limits.open_files,
            stack_bytes: limits.stack_bytes,
            cpu_secs: limits.cpu.as_secs_f64().ceil().max(1.0) as u64,
            workdir: spec.workdir.clone(),
            fetch: spec.fetch.clone(),
            fetch_file: Some(fetch_file.clone()),
            fetch_file_bytes: FETCH_FILE_BYTES,
            fetch_total_bytes: FETCH_TOTAL_BYTES,
        };
        let json = serde_json::to_string(&cfg)
            .map_err(|e| SandboxError::Setup(format!("helper configuration: {e}")))?;
        let helper_pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let stop_helper = || {
            let _ = nix::sys::signal::kill(helper_pid, nix::sys::signal::Signal::SIGKILL);
        };
        let sent = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("helper stdin missing"))
            .and_then(|mut w| w.write_all(format!("{json}\n").as_bytes()));
        if let Err(e) = sent {
            stop_helper();
            let _ = child.wait();
            return Err(SandboxError::Setup(format!(
                "handing the run to its helper: {e}"
            )));
        }
        let start = Instant::now();
        let (tx, rx) = mpsc::channel();
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let (Some(out), Some(err)) = (out, err) else {
            return Err(SandboxError::Setup("helper pipes missing".into()));
        };
        let (out_tx, err_tx) = (tx.clone(), tx.clone());
        let (cap_out, cap_err) = (limits.stdout_bytes, limits.stderr_bytes);
        let out_thread = std::thread::spawn(move || drain(out, cap_out, out_tx));
        let err_thread = std::thread::spawn(move || drain(err, cap_err, err_tx));
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(Event::Exited);
            status
        });
        let deadline = start + limits.wall;
        let mut timed_out = false;
        let mut output_cap = false;
        loop {
            let now = Instant::now();
            let wait = deadline.saturating_duration_since(now);
            match rx.recv_timeout(wait) {
                Ok(Event::Exited) => break,
                Ok(Event::OutputCap) => {
                    output_cap = true;
                    stop_helper();
                    group.kill_all()?;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !timed_out && !output_cap {
                        timed_out = true;
                    }
                    stop_helper();
                    group.kill_all()?;
                    // The helper is in the group: its exit follows at once.
                    match rx.recv_timeout(Duration::from_secs(5)) {
                        Ok(Event::Exited) => break,
                        Ok(Event::OutputCap) => {}
                        Err(_) => {
                            return Err(SandboxError::Setup(
                                "the helper did not exit after the kill".into(),
                            ));
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let wall = start.elapsed();
        // Anything still alive (a daemon that escaped the pid namespace cannot exist, but
        // the helper may be mid-exit) dies now, which also closes the output pipes.
        group.kill_all()?;
        // Every process of the run is dead: its network namespace may serve the next run.
        net.release();
        let helper_status = waiter
            .join()
            .map_err(|_| SandboxError::Setup("helper waiter panicked".into()))??;
        let (stdout, stdout_truncated) = out_thread
            .join()
            .map_err(|_| SandboxError::Setup("stdout reader panicked".into()))?;
        let (stderr, stderr_truncated) = err_thread
            .join()
            .map_err(|_| SandboxError::Setup("stderr reader panicked".into()))?;
        let oom_killed = group.oom_kills() > 0;
        let pids_limited = group.pids_refused() > 0;
        let cpu = group.cpu_time();
        let memory_peak = group.memory_peak();
        drop(group);
        let status: Option<HelperStatus> = fs::read(&status_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let exit = match status {
            Some(HelperStatus::Exited(c)) => Exit::Code(c),
            Some(HelperStatus::Signaled(s)) => Exit::Signal(s),
            Some(HelperStatus::SetupFailed(m)) => return Err(SandboxError::Setup(m)),
            Some(HelperStatus::ExecFailed(m)) => return Err(SandboxError::Exec(m)),
            None if timed_out || output_cap => Exit::Killed,
            None => {
                return Err(SandboxError::Setup(format!(
                    "the helper ended ({helper_status}) without a status; stderr: {}",
                    String::from_utf8_lossy(&stderr[..stderr.len().min(512)])
                )));
            }
        };
        let fetched = if spec.fetch.is_empty() {
            Fetched::default()
        } else {
            read_fetched(&fetch_file, &spec.fetch)
        };
        Ok((
            RunOutcome {
                exit,
                timed_out,
                oom_killed,
                pids_limited,
                stdout,
                stdout_truncated,
                stderr,
                stderr_truncated,
                wall,
                cpu,
                memory_peak,
            },
            fetched,
        ))
    }
}

/// The fetch file the box wrote (bounded read), or every name skipped with the reason.
fn read_fetched(path: &std::path::Path, names: &[String]) -> Fetched {
    // base64 of the caps plus names and JSON punctuation.
    let cap = FETCH_TOTAL_BYTES * 4 / 3 + 64 * 1024;
    let parsed = fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            let mut b = Vec::new();
            f.take(cap).read_to_end(&mut b).map_err(|e| e.to_string())?;
            serde_json::from_slice::<Fetched>(&b).map_err(|e| e.to_string())
        });
    match parsed {
        Ok(f) => f,
        Err(e) => Fetched {
            files: Default::default(),
            skipped: names
                .iter()
                .map(|n| (n.clone(), format!("the run left no fetch report: {e}")))
                .collect(),
        },
    }
}

/// Removes a root-owned run directory when dropped. `remove_dir_all` does not follow
/// symlinks, and these directories are never writable by the sandbox user anyway.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
