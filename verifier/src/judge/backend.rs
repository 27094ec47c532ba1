//! `backend: auto` for Python: wasm first, but never a verdict `ns` would not give an ordinary
//! program. A program that uses what WASI lacks goes to `ns` before any run ([`static_need`]);
//! a wasm run that ended in a way WASI can cause is judged again on `ns`, whose verdict stands
//! ([`wasm_doubt`]).
//!
//! Policy as data: [`WASI_LACKS_MODULES`], [`WASI_LACKS_OS`], [`DOUBTFUL_EXCEPTIONS`]. The
//! static scan reads `import`/`from` statements and `os.NAME` uses in the source text; it can
//! be fooled (`__import__` of a computed name), which costs only a rerun, never a verdict.

use protocol::{CodeResult, CodeVerdict};

/// Modules whose use needs processes, threads, signals, sockets, native calls, terminals or
/// host resource controls: none of them works in CPython on WASI preview 1.
pub const WASI_LACKS_MODULES: &[&str] = &[
    "subprocess",
    "multiprocessing",
    "concurrent",
    "threading",
    "_thread",
    "signal",
    "socket",
    "socketserver",
    "ssl",
    "select",
    "selectors",
    "asyncio",
    "ctypes",
    "resource",
    "fcntl",
    "termios",
    "tty",
    "pty",
    "mmap",
    "pwd",
    "grp",
    "faulthandler",
    "http",
    "urllib",
    "ftplib",
    "smtplib",
    "xmlrpc",
    "webbrowser",
    "pdb",
];

/// `os` functions WASI preview 1 lacks (processes, signals, ids, pipes, scheduling).
pub const WASI_LACKS_OS: &[&str] = &[
    "fork",
    "forkpty",
    "kill",
    "killpg",
    "wait",
    "waitpid",
    "wait3",
    "wait4",
    "waitid",
    "system",
    "popen",
    "execv",
    "execve",
    "execvp",
    "execl",
    "execlp",
    "spawnv",
    "spawnl",
    "posix_spawn",
    "getpid",
    "getppid",
    "getpgid",
    "setsid",
    "setpgid",
    "getuid",
    "geteuid",
    "getgid",
    "setuid",
    "pipe",
    "pipe2",
    "dup",
    "dup2",
    "nice",
    "sched_setaffinity",
    "sched_getaffinity",
    "getloadavg",
    "umask",
    "chdir",
    "mkfifo",
    "register_at_fork",
    "pidfd_open",
];

/// Exceptions whose uncaught appearance in a wasm run may be WASI's doing (a missing module or
/// function, a refused file, a smaller stack, a thread that cannot start), so the item is
/// judged again on `ns`.
pub const DOUBTFUL_EXCEPTIONS: &[&str] = &[
    "OSError",
    "IOError",
    "PermissionError",
    "FileNotFoundError",
    "FileExistsError",
    "IsADirectoryError",
    "NotADirectoryError",
    "BlockingIOError",
    "ConnectionError",
    "ImportError",
    "ModuleNotFoundError",
    "AttributeError",
    "NotImplementedError",
    "RecursionError",
    "RuntimeError",
    "SystemError",
    "MemoryError",
    "UnsupportedOperation",
];

/// The top-level modules a Python source imports (from its `import` and `from` statements).
fn imported(source: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for stmt in source.lines().flat_map(|l| l.split(';')) {
        let t = stmt.trim_start();
        let names = if let Some(rest) = t.strip_prefix("import ") {
            rest
        } else if let Some(rest) = t.strip_prefix("from ") {
            rest.split(" import").next().unwrap_or("")
        } else {
            continue;
        };
        for part in names.split(',') {
            let name = part.split_whitespace().next().unwrap_or("");
            let top = name.split('.').next().unwrap_or("");
            if !top.is_empty() {
                out.push(top);
            }
        }
    }
    out
}

/// Why `source` cannot run on wasm as it would on `ns` (decided before any run), if it cannot.
pub fn static_need(source: &str) -> Option<String> {
    if let Some(m) = imported(source)
        .into_iter()
        .find(|m| WASI_LACKS_MODULES.contains(m))
    {
        return Some(format!("imports {m}, which WASI lacks"));
    }
    let bytes = source.as_bytes();
    for (i, _) in source.match_indices("os.") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue;
        }
        let rest = &source[i + 3..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if WASI_LACKS_OS.contains(&&rest[..end]) {
            return Some(format!("uses os.{}, which WASI lacks", &rest[..end]));
        }
    }
    None
}

/// The exception type named by the last line of a traceback (`ValueError: …` → `ValueError`,
/// `io.UnsupportedOperation: …` → `UnsupportedOperation`).
fn exception_of(stderr: &str) -> Option<&str> {
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    let name = last.split(':').next()?.trim();
    let name = name.rsplit('.').next()?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
}

/// Why a wasm result must be judged again on `ns`, if it must: a test that ran out of time
/// or memory (wasm is slower and counts memory differently), trapped, or died of an exception
/// WASI can cause.
pub fn wasm_doubt(result: &CodeResult) -> Option<String> {
    for t in &result.tests {
        match t.verdict {
            CodeVerdict::TimeLimit | CodeVerdict::MemoryLimit => {
                return Some(format!("wasm: {}", t.verdict.as_str()));
            }
            CodeVerdict::RuntimeError | CodeVerdict::WrongAnswer => {
                let err = &t.run.stderr_head;
                if err.contains("wasm trap:") {
                    return Some(format!("wasm: {} (trap)", t.verdict.as_str()));
                }
                if let Some(e) = exception_of(err).filter(|e| DOUBTFUL_EXCEPTIONS.contains(e)) {
                    return Some(format!("wasm: {} ({e})", t.verdict.as_str()));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_found_in_every_form() {
        let src = "import os, sys as s\nfrom collections import deque\n  import numpy.linalg\nx=1; import json\nfrom . import y\n";
        assert_eq!(imported(src), ["os", "sys", "collections", "numpy", "json"]);
    }

    #[test]
    fn what_wasi_lacks_is_found_before_the_run() {
        for (src, need) in [
            ("import subprocess\n", "imports subprocess"),
            (
                "from multiprocessing import Pool\n",
                "imports multiprocessing",
            ),
            ("import threading\n", "imports threading"),
            (
                "from concurrent.futures import ThreadPoolExecutor\n",
                "imports concurrent",
            ),
            ("import os\npid = os.fork()\n", "uses os.fork"),
            ("import os\nos.kill(os.getpid(), 9)\n", "uses os.kill"),
        ] {
            assert!(static_need(src).unwrap().starts_with(need), "{src}");
        }
        for src in [
            "import sys, math\nprint(sum(map(int, sys.stdin.read().split())))\n",
            "import os\nprint(os.path.join('a', 'b'), os.environ.get('X'))\n",
            "pos.fork = 1\nkill = 2\n",
        ] {
            assert_eq!(static_need(src), None, "{src}");
        }
    }

    #[test]
    fn exception_names() {
        assert_eq!(
            exception_of("Traceback\n  x\nValueError: bad\n"),
            Some("ValueError")
        );
        assert_eq!(
            exception_of("io.UnsupportedOperation: not readable\n"),
            Some("UnsupportedOperation")
        );
        assert_eq!(exception_of("RecursionError\n\n"), Some("RecursionError"));
        assert_eq!(exception_of("some output with spaces\n"), None);
    }
}
