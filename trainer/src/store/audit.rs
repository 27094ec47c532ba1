//! Audit queries over the rollout store: the questions `trainer audit` answers. Every query
//! runs unchanged on Postgres and SQLite (portable SQL: `CAST(… AS TEXT)` for timestamps and
//! JSON, `CAST(… AS DOUBLE PRECISION)` for averages).

use serde::Serialize;
use sqlx::{FromRow, QueryBuilder};

use super::{Store, StoreError};

/// A run with its progress.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct RunOverview {
    /// Run id.
    pub run_id: String,
    /// Method.
    pub method: String,
    /// Model description.
    pub model: String,
    /// Start time.
    pub started_at: String,
    /// End time, if finished.
    pub finished_at: Option<String>,
    /// Steps recorded.
    pub steps: i64,
    /// Rollouts recorded.
    pub rollouts: i64,
    /// Accuracy over all rollouts.
    pub accuracy: Option<f64>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct StepSummary {
    /// Step (0-based).
    pub step: i64,
    /// Rollouts graded at this step.
    pub rollouts: i64,
    /// Mean reward.
    pub reward_mean: f64,
    /// Fraction correct/accepted.
    pub accuracy: f64,
    /// Token-mean entropy the trainer logged, if the step row exists.
    pub entropy: Option<f64>,
    /// Loss, if logged.
    pub loss: Option<f64>,
    /// Mean response length, tokens.
    pub tokens_mean: f64,
    /// Verdict counts, `verdict:n` joined by spaces, most frequent first.
    pub verdicts: String,
}

/// One rollout as an auditor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct RolloutView {
    /// Step.
    pub step: i64,
    /// Prompt id.
    pub prompt_id: String,
    /// The prompt's data source.
    pub data_source: String,
    /// Sample index within its group.
    pub sample_idx: i64,
    /// Prompt text.
    pub prompt: String,
    /// Response text.
    pub response: String,
    /// Gold answer.
    pub ground_truth: String,
    /// Extracted answer.
    pub extracted: Option<String>,
    /// Verdict.
    pub verdict: String,
    /// Reward.
    pub reward: f64,
    /// Advantage.
    pub advantage: f64,
    /// Tokens.
    pub num_tokens: i64,
    /// Mean entropy, nats.
    pub mean_entropy: f64,
    /// The verifier's result, as JSON text.
    pub verifier_result: String,
}

/// Rollouts of one data source that got one verdict (the `source_verdicts` view).
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct SourceVerdict {
    /// Data source.
    pub data_source: String,
    /// Verdict.
    pub verdict: String,
    /// Rollouts.
    pub rollouts: i64,
    /// Their share of the data source's rollouts.
    pub share: f64,
    /// Their mean reward.
    pub reward_mean: f64,
}

/// A rollout flagged by `suspicious`.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct Suspicion {
    /// Which rule flagged it.
    pub kind: String,
    /// Step.
    pub step: i64,
    /// Prompt id.
    pub prompt_id: String,
    /// Sample index.
    pub sample_idx: i64,
    /// Reward.
    pub reward: f64,
    /// Why, in words.
    pub detail: String,
}

/// Filters for [`Store::rollouts`].
#[derive(Debug, Clone, Default)]
pub struct RolloutFilter {
    /// Only this step.
    pub step: Option<i64>,
    /// Only this verdict.
    pub verdict: Option<String>,
    /// Only rewards ≥ this.
    pub min_reward: Option<f64>,
    /// Only responses containing this text (case-insensitive).
    pub contains: Option<String>,
    /// Only this prompt.
    pub prompt_id: Option<String>,
    /// At most this many rows.
    pub limit: Option<i64>,
}

/// Response patterns that exit before a test harness can fail (reward hacking on code).
pub const EXIT_HACK_PATTERNS: [&str; 5] =
    ["sys.exit", "os._exit", "posix._exit", "atexit", "__eq__"];

const ROLLOUT_COLUMNS: &str = "CAST(step AS BIGINT) AS step, prompt_id, data_source, CAST(sample_idx AS BIGINT) AS sample_idx, prompt, \
     response, ground_truth, extracted, verdict, reward, advantage, CAST(num_tokens AS BIGINT) AS num_tokens, \
     mean_entropy, CAST(verifier_result AS TEXT) AS verifier_result";

