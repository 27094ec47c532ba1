//! A pool of empty network namespaces (only `lo`, down), each leased to one run at a time.
//!
//! Creating a network namespace costs about a millisecond (and its teardown more, later, in
//! the kernel); entering an existing one with `setns` costs microseconds. A namespace goes
//! back to the pool only after every process of its run is dead, so two runs never share
//! one, and nothing survives in it: without `CAP_NET_ADMIN` over it a program cannot bring
//! `lo` up or add interfaces, and its sockets die with it.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;

use nix::sched::{CloneFlags, unshare};

use super::super::SandboxError;

/// Idle namespaces kept at most.
const MAX_IDLE: usize = 64;

/// The pool.
#[derive(Debug, Default)]
pub(super) struct NetnsPool {
    idle: Mutex<Vec<File>>,
}

/// A namespace leased to one run; returned with [`NetnsLease::release`] once the run's
/// processes are all dead, dropped (and destroyed) otherwise.
#[derive(Debug)]
pub(super) struct NetnsLease<'a> {
    file: Option<File>,
    pool: &'a NetnsPool,
}

impl NetnsPool {
    /// An idle namespace, or a new one.
    pub(super) fn acquire(&self) -> Result<NetnsLease<'_>, SandboxError> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let file = match reused {
            Some(f) => f,
            None => Self::create()?,
        };
        Ok(NetnsLease {
            file: Some(file),
            pool: self,
        })
    }

    /// A new namespace, made by a short-lived thread (namespaces are per thread, so the
    /// server's other threads stay where they are) and kept alive by an open handle.
    fn create() -> Result<File, SandboxError> {
        std::thread::spawn(|| -> Result<File, SandboxError> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| SandboxError::Setup(format!("creating a network namespace: {e}")))?;
            Ok(File::open("/proc/thread-self/ns/net")?)
        })
        .join()
        .map_err(|_| SandboxError::Setup("network namespace thread panicked".into()))?
    }
}

impl NetnsLease<'_> {
    /// A path the helper (root) can open to enter the namespace while the lease lives.
    pub(super) fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        PathBuf::from(format!("/proc/{}/fd/{fd}", std::process::id()))
    }

    /// Returns the namespace to the pool: call only when no process of the run is left.
    pub(super) fn release(mut self) {
        if let Some(f) = self.file.take() {
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(f);
            }
        }
    }
}
