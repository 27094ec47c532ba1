//! The built-in code task: write the short Python program that prints the largest, the sum
//! or the count of a few distinct digits.
//!
//! A problem is `max 3,8,1:` (or `sum …`, `len …`) with id `prog-max-381`; its test runs the
//! response's last fenced block with empty standard input and expects `8` on standard output,
//! so ```` ```\n# max\nprint(max([3,8,1]))\n``` ```` is accepted, and so is any other program
//! printing 8. Which builtin the prompt's word asks the program to call is what the model
//! learns, from the sandbox's verdicts alone (the warm-up below never pairs them).
//!
//! Every (word, ordered list of `digits` distinct digits) is a problem; a fixed `held_out` of
//! them, the lists with the smallest [`super::largest::split_hash`] (for every word), never
//! occur in training or in the format warm-up. The warm-up answers each training prompt with
//! [`program`]: a comment restating the prompt's word, then `print(f([its digits]))` with `f`
//! one of `max`, `sum`, `len` drawn at random, right one time in three (a little more: `len` is
//! 3, which some lists' max or sum also is). After it the model writes runnable programs over the
//! prompt's digits with the word a few characters before the call; which builtin the word means
//! it can only learn from the reward. (Without the comment the word sits at the far end of the
//! prompt, which the warm-up never taught the model to look at, and RL did not learn in 40 or 60
//! steps over 3 seeds: docs/training.md, "Code tasks".)

use protocol::{CodeTest, IoTest, Language};
use serde::{Deserialize, Serialize};

use super::largest::{digit_lists, split_hash};
use super::{CodeGold, Gold, Problem, TaskError};

/// `[task.programs]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramTask {
    /// Digits per list, 2 to 6.
    pub digits: usize,
    /// Lists held out of training for evaluation, each with all three words (fewer lists
    /// than there are).
    pub held_out: usize,
}

/// The data source name of the task's problems.
pub const DATA_SOURCE: &str = "programs";

/// The prompt words and the builtin each means. (With `max`, `min`, `sum`, and with words
/// unlike the names, the tiny model drifted to one builtin for every prompt; with these too:
/// see docs/training.md, "Code tasks".)
const OPS: [(&str, &str); 3] = [("max", "max"), ("sum", "sum"), ("len", "len")];

/// The task split, with each training problem's warm-up responses.
#[derive(Debug, Clone)]
pub(super) struct Split {
    pub(super) train: Vec<Problem>,
    pub(super) warmup: Vec<Vec<String>>,
    pub(super) held_out: Vec<Problem>,
}

/// A response running `program`, in the format the verifier extracts (the last fenced block).
pub fn fenced(program: &str) -> String {
    format!("```\n{program}\n```")
}

impl ProgramTask {
    /// Training and held-out problems.
    pub(super) fn split(&self) -> Result<Split, TaskError> {
        if !(2..=6).contains(&self.digits) {
            return Err(TaskError::Invalid(format!(
                "[task.programs] digits = {}: must be 2 to 6",
                self.digits
            )));
        }
        let mut lists = digit_lists(self.digits);
        if self.held_out == 0 || self.held_out >= lists.len() {
            return Err(TaskError::Invalid(format!(
                "[task.programs] held_out = {}: must be 1 to {}",
                self.held_out,
                lists.len() - 1
            )));
        }
        lists.sort_by_key(|l| split_hash(l));
        let mut split = Split {
            train: Vec::new(),
            warmup: Vec::new(),
            held_out: Vec::new(),
        };
        let held: Vec<Vec<u8>> = lists.drain(..self.held_out).collect();
        lists.sort();
        for (word, builtin) in OPS {
            for list in &lists {
                split.train.push(problem(word, builtin, list));
                let shown = shown(list);
                split.warmup.push(
                    OPS.iter()
                        .map(|(_, f)| fenced(&program(word, f, &shown)))
                        .collect(),
                );
            }
            for list in &held {
                split.held_out.push(problem(word, builtin, list));
            }
        }
        Ok(split)
    }
}

/// The program the task's format asks for: a comment restating the prompt's word, then the
/// call (`# max` / `print(max([3,8,1]))`). The warm-up writes the comment right and the call's
/// builtin at random: restating the word is format, calling the builtin it names is learned.
pub fn program(word: &str, builtin: &str, shown: &str) -> String {
    format!("# {word}\nprint({builtin}([{shown}]))")
}

fn shown(list: &[u8]) -> String {
    list.iter().map(u8::to_string).collect::<Vec<_>>().join(",")
}

fn problem(word: &str, builtin: &str, list: &[u8]) -> Problem {
    let value: u32 = match builtin {
        "max" => list.iter().copied().max().map_or(0, u32::from),
        "len" => list.len() as u32,
        _ => list.iter().map(|&d| u32::from(d)).sum(),
    };
    Problem {
        data_source: DATA_SOURCE.into(),
        id: format!(
            "prog-{builtin}-{}",
            list.iter().map(u8::to_string).collect::<String>()
        ),
        prompt: format!("{word} {}:", shown(list)),
        messages: None,
        gold: Gold::Code(CodeGold {
            language: Language::Python,
            tests: vec![CodeTest::Io(IoTest {
                stdin: String::new(),
                expected_stdout: value.to_string(),
            })],
            time_limit_s: None,
            memory_limit_mb: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_words_per_list_and_held_out_lists_never_train() {
        let t = ProgramTask {
            digits: 3,
            held_out: 24,
        };
        let s = t.split().unwrap();
        assert_eq!(s.train.len(), 3 * (720 - 24));
        assert_eq!(s.held_out.len(), 3 * 24);
        assert_eq!(s.warmup.len(), s.train.len());
        let p = s
            .train
            .iter()
            .chain(&s.held_out)
            .find(|p| p.id == "prog-sum-381")
            .unwrap();
        assert_eq!(p.prompt, "sum 3,8,1:");
        let Gold::Code(g) = &p.gold else {
            panic!("a code problem")
        };
        assert_eq!(
            g.tests,
            vec![CodeTest::Io(IoTest {
                stdin: String::new(),
                expected_stdout: "12".into()
            })]
        );
        let train_ids: std::collections::HashSet<&str> =
            s.train.iter().map(|p| p.id.as_str()).collect();
        assert!(
            s.held_out
                .iter()
                .all(|p| !train_ids.contains(p.id.as_str()))
        );
        let i = s.train.iter().position(|p| p.id == "prog-len-381").unwrap();
        assert!(s.warmup[i].contains(&"```\n# len\nprint(len([3,8,1]))\n```".to_string()));
        assert!(s.warmup[i].contains(&"```\n# len\nprint(max([3,8,1]))\n```".to_string()));
        assert_eq!(s.warmup[i].len(), 3);
        assert!(
            ProgramTask {
                digits: 7,
                held_out: 1
            }
            .split()
            .unwrap_err()
            .to_string()
            .contains("digits = 7")
        );
    }
}
