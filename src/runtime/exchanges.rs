//! Group commit of sent messages: every send hands its exchange (the visitor's message, its
//! pending reply, the conversation it opens) to one writer task, which stores all the
//! exchanges waiting at that moment in one transaction of three statements. A thousand
//! visitors sending at once thus wait for a few commits, not for a thousand.

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::{mpsc, oneshot};

use crate::repo::{self, conversations::Exchange};

/// Exchanges stored per transaction at most (two messages each: well within the bind
/// parameter limits of SQLite and PostgreSQL).
const BATCH: usize = 128;
/// Exchanges waiting for the writer before a send waits for room.
const QUEUE: usize = 4_096;

struct Pending {
    exchange: Exchange,
    stored: oneshot::Sender<Result<Exchange, DbErr>>,
}

/// The queue in front of the writer. Cheap to clone.
#[derive(Clone)]
pub struct ExchangeWriter {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for ExchangeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeWriter").finish_non_exhaustive()
    }
}

impl ExchangeWriter {
    /// Starts the writer task.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db, pending));
        Self { queue }
    }

    /// Stores `exchange` and returns it once it is committed (or could not be).
    pub async fn store(&self, exchange: Exchange) -> Result<Exchange, DbErr> {
        let (stored, committed) = oneshot::channel();
        let stopped = || DbErr::Custom("the message writer has stopped".into());
        self.queue
            .send(Pending { exchange, stored })
            .await
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

async fn write_batches(db: DatabaseConnection, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        let exchanges: Vec<&Exchange> = batch.iter().map(|p| &p.exchange).collect();
        match write(&db, &exchanges).await {
            Ok(()) => {
                for p in batch.drain(..) {
                    let _ = p.stored.send(Ok(p.exchange));
                }
            }
            // One bad exchange (its conversation deleted meanwhile) must not fail the
            // others: each is tried alone and gets its own answer.
            Err(e) if batch.len() > 1 => {
                tracing::debug!(error = %e, exchanges = batch.len(), "a batch of sends failed; storing them one by one");
                for p in batch.drain(..) {
                    let alone = write(&db, &[&p.exchange]).await;
                    let _ = p.stored.send(alone.map(|()| p.exchange));
                }
            }
            Err(e) => {
                if let Some(p) = batch.pop() {
                    let _ = p.stored.send(Err(e));
                }
            }
        }
    }
}

async fn write(db: &DatabaseConnection, exchanges: &[&Exchange]) -> Result<(), DbErr> {
    let txn = crate::db::begin_write(db).await?;
    repo::conversations::store_exchanges(&txn, exchanges).await?;
    txn.commit().await
}
