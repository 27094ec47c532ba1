//! The rollout store: runs, steps and every graded rollout, in Postgres or SQLite (sqlx).
//!
//! Both backends share one schema (`migrations/postgres`, mirrored in `migrations/sqlite`) and
//! one set of queries; migrations run on connect. Rollout writes are multi-row upserts keyed
//! by `(run_id, step, prompt_id, sample_idx)`, so a replayed step neither duplicates nor loses
//! a row.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, types::Json};

/// Runs the same body against whichever pool the store holds.
macro_rules! with_pool {
    ($store:expr, $pool:ident, $db:ident => $body:expr) => {
        match $store {
            Store::Postgres($pool) => {
                #[allow(dead_code, reason = "the alias is used by some bodies only")]
                type $db = sqlx::Postgres;
                $body
            }
            Store::Sqlite($pool) => {
                #[allow(dead_code, reason = "the alias is used by some bodies only")]
                type $db = sqlx::Sqlite;
                $body
            }
        }
    };
}

mod audit;
pub mod code_smells;
mod journal;
mod record;
mod writer;

pub use audit::{
    EXIT_HACK_PATTERNS, RolloutFilter, RolloutView, RunOverview, SourceVerdict, StepSummary,
    Suspicion,
};
pub use journal::{Journal, JournalError, JournalRecord};
pub use record::{RolloutRow, RunRecord, StepRecord};
pub use writer::{CloseReport, StoreWriter, WriterConfig, WriterError, WriterStats};

/// Postgres migrations (`migrations/postgres`).
///
/// A database many training jobs share may already carry migrations of a newer trainer; this
/// one's are applied and a newer one's are left alone (`ignore_missing`), so an older trainer
/// keeps writing to it. Migrations only ever add tables, columns and views for that reason.
pub static PG_MIGRATOR: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("../migrations/postgres")
};
/// SQLite migrations (`migrations/sqlite`), with the same rule as [`PG_MIGRATOR`].
pub static SQLITE_MIGRATOR: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("../migrations/sqlite")
};

/// Rows per multi-row INSERT; keeps every statement under SQLite's bind-parameter limit
/// (32 766) at 16 columns per row.
const ROWS_PER_INSERT: usize = 1000;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `postgres://`/`postgresql://` nor `sqlite:`.
    #[error("unsupported database URL {0:?}: use postgres://… or sqlite://PATH")]
    UnsupportedUrl(String),
    /// Connecting or querying failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A connected store.
#[derive(Debug, Clone)]
pub enum Store {
    /// Postgres.
    Postgres(PgPool),
    /// SQLite (the zero-setup default: one file in the run directory).
    Sqlite(SqlitePool),
}

