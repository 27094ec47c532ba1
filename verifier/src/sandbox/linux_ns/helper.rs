//! The sandbox helper: a fresh, single-threaded process (`verifier-sandbox-helper
//! __sandbox-helper CGROUPS`, configuration on stdin)
//! that performs the ordered containment, because namespace, mount and credential changes
//! after `fork()` in the multi-threaded server are unsafe.
//!
//! Three processes, in order:
//! 1. **helper** (host root): joins the run's cgroup, enters the run's (pooled, empty)
//!    network namespace, unshares pid, ipc, uts and cgroup namespaces, forks the init, waits for its report and writes it to the status file.
//! 2. **init** (pid 1 of the box, root): unshares a mount namespace, builds the box and
//!    pivots into it ([`super::mounts`]), forks the program and reaps until it ends. When init
//!    exits the kernel kills everything left in the pid namespace (daemons, orphans).
//!    After the program, when files were requested, init kills what is left of the tree
//!    and a child of init, dropped to the program's uid, reads them back.
//! 3. **program** (working directory `/box`): standard input from the run's file, new
//!    session, rlimits, drops to the
//!    sandbox uid/gid (no capabilities, no supplementary groups), enters a user namespace
//!    mapping only that uid, `no_new_privs`, the seccomp filters last, then `execve`.

#![allow(
    unsafe_code,
    reason = "fork() is unsafe in nix; the helper is single-threaded"
)]

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, wait, waitpid};
use nix::unistd::{
    ForkResult, Gid, Pid, Uid, chdir, dup2_stdin, execve, fork, getpid, pipe2, setgroups,
    sethostname, setresgid, setresuid, setsid,
};
use seccompiler::BpfProgram;
use serde::{Deserialize, Serialize};

use super::{mounts, seccomp};

/// The hidden subcommand that runs [`helper_main`].
pub const HELPER_ARG: &str = "__sandbox-helper";

/// Uid and gid the program has inside its user namespace.
const INSIDE_ID: u32 = 1000;

/// A directory bound into the box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindCfg {
    /// Host directory.
    pub host: PathBuf,
    /// Absolute path inside the box.
    pub inside: String,
    /// Read-write instead of read-only.
    pub writable: bool,
}

/// Everything the helper needs for its run, passed as one JSON line on standard input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperConfig {
    /// An empty network namespace to enter (leased to this run alone).
    pub netns: PathBuf,
    /// Empty host directory used as the mount point of the box root (in the box's own mount
    /// namespace, so concurrent runs share it).
    pub mountpoint: PathBuf,
    /// Host file the helper writes its [`HelperStatus`] to (root-only directory).
    pub status_file: PathBuf,
    /// Host file that becomes the program's standard input (root-only directory).
    pub stdin_file: PathBuf,
    /// Extra binds.
    pub binds: Vec<BindCfg>,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Program environment.
    pub env: Vec<(String, String)>,
    /// Host uid the program runs as.
    pub uid: u32,
    /// Host gid the program runs as.
    pub gid: u32,
    /// `/tmp` size, bytes.
    pub scratch_bytes: u64,
    /// `/tmp` inodes.
    pub scratch_inodes: u64,
    /// `RLIMIT_FSIZE`, bytes.
    pub file_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// `RLIMIT_STACK`, bytes.
    pub stack_bytes: u64,
    /// `RLIMIT_CPU` soft limit, seconds (the hard limit is one more).
    pub cpu_secs: u64,
    /// Host directory (root-owned) whose contents are copied into `/box`, the program's
    /// working directory.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// Files to read back after the run (relative to `/box`, or absolute inside the box).
    #[serde(default)]
    pub fetch: Vec<String>,
    /// Host file the fetched files are written to as JSON ([`Fetched`]), when `fetch` is not
    /// empty.
    #[serde(default)]
    pub fetch_file: Option<PathBuf>,
    /// Largest fetched file, bytes.
    #[serde(default)]
    pub fetch_file_bytes: u64,
    /// All fetched files together, bytes.
    #[serde(default)]
    pub fetch_total_bytes: u64,
}

/// Files read back from the box after a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetched {
    /// Requested name → base64 content.
    pub files: std::collections::BTreeMap<String, String>,
    /// Requested name → why it was not returned (missing, not a regular file, too large).
    pub skipped: std::collections::BTreeMap<String, String>,
}

/// What the helper reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelperStatus {
    /// The program exited with this status.
    Exited(i32),
    /// The program was killed by this signal.
    Signaled(i32),
    /// Building the box failed.
    SetupFailed(String),
    /// The program could not be started.
    ExecFailed(String),
}

