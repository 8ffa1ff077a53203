//! The request log: one entry per authenticated request, queued by the request path and
//! written in batches by one background task, so logging never waits on the database.
//!
//! [`RequestLog::flush`] writes everything queued so far; the server calls it after its last
//! request has finished (clean shutdown loses nothing) and analytics call it before reading,
//! so a caller always sees its own earlier requests.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use crate::{domain::request_log::Entry, metrics::Metrics, repo};

/// Entries written per insert.
const BATCH: usize = 500;
/// Longest an entry waits in the buffer before it is written.
const INTERVAL: Duration = Duration::from_millis(250);
/// Entries queued before the request path waits for the writer.
const QUEUE: usize = 50_000;
/// Attempts to write a batch before it is given up (and counted as dropped).
const ATTEMPTS: u32 = 5;

enum Command {
    Record(Entry),
    Flush(oneshot::Sender<()>),
}

/// The queue in front of the writer. Cheap to clone.
#[derive(Clone)]
pub struct RequestLog {
    queue: mpsc::Sender<Command>,
    enabled: bool,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog").finish_non_exhaustive()
    }
}

impl RequestLog {
    /// Starts the writer task; when not `enabled`, entries are dropped.
    pub fn start(db: DatabaseConnection, metrics: std::sync::Arc<Metrics>, enabled: bool) -> Self {
        let (queue, commands) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db, metrics, commands));
        Self { queue, enabled }
    }

    /// Queues `entry`. Waits only when the queue is full (the database is far behind).
    pub async fn record(&self, entry: Entry) {
        if !self.enabled {
            return;
        }
        let command = match self.queue.try_send(Command::Record(entry)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(command)) => command,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the request log writer has stopped: an entry is lost");
                return;
            }
        };
        if self.queue.send(command).await.is_err() {
            tracing::error!("the request log writer has stopped: an entry is lost");
        }
    }

    /// Writes every entry queued before this call.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

async fn write_batches(
    db: DatabaseConnection,
    metrics: std::sync::Arc<Metrics>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut buffer: Vec<Entry> = Vec::with_capacity(BATCH);
    loop {
        let command = if buffer.is_empty() {
            commands.recv().await
        } else {
            match tokio::time::timeout(INTERVAL, commands.recv()).await {
                Ok(command) => command,
                Err(_) => {
                    write(&db, &metrics, &mut buffer).await;
                    continue;
                }
            }
        };
        match command {
            Some(Command::Record(entry)) => {
                buffer.push(entry);
                metrics.log_queued.set(buffer.len() as i64);
                if buffer.len() >= BATCH {
                    write(&db, &metrics, &mut buffer).await;
                }
            }
            Some(Command::Flush(done)) => {
                write(&db, &metrics, &mut buffer).await;
                let _ = done.send(());
            }
            None => {
                write(&db, &metrics, &mut buffer).await;
                return;
            }
        }
    }
}

/// Writes the buffer, retrying with backoff; empties it either way.
async fn write(db: &DatabaseConnection, metrics: &Metrics, buffer: &mut Vec<Entry>) {
    if buffer.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match repo::request_logs::insert_many(db, buffer).await {
            Ok(()) => {
                metrics.log_written.inc_by(buffer.len() as u64);
                buffer.clear();
                metrics.log_queued.set(0);
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "could not write the request log; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::error!(error = %e, entries = buffer.len(), "could not write the request log; entries dropped");
                metrics.log_dropped.inc_by(buffer.len() as u64);
            }
        }
    }
    buffer.clear();
    metrics.log_queued.set(0);
}
