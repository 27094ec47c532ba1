//! Network namespaces for runs: each run gets a fresh one with only the loopback interface,
//! up, so a program may serve on 127.0.0.1 / ::1 and reach itself (as SandboxFusion allows),
//! two runs may bind the same port, and nothing else is reachable (no route out: the
//! internet stays unreachable, unlike SandboxFusion's NAT bridge).
//!
//! A namespace serves one run and is destroyed after it, so no socket state (a listener, a
//! `TIME_WAIT` connection) of one run is ever seen by the next. Namespaces are created
//! ahead of need, up to [`MAX_IDLE`], so a run only pays for `setns`; creating one costs
//! about a millisecond. Without `CAP_NET_ADMIN` over it a program cannot add interfaces or
//! routes.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;

use nix::sched::{CloneFlags, unshare};

use super::super::SandboxError;

/// Fresh namespaces kept ready at most.
const MAX_IDLE: usize = 8;

/// The pool.
#[derive(Debug, Default)]
pub(super) struct NetnsPool {
    idle: Mutex<Vec<File>>,
}

/// A namespace leased to one run; destroyed when the lease ends.
#[derive(Debug)]
pub(super) struct NetnsLease {
    file: Option<File>,
}

impl NetnsPool {
    /// An idle namespace, or a new one.
    pub(super) fn acquire(&self) -> Result<NetnsLease, SandboxError> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let file = match reused {
            Some(f) => f,
            None => Self::create()?,
        };
        Ok(NetnsLease { file: Some(file) })
    }

    /// Creates fresh namespaces until [`MAX_IDLE`] are ready (off the runs' critical path).
    pub(super) fn top_up(&self) {
        loop {
            let n = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len();
            if n >= MAX_IDLE {
                return;
            }
            match Self::create() {
                Ok(f) => self
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(f),
                Err(_) => return,
            }
        }
    }

    /// A new namespace with `lo` up, made by a short-lived thread (namespaces are per
    /// thread, so the server's other threads stay where they are) and kept alive by an open
    /// handle.
    fn create() -> Result<File, SandboxError> {
        std::thread::spawn(|| -> Result<File, SandboxError> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| SandboxError::Setup(format!("creating a network namespace: {e}")))?;
            loopback_up().map_err(|e| SandboxError::Setup(format!("bringing up loopback: {e}")))?;
            Ok(File::open("/proc/thread-self/ns/net")?)
        })
        .join()
        .map_err(|_| SandboxError::Setup("network namespace thread panicked".into()))?
    }
}

/// Sets `IFF_UP` on `lo` of the calling thread's network namespace.
#[allow(
    unsafe_code,
    reason = "SIOCGIFFLAGS/SIOCSIFFLAGS ioctls on a plain struct ifreq; nix has no wrapper"
)]
fn loopback_up() -> std::io::Result<()> {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the descriptor is owned (and closed) by `sock`.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags into the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the union's flags member was just written by the kernel.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl NetnsLease {
    /// A path the helper (root) can open to enter the namespace while the lease lives.
    pub(super) fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        PathBuf::from(format!("/proc/{}/fd/{fd}", std::process::id()))
    }

    /// Ends the lease once no process of the run is left: the namespace is destroyed.
    pub(super) fn release(mut self) {
        drop(self.file.take());
    }
}
