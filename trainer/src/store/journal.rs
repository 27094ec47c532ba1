//! The write-ahead journal behind [`super::StoreWriter`]: an append-only JSON Lines file in the
//! run directory that every record goes through before it reaches the database.
//!
//! The trainer appends (cheap, local); the writer task drains the file into the database in
//! order and truncates it once everything in it is written. So a database outage only grows the
//! file (memory stays bounded), and a killed process loses nothing: the next start with the
//! same run directory replays the file, and the database's upserts make replays harmless.
//!
//! Durability caveat: appends are flushed to the OS, not fsynced, so they survive a killed
//! process but not a crash of the whole machine.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::record::{RolloutRow, StepRecord};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalRecord {
    /// A graded rollout.
    Rollout(RolloutRow),
    /// A step's metrics.
    Step(StepRecord),
    /// The run finished.
    FinishRun {
        /// The run.
        run_id: String,
    },
}

/// The journal file; shared by the appending trainer and the draining writer.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// Append handle. Held while appending and while truncating, so the two never interleave.
    file: Mutex<File>,
}

/// Journal I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing the file failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line could not be encoded.
    #[error("journal record: {0}")]
    Encode(#[from] serde_json::Error),
}

impl Journal {
    /// Opens (creating if missing) the journal at `path`. Existing content is kept: it is what a
    /// previous process did not get into the database.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends records as one write, flushed to the OS.
    pub fn append(&self, records: &[JournalRecord]) -> Result<(), JournalError> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        for r in records {
            serde_json::to_writer(&mut buf, r)?;
            buf.push(b'\n');
        }
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&buf)
            .and_then(|()| file.flush())
            .map_err(|source| self.io(source))
    }

    /// Reads up to `max` complete records starting at byte `offset`; returns them and the
    /// offset just after the last one. A torn last line (a kill mid-append) is left unread.
    pub fn read_from(
        &self,
        offset: u64,
        max: usize,
    ) -> Result<(Vec<JournalRecord>, u64), JournalError> {
        let mut f = File::open(&self.path).map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| self.io(e))?;
        let mut reader = BufReader::new(f);
        let mut out = Vec::new();
        let mut pos = offset;
        let mut line = String::new();
        while out.len() < max {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| self.io(e))?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += n as u64;
            match serde_json::from_str::<JournalRecord>(line.trim_end()) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::error!(error = %e, offset = pos, "skipping an undecodable journal line")
                }
            }
        }
        Ok((out, pos))
    }

    /// Empties the file if nothing was appended past `offset`; returns whether it did.
    pub fn truncate_if_drained(&self, offset: u64) -> Result<bool, JournalError> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let len = file.metadata().map_err(|e| self.io(e))?.len();
        if len != offset {
            return Ok(false);
        }
        file.set_len(0).map_err(|e| self.io(e))?;
        Ok(true)
    }

    /// Current file length, bytes.
    pub fn len(&self) -> Result<u64, JournalError> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(file.metadata().map_err(|e| self.io(e))?.len())
    }

    /// True when the file is empty.
    pub fn is_empty(&self) -> Result<bool, JournalError> {
        Ok(self.len()? == 0)
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }
}