/// Entry point of the helper process; returns its exit status (0 once a status was written).
///
/// `cgroup_list` is a JSON array of the `cgroup.procs` files to join. The helper joins at once
/// (it is started ahead of its run, so this slow step is off the run's critical path), then
/// waits for its [`HelperConfig`] as one JSON line on standard input.
pub fn helper_main(cgroup_list: &str) -> i32 {
    let joined = match serde_json::from_str::<Vec<PathBuf>>(cgroup_list) {
        Ok(files) => join_cgroup(&files),
        Err(e) => {
            eprintln!("sandbox helper: bad cgroup list: {e}");
            return 2;
        }
    };
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() || line.trim().is_empty() {
        // The verifier dropped this spare without using it.
        return 0;
    }
    let cfg: HelperConfig = match serde_json::from_str(&line) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sandbox helper: bad configuration: {e}");
            return 2;
        }
    };
    let status = match joined {
        Ok(()) => helper(&cfg),
        Err(e) => HelperStatus::SetupFailed(e),
    };
    match serde_json::to_vec(&status).map(|j| fs::write(&cfg.status_file, j)) {
        Ok(Ok(())) => 0,
        _ => 3,
    }
}

/// Moves this process into the run's cgroup (every hierarchy).
fn join_cgroup(files: &[PathBuf]) -> Result<(), String> {
    let me = getpid().to_string();
    for f in files {
        fs::write(f, &me).map_err(|e| format!("joining {}: {e}", f.display()))?;
    }
    Ok(())
}

fn helper(cfg: &HelperConfig) -> HelperStatus {
    // Compiled before any fork so the program stage only installs it.
    let filters = match seccomp::programs() {
        Ok(f) => f,
        Err(e) => return HelperStatus::SetupFailed(format!("seccomp policy: {e}")),
    };
    let net = match fs::File::open(&cfg.netns) {
        Ok(f) => f,
        Err(e) => return HelperStatus::SetupFailed(format!("opening the network namespace: {e}")),
    };
    if let Err(e) = setns(&net, CloneFlags::CLONE_NEWNET) {
        return HelperStatus::SetupFailed(format!("entering the network namespace: {e}"));
    }
    drop(net);
    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWCGROUP;
    if let Err(e) = unshare(flags) {
        return HelperStatus::SetupFailed(format!("unshare: {e}"));
    }
    let (report_r, report_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return HelperStatus::SetupFailed(format!("pipe: {e}")),
    };
    // SAFETY: this process is single-threaded (a fresh exec of the verifier binary that has
    // started no threads), so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => HelperStatus::SetupFailed(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(report_r);
            let status = init(cfg, &filters);
            let mut w = fs::File::from(report_w);
            let _ = w.write_all(&serde_json::to_vec(&status).unwrap_or_default());
            std::process::exit(0);
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_w);
            let mut buf = Vec::new();
            let _ = fs::File::from(report_r).read_to_end(&mut buf);
            let waited = waitpid(child, None);
            serde_json::from_slice(&buf).unwrap_or_else(|_| {
                HelperStatus::SetupFailed(format!(
                    "the box's init ended without a report: {waited:?}"
                ))
            })
        }
    }
}

/// Pid 1 of the box.
fn init(cfg: &HelperConfig, filters: &[BpfProgram]) -> HelperStatus {
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        return HelperStatus::SetupFailed(format!("unshare mount namespace: {e}"));
    }
    // Standard input is opened before the host tree disappears; the program dups it to fd 0.
    let stdin = match open(
        &cfg.stdin_file,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return HelperStatus::SetupFailed(format!("opening stdin: {e}")),
    };
    // Likewise the host-side file the fetched files go to.
    let fetch_out = match (&cfg.fetch_file, cfg.fetch.is_empty()) {
        (Some(path), false) => match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => Some(f),
            Err(e) => return HelperStatus::SetupFailed(format!("opening the fetch file: {e}")),
        },
        _ => None,
    };
    if let Err(e) = mounts::build_root(cfg) {
        return HelperStatus::SetupFailed(e);
    }
    let _ = sethostname("sandbox");
    let (err_r, err_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return HelperStatus::SetupFailed(format!("pipe: {e}")),
    };
    // SAFETY: init is single-threaded (forked from the single-threaded helper).
    let child = match unsafe { fork() } {
        Err(e) => return HelperStatus::SetupFailed(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(err_r);
            let msg = program(cfg, stdin, filters);
            let mut w = fs::File::from(err_w);
            let _ = w.write_all(msg.as_bytes());
            std::process::exit(127);
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop(err_w);
    drop(stdin);
    let mut msg = String::new();
    let _ = fs::File::from(err_r).read_to_string(&mut msg);
    let status = reap_until(child);
    if !msg.is_empty() {
        return HelperStatus::ExecFailed(msg);
    }
    if let Some(out) = fetch_out {
        fetch(cfg, out);
    }
    status
}

/// Kills what is left of the program, then reads the requested files in a child that has
/// dropped to the program's uid (so it can read nothing the program could not) and writes
/// them to `out`.
fn fetch(cfg: &HelperConfig, out: fs::File) {
    use nix::sys::signal::{Signal, kill};
    // Every other process of the pid namespace: daemons must not rewrite files mid-read.
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while wait().is_ok() {}
    // SAFETY: init is single-threaded (forked from the single-threaded helper).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let dropped = setgroups(&[])
                .and_then(|()| {
                    let gid = Gid::from_raw(cfg.gid);
                    setresgid(gid, gid, gid)
                })
                .and_then(|()| {
                    let uid = Uid::from_raw(cfg.uid);
                    setresuid(uid, uid, uid)
                });
            let fetched = match dropped {
                Ok(()) => {
                    mounts::fetch_files(&cfg.fetch, cfg.fetch_file_bytes, cfg.fetch_total_bytes)
                }
                Err(e) => Fetched {
                    skipped: cfg
                        .fetch
                        .iter()
                        .map(|n| (n.clone(), format!("dropping privileges: {e}")))
                        .collect(),
                    ..Fetched::default()
                },
            };
            let code = i32::from(mounts::write_fetched(out, &fetched).is_err());
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { child }) => {
            drop(out);
            let _ = waitpid(child, None);
        }
        Err(_) => {}
    }
}

