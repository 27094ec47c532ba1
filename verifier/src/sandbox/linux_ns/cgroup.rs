//! Per-run cgroups, v2 or v1: memory (swap 0), pids and a one-CPU quota; read OOM kills, CPU
//! time and peak memory; kill the whole tree; remove the group.
//!
//! v2 is used when a `cgroup2` mount offers the `memory` and `pids` controllers; otherwise the
//! v1 hierarchies (`memory`, `pids`, `cpu`, `cpuacct`) are used, as on hosts that
//! boot with a hybrid layout. Groups live under `<hierarchy>/rlvr-verifier/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::super::{RunLimits, SandboxError};

/// Name of the parent group this verifier creates its run groups under.
const PARENT: &str = "rlvr-verifier";

/// The cgroup layout of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupRoot {
    /// Unified hierarchy mounted here.
    V2(PathBuf),
    /// One mount per v1 controller.
    V1 {
        /// `memory` hierarchy.
        memory: PathBuf,
        /// `pids` hierarchy.
        pids: PathBuf,
        /// `cpu` hierarchy (CFS quota), if mounted.
        cpu: Option<PathBuf>,
        /// `cpuacct` hierarchy (CPU time), if mounted.
        cpuacct: Option<PathBuf>,
    },
}

impl CgroupRoot {
    /// Finds the layout from `/proc/self/mounts`.
    pub fn detect() -> Result<CgroupRoot, SandboxError> {
        let mounts = fs::read_to_string("/proc/self/mounts")?;
        let mut v1: Vec<(PathBuf, Vec<String>)> = Vec::new();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [_, path, fstype, opts, ..] = f[..] else {
                continue;
            };
            match fstype {
                "cgroup2" => {
                    let path = PathBuf::from(path);
                    let ctl =
                        fs::read_to_string(path.join("cgroup.controllers")).unwrap_or_default();
                    let has = |c: &str| ctl.split_whitespace().any(|x| x == c);
                    if has("memory") && has("pids") {
                        return Ok(CgroupRoot::V2(path));
                    }
                }
                "cgroup" => v1.push((
                    PathBuf::from(path),
                    opts.split(',').map(str::to_owned).collect(),
                )),
                _ => {}
            }
        }
        let find = |c: &str| {
            v1.iter()
                .find(|(_, o)| o.iter().any(|x| x == c))
                .map(|(p, _)| p.clone())
        };
        match (find("memory"), find("pids")) {
            (Some(memory), Some(pids)) => Ok(CgroupRoot::V1 {
                memory,
                pids,
                cpu: find("cpu"),
                cpuacct: find("cpuacct"),
            }),
            _ => Err(SandboxError::Unavailable(
                "no cgroup v2 with memory+pids and no v1 memory and pids hierarchies".into(),
            )),
        }
    }

    /// The mount points a run group is created under: the unified one, or each v1 hierarchy
    /// in use once (controllers may share a mount).
    fn hierarchies(&self) -> Vec<&Path> {
        match self {
            CgroupRoot::V2(r) => vec![r],
            CgroupRoot::V1 {
                memory,
                pids,
                cpu,
                cpuacct,
            } => {
                let mut v: Vec<&Path> = vec![memory, pids];
                for p in [cpu, cpuacct].into_iter().flatten() {
                    if !v.contains(&p.as_path()) {
                        v.push(p);
                    }
                }
                v
            }
        }
    }

    /// Removes empty run groups left by verifier processes that no longer exist (a crash, or
    /// a queue that never drained).
    pub fn sweep_stale(&self) {
        for r in self.hierarchies() {
            let Ok(entries) = fs::read_dir(r.join(PARENT)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let owner = name.split('-').next().unwrap_or("");
                if !owner.is_empty()
                    && owner.bytes().all(|b| b.is_ascii_digit())
                    && !Path::new("/proc").join(owner).exists()
                {
                    let _ = fs::remove_dir(e.path());
                }
            }
        }
    }

    /// Creates the group of one run, named `name`, with `limits` applied.
    /// Its directories are removed by `remover` once it is dropped (inline without one).
    pub fn create(
        &self,
        name: &str,
        limits: &RunLimits,
        remover: &Remover,
    ) -> Result<RunCgroup, SandboxError> {
        let remover = remover.sender();
        let setup = |e: io::Error, what: &str| SandboxError::Setup(format!("cgroup {what}: {e}"));
        match self {
            CgroupRoot::V2(root) => {
                let parent = root.join(PARENT);
                if !parent.exists() {
                    fs::create_dir_all(&parent).map_err(|e| setup(e, "mkdir"))?;
                }
                // Controllers must be enabled down to the parent of the run groups.
                for dir in [root.as_path(), parent.as_path()] {
                    let _ = fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
                }
                let dir = parent.join(name);
                fs::create_dir(&dir).map_err(|e| setup(e, "mkdir"))?;
                let group = RunCgroup {
                    dirs: vec![dir.clone()],
                    kind: Kind::V2 { dir: dir.clone() },
                    remover,
                };
                write_optional(&dir, "memory.swap.max", 0);
                write_optional(&dir, "memory.oom.group", 1);
                let _ = fs::write(dir.join("cpu.max"), "100000 100000");
                group.apply_limits(limits)?;
                Ok(group)
            }
            CgroupRoot::V1 {
                memory,
                pids,
                cpu,
                cpuacct,
            } => {
                let mut dirs = Vec::new();
                for r in self.hierarchies() {
                    let parent = r.join(PARENT);
                    if !parent.exists() {
                        fs::create_dir_all(&parent).map_err(|e| setup(e, "mkdir"))?;
                    }
                    let d = parent.join(name);
                    if let Err(e) = fs::create_dir(&d) {
                        let partial = RunCgroup {
                            dirs,
                            kind: Kind::V1Partial,
                            remover: None,
                        };
                        drop(partial);
                        return Err(setup(e, "mkdir"));
                    }
                    dirs.push(d);
                }
                let sub = |r: &Path| r.join(PARENT).join(name);
                let group = RunCgroup {
                    dirs,
                    kind: Kind::V1 {
                        memory: sub(memory),
                        pids: sub(pids),
                        cpuacct: cpuacct.as_deref().map(sub),
                    },
                    remover,
                };
                write_optional(&sub(memory), "memory.swappiness", 0);
                group.apply_limits(limits)?;
                if let Some(c) = cpu {
                    let d = sub(c);
                    write_optional(&d, "cpu.cfs_period_us", 100_000);
                    write_optional(&d, "cpu.cfs_quota_us", 100_000);
                }
                Ok(group)
            }
        }
    }
}

