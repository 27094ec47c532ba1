//! [`StoreWriter`]: the asynchronous, batched, outage-tolerant path from the training loop to
//! the database.
//!
//! `send` appends to the [`Journal`] and returns: it never waits for the database. A
//! background task drains the journal in batches of up to [`WriterConfig::batch_rows`] records
//! (multi-row upserts), retrying with exponential backoff while the database is unreachable.
//! `close` waits until everything is written (or a deadline passes, leaving the rest in the
//! journal for the next start to replay).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::journal::{Journal, JournalError, JournalRecord};
use super::{Store, StoreError};

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most records per database round trip. Default 2000.
    pub batch_rows: usize,
    /// First retry delay after a failed write. Default 100 ms.
    pub retry_base: Duration,
    /// Longest retry delay. Default 5 s.
    pub retry_max: Duration,
    /// How often an idle writer looks at the journal even without a notification. Default 200 ms.
    pub poll_interval: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_rows: 2000,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// Counters of a writer's life.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Rollout rows written to the database (replays included).
    pub rollouts_written: AtomicU64,
    /// Step rows written.
    pub steps_written: AtomicU64,
    /// Failed database writes that were retried.
    pub retries: AtomicU64,
}

/// What [`StoreWriter::close`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReport {
    /// Rollout rows written over the writer's life.
    pub rollouts_written: u64,
    /// Step rows written.
    pub steps_written: u64,
    /// Retried database writes.
    pub retries: u64,
    /// Bytes still in the journal (0 when everything reached the database).
    pub journal_bytes_left: u64,
}

/// Writer failures.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The journal could not be written or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The database stayed unreachable past the close deadline; nothing is lost, the rest is
    /// in the journal and is written on the next start with the same run directory.
    #[error(
        "database unreachable at close: {bytes} bytes of records left in {path} for the next start"
    )]
    NotDrained {
        /// The journal's path.
        path: String,
        /// Its size.
        bytes: u64,
    },
    /// The background task died.
    #[error("store writer task failed: {0}")]
    Task(String),
}

struct Shared {
    journal: Journal,
    notify: Notify,
    closing: AtomicBool,
    stats: WriterStats,
}

/// Handle to a running writer.
pub struct StoreWriter {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<Result<(), JournalError>>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("journal", &self.shared.journal.path())
            .finish_non_exhaustive()
    }
}

impl StoreWriter {
    /// Starts a writer draining `journal_path` into `store`. Whatever a previous process left
    /// in the journal is written first. Must be called inside a tokio runtime.
    pub fn start(
        store: Store,
        journal_path: &Path,
        cfg: WriterConfig,
    ) -> Result<Self, WriterError> {
        let shared = Arc::new(Shared {
            journal: Journal::open(journal_path)?,
            notify: Notify::new(),
            closing: AtomicBool::new(false),
            stats: WriterStats::default(),
        });
        let task = tokio::spawn(drain(store, Arc::clone(&shared), cfg));
        Ok(StoreWriter { shared, task })
    }

    /// Journals records and wakes the writer; returns without touching the database.
    pub fn send(&self, records: &[JournalRecord]) -> Result<(), WriterError> {
        self.shared.journal.append(records)?;
        self.shared.notify.notify_one();
        Ok(())
    }

    /// Live counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// Waits until the journal is drained (or `deadline` passes), then stops the writer.
    pub async fn close(self, deadline: Duration) -> Result<CloseReport, WriterError> {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.notify.notify_one();
        let mut task = self.task;
        let joined = tokio::time::timeout(deadline, &mut task).await;
        if joined.is_err() {
            task.abort();
        }
        let s = &self.shared.stats;
        let report = CloseReport {
            rollouts_written: s.rollouts_written.load(Ordering::Relaxed),
            steps_written: s.steps_written.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            journal_bytes_left: self.shared.journal.len()?,
        };
        match joined {
            Ok(Ok(Ok(()))) if report.journal_bytes_left == 0 => Ok(report),
            Ok(Err(e)) => Err(WriterError::Task(e.to_string())),
            Ok(Ok(Err(e))) => Err(e.into()),
            _ => Err(WriterError::NotDrained {
                path: self.shared.journal.path().display().to_string(),
                bytes: report.journal_bytes_left,
            }),
        }
    }
}

async fn drain(store: Store, shared: Arc<Shared>, cfg: WriterConfig) -> Result<(), JournalError> {
    let mut offset = 0u64;
    let mut delay = cfg.retry_base;
    // The batch at `offset`, read ahead while the previous one was being written.
    let mut prefetched: Option<(Vec<JournalRecord>, u64)> = None;
    loop {
        let (batch, next) = match prefetched.take() {
            Some(b) => b,
            None => shared.journal.read_from(offset, cfg.batch_rows)?,
        };
        if batch.is_empty() {
            if shared.journal.truncate_if_drained(offset)? {
                offset = 0;
            }
            if shared.closing.load(Ordering::SeqCst) && shared.journal.is_empty()? {
                return Ok(());
            }
            tokio::select! {
                () = shared.notify.notified() => {}
                () = tokio::time::sleep(cfg.poll_interval) => {}
            }
            continue;
        }
        let started = Instant::now();
        // Write this batch while reading and decoding the next one on a blocking thread.
        let reader = Arc::clone(&shared);
        let read_ahead =
            tokio::task::spawn_blocking(move || reader.journal.read_from(next, cfg.batch_rows));
        let written = write_batch(&store, &batch).await;
        let ahead = read_ahead.await.ok().and_then(Result::ok);
        match written {
            Ok((rollouts, steps)) => {
                shared
                    .stats
                    .rollouts_written
                    .fetch_add(rollouts, Ordering::Relaxed);
                shared
                    .stats
                    .steps_written
                    .fetch_add(steps, Ordering::Relaxed);
                offset = next;
                prefetched = ahead.filter(|(b, _)| !b.is_empty());
                delay = cfg.retry_base;
                tracing::debug!(
                    records = batch.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "store batch written"
                );
            }
            Err(e) => {
                shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "store write failed; will retry");
                prefetched = Some((batch, next));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(cfg.retry_max);
            }
        }
    }
}

/// Writes one batch: rollouts as multi-row upserts, then steps, then run completions.
async fn write_batch(store: &Store, batch: &[JournalRecord]) -> Result<(u64, u64), StoreError> {
    let mut rollouts = Vec::new();
    let mut steps = Vec::new();
    let mut finished = Vec::new();
    for r in batch {
        match r {
            JournalRecord::Rollout(row) => rollouts.push(row.clone()),
            JournalRecord::Step(s) => steps.push(s.clone()),
            JournalRecord::FinishRun { run_id } => finished.push(run_id.clone()),
        }
    }
    store.insert_rollouts(&rollouts).await?;
    for s in &steps {
        store.insert_step(s).await?;
    }
    for run in &finished {
        store.finish_run(run).await?;
    }
    Ok((rollouts.len() as u64, steps.len() as u64))
}
