//! Code smells among a run's judged programs, read from each rollout's stored
//! `verifier_result` (the verifier's `CodeResult` with the trainer's `time_limit_s`):
//!
//! * `accepted_trivial_program`: accepted with an empty program or one of fewer than
//!   [`TRIVIAL_PROGRAM_CHARS`] non-blank characters (a constant print passing weak tests);
//! * `same_output_all_tests`: accepted, two or more tests, and every test printed the same
//!   (the tests cannot tell a constant answer from a solution);
//! * `near_time_limit`: accepted with a test run at [`NEAR_LIMIT_SHARE`] of the time limit or
//!   more (flaky under load; a slower machine would call it `time_limit`);
//! * `sandbox_error`: the verifier could not run the program: a reward of 0 that is not the
//!   policy's doing (check the verifier's sandboxes).

use serde_json::Value;

use super::{RolloutView, Suspicion};

/// Programs shorter than this many non-blank characters are trivial.
pub const TRIVIAL_PROGRAM_CHARS: usize = 10;

/// A test run at this share of the time limit or more is near it.
pub const NEAR_LIMIT_SHARE: f64 = 0.8;

/// The smells of one code rollout (accepted or `sandbox_error`; others have none).
pub(super) fn smells(r: &RolloutView) -> Vec<Suspicion> {
    let flag = |kind: &str, detail: String| Suspicion {
        kind: kind.to_string(),
        step: r.step,
        prompt_id: r.prompt_id.clone(),
        sample_idx: r.sample_idx,
        reward: r.reward,
        detail,
    };
    let Ok(v) = serde_json::from_str::<Value>(&r.verifier_result) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if r.verdict == "sandbox_error" {
        let why = v["message"].as_str().unwrap_or("no message");
        out.push(flag("sandbox_error", format!("not run: {why}")));
        return out;
    }
    if r.verdict != "accepted" {
        return out;
    }
    let program = r.extracted.as_deref().unwrap_or("");
    let chars = program.chars().filter(|c| !c.is_whitespace()).count();
    if chars < TRIVIAL_PROGRAM_CHARS {
        out.push(flag(
            "accepted_trivial_program",
            format!("{chars} non-blank characters: {:?}", program.trim()),
        ));
    }
    let tests = v["tests"].as_array().map(Vec::as_slice).unwrap_or_default();
    let outputs: Vec<&str> = tests
        .iter()
        .filter_map(|t| t["stdout_head"].as_str())
        .collect();
    if outputs.len() >= 2
        && outputs
            .iter()
            .all(|o| o.trim_end() == outputs[0].trim_end())
    {
        out.push(flag(
            "same_output_all_tests",
            format!(
                "{} tests, each printed {:?}",
                outputs.len(),
                outputs[0].trim_end()
            ),
        ));
    }
    if let Some(limit_s) = v["time_limit_s"].as_f64() {
        let slowest_ms = tests
            .iter()
            .filter_map(|t| t["time_ms"].as_f64())
            .fold(0f64, f64::max);
        if slowest_ms >= NEAR_LIMIT_SHARE * limit_s * 1000.0 {
            out.push(flag(
                "near_time_limit",
                format!("slowest test {slowest_ms:.0} ms of a {limit_s} s limit"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn view(verdict: &str, program: &str, result: serde_json::Value) -> RolloutView {
        RolloutView {
            step: 3,
            prompt_id: "p".into(),
            data_source: "apps".into(),
            sample_idx: 1,
            prompt: String::new(),
            response: format!("```\n{program}```"),
            ground_truth: String::new(),
            extracted: Some(program.into()),
            verdict: verdict.into(),
            reward: 1.0,
            advantage: 0.0,
            num_tokens: 1,
            mean_entropy: 0.0,
            verifier_result: result.to_string(),
        }
    }

    fn kinds(v: &RolloutView) -> Vec<String> {
        smells(v).into_iter().map(|s| s.kind).collect()
    }

    #[test]
    fn each_smell_and_its_absence() {
        let fine = json!({"time_limit_s": 2.0, "tests": [
            {"stdout_head": "1\n", "time_ms": 30.0}, {"stdout_head": "2\n", "time_ms": 40.0}]});
        assert!(kinds(&view("accepted", "print(int(input())+1)\n", fine.clone())).is_empty());
        assert_eq!(
            kinds(&view("accepted", "print(2)\n", fine.clone())),
            ["accepted_trivial_program"]
        );
        assert_eq!(
            kinds(&view("accepted", "", fine.clone())),
            ["accepted_trivial_program"]
        );
        let same = json!({"tests": [{"stdout_head": "7\n"}, {"stdout_head": "7"}]});
        assert_eq!(
            kinds(&view("accepted", "print(int(input())*0+7)\n", same)),
            ["same_output_all_tests"]
        );
        let slow = json!({"time_limit_s": 1.0, "tests": [{"stdout_head": "1", "time_ms": 850.0}]});
        let s = smells(&view("accepted", "print(int(input())+1)\n", slow));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, "near_time_limit");
        assert_eq!(s[0].detail, "slowest test 850 ms of a 1 s limit");
        let broken = json!({"message": "ns: no cgroup"});
        assert_eq!(
            smells(&view("sandbox_error", "print(1)", broken))[0].detail,
            "not run: ns: no cgroup"
        );
        // Rejected programs smell of nothing here.
        assert!(kinds(&view("wrong_answer", "", fine)).is_empty());
    }
}