impl Store {
    /// All runs, newest first.
    pub async fn runs(&self) -> Result<Vec<RunOverview>, StoreError> {
        let sql = "SELECT r.run_id, r.method, r.model, CAST(r.started_at AS TEXT) AS started_at, \
                   CAST(r.finished_at AS TEXT) AS finished_at, \
                   (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.run_id) AS steps, \
                   (SELECT COUNT(*) FROM rollouts o WHERE o.run_id = r.run_id) AS rollouts, \
                   (SELECT CAST(AVG(CASE WHEN o.verdict IN ('correct', 'accepted') THEN 1.0 ELSE 0.0 END) AS DOUBLE PRECISION) \
                      FROM rollouts o WHERE o.run_id = r.run_id) AS accuracy \
                   FROM runs r ORDER BY r.started_at DESC, r.run_id";
        Ok(
            with_pool!(self, pool, Db => sqlx::query_as::<Db, RunOverview>(sql).fetch_all(pool).await?),
        )
    }

    /// Per-step summary of a run, from the `step_rewards` and `verdict_mix` views.
    pub async fn summary(&self, run_id: &str) -> Result<Vec<StepSummary>, StoreError> {
        let sql = "SELECT CAST(v.step AS BIGINT) AS step, v.rollouts, v.reward_mean, v.accuracy, s.entropy, s.loss, \
                   v.tokens_mean, '' AS verdicts \
                   FROM step_rewards v LEFT JOIN steps s ON s.run_id = v.run_id AND s.step = v.step \
                   WHERE v.run_id = $1 ORDER BY v.step";
        let mix_sql = "SELECT CAST(step AS BIGINT) AS step, verdict, n FROM verdict_mix WHERE run_id = $1 \
                       ORDER BY step, n DESC, verdict";
        let (mut steps, mix): (Vec<StepSummary>, Vec<(i64, String, i64)>) = with_pool!(self, pool, Db => (
            sqlx::query_as::<Db, StepSummary>(sql).bind(run_id).fetch_all(pool).await?,
            sqlx::query_as::<Db, (i64, String, i64)>(mix_sql).bind(run_id).fetch_all(pool).await?,
        ));
        for s in &mut steps {
            s.verdicts = mix
                .iter()
                .filter(|(step, _, _)| *step == s.step)
                .map(|(_, v, n)| format!("{v}:{n}"))
                .collect::<Vec<_>>()
                .join(" ");
        }
        Ok(steps)
    }

    /// A run's rollouts per data source and verdict, from the `source_verdicts` view; by data
    /// source, most frequent verdict first.
    pub async fn by_source(&self, run_id: &str) -> Result<Vec<SourceVerdict>, StoreError> {
        let sql = "SELECT v.data_source, v.verdict, v.n AS rollouts, \
                   CAST(v.n AS DOUBLE PRECISION) / CAST(t.total AS DOUBLE PRECISION) AS share, v.reward_mean \
                   FROM source_verdicts v JOIN (SELECT data_source, SUM(n) AS total FROM source_verdicts \
                                                WHERE run_id = $1 GROUP BY data_source) t \
                     ON t.data_source = v.data_source \
                   WHERE v.run_id = $1 ORDER BY v.data_source, v.n DESC, v.verdict";
        Ok(
            with_pool!(self, pool, Db => sqlx::query_as::<Db, SourceVerdict>(sql).bind(run_id).fetch_all(pool).await?),
        )
    }