fn write(dir: &Path, file: &str, value: impl std::fmt::Display) -> Result<(), SandboxError> {
    fs::write(dir.join(file), value.to_string())
        .map_err(|e| SandboxError::Setup(format!("cgroup {}: {e}", dir.join(file).display())))
}

fn write_optional(dir: &Path, file: &str, value: impl std::fmt::Display) {
    let _ = fs::write(dir.join(file), value.to_string());
}

#[derive(Debug)]
enum Kind {
    V2 {
        dir: PathBuf,
    },
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpuacct: Option<PathBuf>,
    },
    /// Creation failed half-way; only removal remains.
    V1Partial,
}

/// One run's group. Dropping it kills whatever is left in it and removes it.
#[derive(Debug)]
pub struct RunCgroup {
    dirs: Vec<PathBuf>,
    kind: Kind,
    remover: Option<mpsc::Sender<Vec<PathBuf>>>,
}

impl RunCgroup {
    /// Sets the memory (swap included) and process limits; a group made ahead of its run gets
    /// the run's limits this way.
    pub fn apply_limits(&self, limits: &RunLimits) -> Result<(), SandboxError> {
        let m = limits.memory_bytes;
        match &self.kind {
            Kind::V2 { dir } => {
                write(dir, "memory.max", m)?;
                write(dir, "pids.max", limits.pids)
            }
            Kind::V1 { memory, pids, .. } => {
                // v1 keeps memory ≤ memory+swap: raising goes memsw first, lowering mem first.
                if fs::write(memory.join("memory.limit_in_bytes"), m.to_string()).is_err() {
                    // Swap accounting may be off (no memsw files); with no swap that is harmless.
                    write_optional(memory, "memory.memsw.limit_in_bytes", m);
                    write(memory, "memory.limit_in_bytes", m)?;
                }
                write_optional(memory, "memory.memsw.limit_in_bytes", m);
                write(pids, "pids.max", limits.pids)
            }
            Kind::V1Partial => Err(SandboxError::Setup("cgroup incomplete".into())),
        }
    }

