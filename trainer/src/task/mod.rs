//! Tasks: the built-in addition task, the built-in largest-digit (math) and programs (code)
//! tasks, alone or together, or prompts from a JSON Lines or Parquet file.
//!
//! Built-in: a problem is `"{a}+{b}="`; a correct response is `\boxed{a+b}`; the prompt id is
//! stable (`add-{a}-{b}`), so audits can follow one prompt across steps. The demo's task, the
//! largest of a few digits with a fixed held-out split, is [`largest`]; its code counterpart,
//! a one-line program printing the largest, smallest or sum of a few digits, is [`programs`].
//! Both together make a mixed task: every step then holds math and code prompts.
//!
//! Every problem has a typed [`Gold`]: a math answer (graded by `/v1/math/grade`) or code
//! tests (judged by `/v1/code/judge`); which one a file row holds is resolved when the task
//! loads (see [`crate::reward::kind`]).
//!
//! JSON Lines: one object per line in verl's row schema: `prompt` (text, or chat messages
//! `[{"role", "content"}]`, rendered with their roles through the chat template; their contents
//! joined by newlines are the stored prompt text), the gold answer in `reward_model.ground_truth`
//! (or `ground_truth`, or `answer`), optional `data_source`, `ability` and `id` (default: the
//! line number). Code rows hold tests instead, in the layouts [`code_rows`] lists.
//!
//! Parquet (a file name ending in `.parquet`): verl's own data files, the same columns
//! (`prompt` a string or a list of `{role, content}` structs, `reward_model` a struct with
//! `ground_truth`, ...); other columns are not read, so they may have any type. Pages may be
//! uncompressed or Snappy-compressed (verl's and Hugging Face's default); other codecs are
//! refused with the codec's name.

mod code_rows;
pub mod largest;
mod parquet_rows;
pub mod programs;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::reward::{RewardConfig, RewardKind, kind};
use crate::tokenizer::ChatMessage;

/// Task settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdditionTask {
    /// Operands are drawn from `0..=max_operand`.
    pub max_operand: u32,
}

/// What a response is graded against; its kind picks the verifier endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Gold {
    /// A math answer, as `/v1/math/grade` receives it.
    Math(String),
    /// Code tests, for `/v1/code/judge`.
    Code(CodeGold),
}

/// A code problem's tests, in the verifier's own format.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeGold {
    /// The language the program must be written in (default `python`).
    pub language: protocol::Language,
    /// The tests, run in order.
    pub tests: Vec<protocol::CodeTest>,
    /// The row's wall-clock limit per test, seconds; `None`: `[reward.code]`'s.
    pub time_limit_s: Option<f64>,
    /// The row's memory limit, MiB; `None`: `[reward.code]`'s.
    pub memory_limit_mb: Option<u64>,
}

/// Longest ground-truth text stored with each rollout, characters (code tests can be large).
pub const STORED_GOLD_CHARS: usize = 4096;

impl Gold {
    /// The endpoint kind.
    pub fn kind(&self) -> RewardKind {
        match self {
            Gold::Math(_) => RewardKind::Math,
            Gold::Code(_) => RewardKind::Code,
        }
    }

    /// The text stored as the rollout's `ground_truth`: the math answer, or the code tests as
    /// JSON (`{"language", "tests"}`), cut at [`STORED_GOLD_CHARS`].
    pub fn stored_text(&self) -> String {
        match self {
            Gold::Math(a) => a.clone(),
            Gold::Code(c) => {
                let mut text =
                    serde_json::json!({"language": c.language, "tests": c.tests}).to_string();
                if let Some((at, _)) = text.char_indices().nth(STORED_GOLD_CHARS) {
                    text.truncate(at);
                    text.push('…');
                }
                text
            }
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq)]
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
    /// What responses are graded against.
    pub gold: Gold,
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
                gold: Gold::Math((a + b).to_string()),
            })
            .collect()
    }
}

/// The `[task]` table: `max_operand` (built-in addition), `dataset` (a JSON Lines or Parquet
/// file), or the built-ins `largest` (the demo's math task) and `programs` (its code
/// counterpart), one or both.
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
    /// One-line programs printing the largest, smallest or sum of a few digits, judged in the
    /// sandbox, with their own held-out split (`[task.programs]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programs: Option<programs::ProgramTask>,
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
    /// Not exactly one of `max_operand`, `dataset` and the built-ins.
    #[error("{AMBIGUOUS}")]
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

