//! Per-run cost of the sandboxes, side by side with a bare fork/exec and with bubblewrap (the
//! Debian anchor, `bash scripts/anchor-bwrap.sh`) in one run:
//!
//! ```sh
//! bash sandbox-images/fetch-python-wasm.sh && bash scripts/anchor-bwrap.sh
//! cargo bench -p verifier --bench sandbox
//! ```
//!
//! Rows: `/bin/true`, `python3 -c pass` and a 10^6-term sum, each run sequentially `RUNS`
//! times; the table prints median, p90 and max milliseconds per run. bubblewrap runs with
//! `--unshare-all` and a tmpfs root like ours but with no cgroup, rlimits or seccomp, so it
//! is a lower bound on what namespaces alone cost.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use verifier::sandbox::{NsConfig, NsSandbox, RunLimits, RunSpec, Sandbox};

const RUNS: usize = 40;

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[v.len() - 1]),
    )
}

fn time(mut f: impl FnMut()) -> Vec<Duration> {
    f(); // warm-up
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

fn bare<'a>(argv: &'a [&'a str]) -> impl FnMut() + 'a {
    move || {
        let ok = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("spawn")
            .success();
        assert!(ok, "{argv:?} failed");
    }
}

fn bwrap<'a>(argv: &'a [&'a str]) -> impl FnMut() + 'a {
    move || {
        let ok = Command::new("bwrap")
            .args([
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--clearenv",
                "--ro-bind",
                "/usr",
                "/usr",
                "--symlink",
                "usr/bin",
                "/bin",
                "--symlink",
                "usr/lib",
                "/lib",
                "--symlink",
                "usr/lib64",
                "/lib64",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--tmpfs",
                "/tmp",
            ])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("spawn bwrap")
            .success();
        assert!(ok, "bwrap {argv:?} failed");
    }
}

fn spec(argv: &[&str]) -> RunSpec {
    RunSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        binds: vec![],
        stdin: vec![],
        limits: RunLimits::for_run(Duration::from_secs(20), 512 << 20),
    }
}

fn sandboxed<'a>(sb: &'a dyn Sandbox, argv: &[&str]) -> impl FnMut() + 'a {
    let spec = spec(argv);
    move || {
        let out = sb.run(&spec).expect("sandbox run");
        assert_eq!(out.exit, verifier::sandbox::Exit::Code(0), "{out:?}");
    }
}

fn main() {
    let have_bwrap = Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let ns = NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier")),
        ..NsConfig::default()
    });
    #[cfg(feature = "wasm")]
    let wasm = {
        use verifier::sandbox::wasm::{WasmConfig, WasmSandbox};
        let w = WasmSandbox::new(&WasmConfig::default());
        match &w {
            Ok(w) => println!(
                "wasm runtime loaded in {:.1} ms ({})",
                w.load_time().as_secs_f64() * 1e3,
                if w.loaded_from_cache() {
                    "compiled-module cache"
                } else {
                    "compiled now"
                }
            ),
            Err(e) => println!("wasm backend unavailable: {e}"),
        }
        w.ok()
    };
    if !have_bwrap {
        println!("bubblewrap not installed (bash scripts/anchor-bwrap.sh): its rows are skipped");
    }
    if let Err(e) = &ns {
        println!("namespace backend unavailable: {e}: its rows are skipped");
    }
    let py_pass = ["/usr/bin/python3", "-c", "pass"];
    let py_sum = ["/usr/bin/python3", "-c", "print(sum(range(10**6)))"];
    let truth = ["/bin/true"];
    let mut rows: Vec<(String, Vec<Duration>)> = Vec::new();
    for (name, argv) in [
        ("/bin/true", &truth[..]),
        ("python3 -c pass", &py_pass[..]),
        ("python3 sum(range(10**6))", &py_sum[..]),
    ] {
        rows.push((format!("{name} | bare fork/exec"), time(bare(argv))));
        if have_bwrap {
            rows.push((format!("{name} | bubblewrap 0.8 (namespaces only)"), time(bwrap(argv))));
        }
        if let Ok(ns) = &ns {
            rows.push((
                format!("{name} | ours: ns (namespaces + cgroup + rlimits + seccomp)"),
                time(sandboxed(ns, argv)),
            ));
        }
        #[cfg(feature = "wasm")]
        if let (Some(w), true) = (&wasm, argv[0].ends_with("python3")) {
            rows.push((
                format!("{name} | ours: wasm (CPython 3.12 WASI)"),
                time(sandboxed(w, argv)),
            ));
        }
    }
    println!("\n{RUNS} sequential runs each, milliseconds per run\n");
    println!("| program | runner | median | p90 | max |");
    println!("|---|---|---|---|---|");
    for (name, v) in rows {
        let (p50, p90, max) = stats(v);
        let (prog, runner) = name.split_once(" | ").unwrap_or((&name, ""));
        println!("| {prog} | {runner} | {p50:.2} | {p90:.2} | {max:.2} |");
    }
}