    /// The `cgroup.procs` files a process writes its pid to, to join the group everywhere.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Processes still in the group.
    pub fn procs(&self) -> Vec<i32> {
        let mut all = Vec::new();
        for d in &self.dirs {
            if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
                all.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Kills every process of the group and waits (at most 5 s) until it is empty. v2:
    /// `cgroup.kill`. v1: SIGKILL to every member, repeated; among the members is the box's
    /// init, whose death makes the kernel kill its whole pid namespace at once, so a fork bomb
    /// cannot outrun the loop (no freezer needed).
    pub fn kill_all(&self) -> Result<(), SandboxError> {
        // The usual case: the box's init exited and the kernel already killed the rest.
        if self.procs().is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        if let Kind::V2 { dir } = &self.kind
            && dir.join("cgroup.kill").exists()
        {
            write(dir, "cgroup.kill", 1)?;
        }
        // Whatever the mechanism, repeat plain kills until the group is empty.
        loop {
            let left = self.procs();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SandboxError::Setup(format!(
                    "{} process(es) survived the kill",
                    left.len()
                )));
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// OOM kills in this group so far.
    pub fn oom_kills(&self) -> u64 {
        let (dir, file) = match &self.kind {
            Kind::V2 { dir } => (dir.as_path(), "memory.events"),
            Kind::V1 { memory, .. } => (memory.as_path(), "memory.oom_control"),
            Kind::V1Partial => return 0,
        };
        fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Forks and thread creations refused at `pids.max` so far.
    pub fn pids_refused(&self) -> u64 {
        let dir = match &self.kind {
            Kind::V2 { dir } => dir.as_path(),
            Kind::V1 { pids, .. } => pids.as_path(),
            Kind::V1Partial => return 0,
        };
        fs::read_to_string(dir.join("pids.events"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU time used by the group.
    pub fn cpu_time(&self) -> Option<Duration> {
        match &self.kind {
            Kind::V2 { dir } => fs::read_to_string(dir.join("cpu.stat")).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())
                    .map(Duration::from_micros)
            }),
            Kind::V1 {
                cpuacct: Some(d), ..
            } => fs::read_to_string(d.join("cpuacct.usage"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .map(Duration::from_nanos),
            _ => None,
        }
    }

    /// Peak memory of the group, bytes.
    pub fn memory_peak(&self) -> Option<u64> {
        let (dir, file) = match &self.kind {
            Kind::V2 { dir } => (dir.as_path(), "memory.peak"),
            Kind::V1 { memory, .. } => (memory.as_path(), "memory.max_usage_in_bytes"),
            Kind::V1Partial => return None,
        };
        fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }
}

/// Removes run groups; `rmdir` can race the kernel's last exit accounting, so it retries
/// briefly.
fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        for _ in 0..100 {
            match fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

/// Removes emptied run groups on one background thread, off the runs' critical path.
/// [`Remover::finish`] drains the queue (the backend calls it when dropped).
#[derive(Debug)]
pub struct Remover {
    tx: Mutex<Option<mpsc::Sender<Vec<PathBuf>>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Remover {
    /// Starts the thread (or, if it cannot start, removes inline).
    pub fn new() -> Remover {
        let (tx, rx) = mpsc::channel::<Vec<PathBuf>>();
        let thread = std::thread::Builder::new()
            .name("cgroup-remover".into())
            .spawn(move || {
                for dirs in rx {
                    remove_dirs(&dirs);
                }
            })
            .ok();
        Remover {
            tx: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Vec<PathBuf>>> {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Removes everything queued and stops the thread.
    pub fn finish(&self) {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        let _ = self.kill_all();
        let dirs = std::mem::take(&mut self.dirs);
        match &self.remover {
            Some(tx) => {
                if let Err(mpsc::SendError(dirs)) = tx.send(dirs) {
                    remove_dirs(&dirs);
                }
            }
            None => remove_dirs(&dirs),
        }
    }
}
