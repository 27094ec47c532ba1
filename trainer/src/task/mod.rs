//! Tasks: the built-in addition task, or prompts from a JSON Lines or Parquet file.
//!
//! Built-in: a problem is `"{a}+{b}="`; a correct response is `\boxed{a+b}`; the prompt id is
//! stable (`add-{a}-{b}`), so audits can follow one prompt across steps. The demo's task, the
//! largest of a few digits with a fixed held-out split, is [`largest`].
//!
//! JSON Lines: one object per line in verl's row schema: `prompt` (text, or chat messages
//! `[{"role", "content"}]`, rendered with their roles through the chat template; their contents
//! joined by newlines are the stored prompt text), the gold answer in `reward_model.ground_truth`
//! (or `ground_truth`, or `answer`), optional `data_source` and `id` (default: the line number).
//!
//! Parquet (a file name ending in `.parquet`): verl's own data files, the same columns
//! (`prompt` a string or a list of `{role, content}` structs, `reward_model` a struct with
//! `ground_truth`, ...); other columns are not read, so they may have any type. Pages may be
//! uncompressed or Snappy-compressed (verl's and Hugging Face's default); other codecs are
//! refused with the codec's name.

pub mod largest;
mod parquet_rows;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::tokenizer::ChatMessage;

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
    /// Prompt text (a chat prompt's contents joined by newlines: what the
    /// rollout store shows).
    pub prompt: String,
    /// The prompt's chat messages with their roles, where the row gave a conversation; `None`
    /// for a text prompt (one user message).
    pub messages: Option<Vec<ChatMessage>>,
    /// Gold answer as the verifier receives it.
    pub answer: String,
}

impl Problem {
    /// The prompt as chat messages: the row's own, or `prompt` as one user message.
    pub fn chat(&self) -> Vec<ChatMessage> {
        self.messages
            .clone()
            .unwrap_or_else(|| vec![ChatMessage::user(&self.prompt)])
    }
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
                messages: None,
                answer: (a + b).to_string(),
            })
            .collect()
    }
}

/// The `[task]` table: `max_operand` (built-in addition), `largest` (the demo's built-in
/// task) or `dataset` (a JSON Lines or Parquet file); exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Built-in addition with operands in `0..=max_operand`.
    #[serde(default)]
    pub max_operand: Option<u32>,
    /// Prompts from this file in verl's row schema: Parquet where the name ends in
    /// `.parquet`, else JSON Lines.
    #[serde(default)]
    pub dataset: Option<std::path::PathBuf>,
    /// The largest of `digits` distinct digits, with its own held-out split (`[task.largest]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub largest: Option<largest::LargestDigitTask>,
    /// Held-out problems for evaluation (a file in the same schema and formats); absent, the
    /// default: evaluation draws on the training problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_dataset: Option<std::path::PathBuf>,
    /// Grading options sent with every item (`[task.grading]`, the verifier's `MathOptions`,
    /// e.g. `require_boxed = false` to accept a plain final number); absent: the verifier's
    /// defaults (a `\boxed{}` answer required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grading: Option<protocol::MathOptions>,
}

/// Task loading failures.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Not exactly one of `max_operand`, `largest` and `dataset`.
    #[error("[task] needs exactly one of max_operand, largest and dataset")]
    Ambiguous,
    /// A task setting out of range.
    #[error("{0}")]
    Invalid(String),
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
    /// The file is not readable as Parquet prompt data (corrupt, an unsupported codec or
    /// column type).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
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
    /// Held-out evaluation problems (`eval_dataset`), if any.
    eval_problems: Option<Vec<Problem>>,
    /// What the format warm-up answers with.
    warmup_answers: WarmupAnswers,
}

/// The answers the format warm-up writes into `\boxed{}`: never chosen to be right.
#[derive(Debug, Clone)]
enum WarmupAnswers {
    /// Any of these, whatever the prompt (the addition task's sum range, a dataset's answers).
    Any(Vec<String>),
    /// One of the problem's own candidates (index-aligned with the training problems).
    PerProblem(Vec<Vec<String>>),
}

impl TaskConfig {
    /// Loads the task.
    pub fn load(&self) -> Result<Task, TaskError> {
        let mut task = match (self.max_operand, self.largest, &self.dataset) {
            (Some(n), None, None) => {
                let t = AdditionTask { max_operand: n };
                Task {
                    problems: t.problems(),
                    eval_problems: None,
                    warmup_answers: WarmupAnswers::Any(
                        (0..=2 * n).map(|v| v.to_string()).collect(),
                    ),
                }
            }
            (None, Some(t), None) => {
                let split = t.split()?;
                Task {
                    problems: split.train,
                    eval_problems: Some(split.held_out),
                    warmup_answers: WarmupAnswers::PerProblem(split.candidates),
                }
            }
            (None, None, Some(path)) => load_file(path)?,
            _ => return Err(TaskError::Ambiguous),
        };
        if let Some(path) = &self.eval_dataset {
            task.eval_problems = Some(load_file(path)?.problems);
        }
        Ok(task)
    }
}

