//! Prometheus metrics, kept with atomics and rendered in the text exposition format at
//! `GET /metrics`: requests by route and status, latency histograms by route, math and code
//! verdict counts, queue depth and CPU work in flight.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::{CodeVerdict, MathVerdict};

/// Histogram bucket upper bounds, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// All counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    verdicts: [AtomicU64; 5],
    code_verdicts: [AtomicU64; CodeVerdict::ALL.len()],
}

fn verdict_index(v: MathVerdict) -> usize {
    match v {
        MathVerdict::Correct => 0,
        MathVerdict::Incorrect => 1,
        MathVerdict::NoAnswer => 2,
        MathVerdict::Unparseable => 3,
        MathVerdict::LimitExceeded => 4,
    }
}

const VERDICTS: [MathVerdict; 5] = [
    MathVerdict::Correct,
    MathVerdict::Incorrect,
    MathVerdict::NoAnswer,
    MathVerdict::Unparseable,
    MathVerdict::LimitExceeded,
];

impl Metrics {
    /// Records one finished request.
    pub fn observe_request(&self, route: &str, status: u16, seconds: f64) {
        let mut r = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *r.entry((route.to_string(), status)).or_default() += 1;
        drop(r);
        let mut l = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = l.entry(route.to_string()).or_default();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Counts a code verdict.
    pub fn observe_code_verdict(&self, v: CodeVerdict) {
        if let Some(i) = CodeVerdict::ALL.iter().position(|x| *x == v) {
            self.code_verdicts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a math verdict.
    pub fn observe_verdict(&self, v: MathVerdict) {
        self.verdicts[verdict_index(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text, with the current queue depth and work in flight.
    pub fn render(&self, queued: usize, in_flight: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP verifier_requests_total HTTP requests by route and status.\n# TYPE verifier_requests_total counter\n");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            out.push_str(&format!(
                "verifier_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP verifier_request_duration_seconds Request latency by route.\n# TYPE verifier_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "verifier_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}\n",
                    h.buckets[i]
                ));
            }
            out.push_str(&format!(
                "verifier_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n",
                h.count
            ));
            out.push_str(&format!(
                "verifier_request_duration_seconds_sum{{route=\"{route}\"}} {}\n",
                h.sum
            ));
            out.push_str(&format!(
                "verifier_request_duration_seconds_count{{route=\"{route}\"}} {}\n",
                h.count
            ));
        }
        out.push_str("# HELP verifier_math_verdicts_total Math items graded, by verdict.\n# TYPE verifier_math_verdicts_total counter\n");
        for v in VERDICTS {
            let n = self.verdicts[verdict_index(v)].load(Ordering::Relaxed);
            out.push_str(&format!(
                "verifier_math_verdicts_total{{verdict=\"{}\"}} {n}\n",
                v.as_str()
            ));
        }
        out.push_str("# HELP verifier_code_verdicts_total Code submissions judged, by verdict.\n# TYPE verifier_code_verdicts_total counter\n");
        for (i, v) in CodeVerdict::ALL.iter().enumerate() {
            let n = self.code_verdicts[i].load(Ordering::Relaxed);
            out.push_str(&format!(
                "verifier_code_verdicts_total{{verdict=\"{}\"}} {n}\n",
                v.as_str()
            ));
        }
        out.push_str("# HELP verifier_queue_depth Requests waiting for a CPU permit.\n# TYPE verifier_queue_depth gauge\n");
        out.push_str(&format!("verifier_queue_depth {queued}\n"));
        out.push_str("# HELP verifier_cpu_work_in_flight CPU permits held (grading or sandbox runs in progress).\n# TYPE verifier_cpu_work_in_flight gauge\n");
        out.push_str(&format!("verifier_cpu_work_in_flight {in_flight}\n"));
        out
    }
}
