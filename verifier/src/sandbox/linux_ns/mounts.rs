//! The box's filesystem, built by the box's init inside its own mount namespace: a small
//! read-only tmpfs root with read-only binds of `/usr` (and the host's `/bin`, `/lib*`
//! symlinks or directories), the caller's binds, a fresh `/proc` (other users' processes invisible), a minimal `/dev`, a private
//! size- and inode-limited `/tmp` and `/dev/shm`, a small `/etc` (three files and the
//! read-only `/etc/alternatives` symlink farm); then `pivot_root` into
//! it and detach the host's tree. Nothing here touches the host's mount table.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

use super::helper::{BindCfg, HelperConfig};

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

fn mkdirs(p: &Path) -> Result<(), String> {
    fs::create_dir_all(p).map_err(|e| err("mkdir", p, e))
}

fn tmpfs(at: &Path, flags: MsFlags, opts: &str) -> Result<(), String> {
    mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some(opts))
        .map_err(|e| err("mount tmpfs", at, e))
}

/// Binds `host` at `at` (recursively), then remounts it read-only unless `writable`;
/// `nosuid` and `nodev` either way.
fn bind(host: &Path, at: &Path, writable: bool) -> Result<(), String> {
    mount(
        Some(host),
        at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| err("bind", host, e))?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if !writable {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, at, None::<&str>, flags, None::<&str>).map_err(|e| err("remount", at, e))
}

fn inside(root: &Path, path: &str) -> Result<PathBuf, String> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty()
        || rel
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(format!("bad path inside the box: {path:?}"));
    }
    Ok(root.join(rel))
}

/// Builds the box at `cfg.mountpoint` and pivots into it. Runs as root in a fresh mount
/// namespace (and the box's pid namespace, for `/proc`).
pub(super) fn build_root(cfg: &HelperConfig) -> Result<(), String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    let root = cfg.mountpoint.as_path();
    tmpfs(
        root,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "size=1m,nr_inodes=4096,mode=0755",
    )?;
    for d in ["usr", "proc", "dev", "tmp", "etc"] {
        mkdirs(&root.join(d))?;
    }
    bind(Path::new("/usr"), &root.join("usr"), false)?;
    for l in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(l);
        let Ok(meta) = fs::symlink_metadata(&host) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&host).map_err(|e| err("readlink", &host, e))?;
            symlink(&target, root.join(l)).map_err(|e| err("symlink", &root.join(l), e))?;
        } else if meta.is_dir() {
            mkdirs(&root.join(l))?;
            bind(&host, &root.join(l), false)?;
        }
    }
    for BindCfg {
        host,
        inside: at,
        writable,
    } in &cfg.binds
    {
        let at = inside(root, at)?;
        mkdirs(&at)?;
        bind(host, &at, *writable)?;
    }
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        proc_flags,
        // The box's init runs as root: hide it (and its command line, which carries the
        // helper's configuration) from the program.
        Some("hidepid=invisible"),
    )
    .map_err(|e| err("mount proc", &root.join("proc"), e))?;
    build_dev(root, cfg)?;
    tmpfs(
        &root.join("tmp"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        &format!(
            "size={},nr_inodes={},mode=1777",
            cfg.scratch_bytes, cfg.scratch_inodes
        ),
    )?;
    let etc = root.join("etc");
    for (name, text) in [
        (
            "passwd",
            "root:x:0:0::/:/bin/false\nsandbox:x:1000:1000::/tmp:/bin/false\n",
        ),
        ("group", "root:x:0:\nsandbox:x:1000:\n"),
        ("hosts", "127.0.0.1 localhost\n::1 localhost\n"),
    ] {
        fs::write(etc.join(name), text).map_err(|e| err("write", &etc.join(name), e))?;
    }
    // Debian's `cc`, `c++` and friends are symlinks through /etc/alternatives (symlinks only).
    let alternatives = Path::new("/etc/alternatives");
    if alternatives.is_dir() {
        mkdirs(&etc.join("alternatives"))?;
        bind(alternatives, &etc.join("alternatives"), false)?;
    }
    let old = root.join(".oldroot");
    mkdirs(&old)?;
    pivot_root(root, &old).map_err(|e| err("pivot_root", root, e))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    umount2("/.oldroot", MntFlags::MNT_DETACH)
        .map_err(|e| format!("detaching the host root: {e}"))?;
    fs::remove_dir("/.oldroot").map_err(|e| format!("rmdir /.oldroot: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| format!("remounting / read-only: {e}"))?;
    Ok(())
}

/// `/dev` with `null`, `zero`, `random`, `urandom` (bound from the host), the `fd` and std
/// stream links, and a private `/dev/shm` (a quarter of the scratch size).
fn build_dev(root: &Path, cfg: &HelperConfig) -> Result<(), String> {
    let dev = root.join("dev");
    tmpfs(
        &dev,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "size=64k,nr_inodes=64,mode=0755",
    )?;
    for n in ["null", "zero", "random", "urandom"] {
        let at = dev.join(n);
        fs::write(&at, b"").map_err(|e| err("create", &at, e))?;
        mount(
            Some(&Path::new("/dev").join(n)),
            &at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err("bind", &at, e))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(name)).map_err(|e| err("symlink", &dev.join(name), e))?;
    }
    let shm = dev.join("shm");
    mkdirs(&shm)?;
    fs::set_permissions(&shm, fs::Permissions::from_mode(0o1777))
        .map_err(|e| err("chmod", &shm, e))?;
    tmpfs(
        &shm,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        &format!(
            "size={},nr_inodes=1024,mode=1777",
            (cfg.scratch_bytes / 4).max(1 << 20)
        ),
    )
}