/// Loads a prompt file: Parquet where the name ends in `.parquet`, else JSON Lines.
fn load_file(path: &std::path::Path) -> Result<Task, TaskError> {
    let shown = path.display().to_string();
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let rows = if is_parquet {
        parquet_rows::read(path).map_err(|e| match e {
            parquet_rows::ParquetRowsError::Io(source) => TaskError::Io {
                path: shown.clone(),
                source,
            },
            other => TaskError::Format {
                path: shown.clone(),
                reason: other.to_string(),
            },
        })?
    } else {
        let text = std::fs::read_to_string(path).map_err(|source| TaskError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v = serde_json::from_str(line).map_err(|e| TaskError::Line {
                path: shown.clone(),
                line: n + 1,
                reason: e.to_string(),
            })?;
            rows.push((n + 1, v));
        }
        rows
    };
    let mut problems = Vec::with_capacity(rows.len());
    for (n, v) in rows {
        problems.push(problem_of_row(&v, n).map_err(|reason| TaskError::Line {
            path: shown.clone(),
            line: n,
            reason,
        })?);
    }
    if problems.is_empty() {
        return Err(TaskError::Empty(shown));
    }
    let answers = problems.iter().map(|p| p.answer.clone()).collect();
    Ok(Task {
        problems,
        eval_problems: None,
        warmup_answers: WarmupAnswers::Any(answers),
    })
}