/// What [`TaskError::Ambiguous`] says.
pub const AMBIGUOUS: &str =
    "[task] needs exactly one of max_operand, dataset, and the built-ins largest and/or programs";

/// A loaded task.
#[derive(Debug, Clone)]
pub struct Task {
    problems: Vec<Problem>,
    /// Held-out evaluation problems (`eval_dataset`), if any.
    eval_problems: Option<Vec<Problem>>,
    /// What the format warm-up answers with.
    warmup_answers: WarmupAnswers,
}

/// What the format warm-up answers with: never chosen to be right.
#[derive(Debug, Clone)]
enum WarmupAnswers {
    /// Math problems: `\boxed{a}` with `a` any of these, whatever the prompt (the addition
    /// task's sum range, a dataset's answers); code problems: [`CODE_WARMUP`].
    Any(Vec<String>),
    /// Whole responses, one of the problem's own (index-aligned with the training problems).
    PerProblem(Vec<Vec<String>>),
}

/// The format warm-up's response to a code row of a dataset: a fenced Python program printing
/// nothing (the format, not an answer).
pub const CODE_WARMUP: &str = "```python\nprint()\n```";

impl TaskConfig {
    /// Loads the task; file rows are routed to math or code by `reward` (`[reward.kinds]`).
    pub fn load(&self, reward: &RewardConfig) -> Result<Task, TaskError> {
        let builtins = self.largest.is_some() || self.programs.is_some();
        let mut task = match (self.max_operand, &self.dataset, builtins) {
            (Some(n), None, false) => {
                let t = AdditionTask { max_operand: n };
                Task {
                    problems: t.problems(),
                    eval_problems: None,
                    warmup_answers: WarmupAnswers::Any(
                        (0..=2 * n).map(|v| v.to_string()).collect(),
                    ),
                }
            }
            (None, Some(path), false) => load_file(path, &reward.kinds)?,
            (None, None, true) => self.builtins()?,
            _ => return Err(TaskError::Ambiguous),
        };
        if let Some(path) = &self.eval_dataset {
            task.eval_problems = Some(load_file(path, &reward.kinds)?.problems);
        }
        Ok(task)
    }

    /// `largest` and/or `programs`: their training problems, held-out problems and warm-up
    /// responses, math first.
    fn builtins(&self) -> Result<Task, TaskError> {
        let (mut train, mut held_out, mut warmup) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(t) = self.largest {
            let split = t.split()?;
            train.extend(split.train);
            held_out.extend(split.held_out);
            warmup.extend(split.candidates.into_iter().map(|digits| {
                digits
                    .iter()
                    .map(|d| format!("\\boxed{{{d}}}"))
                    .collect::<Vec<_>>()
            }));
        }
        if let Some(t) = self.programs {
            let split = t.split()?;
            train.extend(split.train);
            held_out.extend(split.held_out);
            warmup.extend(split.warmup);
        }
        Ok(Task {
            problems: train,
            eval_problems: Some(held_out),
            warmup_answers: WarmupAnswers::PerProblem(warmup),
        })
    }
}

/// Loads a prompt file: Parquet where the name ends in `.parquet`, else JSON Lines.
fn load_file(
    path: &std::path::Path,
    kinds: &std::collections::BTreeMap<String, RewardKind>,
) -> Result<Task, TaskError> {
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
        problems.push(
            problem_of_row(&v, n, kinds).map_err(|reason| TaskError::Line {
                path: shown.clone(),
                line: n,
                reason,
            })?,
        );
    }
    if problems.is_empty() {
        return Err(TaskError::Empty(shown));
    }
    let answers = problems
        .iter()
        .filter_map(|p| match &p.gold {
            Gold::Math(a) => Some(a.clone()),
            Gold::Code(_) => None,
        })
        .collect();
    Ok(Task {
        problems,
        eval_problems: None,
        warmup_answers: WarmupAnswers::Any(answers),
    })
}

