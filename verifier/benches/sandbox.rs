//! Per-run cost of the sandboxes, side by side with a bare fork/exec and with bubblewrap (the
//! Debian anchor, `bash scripts/anchor-bwrap.sh`) in one run:
//!
//! ```sh
//! bash sandbox-images/fetch-python-wasm.sh && bash scripts/anchor-bwrap.sh
//! cargo bench -p verifier --bench sandbox
//! ```
//!
//! Rows: a trivial C program, `python3 -S -c pass`, `python3 -c pass` and a 10^6-term sum,
//! each run sequentially `RUNS` times (median, p90 and max milliseconds per run); then the
//! wasm module load (cold compile vs the on-disk cache) and streams of trivial Python tests
//! (I/O and assert) judged end to end on both backends beside the same stream of bare
//! `python3 -B` runs, 2 at once on every side, with the cost ratio. bubblewrap runs with
//! `--unshare-all` and a tmpfs root like ours but with no cgroup, rlimits or seccomp.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use verifier::sandbox::{NsConfig, NsSandbox, RunLimits, RunSpec, Sandbox};

const RUNS: usize = 40;
/// Host directory of the compiled trivial C program, bound at `/bench` in the boxes.
const BENCH_DIR: &str = "/tmp/rlvr-sandbox-bench";

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

