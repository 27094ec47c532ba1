//! Load test: the verifier on a loopback socket, driven at saturation by concurrent clients,
//! one phase after another: math batches, code batches (`/v1/code/judge`, both backends) and
//! SandboxFusion `/run_code` calls, `LOAD_SECS` seconds each (default 30; it stops by itself). Prints
//! throughput, latency percentiles, responses by status (429s are deliberate back-pressure),
//! connection errors and the process's peak memory. Loopback only.
//!
//! `cargo bench -p verifier --bench load`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};
use verifier::{AppState, Limits, app};

const CLIENTS: usize = 32;
const BATCH: usize = 64;

fn batch_body(seed: usize) -> String {
    let items: Vec<String> = (0..BATCH)
        .map(|i| {
            let k = seed * BATCH + i;
            let (resp, gold) = match k % 4 {
                0 => (
                    format!("so the answer is \\\\boxed{{{}}}", k % 97),
                    format!("{}", k % 89),
                ),
                1 => (
                    "\\\\boxed{\\\\frac{x^2-1}{x-1}}".to_string(),
                    "x+1".to_string(),
                ),
                2 => (
                    "The final answer is $\\\\sqrt{2}/2$. I hope it is correct.".to_string(),
                    "\\\\frac{1}{\\\\sqrt{2}}".to_string(),
                ),
                _ => (
                    "\\\\boxed{[0, 1) \\\\cup (2, 3]}".to_string(),
                    "[0,1)\\\\cup(2,3]".to_string(),
                ),
            };
            format!(r#"{{"id":"{k}","response":"{resp}","ground_truth":"{gold}"}}"#)
        })
        .collect();
    format!(r#"{{"items":[{}]}}"#, items.join(","))
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Phase {
    name: &'static str,
    ok: u64,
    units: u64,
    elapsed: f64,
    lat: Vec<f64>,
    statuses: BTreeMap<u16, u64>,
    conn_errors: u64,
}

/// Drives `url` with `clients` concurrent clients cycling through `bodies` until `secs` pass.
async fn drive(
    name: &'static str,
    url: String,
    bodies: Vec<String>,
    units_per_body: u64,
    clients: usize,
    secs: u64,
) -> Phase {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (url, bodies) = (url.clone(), bodies.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut lat = Vec::new();
                let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
                let mut conn_errors = 0u64;
                let mut i = c;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(bodies[i % bodies.len()].clone())
                        .send()
                        .await;
                    i += 1;
                    match r {
                        Ok(resp) => {
                            let s = resp.status().as_u16();
                            let _ = resp.bytes().await;
                            *statuses.entry(s).or_default() += 1;
                            if s == 200 {
                                lat.push(t.elapsed().as_secs_f64() * 1e3);
                            } else if s == 429 {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        }
                        Err(_) => conn_errors += 1,
                    }
                }
                (lat, statuses, conn_errors)
            })
        })
        .collect();
    let mut phase = Phase {
        name,
        ok: 0,
        units: 0,
        elapsed: 0.0,
        lat: Vec::new(),
        statuses: BTreeMap::new(),
        conn_errors: 0,
    };
    for t in tasks {
        let (l, s, e) = t.await.expect("client task");
        phase.lat.extend(l);
        for (k, v) in s {
            *phase.statuses.entry(k).or_default() += v;
        }
        phase.conn_errors += e;
    }
    phase.elapsed = started.elapsed().as_secs_f64();
    phase.lat.sort_by(f64::total_cmp);
    phase.ok = phase.statuses.get(&200).copied().unwrap_or(0);
    phase.units = phase.ok * units_per_body;
    phase
}

/// Code batches: 4 Python items (auto backend: wasm, with one forced onto ns) and a C++ one.
fn code_bodies() -> Vec<String> {
    (0..8)
        .map(|k| {
            serde_json::json!({"items": [
                {"id": format!("{k}-a"), "language": "python", "source_code": "a,b=map(int,input().split())\nprint(a+b)\n",
                 "tests": [{"stdin": format!("{k} 2"), "expected_stdout": format!("{}", k + 2)}]},
                {"id": format!("{k}-b"), "language": "python", "source_code": "print(sum(range(int(input()))))\n",
                 "tests": [{"stdin": "1000", "expected_stdout": "499500"}]},
                {"id": format!("{k}-c"), "language": "python", "backend": "ns", "source_code": "print(input()[::-1])\n",
                 "tests": [{"stdin": "abc", "expected_stdout": "cba"}]},
                {"id": format!("{k}-d"), "language": "python", "source_code": "def f(x):\n    return x * 2\n",
                 "tests": [{"fn_name": "f", "args_json": format!("[{k}]"), "expected_json": format!("{}", 2 * k)}]},
                {"id": format!("{k}-e"), "language": "python", "source_code": "while True: pass\n", "time_limit_s": 0.2,
                 "tests": [{"stdin": "", "expected_stdout": ""}]}
            ]})
            .to_string()
        })
        .collect()
}

fn main() {
    let secs: u64 = std::env::var("LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = Limits { max_queue: 64, ..Limits::default() };
        let ns = NsSandbox::new(NsConfig { helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")), ..NsConfig::default() });
        let judge = Judge::new(ns);
        #[cfg(feature = "wasm")]
        let judge = judge.with_wasm(verifier::sandbox::wasm::WasmSandbox::new(&verifier::sandbox::wasm::WasmConfig::default()));
        let code_ready = judge.is_ready();
        let state = AppState::new(limits, None).with_judge(judge);
        let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });
        let rss_before = rss_kb("VmRSS:");
        let mut phases = Vec::new();
        let url = format!("http://{addr}{}", protocol::route::MATH_GRADE);
        phases.push(drive("math, 64-item batches", url, (0..16).map(batch_body).collect(), BATCH as u64, CLIENTS, secs).await);
        if code_ready {
            let url = format!("http://{addr}{}", protocol::route::CODE_JUDGE);
            phases.push(drive("code, 5-item batches (wasm + ns, one 0.2 s TLE)", url, code_bodies(), 5, 8, secs).await);
            let url = format!("http://{addr}{}", protocol::route::RUN_CODE);
            let bodies = (0..8).map(|k| serde_json::json!({"code": "print(int(input())*2)", "language": "python", "stdin": format!("{k}")}).to_string()).collect();
            phases.push(drive("run_code (SandboxFusion), python on ns", url, bodies, 1, 8, secs).await);
        } else {
            println!("code judging unavailable here (needs root and/or the wasm runtime): code phases skipped");
        }
        println!("load on loopback, {secs} s per phase; 429s are deliberate back-pressure");
        println!();
        println!("| phase | requests ok | units/s | requests/s | p50 ms | p99 ms | 429 | 5xx | connection errors |");
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut server_errors = 0;
        for p in &phases {
            let q = |x: f64| p.lat.get(((p.lat.len().max(1) - 1) as f64 * x) as usize).copied().unwrap_or(0.0);
            let errs: u64 = p.statuses.iter().filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum();
            server_errors += errs;
            println!(
                "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {errs} | {} |",
                p.name,
                p.ok,
                p.units as f64 / p.elapsed,
                p.ok as f64 / p.elapsed,
                q(0.5),
                q(0.99),
                p.statuses.get(&429).copied().unwrap_or(0),
                p.conn_errors,
            );
        }
        println!();
        println!("verifier RSS: {} MB before, {} MB peak", rss_before / 1024, rss_kb("VmHWM:") / 1024);
        server.abort();
        assert_eq!(server_errors, 0, "5xx under load");
    });
}