/// One row of verl's schema (a JSON object; Parquet rows are converted to one) as a problem;
/// `n` is its 1-based line or row number, the default id `line-{n}` (`row-{n}` reads the same
/// for Parquet).
fn problem_of_row(v: &serde_json::Value, n: usize) -> Result<Problem, String> {
    let (prompt, messages) = match &v["prompt"] {
        serde_json::Value::String(s) => (s.clone(), None),
        serde_json::Value::Array(msgs) => {
            let messages = msgs
                .iter()
                .map(|m| {
                    let content = m["content"]
                        .as_str()
                        .ok_or_else(|| "a prompt message has no text content".to_string())?;
                    Ok(ChatMessage {
                        role: m["role"].as_str().unwrap_or("user").to_string(),
                        content: content.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            (ChatMessage::joined(&messages), Some(messages))
        }
        _ => return Err("missing prompt (text or chat messages)".into()),
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
    .ok_or_else(|| "missing reward_model.ground_truth".to_string())?;
    let id = match &v["id"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(x) => x.to_string(),
        _ => format!("line-{n}"),
    };
    let data_source = v["data_source"].as_str().unwrap_or("jsonl").to_string();
    Ok(Problem {
        data_source,
        id,
        prompt,
        messages,
        answer: gold,
    })
}

impl Task {
    /// Every problem, in file (or fixed) order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The problems evaluation uses: the held-out set where `eval_dataset` names one, else
    /// the training problems.
    pub fn eval_problems(&self) -> &[Problem] {
        self.eval_problems.as_deref().unwrap_or(&self.problems)
    }

    /// Whether evaluation has its own problems (`eval_dataset`, the largest-digit task's
    /// held-out lists), apart from the training problems.
    pub fn has_held_out(&self) -> bool {
        self.eval_problems.is_some()
    }

    /// Draws `n` distinct problems (or all of them if there are fewer).
    pub fn sample<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<Problem> {
        self.problems
            .choose_multiple(rng, n.min(self.problems.len()))
            .cloned()
            .collect()
    }

    /// A training prompt with a response in the `\boxed{…}` format carrying an answer drawn
    /// at random, not chosen to be right: from the task's answers independently of the prompt,
    /// or from the prompt's own candidates where the task has them. Format warm-up data; it
    /// never shows a held-out problem.
    pub fn format_example<R: Rng>(&self, rng: &mut R) -> (String, String) {
        let i = rng.random_range(0..self.problems.len());
        let answers = match &self.warmup_answers {
            WarmupAnswers::Any(a) => a,
            WarmupAnswers::PerProblem(c) => &c[i],
        };
        let a = &answers[rng.random_range(0..answers.len())];
        (self.problems[i].prompt.clone(), format!("\\boxed{{{a}}}"))
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
                messages: None,
                answer: "4".into()
            }
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let loaded = TaskConfig {
            max_operand: Some(3),
            dataset: None,
            largest: None,
            eval_dataset: None,
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
            largest: None,
            eval_dataset: None,
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
                messages: Some(vec![ChatMessage::user("2+2?")]),
                answer: "4".into()
            }
        );
        assert_eq!(
            t.problems()[1],
            Problem {
                data_source: "jsonl".into(),
                id: "line-3".into(),
                prompt: "3*3=".into(),
                messages: None,
                answer: "9".into()
            }
        );
        std::fs::write(&path, "{\"prompt\": \"x\"}\n").unwrap();
        let err = TaskConfig {
            max_operand: None,
            dataset: Some(path.clone()),
            largest: None,
            eval_dataset: None,
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
                largest: None,
                eval_dataset: None,
                grading: None,
            }
            .load(),
            Err(TaskError::Ambiguous)
        ));
        // A held-out file serves evaluation; without one, evaluation uses the training set.
        std::fs::write(&path, "{\"prompt\": \"5+5=\", \"answer\": 10}\n").unwrap();
        let mut cfg = TaskConfig {
            max_operand: Some(2),
            dataset: None,
            largest: None,
            eval_dataset: Some(path.clone()),
            grading: None,
        };
        let t = cfg.load().unwrap();
        assert_eq!((t.problems().len(), t.eval_problems().len()), (9, 1));
        assert_eq!(t.eval_problems()[0].answer, "10");
        cfg.eval_dataset = None;
        assert_eq!(cfg.load().unwrap().eval_problems().len(), 9);
        std::fs::remove_file(&path).ok();
    }

    /// verl's Parquet layout (as its gsm8k preprocessing writes it: `prompt` a list of
    /// `{content, role}` structs, `reward_model` a struct, `extra_info`, and here also a binary
    /// column no problem reads) loads like the JSON Lines rows; a held-out Parquet file too.
    #[test]
    fn parquet_in_verl_layout() {
        use std::sync::Arc;

        use arrow_array::{
            ArrayRef, BinaryArray, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
        };
        use arrow_schema::{DataType, Field, Fields};

        let path = std::env::temp_dir().join(format!("task-{}.parquet", std::process::id()));
        let utf8 = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
        let msg_fields = Fields::from(vec![
            Field::new("content", DataType::Utf8, true),
            Field::new("role", DataType::Utf8, true),
        ]);
        let messages = StructArray::new(
            msg_fields.clone(),
            vec![
                utf8(&["Be brief.", "What is 2+2?", "What is 3*3?"]),
                utf8(&["system", "user", "user"]),
            ],
            None,
        );
        let prompt = ListArray::new(
            Arc::new(Field::new("item", DataType::Struct(msg_fields), true)),
            {
                let mut offsets = arrow_array::builder::OffsetBufferBuilder::<i32>::new(2);
                offsets.push_length(2);
                offsets.push_length(1);
                offsets.finish()
            },
            Arc::new(messages),
            None,
        );
        let reward_model = StructArray::from(vec![
            (
                Arc::new(Field::new("ground_truth", DataType::Utf8, true)),
                utf8(&["4", "9"]),
            ),
            (
                Arc::new(Field::new("style", DataType::Utf8, true)),
                utf8(&["rule", "rule"]),
            ),
        ]);
        let extra_info = StructArray::from(vec![(
            Arc::new(Field::new("index", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![0, 1])) as ArrayRef,
        )]);
        let batch = RecordBatch::try_from_iter(vec![
            ("data_source", utf8(&["openai/gsm8k", "openai/gsm8k"])),
            ("prompt", Arc::new(prompt) as ArrayRef),
            ("ability", utf8(&["math", "math"])),
            ("reward_model", Arc::new(reward_model) as ArrayRef),
            ("extra_info", Arc::new(extra_info) as ArrayRef),
            (
                "image",
                Arc::new(BinaryArray::from(vec![&b"\x89PNG"[..], &b""[..]])) as ArrayRef,
            ),
        ])
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            batch.schema(),
            Some(props),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let cfg = TaskConfig {
            max_operand: None,
            dataset: Some(path.clone()),
            largest: None,
            eval_dataset: Some(path.clone()),
            grading: None,
        };
        let t = cfg.load().unwrap();
        let want = [
            Problem {
                data_source: "openai/gsm8k".into(),
                id: "line-1".into(),
                prompt: "Be brief.\nWhat is 2+2?".into(),
                messages: Some(vec![
                    ChatMessage {
                        role: "system".into(),
                        content: "Be brief.".into(),
                    },
                    ChatMessage::user("What is 2+2?"),
                ]),
                answer: "4".into(),
            },
            Problem {
                data_source: "openai/gsm8k".into(),
                id: "line-2".into(),
                prompt: "What is 3*3?".into(),
                messages: Some(vec![ChatMessage::user("What is 3*3?")]),
                answer: "9".into(),
            },
        ];
        assert_eq!(t.problems(), &want[..]);
        assert_eq!(t.eval_problems(), &want[..]);

        // Not Parquet: a clear error naming the file.
        std::fs::write(&path, "{\"prompt\": \"1+1=\", \"answer\": 2}\n").unwrap();
        let err = cfg.load().unwrap_err();
        assert!(matches!(err, TaskError::Format { .. }), "{err}");
        assert!(err.to_string().contains(".parquet: parquet:"), "{err}");
        std::fs::remove_file(&path).ok();
    }
}