impl Store {
    /// Connects to `url` and applies the migrations. A `sqlite://PATH` file is created if
    /// missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(std::time::Duration::from_secs(3))
                .connect(url)
                .await?;
            PG_MIGRATOR.run(&pool).await?;
            Ok(Store::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let opts: SqliteConnectOptions = url.parse()?;
            let opts = opts.create_if_missing(true).foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            SQLITE_MIGRATOR.run(&pool).await?;
            Ok(Store::Sqlite(pool))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    /// Records a run (idempotent: an existing run id is left as it is).
    pub async fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let sql = "INSERT INTO runs (run_id, method, model, config, git_rev) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (run_id) DO NOTHING";
        with_pool!(self, pool, Db => {
            sqlx::query(sql)
                .bind(&run.run_id)
                .bind(&run.method)
                .bind(&run.model)
                .bind(Json(&run.config))
                .bind(&run.git_rev)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Marks a run finished now.
    pub async fn finish_run(&self, run_id: &str) -> Result<(), StoreError> {
        let sql = match self {
            Store::Postgres(_) => "UPDATE runs SET finished_at = now() WHERE run_id = $1",
            Store::Sqlite(_) => {
                "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE run_id = $1"
            }
        };
        with_pool!(self, pool, Db => { sqlx::query(sql).bind(run_id).execute(pool).await?; });
        Ok(())
    }

    /// Upserts rollouts in multi-row statements inside one transaction.
    pub async fn insert_rollouts(&self, rows: &[RolloutRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut qb = QueryBuilder::<Db>::new(
                    "INSERT INTO rollouts (run_id, step, prompt_id, sample_idx, prompt, response, ground_truth, \
                     num_tokens, finished, reward, verdict, extracted, verifier_result, advantage, mean_entropy, \
                     data_source) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.run_id)
                        .push_bind(r.step)
                        .push_bind(&r.prompt_id)
                        .push_bind(r.sample_idx)
                        .push_bind(&r.prompt)
                        .push_bind(&r.response)
                        .push_bind(&r.ground_truth)
                        .push_bind(r.num_tokens)
                        .push_bind(r.finished)
                        .push_bind(r.reward)
                        .push_bind(&r.verdict)
                        .push_bind(&r.extracted)
                        .push_bind(Json(&r.verifier_result))
                        .push_bind(r.advantage)
                        .push_bind(r.mean_entropy)
                        .push_bind(&r.data_source);
                });
                qb.push(
                    " ON CONFLICT (run_id, step, prompt_id, sample_idx) DO UPDATE SET \
                     prompt = excluded.prompt, response = excluded.response, ground_truth = excluded.ground_truth, \
                     num_tokens = excluded.num_tokens, finished = excluded.finished, reward = excluded.reward, \
                     verdict = excluded.verdict, extracted = excluded.extracted, \
                     verifier_result = excluded.verifier_result, advantage = excluded.advantage, \
                     data_source = excluded.data_source, \
                     mean_entropy = excluded.mean_entropy",
                );
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Upserts one step's metrics.
    pub async fn insert_step(&self, s: &StepRecord) -> Result<(), StoreError> {
        let sql = "INSERT INTO steps (run_id, step, reward_mean, accuracy, entropy, loss, grad_norm, clip_frac_low, \
                   clip_frac_high, response_len_mean, steer_w_mean, steer_w_min, steer_w_max, steer_w_frac_below_099, \
                   predicted_entropy_change, coupled_predicted_entropy_change, head_step_entropy_change, \
                   realised_entropy_change, skipped, timings) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
                   ON CONFLICT (run_id, step) DO UPDATE SET reward_mean = excluded.reward_mean, \
                   accuracy = excluded.accuracy, entropy = excluded.entropy, loss = excluded.loss, \
                   grad_norm = excluded.grad_norm, clip_frac_low = excluded.clip_frac_low, \
                   clip_frac_high = excluded.clip_frac_high, response_len_mean = excluded.response_len_mean, \
                   steer_w_mean = excluded.steer_w_mean, steer_w_min = excluded.steer_w_min, \
                   steer_w_max = excluded.steer_w_max, steer_w_frac_below_099 = excluded.steer_w_frac_below_099, \
                   predicted_entropy_change = excluded.predicted_entropy_change, \
                   coupled_predicted_entropy_change = excluded.coupled_predicted_entropy_change, \
                   head_step_entropy_change = excluded.head_step_entropy_change, \
                   realised_entropy_change = excluded.realised_entropy_change, skipped = excluded.skipped, \
                   timings = excluded.timings";
        with_pool!(self, pool, Db => {
            sqlx::query(sql)
                .bind(&s.run_id)
                .bind(s.step)
                .bind(s.reward_mean)
                .bind(s.accuracy)
                .bind(s.entropy)
                .bind(s.loss)
                .bind(s.grad_norm)
                .bind(s.clip_frac_low)
                .bind(s.clip_frac_high)
                .bind(s.response_len_mean)
                .bind(s.steer_w_mean)
                .bind(s.steer_w_min)
                .bind(s.steer_w_max)
                .bind(s.steer_w_frac_below_099)
                .bind(s.predicted_entropy_change)
                .bind(s.coupled_predicted_entropy_change)
                .bind(s.head_step_entropy_change)
                .bind(s.realised_entropy_change)
                .bind(s.skipped)
                .bind(Json(&s.timings))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Number of rollout rows of a run.
    pub async fn count_rollouts(&self, run_id: &str) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM rollouts WHERE run_id = $1";
        let n: i64 = with_pool!(self, pool, Db => sqlx::query_scalar(sql).bind(run_id).fetch_one(pool).await?);
        Ok(n)
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        with_pool!(self, pool, Db => pool.close().await);
    }
}
