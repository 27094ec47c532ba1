//! The built-in task: single-operation integer addition with answers the verifier can grade.
//!
//! A problem is `"{a}+{b}="`; a correct response is `\boxed{a+b}`. The prompt id is stable
//! (`add-{a}-{b}`), so audits can follow one prompt across steps.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

/// Task settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdditionTask {
    /// Operands are drawn from `0..=max_operand`.
    pub max_operand: u32,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable id, `add-{a}-{b}`.
    pub id: String,
    /// Prompt text fed to the model.
    pub prompt: String,
    /// Gold answer as the verifier receives it.
    pub answer: String,
}

impl AdditionTask {
    /// Every problem of the task, in a fixed order.
    pub fn problems(&self) -> Vec<Problem> {
        let n = self.max_operand;
        (0..=n)
            .flat_map(|a| (0..=n).map(move |b| (a, b)))
            .map(|(a, b)| Problem {
                id: format!("add-{a}-{b}"),
                prompt: format!("{a}+{b}="),
                answer: (a + b).to_string(),
            })
            .collect()
    }

    /// Draws `n` distinct problems (or all of them if there are fewer).
    pub fn sample<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<Problem> {
        let all = self.problems();
        all.choose_multiple(rng, n.min(all.len()))
            .cloned()
            .collect()
    }

    /// A response in the task's answer format carrying an answer drawn uniformly from the
    /// task's answer range, unrelated to the problem: format warm-up data that teaches the
    /// `\boxed{…}` shape without teaching arithmetic.
    pub fn format_example<R: Rng>(&self, rng: &mut R) -> (String, String) {
        let all = self.problems();
        let p = &all[rng.random_range(0..all.len())];
        let guess = rng.random_range(0..=2 * self.max_operand);
        (p.prompt.clone(), format!("\\boxed{{{guess}}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn problems_and_sampling() {
        let t = AdditionTask { max_operand: 3 };
        let all = t.problems();
        assert_eq!(all.len(), 16);
        assert_eq!(
            all[7],
            Problem {
                id: "add-1-3".into(),
                prompt: "1+3=".into(),
                answer: "4".into()
            }
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let s = t.sample(&mut rng, 5);
        assert_eq!(s.len(), 5);
        let mut ids: Vec<_> = s.iter().map(|p| p.id.clone()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 5);
        let (_, resp) = t.format_example(&mut rng);
        assert!(resp.starts_with("\\boxed{") && resp.ends_with('}'));
    }
}
