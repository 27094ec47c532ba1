//! The seccomp policy, installed last before `execve` (after `no_new_privs`).
//!
//! Policy as data: a deny list answered with `EPERM` (kernel attack surface and escape
//! helpers: ptrace, mount family, namespaces, keyrings, io_uring, bpf, perf, module and kexec
//! calls, `TIOCSTI`), a socket-family allow-list (UNIX, INET, INET6; the box has no network
//! anyway, this closes AF_VSOCK, netlink and packet sockets), `clone` with any `CLONE_NEW*`
//! flag, and `clone3` answered with `ENOSYS` so libc falls back to `clone` (which the flag
//! rule can inspect). seccompiler adds the architecture check (a foreign-ABI syscall kills
//! the process). Caveat: the x32 ABI is not filtered separately; it is disabled in this
//! host's kernel (`CONFIG_X86_X32_ABI` unset), check yours.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Syscalls refused with `EPERM` whatever their arguments.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_vhangup,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_setdomainname,
    libc::SYS_sethostname,
    libc::SYS_uselib,
    libc::SYS_personality,
    libc::SYS_lookup_dcookie,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
];

/// Namespace-creating `clone` flags.
const CLONE_NEW: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// Socket families a program may open.
const ALLOWED_FAMILIES: [u64; 3] = [
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
];

fn arch() -> Result<TargetArch, String> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        "riscv64" => Ok(TargetArch::riscv64),
        other => Err(format!("no seccomp policy for architecture {other}")),
    }
}

/// A condition on a 64-bit argument (`clone` flags).
fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// A condition on an `int` argument: the kernel reads only its low 32 bits, so must we.
fn cond32(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| e.to_string())
}

/// The two BPF programs of the policy: the `EPERM` filter and the `clone3` → `ENOSYS` filter.
pub(super) fn programs() -> Result<Vec<BpfProgram>, String> {
    let arch = arch()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &nr in DENIED {
        rules.insert(nr, Vec::new());
    }
    let clone_rules = CLONE_NEW
        .iter()
        .map(|&f| rule(vec![cond(0, SeccompCmpOp::MaskedEq(f), f)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let family = ALLOWED_FAMILIES
        .iter()
        .map(|&f| cond32(0, SeccompCmpOp::Ne, f))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_socket, vec![rule(family)?]);
    rules.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond32(1, SeccompCmpOp::Eq, libc::TIOCSTI)?])?,
            rule(vec![cond32(1, SeccompCmpOp::Eq, libc::TIOCLINUX)?])?,
        ],
    );
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    [deny, clone3]
        .into_iter()
        .map(|f| BpfProgram::try_from(f).map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_compiles() {
        let progs = programs().expect("policy");
        assert_eq!(progs.len(), 2);
        assert!(
            progs[0].len() > DENIED.len(),
            "every denied call has a jump"
        );
    }
}