/// Reaps every child (orphans re-parent to init) until `main` ends.
fn reap_until(main: Pid) -> HelperStatus {
    loop {
        match wait() {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return HelperStatus::Exited(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                return HelperStatus::Signaled(sig as i32);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return HelperStatus::SetupFailed(format!("wait: {e}")),
        }
    }
}

/// Becomes the program; returns only with the reason it could not.
fn program(cfg: &HelperConfig, stdin: OwnedFd, filters: &[BpfProgram]) -> String {
    match contain_and_exec(cfg, stdin, filters) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

fn contain_and_exec(
    cfg: &HelperConfig,
    stdin: OwnedFd,
    filters: &[BpfProgram],
) -> Result<Never, String> {
    let e = |what: &str| {
        let what = what.to_owned();
        move |err: nix::errno::Errno| format!("{what}: {err}")
    };
    if stdin.as_raw_fd() != 0 {
        dup2_stdin(&stdin).map_err(e("dup2 stdin"))?;
    }
    drop(stdin);
    setsid().map_err(e("setsid"))?;
    let limit =
        |r: Resource, soft: u64, hard: u64| setrlimit(r, soft, hard).map_err(e("setrlimit"));
    limit(Resource::RLIMIT_CORE, 0, 0)?;
    limit(Resource::RLIMIT_FSIZE, cfg.file_bytes, cfg.file_bytes)?;
    limit(Resource::RLIMIT_NOFILE, cfg.open_files, cfg.open_files)?;
    limit(Resource::RLIMIT_STACK, cfg.stack_bytes, cfg.stack_bytes)?;
    limit(Resource::RLIMIT_CPU, cfg.cpu_secs, cfg.cpu_secs + 1)?;
    setgroups(&[]).map_err(e("setgroups"))?;
    let (uid, gid) = (Uid::from_raw(cfg.uid), Gid::from_raw(cfg.gid));
    setresgid(gid, gid, gid).map_err(e("setresgid"))?;
    setresuid(uid, uid, uid).map_err(e("setresuid"))?;
    // Changing credentials cleared "dumpable", which makes /proc/self root-owned; the
    // program must own it to write its own id maps.
    nix::sys::prctl::set_dumpable(true).map_err(e("set_dumpable"))?;
    unshare(CloneFlags::CLONE_NEWUSER).map_err(e("unshare user namespace"))?;
    let write = |file: &str, text: String| {
        fs::write(file, text).map_err(|err| format!("writing {file}: {err}"))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{INSIDE_ID} {} 1", cfg.uid))?;
    write("/proc/self/gid_map", format!("{INSIDE_ID} {} 1", cfg.gid))?;
    chdir(mounts::BOX_DIR).map_err(e("chdir /box"))?;
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("NUL byte in {s:?}"));
    let argv = cfg
        .argv
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = cfg
        .env
        .iter()
        .map(|(k, v)| cstr(&format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(path) = argv.first() else {
        return Err("empty argv".into());
    };
    nix::sys::prctl::set_no_new_privs().map_err(e("no_new_privs"))?;
    for f in filters {
        seccompiler::apply_filter(f).map_err(|err| format!("seccomp: {err}"))?;
    }
    execve(path, &argv, &env).map_err(e("execve"))?;
    unreachable!("execve returned without an error")
}
