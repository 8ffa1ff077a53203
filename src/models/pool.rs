//! The bounded blocking pool the local models run on: CPU-heavy work leaves the async runtime,
//! and at most `permits` such jobs run at once, so a burst queues instead of oversubscribing
//! the cores.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ModelError;

/// Runs closures on tokio's blocking threads, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    /// A pool running at most `permits` jobs at once (at least one).
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// Waits for a free slot; the job holds it until the permit is dropped.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        // The semaphore is never closed.
        self.permits
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the pool's semaphore is never closed"))
    }

    /// Runs `job` in a free slot and returns its result.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ModelError> {
        let slot = self.slot().await;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            job()
        })
        .await
        .map_err(|e| ModelError::unavailable(format!("model job failed: {e}")))
    }
}
