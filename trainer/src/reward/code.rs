//! Code rewards: `[reward.code]`, the [`CodeItem`] a response becomes, and the
//! [`Graded`] a [`CodeResult`] becomes (per-test results kept, their text capped).

use protocol::{BackendChoice, CodeItem, CodeOptions, CodeResult, CodeVerdict, RewardMode};
use serde::{Deserialize, Serialize};

use super::Graded;
use crate::task::CodeGold;

/// `[reward.code]`: how code responses are judged. Every key optional; unknown keys refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeRewardConfig {
    /// Sandbox: `auto` (default: wasm for Python where the verifier has it, else ns), `wasm`
    /// or `ns`.
    pub backend: BackendChoice,
    /// `binary` (default: 1 only when every test passes) or `pass_rate` (passed / total).
    pub reward: RewardMode,
    /// Wall-clock limit per test run, seconds, for rows that set none. Default 10; at most 60.
    pub time_limit_s: f64,
    /// Memory limit per run, MiB, for rows that set none. Default 1024; 16 to 8192.
    pub memory_limit_mb: u64,
    /// Stop an item at its first failing test (faster; `passed` then counts only the tests
    /// run). Default false.
    pub stop_on_first_failure: bool,
    /// Relative tolerance for numbers in outputs and call results. Default none (exact).
    pub float_rel_tol: Option<f64>,
    /// Characters kept of each output, error and message text in the stored
    /// `verifier_result`. Default 512.
    pub detail_chars: usize,
}

impl Default for CodeRewardConfig {
    fn default() -> Self {
        CodeRewardConfig {
            backend: BackendChoice::Auto,
            reward: RewardMode::Binary,
            time_limit_s: protocol::code::default_time_limit_s(),
            memory_limit_mb: protocol::code::default_memory_limit_mb(),
            stop_on_first_failure: false,
            float_rel_tol: None,
            detail_chars: 512,
        }
    }
}

impl CodeRewardConfig {
    /// Checks the ranges the verifier enforces, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let max = protocol::MAX_TIME_LIMIT_S;
        if !(self.time_limit_s.is_finite() && self.time_limit_s > 0.0 && self.time_limit_s <= max) {
            return Err(format!(
                "reward.code.time_limit_s = {}: must be in (0, {max}]",
                self.time_limit_s
            ));
        }
        let mem = protocol::MEMORY_LIMIT_MB_RANGE;
        if !mem.contains(&self.memory_limit_mb) {
            return Err(format!(
                "reward.code.memory_limit_mb = {}: must be {} to {}",
                self.memory_limit_mb,
                mem.start(),
                mem.end()
            ));
        }
        if let Some(t) = self.float_rel_tol
            && !(t.is_finite() && (0.0..1.0).contains(&t))
        {
            return Err(format!(
                "reward.code.float_rel_tol = {t}: must be in [0, 1)"
            ));
        }
        Ok(())
    }

    /// The judge request item for `response` to a problem with `gold`'s tests.
    pub fn item(&self, id: String, gold: &CodeGold, response: &str) -> CodeItem {
        CodeItem {
            id: Some(id),
            language: gold.language.clone(),
            source_code: None,
            response: Some(response.to_string()),
            tests: gold.tests.clone(),
            time_limit_s: self.time_limit_s(gold),
            memory_limit_mb: gold.memory_limit_mb.unwrap_or(self.memory_limit_mb),
            backend: self.backend,
            options: Some(CodeOptions {
                reward: self.reward,
                stop_on_first_failure: self.stop_on_first_failure,
                float_rel_tol: self.float_rel_tol,
            }),
            expected_verdict: None,
            alt_verdicts: None,
            source: None,
            notes: None,
        }
    }

    /// The time limit of `gold`'s tests, seconds: the row's, else this config's.
    pub fn time_limit_s(&self, gold: &CodeGold) -> f64 {
        gold.time_limit_s.unwrap_or(self.time_limit_s)
    }

    /// The judgement of `response` as the trainer keeps it: `extracted` is the program the
    /// verifier ran (the response's last fenced block), `detail` the whole result with every
    /// output, error and message text cut to `detail_chars`, plus the item's `time_limit_s`
    /// (for the audit's near-the-limit check).
    pub fn graded(&self, mut r: CodeResult, response: &str, time_limit_s: f64) -> Graded {
        let cap = |s: &mut String| {
            if let Some((at, _)) = s.char_indices().nth(self.detail_chars) {
                s.truncate(at);
                s.push('…');
            }
        };
        for run in r
            .tests
            .iter_mut()
            .map(|t| &mut t.run)
            .chain(r.compile.as_mut())
        {
            cap(&mut run.stdout_head);
            cap(&mut run.stderr_head);
        }
        if let Some(m) = r.message.as_mut() {
            cap(m);
        }
        let mut detail = serde_json::to_value(&r).unwrap_or(serde_json::Value::Null);
        if let Some(o) = detail.as_object_mut() {
            o.insert("time_limit_s".into(), time_limit_s.into());
        }
        Graded {
            reward: r.reward,
            correct: r.verdict == CodeVerdict::Accepted,
            verdict: r.verdict.as_str().to_string(),
            extracted: verifier::judge::harness::last_code_block(response),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_validated_and_details_capped() {
        let mut c = CodeRewardConfig::default();
        assert!(c.validate().is_ok());
        c.time_limit_s = 61.0;
        assert!(c.validate().unwrap_err().contains("time_limit_s"));
        c.time_limit_s = 1.0;
        c.memory_limit_mb = 8;
        assert!(c.validate().unwrap_err().contains("memory_limit_mb"));
        c.memory_limit_mb = 64;
        c.float_rel_tol = Some(1.5);
        assert!(c.validate().unwrap_err().contains("float_rel_tol"));
        c.float_rel_tol = None;
        c.detail_chars = 4;
        let r = CodeResult {
            id: None,
            verdict: CodeVerdict::RuntimeError,
            reward: 0.0,
            passed: 0,
            total: 1,
            compile: None,
            tests: vec![protocol::TestResult {
                verdict: CodeVerdict::RuntimeError,
                run: protocol::RunReport {
                    stderr_head: "Traceback: ZeroDivisionError".into(),
                    ..Default::default()
                },
            }],
            backend: protocol::Backend::Ns,
            message: None,
            fallback: None,
            elapsed_us: 1,
        };
        let g = c.graded(r, "```python\nprint(1/0)\n```", 2.0);
        assert_eq!(g.verdict, "runtime_error");
        assert!(!g.correct);
        assert_eq!(g.extracted.as_deref(), Some("print(1/0)\n"));
        assert_eq!(g.detail["tests"][0]["stderr_head"], "Trac…");
        assert_eq!(g.detail["total"], 1);
        assert_eq!(g.detail["time_limit_s"], 2.0);
    }
}
