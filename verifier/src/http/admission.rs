//! Admission control for CPU work: a semaphore of `max_concurrency` permits (grading runs
//! only while holding one) and a bounded queue of requests waiting for one. A request that
//! would make the queue longer than `max_queue` is refused at once with 429, so overload never
//! turns into unbounded memory or latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::AppError;

/// The CPU pool.
#[derive(Debug)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    max_queue: usize,
    queued: AtomicUsize,
    in_flight: AtomicUsize,
}

/// A held permit; CPU work runs while it lives.
#[derive(Debug)]
pub struct CpuPermit<'a> {
    _permit: OwnedSemaphorePermit,
    pool: &'a CpuPool,
}

impl Drop for CpuPermit<'_> {
    fn drop(&mut self) {
        self.pool.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CpuPool {
    /// `max_concurrency` permits (at least 1) and room for `max_queue` waiting requests.
    pub fn new(max_concurrency: usize, max_queue: usize) -> Self {
        CpuPool {
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            max_queue,
            queued: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Waits for a permit, or fails with 429 if the queue is full.
    pub async fn acquire(&self) -> Result<CpuPermit<'_>, AppError> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let queued = self.queued.fetch_add(1, Ordering::SeqCst);
                if queued >= self.max_queue {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    return Err(AppError::Overloaded { queued });
                }
                let p = Arc::clone(&self.permits).acquire_owned().await;
                self.queued.fetch_sub(1, Ordering::SeqCst);
                p.map_err(|_| AppError::Unavailable("shutting down".into()))?
            }
        };
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Ok(CpuPermit {
            _permit: permit,
            pool: self,
        })
    }

    /// Requests waiting for a permit.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Permits held (CPU work in flight).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}