    /// Rollouts of a run matching `filter`, by step, prompt and sample.
    pub async fn rollouts(
        &self,
        run_id: &str,
        filter: &RolloutFilter,
    ) -> Result<Vec<RolloutView>, StoreError> {
        let like = match self {
            Store::Postgres(_) => " ILIKE ",
            Store::Sqlite(_) => " LIKE ",
        };
        with_pool!(self, pool, Db => {
            let mut qb = QueryBuilder::<Db>::new(format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE run_id = "));
            qb.push_bind(run_id.to_string());
            if let Some(step) = filter.step {
                qb.push(" AND step = ").push_bind(step as i32);
            }
            if let Some(v) = &filter.verdict {
                qb.push(" AND verdict = ").push_bind(v.clone());
            }
            if let Some(r) = filter.min_reward {
                qb.push(" AND reward >= ").push_bind(r);
            }
            if let Some(p) = &filter.prompt_id {
                qb.push(" AND prompt_id = ").push_bind(p.clone());
            }
            if let Some(text) = &filter.contains {
                qb.push(" AND response").push(like).push_bind(like_pattern(text)).push(" ESCAPE '\\'");
            }
            qb.push(" ORDER BY step, prompt_id, sample_idx");
            if let Some(limit) = filter.limit {
                qb.push(" LIMIT ").push_bind(limit);
            }
            Ok(qb.build_query_as::<RolloutView>().fetch_all(pool).await?)
        })
    }

    /// Rollouts that deserve a second look:
    /// * `reward_without_answer`: rewarded although no answer was extracted;
    /// * `exit_hack_accepted`: code accepted while containing an early-exit/`__eq__` pattern;
    /// * `long_outlier`: more than twice its group's mean length (and 16+ tokens longer);
    /// * `inconsistent_reward`: the same response to the same prompt rewarded differently;
    /// * the code smells of [`super::code_smells`] over the run's accepted and
    ///   `sandbox_error` code rollouts.
    pub async fn suspicious(&self, run_id: &str) -> Result<Vec<Suspicion>, StoreError> {
        let exit_patterns = EXIT_HACK_PATTERNS
            .iter()
            .map(|p| format!("response LIKE '{}' ESCAPE '\\'", like_pattern(p)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT 'reward_without_answer' AS kind, CAST(step AS BIGINT) AS step, prompt_id, \
               CAST(sample_idx AS BIGINT) AS sample_idx, reward, 'verdict ' || verdict AS detail \
             FROM rollouts WHERE run_id = $1 AND reward > 0 AND (extracted IS NULL OR extracted = '') \
             UNION ALL \
             SELECT 'exit_hack_accepted', CAST(step AS BIGINT), prompt_id, CAST(sample_idx AS BIGINT), reward, \
               'accepted code with an early-exit or __eq__ pattern' \
             FROM rollouts WHERE run_id = $1 AND verdict = 'accepted' AND ({exit_patterns}) \
             UNION ALL \
             SELECT 'long_outlier', CAST(step AS BIGINT), prompt_id, CAST(sample_idx AS BIGINT), reward, \
               CAST(num_tokens AS TEXT) || ' tokens vs group mean ' || CAST(CAST(group_mean AS INTEGER) AS TEXT) \
             FROM (SELECT step, prompt_id, sample_idx, reward, num_tokens, \
                     AVG(CAST(num_tokens AS DOUBLE PRECISION)) OVER (PARTITION BY step, prompt_id) AS group_mean \
                   FROM rollouts WHERE run_id = $1) g \
             WHERE num_tokens > 2 * group_mean AND num_tokens - group_mean >= 16 \
             UNION ALL \
             SELECT 'inconsistent_reward', CAST(o.step AS BIGINT), o.prompt_id, CAST(o.sample_idx AS BIGINT), o.reward, \
               'same response got rewards from ' || CAST(d.lo AS TEXT) || ' to ' || CAST(d.hi AS TEXT) \
             FROM rollouts o JOIN (SELECT prompt_id, response, MIN(reward) AS lo, MAX(reward) AS hi FROM rollouts \
                                   WHERE run_id = $1 GROUP BY prompt_id, response HAVING MIN(reward) <> MAX(reward)) d \
               ON d.prompt_id = o.prompt_id AND d.response = o.response \
             WHERE o.run_id = $1 \
             ORDER BY kind, step, prompt_id, sample_idx"
        );
        let code_sql = format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE run_id = $1 \
             AND verdict IN ('accepted', 'sandbox_error') ORDER BY step, prompt_id, sample_idx"
        );
        let (mut found, code) = with_pool!(self, pool, Db => (
            sqlx::query_as::<Db, Suspicion>(sqlx::AssertSqlSafe(sql)).bind(run_id).fetch_all(pool).await?,
            sqlx::query_as::<Db, RolloutView>(sqlx::AssertSqlSafe(code_sql)).bind(run_id).fetch_all(pool).await?,
        ));
        found.extend(code.iter().flat_map(super::code_smells::smells));
        found.sort_by(|a, b| {
            (&a.kind, a.step, &a.prompt_id, a.sample_idx).cmp(&(
                &b.kind,
                b.step,
                &b.prompt_id,
                b.sample_idx,
            ))
        });
        Ok(found)
    }
}

/// `%text%` with `%`, `_` and `\` escaped for `LIKE … ESCAPE '\'`.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
    }
}
