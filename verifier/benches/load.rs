//! Load test: the verifier on a loopback socket, driven at saturation by concurrent clients
//! sending math batches, for `LOAD_SECS` seconds (default 30; it stops by itself). Prints
//! throughput, latency percentiles, responses by status (429s are deliberate back-pressure),
//! connection errors and the process's peak memory. Loopback only.
//!
//! `cargo bench -p verifier --bench load`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
        let server = tokio::spawn(async move { axum::serve(listener, app(AppState::new(limits, None))).await });
        let url = format!("http://{addr}{}", protocol::route::MATH_GRADE);
        let bodies: Vec<String> = (0..16).map(batch_body).collect();
        let rss_before = rss_kb("VmRSS:");
        let deadline = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
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
                        let r = http.post(&url).header("content-type", "application/json").body(bodies[i % bodies.len()].clone()).send().await;
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
        let mut lat = Vec::new();
        let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
        let mut conn_errors = 0;
        for t in tasks {
            let (l, s, e) = t.await.expect("client task");
            lat.extend(l);
            for (k, v) in s {
                *statuses.entry(k).or_default() += v;
            }
            conn_errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| lat.get(((lat.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(0.0);
        let ok = statuses.get(&200).copied().unwrap_or(0);
        let server_errors: u64 = statuses.iter().filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum();
        println!("load: {CLIENTS} clients, {BATCH}-item math batches, {secs} s on loopback");
        println!();
        println!("| requests ok | items/s | requests/s | p50 ms | p99 ms | 429 | 5xx | connection errors | RSS before → peak |");
        println!("|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {ok} | {:.0} | {:.0} | {:.1} | {:.1} | {} | {server_errors} | {conn_errors} | {} MB → {} MB |",
            ok as f64 * BATCH as f64 / elapsed,
            ok as f64 / elapsed,
            q(0.5),
            q(0.99),
            statuses.get(&429).copied().unwrap_or(0),
            rss_before / 1024,
            rss_kb("VmHWM:") / 1024,
        );
        server.abort();
        assert_eq!(server_errors, 0, "5xx under load");
    });
}