/// One row of verl's schema (a JSON object; Parquet rows are converted to one) as a problem;
/// `n` is its 1-based line or row number, the default id `line-{n}` (`row-{n}` reads the same
/// for Parquet). Its kind: `kinds`, the source table or `ability` where they name one (a
/// code row without tests is then an error), else code where the row holds tests.
fn problem_of_row(
    v: &serde_json::Value,
    n: usize,
    kinds: &std::collections::BTreeMap<String, RewardKind>,
) -> Result<Problem, String> {
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
    let data_source = v["data_source"].as_str().unwrap_or("jsonl").to_string();
    let declared = kind::declared_kind(kinds, &data_source, v["ability"].as_str());
    let code = match declared {
        Some(RewardKind::Math) => None,
        Some(RewardKind::Code) => Some(code_rows::code_gold(v, true)?.ok_or_else(|| {
            format!(
                "reward_model.ground_truth: data_source {data_source:?} is code, but the row has no tests (inputs/outputs, fn_name, tests, test + entry_point or test_list)"
            )
        })?),
        None => code_rows::code_gold(v, false)?,
    };
    let id = match &v["id"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(x) => x.to_string(),
        _ => format!("line-{n}"),
    };
    if let Some(code) = code {
        return Ok(Problem {
            data_source,
            id,
            prompt,
            messages,
            gold: Gold::Code(code),
        });
    }
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
    Ok(Problem {
        data_source,
        id,
        prompt,
        messages,
        gold: Gold::Math(gold),
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

    /// Draws `n` distinct problems (or all of them if there are fewer). A task holding both
    /// kinds draws each kind apart, in proportion to its share of the problems but at least
    /// one of each (where `n` ≥ 2), math first: every step then holds both.
    pub fn sample<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<Problem> {
        let code: Vec<&Problem> = self
            .problems
            .iter()
            .filter(|p| p.gold.kind() == RewardKind::Code)
            .collect();
        if code.is_empty() || code.len() == self.problems.len() || n < 2 {
            return self
                .problems
                .choose_multiple(rng, n.min(self.problems.len()))
                .cloned()
                .collect();
        }
        let math: Vec<&Problem> = self
            .problems
            .iter()
            .filter(|p| p.gold.kind() == RewardKind::Math)
            .collect();
        let share = (n * code.len()) as f64 / self.problems.len() as f64;
        let n_code = (share.round() as usize).clamp(1, n - 1).min(code.len());
        let n_math = (n - n_code).min(math.len());
        let mut out: Vec<Problem> = math
            .choose_multiple(rng, n_math)
            .map(|&p| p.clone())
            .collect();
        out.extend(code.choose_multiple(rng, n_code).map(|&p| p.clone()));
        out
    }

    /// A training prompt with a response in its kind's format carrying an answer drawn at
    /// random, not chosen to be right: a math answer `\boxed{…}` from the task's answers
    /// independently of the prompt, or one of the prompt's own candidate responses where the
    /// task has them (the built-ins), or for a dataset's code row [`CODE_WARMUP`]. Format
    /// warm-up data; it never shows a held-out problem.
    pub fn format_example<R: Rng>(&self, rng: &mut R) -> (String, String) {
        let i = rng.random_range(0..self.problems.len());
        let response = match (&self.warmup_answers, &self.problems[i].gold) {
            (WarmupAnswers::PerProblem(c), _) => c[i][rng.random_range(0..c[i].len())].clone(),
            (WarmupAnswers::Any(_), Gold::Code(_)) => CODE_WARMUP.to_string(),
            (WarmupAnswers::Any(a), Gold::Math(_)) => {
                format!("\\boxed{{{}}}", a[rng.random_range(0..a.len())])
            }
        };
        (self.problems[i].prompt.clone(), response)
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
                gold: Gold::Math("4".into())
            }
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let loaded = TaskConfig {
            max_operand: Some(3),
            dataset: None,
            largest: None,
            programs: None,
            eval_dataset: None,
            grading: None,
        }
        .load(&RewardConfig::default())
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
            programs: None,
            eval_dataset: None,
            grading: None,
        }
        .load(&RewardConfig::default())
        .unwrap();
        assert_eq!(
            t.problems()[0],
            Problem {
                data_source: "gsm8k".into(),
                id: "7".into(),
                prompt: "2+2?".into(),
                messages: Some(vec![ChatMessage::user("2+2?")]),
                gold: Gold::Math("4".into())
            }
        );
        assert_eq!(
            t.problems()[1],
            Problem {
                data_source: "jsonl".into(),
                id: "line-3".into(),
                prompt: "3*3=".into(),
                messages: None,
                gold: Gold::Math("9".into())
            }
        );
        std::fs::write(&path, "{\"prompt\": \"x\"}\n").unwrap();
        let err = TaskConfig {
            max_operand: None,
            dataset: Some(path.clone()),
            largest: None,
            programs: None,
            eval_dataset: None,
            grading: None,
        }
        .load(&RewardConfig::default())
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
                programs: None,
                eval_dataset: None,
                grading: None,
            }
            .load(&RewardConfig::default()),
            Err(TaskError::Ambiguous)
        ));
        // A held-out file serves evaluation; without one, evaluation uses the training set.
        std::fs::write(&path, "{\"prompt\": \"5+5=\", \"answer\": 10}\n").unwrap();
        let mut cfg = TaskConfig {
            max_operand: Some(2),
            dataset: None,
            largest: None,
            programs: None,
            eval_dataset: Some(path.clone()),
            grading: None,
        };
        let t = cfg.load(&RewardConfig::default()).unwrap();
        assert_eq!((t.problems().len(), t.eval_problems().len()), (9, 1));
        assert_eq!(t.eval_problems()[0].gold, Gold::Math("10".into()));
        cfg.eval_dataset = None;
        assert_eq!(
            cfg.load(&RewardConfig::default())
                .unwrap()
                .eval_problems()
                .len(),
            9
        );
        std::fs::remove_file(&path).ok();
    }

    /// Code and math rows in one file: routed by data source, `ability`, the config's
    /// override, and shape; a code row without tests is an error naming file, line and field.
    #[test]
    fn rows_route_by_source_override_and_shape() {
        let path = std::env::temp_dir().join(format!("task-code-{}.jsonl", std::process::id()));
        let rows = [
            r#"{"id": "a", "data_source": "apps", "prompt": "p", "reward_model": {"ground_truth": "{\"inputs\": [\"1\\n\"], \"outputs\": [\"2\\n\"]}"}}"#,
            r#"{"id": "g", "data_source": "openai/gsm8k", "prompt": "p", "reward_model": {"ground_truth": "{1, 2}"}}"#,
            r#"{"id": "h", "data_source": "openai_humaneval", "prompt": "p", "test": "def check(c):\n    assert c(1) == 2\n", "entry_point": "inc"}"#,
            r#"{"id": "m", "data_source": "mine", "prompt": "p", "reward_model": {"ground_truth": "7"}}"#,
            r#"{"id": "s", "data_source": "shapes", "prompt": "p", "ground_truth": {"inputs": ["x"], "outputs": ["x"]}}"#,
        ];
        std::fs::write(&path, rows.join("\n")).unwrap();
        let cfg = TaskConfig {
            max_operand: None,
            dataset: Some(path.clone()),
            largest: None,
            programs: None,
            eval_dataset: None,
            grading: None,
        };
        let kinds = |t: &Task| -> Vec<(String, RewardKind)> {
            t.problems()
                .iter()
                .map(|p| (p.id.clone(), p.gold.kind()))
                .collect()
        };
        let (m, c) = (RewardKind::Math, RewardKind::Code);
        let t = cfg.load(&RewardConfig::default()).unwrap();
        assert_eq!(
            kinds(&t),
            [
                ("a".into(), c),
                ("g".into(), m),
                ("h".into(), c),
                ("m".into(), m),
                ("s".into(), c)
            ]
        );
        assert_eq!(t.problems()[1].gold, Gold::Math("{1, 2}".into()));
        assert!(
            t.problems()[0]
                .gold
                .stored_text()
                .contains("expected_stdout")
        );
        // Overridden: `shapes` as math refuses its object gold; `mine` as code needs tests.
        let mut reward = RewardConfig::default();
        reward.kinds.insert("mine".into(), RewardKind::Code);
        let err = cfg.load(&reward).unwrap_err().to_string();
        assert!(
            err.contains(".jsonl:4: reward_model.ground_truth: data_source \"mine\" is code"),
            "{err}"
        );
        let mut reward = RewardConfig::default();
        reward.kinds.insert("shapes".into(), RewardKind::Math);
        let err = cfg.load(&reward).unwrap_err().to_string();
        assert!(
            err.ends_with(":5: missing reward_model.ground_truth"),
            "{err}"
        );
        // A malformed code row: the file, the line and the field.
        std::fs::write(
            &path,
            r#"{"data_source": "taco", "prompt": "p", "reward_model": {"ground_truth": {"fn_name": "f", "inputs": [[1]], "outputs": []}}}"#,
        )
        .unwrap();
        let err = cfg.load(&RewardConfig::default()).unwrap_err().to_string();
        assert!(
            err.contains(".jsonl:1: reward_model.ground_truth.outputs: 0 outputs for 1 inputs"),
            "{err}"
        );
        std::fs::remove_file(&path).ok();
    }

    /// The SmolLM2 code config's data file: every row loads as code, in every layout.
    #[test]
    fn the_generated_python_set_loads_as_code() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/data/python-tiny.jsonl");
        let task = load_file(&path, &Default::default()).unwrap();
        assert_eq!(task.problems().len(), 20);
        let mut kinds = std::collections::BTreeMap::new();
        for p in task.problems() {
            let Gold::Code(c) = &p.gold else {
                panic!("{} is not code", p.id)
            };
            let kind = match &c.tests[0] {
                protocol::CodeTest::Io(_) => "io",
                protocol::CodeTest::Call(_) => "call",
                protocol::CodeTest::Assert(_) => "assert",
            };
            *kinds.entry(kind).or_insert(0) += 1;
        }
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            [("assert", 5), ("call", 5), ("io", 10)]
        );
    }

    /// The built-ins together: math and code problems, both held out, and every draw of a
    /// few prompts holds both kinds.
    #[test]
    fn mixed_builtins_draw_both_kinds_every_time() {
        let cfg = TaskConfig {
            max_operand: None,
            dataset: None,
            largest: Some(largest::LargestDigitTask {
                digits: 3,
                held_out: 24,
            }),
            programs: Some(programs::ProgramTask {
                digits: 3,
                held_out: 8,
            }),
            eval_dataset: None,
            grading: None,
        };
        let t = cfg.load(&RewardConfig::default()).unwrap();
        assert_eq!(t.problems().len(), (720 - 24) + 3 * (720 - 8));
        assert_eq!(t.eval_problems().len(), 24 + 3 * 8);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let s = t.sample(&mut rng, 8);
            assert_eq!(s.len(), 8);
            let code = s
                .iter()
                .filter(|p| p.gold.kind() == RewardKind::Code)
                .count();
            assert!((1..8).contains(&code), "{code} code prompts of 8");
        }
        for _ in 0..20 {
            let (prompt, response) = t.format_example(&mut rng);
            if prompt.starts_with("max(") {
                assert!(response.starts_with("\\boxed{"), "{response}");
            } else {
                // The comment restates the prompt's word; the builtin is the warm-up's draw.
                let word = prompt.split(' ').next().unwrap();
                assert!(
                    response.starts_with(&format!("```\n# {word}\nprint(")),
                    "{prompt} {response}"
                );
            }
        }
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
            programs: None,
            eval_dataset: Some(path.clone()),
            grading: None,
        };
        let t = cfg.load(&RewardConfig::default()).unwrap();
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
                gold: Gold::Math("4".into()),
            },
            Problem {
                data_source: "openai/gsm8k".into(),
                id: "line-2".into(),
                prompt: "What is 3*3?".into(),
                messages: Some(vec![ChatMessage::user("What is 3*3?")]),
                gold: Gold::Math("9".into()),
            },
        ];
        assert_eq!(t.problems(), &want[..]);
        assert_eq!(t.eval_problems(), &want[..]);

        // Not Parquet: a clear error naming the file.
        std::fs::write(&path, "{\"prompt\": \"1+1=\", \"answer\": 2}\n").unwrap();
        let err = cfg.load(&RewardConfig::default()).unwrap_err();
        assert!(matches!(err, TaskError::Format { .. }), "{err}");
        assert!(err.to_string().contains(".parquet: parquet:"), "{err}");
        std::fs::remove_file(&path).ok();
    }
}