/// Like [`time`], with 50 ms of idleness (not counted) before every run.
fn time_after_idle(mut f: impl FnMut()) -> Vec<Duration> {
    f();
    (0..RUNS)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
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
                "--ro-bind",
                BENCH_DIR,
                "/bench",
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
        binds: vec![verifier::sandbox::Bind {
            host: PathBuf::from(BENCH_DIR),
            inside: "/bench".into(),
            writable: false,
        }],
        stdin: vec![],
        limits: RunLimits::for_run(Duration::from_secs(20), 512 << 20),
        workdir: None,
        fetch: vec![],
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
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
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
    std::fs::create_dir_all(BENCH_DIR).expect("bench dir");
    let c_src = format!("{BENCH_DIR}/prog.c");
    std::fs::write(&c_src, "int main(void) { return 0; }\n").expect("write C");
    let built = Command::new("gcc")
        .args(["-O2", "-o", &format!("{BENCH_DIR}/prog"), &c_src])
        .status()
        .is_ok_and(|s| s.success());
    assert!(built, "gcc failed");
    let c_prog = ["/bench/prog"];
    let c_host = [concat!("/tmp/rlvr-sandbox-bench", "/prog")];
    let py_s = ["/usr/bin/python3", "-S", "-c", "pass"];
    let py_pass = ["/usr/bin/python3", "-c", "pass"];
    let py_sum = ["/usr/bin/python3", "-c", "print(sum(range(10**6)))"];
    let mut rows: Vec<(String, Vec<Duration>)> = Vec::new();
    for (name, argv) in [
        ("trivial C program", &c_prog[..]),
        ("python3 -S -c pass", &py_s[..]),
        ("python3 -c pass", &py_pass[..]),
        ("python3 sum(range(10**6))", &py_sum[..]),
    ] {
        let host_argv = if argv == c_prog { &c_host[..] } else { argv };
        rows.push((format!("{name} | bare fork/exec"), time(bare(host_argv))));
        if have_bwrap {
            rows.push((
                format!("{name} | bubblewrap 0.8 (namespaces only)"),
                time(bwrap(argv)),
            ));
        }
        if let Ok(ns) = &ns {
            rows.push((
                format!("{name} | ours: ns (namespaces + cgroup + rlimits + seccomp)"),
                time(sandboxed(ns, argv)),
            ));
            // The first cgroup migration after the host's cgroups sat idle waits for an RCU
            // grace period (v1 here): shown separately, runs 50 ms apart (not counted).
            rows.push((
                format!("{name} | ours: ns, each run after 50 ms idle"),
                time_after_idle(sandboxed(ns, argv)),
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
    // The judge's own shape: a program file in `/src` run as `python3 -B /src/main.py`, where
    // the wasm backend serves runs from spare (pre-started) interpreters.
    std::fs::write(format!("{BENCH_DIR}/main.py"), "pass\n").expect("write main.py");
    let host_main = format!("{BENCH_DIR}/main.py");
    let judged = ["/usr/bin/python3", "-B", "/bench/main.py"];
    let judged_host = ["/usr/bin/python3", "-B", host_main.as_str()];
    rows.push((
        "python3 -B main.py (`pass`, the judge's shape) | bare fork/exec".into(),
        time(bare(&judged_host)),
    ));
    if let Ok(ns) = &ns {
        rows.push((
            "python3 -B main.py (`pass`, the judge's shape) | ours: ns".into(),
            time(sandboxed(ns, &judged)),
        ));
    }
    #[cfg(feature = "wasm")]
    if let Some(w) = &wasm {
        let mut spec = spec(&["/usr/bin/python3", "-B", "/src/main.py"]);
        spec.binds = vec![verifier::sandbox::Bind {
            host: PathBuf::from(BENCH_DIR),
            inside: "/src".into(),
            writable: false,
        }];
        let before = w.spare_runs();
        let run = || {
            let out = w.run(&spec).expect("wasm run");
            assert_eq!(out.exit, verifier::sandbox::Exit::Code(0), "{out:?}");
        };
        rows.push((
            "python3 -B main.py (`pass`, the judge's shape) | ours: wasm, spare interpreters, back to back".into(),
            time(run),
        ));
        rows.push((
            "python3 -B main.py (`pass`, the judge's shape) | ours: wasm, spare interpreters, 50 ms apart".into(),
            time_after_idle(run),
        ));
        println!(
            "wasm spare interpreters served {} of the {} judge-shape runs",
            w.spare_runs() - before,
            2 * (RUNS + 1)
        );
    }
    #[cfg(feature = "wasm")]
    {
        use verifier::sandbox::wasm::{WasmConfig, WasmSandbox};
        let cold_dir = std::env::temp_dir().join(format!("rlvr-wasm-cold-{}", std::process::id()));
        let cfg = WasmConfig {
            cache_dir: cold_dir.clone(),
            ..WasmConfig::default()
        };
        if let (Ok(cold), Ok(warm)) = (WasmSandbox::new(&cfg), WasmSandbox::new(&cfg)) {
            println!(
                "wasm module: compile {:.0} ms (start {:.0} ms); from the cache {:.2} ms (start incl. SHA-256 check {:.1} ms)",
                cold.module_time().as_secs_f64() * 1e3,
                cold.load_time().as_secs_f64() * 1e3,
                warm.module_time().as_secs_f64() * 1e3,
                warm.load_time().as_secs_f64() * 1e3,
            );
        }
        let _ = std::fs::remove_dir_all(cold_dir);
    }
    throughput(ns.ok(), {
        #[cfg(feature = "wasm")]
        {
            wasm
        }
        #[cfg(not(feature = "wasm"))]
        {
            None::<()>
        }
    });
    println!("\n{RUNS} sequential runs each, milliseconds per run\n");
    println!("| program | runner | median | p90 | max |");
    println!("|---|---|---|---|---|");
    for (name, v) in rows {
        let (p50, p90, max) = stats(v);
        let (prog, runner) = name.split_once(" | ").unwrap_or((&name, ""));
        println!("| {prog} | {runner} | {p50:.2} | {p90:.2} | {max:.2} |");
    }
}

/// Tests in each throughput stream.
const STREAM: usize = 200;
/// Workers of every throughput stream, bare and sandboxed alike.
const WORKERS: usize = 2;

/// Runs `STREAM` jobs on `WORKERS` threads; seconds taken and jobs that passed.
fn stream(job: impl Fn(usize) -> bool + Sync) -> (f64, usize) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let ok = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if k >= STREAM {
                        break;
                    }
                    if job(k) {
                        ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (t.elapsed().as_secs_f64(), ok.into_inner())
}

/// Bare `python3 -B FILE` on `stdin`, its stdout compared with `expected` here.
fn bare_python(file: &str, stdin: &str, expected: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-B", file])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn python3");
    let _ = child
        .stdin
        .take()
        .map(|mut w| w.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().expect("python3");
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == expected
}

/// Streams of trivial Python tests, bare and judged end to end (compare included) on each
/// backend, `WORKERS` at once on every side: I/O tests (`print(int(input()) + 1)`) and assert
/// tests (`assert inc(k) == k + 1`, bare: the source and the assert in one file). The cost is
/// sandboxed time over bare time for the same number of tests.
#[cfg(feature = "wasm")]
fn throughput(ns: Option<NsSandbox>, wasm: Option<verifier::sandbox::wasm::WasmSandbox>) {
    use protocol::CodeItem;
    use verifier::judge::Judge;
    let Some(ns) = ns else { return };
    let has_wasm = wasm.is_some();
    let judge = match wasm {
        Some(w) => Judge::new(Ok(ns)).with_wasm(Ok(w)),
        None => Judge::new(Ok(ns)),
    };
    let io_src = "print(int(input()) + 1)\n";
    let fn_src = "def inc(x):\n    return x + 1\n";
    let dir = std::env::temp_dir().join(format!("rlvr-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("stream dir");
    let io_file = dir.join("io.py");
    std::fs::write(&io_file, io_src).expect("write io.py");
    let io_file = io_file.display().to_string();
    let assert_files: Vec<String> = (0..STREAM)
        .map(|k| {
            let f = dir.join(format!("assert_{k}.py"));
            std::fs::write(&f, format!("{fn_src}\nassert inc({k}) == {}\n", k + 1))
                .expect("write assert file");
            f.display().to_string()
        })
        .collect();
    let item = |backend: &str, k: usize, assert: bool| -> CodeItem {
        let (src, test) = if assert {
            (
                fn_src,
                serde_json::json!({"assert_code": format!("assert inc({k}) == {}", k + 1)}),
            )
        } else {
            (
                io_src,
                serde_json::json!({"stdin": format!("{k}"), "expected_stdout": format!("{}", k + 1)}),
            )
        };
        serde_json::from_value(serde_json::json!({
            "language": "python", "backend": backend, "source_code": src, "tests": [test],
        }))
        .expect("item")
    };
    let (judge, item) = (&judge, &item);
    let judged = |backend: &'static str, assert: bool| {
        move |k: usize| {
            judge.judge(&item(backend, k, assert)).verdict == protocol::CodeVerdict::Accepted
        }
    };
    let mut rows: Vec<(String, f64, usize)> = Vec::new();
    let mut run = |name: &str, r: (f64, usize)| rows.push((name.to_owned(), r.0, r.1));
    // Bare first and last, so a drifting machine load shows up in the table.
    let bare_io = stream(|k| bare_python(&io_file, &format!("{k}"), &format!("{}", k + 1)));
    run("I/O | bare python3 -B", bare_io);
    run("I/O | ns", stream(judged("ns", false)));
    if has_wasm {
        run("I/O | wasm", stream(judged("wasm", false)));
    }
    run(
        "assert | bare python3 -B",
        stream(|k| bare_python(&assert_files[k], "", "")),
    );
    run("assert | ns", stream(judged("ns", true)));
    if has_wasm {
        run("assert | wasm", stream(judged("wasm", true)));
    }
    run(
        "I/O | bare python3 -B (again)",
        stream(|k| bare_python(&io_file, &format!("{k}"), &format!("{}", k + 1))),
    );
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n{STREAM} trivial Python tests per stream, {WORKERS} at once on every side\n");
    println!("| tests | runner | passed | seconds | tests/s | cost vs bare |");
    println!("|---|---|---|---|---|---|");
    let bare_of = |kind: &str| {
        rows.iter()
            .find(|r| r.0.starts_with(kind) && r.0.contains("bare"))
            .map_or(f64::NAN, |r| r.1)
    };
    for (name, secs, ok) in &rows {
        let (kind, runner) = name.split_once(" | ").unwrap_or((name, ""));
        println!(
            "| {kind} | {runner} | {ok}/{STREAM} | {secs:.2} | {:.1} | {:.2}x |",
            STREAM as f64 / secs,
            secs / bare_of(kind)
        );
    }
}

#[cfg(not(feature = "wasm"))]
fn throughput(_ns: Option<NsSandbox>, _wasm: Option<()>) {}
