//! Tasks: the built-in addition task, or prompts from a JSON Lines file.
//!
//! Built-in: a problem is `"{a}+{b}="`; a correct response is `\boxed{a+b}`; the prompt id is
//! stable (`add-{a}-{b}`), so audits can follow one prompt across steps.
//!
//! JSON Lines: one object per line in verl's row schema: `prompt` (text, or chat messages
//! `[{"role", "content"}]`, joined by newlines), the gold answer in `reward_model.ground_truth`
//! (or `ground_truth`, or `answer`), optional `data_source` and `id` (default: the line number).

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
    /// Where it comes from (`addition`, or the file's `data_source`).
    pub data_source: String,
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
                data_source: "addition".into(),
                id: format!("add-{a}-{b}"),
                prompt: format!("{a}+{b}="),
                answer: (a + b).to_string(),
            })
            .collect()
    }
}

/// The `[task]` table: either `max_operand` (the built-in task) or `dataset` (a JSON Lines
/// file); exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Built-in addition with operands in `0..=max_operand`.
    #[serde(default)]
    pub max_operand: Option<u32>,
    /// Prompts from this JSON Lines file (verl's row schema).
    #[serde(default)]
    pub dataset: Option<std::path::PathBuf>,
    /// Grading options sent with every item (`[task.grading]`, the verifier's `MathOptions`,
    /// e.g. `require_boxed = false` to accept a plain final number); absent: the verifier's
    /// defaults (a `\boxed{}` answer required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grading: Option<protocol::MathOptions>,
}

/// Task loading failures.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Neither or both of `max_operand` and `dataset`.
    #[error("[task] needs exactly one of max_operand and dataset")]
    Ambiguous,
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid problem.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no problem.
    #[error("{0}: no problems")]
    Empty(String),
}

/// A loaded task.
#[derive(Debug, Clone)]
pub struct Task {
    problems: Vec<Problem>,
    /// Answers offered by the format warm-up (the built-in task's sum range, else the
    /// dataset's answers).
    answers: Vec<String>,
}

impl TaskConfig {
    /// Loads the task.
    pub fn load(&self) -> Result<Task, TaskError> {
        match (self.max_operand, &self.dataset) {
            (Some(n), None) => {
                let t = AdditionTask { max_operand: n };
                Ok(Task {
                    problems: t.problems(),
                    answers: (0..=2 * n).map(|v| v.to_string()).collect(),
                })
            }
            (None, Some(path)) => load_jsonl(path),
            _ => Err(TaskError::Ambiguous),
        }
    }
}

fn load_jsonl(path: &std::path::Path) -> Result<Task, TaskError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| TaskError::Line {
            path: shown.clone(),
            line: n + 1,
            reason,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let prompt = match &v["prompt"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(msgs) => msgs
                .iter()
                .map(|m| {
                    m["content"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad("a prompt message has no text content".into()))
                })
                .collect::<Result<Vec<_>, _>>()?
                .join("\n"),
            _ => return Err(bad("missing prompt (text or chat messages)".into())),
        };
        let gold = [
            &v["reward_model"]["ground_truth"],
            &v["ground_truth"],
            &v["answer"],
        ]
        .into_iter()
        .find_map(|g| match g {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(x) => Some(x.to_string()),
            _ => None,
        })
        .ok_or_else(|| bad("missing reward_model.ground_truth".into()))?;
        let id = match &v["id"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(x) => x.to_string(),
            _ => format!("line-{}", n + 1),
        };
        let data_source = v["data_source"].as_str().unwrap_or("jsonl").to_string();
        problems.push(Problem {
            data_source,
            id,
            prompt,
            answer: gold,
        });
    }
    if problems.is_empty() {
        return Err(TaskError::Empty(shown));
    }
    let answers = problems.iter().map(|p| p.answer.clone()).collect();
    Ok(Task { problems, answers })
}

impl Task {
    /// Every problem, in file (or fixed) order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Draws `n` distinct problems (or all of them if there are fewer).
    pub fn sample<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<Problem> {
        self.problems
            .choose_multiple(rng, n.min(self.problems.len()))
            .cloned()
            .collect()
    }

    /// A prompt with a response in the `\boxed{…}` format carrying an answer drawn from the
    /// task's answers independently of the prompt: format warm-up data.
    pub fn format_example<R: Rng>(&self, rng: &mut R) -> (String, String) {
        let p = &self.problems[rng.random_range(0..self.problems.len())];
        let a = &self.answers[rng.random_range(0..self.answers.len())];
        (p.prompt.clone(), format!("\\boxed{{{a}}}"))
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
                data_source: "addition".into(),
                id: "add-1-3".into(),
                prompt: "1+3=".into(),
                answer: "4".into()
            }
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let loaded = TaskConfig {
            max_operand: Some(3),
            dataset: None,
            grading: None,
        }
        .load()
        .unwrap();
        let s = loaded.sample(&mut rng, 5);
        assert_eq!(s.len(), 5);
        let mut ids: Vec<_> = s.iter().map(|p| p.id.clone()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 5);
        let (_, resp) = loaded.format_example(&mut rng);
        assert!(resp.starts_with("\\boxed{") && resp.ends_with('}'));
    }

    #[test]
    fn jsonl_in_verl_row_schema() {
        let path = std::env::temp_dir().join(format!("task-{}.jsonl", std::process::id()));
        std::fs::write(
            &path,
            concat!(
                r#"{"data_source": "gsm8k", "prompt": [{"role": "user", "content": "2+2?"}], "reward_model": {"ground_truth": "4"}, "id": 7}"#,
                "\n\n",
                r#"{"prompt": "3*3=", "answer": 9}"#,
                "\n"
            ),
        )
        .unwrap();
        let t = TaskConfig {
            max_operand: None,
            dataset: Some(path.clone()),
            grading: None,
        }
        .load()
        .unwrap();
        assert_eq!(
            t.problems()[0],
            Problem {
                data_source: "gsm8k".into(),
                id: "7".into(),
                prompt: "2+2?".into(),
                answer: "4".into()
            }
        );
        assert_eq!(
            t.problems()[1],
            Problem {
                data_source: "jsonl".into(),
                id: "line-3".into(),
                prompt: "3*3=".into(),
                answer: "9".into()
            }
        );
        std::fs::write(&path, "{\"prompt\": \"x\"}\n").unwrap();
        let err = TaskConfig {
            max_operand: None,
            dataset: Some(path.clone()),
            grading: None,
        }
        .load()
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with(":1: missing reward_model.ground_truth"),
            "{err}"
        );
        assert!(matches!(
            TaskConfig {
                max_operand: Some(2),
                dataset: Some(path.clone()),
                grading: None,
            }
            .load(),
            Err(TaskError::Ambiguous)
        ));
        std::fs::remove_file(&path).ok();
    }
}
