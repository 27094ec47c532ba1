//! The box's filesystem, built by the box's init inside its own mount namespace: a small
//! read-only tmpfs root with read-only binds of `/usr` (and the host's `/bin`, `/lib*`
//! symlinks or directories), the caller's binds, a fresh `/proc` (other users' processes
//! invisible), a minimal `/dev`, private size- and inode-limited tmpfs mounts at `/tmp`,
//! `/dev/shm`, `/mnt` and `/box` (the program's working directory, holding a copy of the
//! run's files, owned by the program's user), a small `/etc` (four files and the read-only
//! `/etc/alternatives` symlink farm); then `pivot_root` into it and detach the host's tree.
//! Nothing here touches the host's mount table.
//!
//! After the run, [`fetch_files`] reads the files a caller asked for with the program's own
//! rights (a child of init that drops to the program's uid), so it can return nothing the
//! program could not have printed itself.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use base64::Engine;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

use super::helper::{BindCfg, Fetched, HelperConfig};

/// The program's working directory inside the box.
pub(super) const BOX_DIR: &str = "/box";

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
    for d in ["usr", "proc", "dev", "tmp", "etc", "mnt", "box"] {
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
    build_box(root, cfg)?;
    tmpfs(
        &root.join("mnt"),
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
        // Names resolve from the files above only: there is no DNS in the box.
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files\n",
        ),
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

/// Bytes and entries under `dir` (regular files and directories; nothing else is copied).
fn tree_size(dir: &Path) -> Result<(u64, u64), String> {
    let (mut bytes, mut entries) = (0u64, 0u64);
    for e in fs::read_dir(dir).map_err(|e| err("read", dir, e))? {
        let e = e.map_err(|e| err("read", dir, e))?;
        let meta = e.metadata().map_err(|err_| err("stat", &e.path(), err_))?;
        entries += 1;
        if meta.is_dir() {
            let (b, n) = tree_size(&e.path())?;
            bytes += b;
            entries += n;
        } else if meta.is_file() {
            bytes += meta.len();
        }
    }
    Ok((bytes, entries))
}

/// Copies the host directory `from` (the verifier's own, root-owned: never sandbox-writable)
/// into `to`, every copy owned by the program's user, keeping execute bits.
fn copy_tree(from: &Path, to: &Path, uid: u32, gid: u32) -> Result<(), String> {
    for e in fs::read_dir(from).map_err(|e| err("read", from, e))? {
        let e = e.map_err(|e| err("read", from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = fs::symlink_metadata(&src).map_err(|e| err("stat", &src, e))?;
        if meta.is_dir() {
            fs::create_dir(&dst).map_err(|e| err("mkdir", &dst, e))?;
            copy_tree(&src, &dst, uid, gid)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o755))
                .map_err(|e| err("chmod", &dst, e))?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(|e| err("copy", &src, e))?;
            let mode = if meta.mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode))
                .map_err(|e| err("chmod", &dst, e))?;
        } else {
            continue;
        }
        std::os::unix::fs::lchown(&dst, Some(uid), Some(gid)).map_err(|e| err("chown", &dst, e))?;
    }
    Ok(())
}

/// `/box`: a tmpfs with room for the run's files plus the scratch size, holding a copy of
/// `cfg.workdir`, owned by the program's user.
fn build_box(root: &Path, cfg: &HelperConfig) -> Result<(), String> {
    let at = root.join("box");
    let (bytes, entries) = match &cfg.workdir {
        Some(dir) => tree_size(dir)?,
        None => (0, 0),
    };
    tmpfs(
        &at,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        &format!(
            "size={},nr_inodes={},mode=0755",
            // tmpfs rounds to pages: leave a page per file.
            cfg.scratch_bytes + bytes + entries * 4096,
            cfg.scratch_inodes + entries
        ),
    )?;
    if let Some(dir) = &cfg.workdir {
        copy_tree(dir, &at, cfg.uid, cfg.gid)?;
    }
    std::os::unix::fs::chown(&at, Some(cfg.uid), Some(cfg.gid)).map_err(|e| err("chown", &at, e))
}

/// The path inside the box of a requested file: absolute as given, relative to `/box`
/// otherwise; `None` for paths with `..` or under `/proc`, `/sys` and `/dev`.
fn fetch_path(name: &str) -> Option<PathBuf> {
    let p = if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        Path::new(BOX_DIR).join(name)
    };
    let bad = p
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
        || ["/proc", "/sys", "/dev"].iter().any(|d| p.starts_with(d));
    (!bad && !name.is_empty()).then_some(p)
}

/// Reads the requested files (already running as the program's user, inside the box) into
/// a [`Fetched`]: base64 contents of regular files within the caps; anything else is listed
/// in `skipped` with the reason.
pub(super) fn fetch_files(names: &[String], per_file: u64, total: u64) -> Fetched {
    let mut out = Fetched::default();
    let mut used = 0u64;
    for name in names {
        let why = (|| -> Result<Vec<u8>, String> {
            let path = fetch_path(name).ok_or("refused path")?;
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
                .open(&path)
                .map_err(|e| e.to_string())?;
            let meta = f.metadata().map_err(|e| e.to_string())?;
            if !meta.is_file() {
                return Err("not a regular file".into());
            }
            let cap = per_file.min(total - used);
            let mut bytes = Vec::new();
            f.take(cap + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| e.to_string())?;
            if bytes.len() as u64 > cap {
                return Err(format!(
                    "larger than the fetch cap ({per_file} bytes per file, {total} in all)"
                ));
            }
            used += bytes.len() as u64;
            Ok(bytes)
        })();
        match why {
            Ok(b) => {
                out.files.insert(
                    name.clone(),
                    base64::engine::general_purpose::STANDARD.encode(b),
                );
            }
            Err(e) => {
                out.skipped.insert(name.clone(), e);
            }
        }
    }
    out
}

/// Writes `fetched` as JSON to `w` (the host-side file init opened before the pivot).
pub(super) fn write_fetched(mut w: fs::File, fetched: &Fetched) -> Result<(), String> {
    let json = serde_json::to_vec(fetched).map_err(|e| e.to_string())?;
    w.write_all(&json).map_err(|e| e.to_string())
}

/// The requested names, for the unit test below.
#[cfg(test)]
fn fetch_names(v: &[&str]) -> std::collections::BTreeMap<String, Option<PathBuf>> {
    v.iter().map(|n| ((*n).to_owned(), fetch_path(n))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_paths_stay_in_the_box() {
        let m = fetch_names(&[
            "a.txt",
            "d/b",
            "/mnt/b",
            "../x",
            "/box/../etc",
            "/proc/1/environ",
            "/dev/zero",
            "",
        ]);
        assert_eq!(m["a.txt"], Some(PathBuf::from("/box/a.txt")));
        assert_eq!(m["d/b"], Some(PathBuf::from("/box/d/b")));
        assert_eq!(m["/mnt/b"], Some(PathBuf::from("/mnt/b")));
        for bad in ["../x", "/box/../etc", "/proc/1/environ", "/dev/zero", ""] {
            assert_eq!(m[bad], None, "{bad}");
        }
    }
}
