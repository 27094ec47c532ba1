//! Host-wide state that the hostile suites check after their runs, counted only where this
//! test process created it, so the checks hold beside other sandbox load on the same host (a
//! training run's boxes, another test binary's).

use std::path::PathBuf;

/// Processes owned by `uid` on the host that this test process started: those in one of its
/// run cgroups (`rlvr-verifier/PID-N`; a box cannot leave its cgroup, and a group with a live
/// process cannot be removed), so other verifiers' boxes running at the same time do not count.
pub(crate) fn procs_of(uid: u32) -> Vec<String> {
    let ours = format!("rlvr-verifier/{}-", std::process::id());
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let owned = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok())
            == Some(uid);
        let group = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if owned && group.contains(&ours) {
            let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
            v.push(format!("{name}: {}", cmd.replace('\0', " ")));
        }
    }
    v
}

/// This process's run cgroups (`rlvr-verifier/PID-N` under every controller, v1 and v2) still
/// present.
pub(crate) fn cgroups_left() -> Vec<String> {
    let prefix = format!("{}-", std::process::id());
    let mut left = Vec::new();
    for ctl in ["memory", "pids", "cpu", "cpuacct", "unified", ""] {
        let dir = PathBuf::from("/sys/fs/cgroup")
            .join(ctl)
            .join("rlvr-verifier");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    left.push(e.path().display().to_string());
                }
            }
        }
    }
    left
}
