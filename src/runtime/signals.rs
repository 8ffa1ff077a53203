//! Wake-ups for the background workers: a queued ingestion job or a due webhook delivery
//! wakes a worker at once instead of at its next poll.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes idle ingestion workers when a job is queued.
#[derive(Clone, Default)]
pub struct JobSignal(Arc<Notify>);

impl JobSignal {
    /// A job was queued: wake a worker now rather than at its next poll.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next notification.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

/// Wakes idle webhook dispatchers when an event is written.
#[derive(Clone, Default)]
pub struct WebhookSignal(Arc<Notify>);

impl WebhookSignal {
    /// A delivery is due: wake a dispatcher now rather than at its next poll.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next notification.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}
