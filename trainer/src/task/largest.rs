//! The demo's built-in task: name the largest of a few distinct digits.
//!
//! A problem is `max(3,8,1,5)=` with id `max-3815`; a correct response is `\boxed{8}`. Every
//! ordered list of `digits` distinct digits is a problem (5040 for 4 digits). A fixed
//! `held_out` of them, the lists with the smallest [`split_hash`], never occur in training
//! or in the format warm-up: they are what evaluation measures, the same in every run and for
//! every seed, like a dataset's test split.
//!
//! The format warm-up answers each training prompt with one of *its* digits drawn at random,
//! so after it the model writes `\boxed{d}` with `d` one of the listed digits, right about one
//! time in `digits`; which digit is right it can only learn from the verifier's reward.

use serde::{Deserialize, Serialize};

use super::{Gold, Problem, TaskError};

/// `[task.largest]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargestDigitTask {
    /// Digits per list, 2 to 10.
    pub digits: usize,
    /// Lists held out of training for evaluation (fewer than there are lists).
    pub held_out: usize,
}

/// The task's problems split in two, with the warm-up's answer candidates of each training
/// problem (its digits).
#[derive(Debug, Clone)]
pub(super) struct Split {
    pub(super) train: Vec<Problem>,
    pub(super) candidates: Vec<Vec<String>>,
    pub(super) held_out: Vec<Problem>,
}

/// The data source name of the task's problems.
pub const DATA_SOURCE: &str = "largest-digit";

impl LargestDigitTask {
    /// Every list of `digits` distinct digits, in lexicographic order.
    fn lists(&self) -> Vec<Vec<u8>> {
        digit_lists(self.digits)
    }

    /// Training and held-out problems.
    pub(super) fn split(&self) -> Result<Split, TaskError> {
        if !(2..=10).contains(&self.digits) {
            return Err(TaskError::Invalid(format!(
                "[task.largest] digits = {}: must be 2 to 10",
                self.digits
            )));
        }
        let mut lists = self.lists();
        if self.held_out == 0 || self.held_out >= lists.len() {
            return Err(TaskError::Invalid(format!(
                "[task.largest] held_out = {}: must be 1 to {}",
                self.held_out,
                lists.len() - 1
            )));
        }
        let mut by_hash: Vec<usize> = (0..lists.len()).collect();
        by_hash.sort_by_key(|&i| split_hash(&lists[i]));
        let mut is_held_out = vec![false; lists.len()];
        for &i in &by_hash[..self.held_out] {
            is_held_out[i] = true;
        }
        let mut split = Split {
            train: Vec::new(),
            candidates: Vec::new(),
            held_out: Vec::new(),
        };
        for (list, held) in lists.drain(..).zip(is_held_out) {
            let p = problem(&list);
            if held {
                split.held_out.push(p);
            } else {
                split.train.push(p);
                split
                    .candidates
                    .push(list.iter().map(u8::to_string).collect());
            }
        }
        Ok(split)
    }
}

/// Every list of `k` distinct digits, in lexicographic order.
pub(super) fn digit_lists(k: usize) -> Vec<Vec<u8>> {
    fn extend(prefix: &mut Vec<u8>, k: usize, out: &mut Vec<Vec<u8>>) {
        if prefix.len() == k {
            out.push(prefix.clone());
            return;
        }
        for d in 0..10u8 {
            if !prefix.contains(&d) {
                prefix.push(d);
                extend(prefix, k, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    extend(&mut Vec::new(), k, &mut out);
    out
}

fn problem(list: &[u8]) -> Problem {
    let shown: Vec<String> = list.iter().map(u8::to_string).collect();
    Problem {
        data_source: DATA_SOURCE.into(),
        id: format!("max-{}", shown.concat()),
        prompt: format!("max({})=", shown.join(",")),
        messages: None,
        gold: Gold::Math(list.iter().max().map_or(0, |&m| m).to_string()),
    }
}

/// The fixed order that picks the held-out lists: splitmix64 of the digits read as a base-11
/// number (so different lengths never collide).
pub fn split_hash(list: &[u8]) -> u64 {
    let mut z = list
        .iter()
        .fold(0u64, |acc, &d| acc * 11 + u64::from(d) + 1)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_once_and_the_held_out_lists_never_train() {
        let t = LargestDigitTask {
            digits: 4,
            held_out: 64,
        };
        let s = t.split().unwrap();
        assert_eq!((s.train.len(), s.held_out.len()), (5040 - 64, 64));
        assert_eq!(s.candidates.len(), s.train.len());
        let mut ids: Vec<&str> = s
            .train
            .iter()
            .chain(&s.held_out)
            .map(|p| p.id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 5040, "every list exactly once");
        let p = s
            .train
            .iter()
            .find(|p| p.id == "max-3815")
            .unwrap_or_else(|| s.held_out.iter().find(|p| p.id == "max-3815").unwrap());
        assert_eq!(
            (p.prompt.as_str(), &p.gold),
            ("max(3,8,1,5)=", &Gold::Math("8".into()))
        );
        // The split is a property of the task: the same every time.
        let again = t.split().unwrap();
        assert_eq!(again.held_out, s.held_out);
        // Candidates are the prompt's own digits.
        let i = s.train.iter().position(|p| p.id == "max-0123").unwrap_or(0);
        let digits: String = s.candidates[i].concat();
        assert!(
            s.train[i].id.ends_with(&digits),
            "{digits} vs {}",
            s.train[i].id
        );
    }

    #[test]
    fn bad_sizes_are_refused_by_name() {
        let e = LargestDigitTask {
            digits: 11,
            held_out: 1,
        }
        .split()
        .unwrap_err();
        assert!(e.to_string().contains("digits = 11"), "{e}");
        let e = LargestDigitTask {
            digits: 2,
            held_out: 90,
        }
        .split()
        .unwrap_err();
        assert!(
            e.to_string().contains("held_out = 90: must be 1 to 89"),
            "{e}"
        );
    }
}
