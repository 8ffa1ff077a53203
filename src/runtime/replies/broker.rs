//! Fan-out of reply events to subscribers.
//!
//! [`ReplyBroker`] is the seam: [`LocalBroker`] serves one process;
//! [`SharedBroker`](super::shared::SharedBroker), over Redis Streams, serves several
//! replicas.
//!
//! Every live reply keeps its events in order; a subscriber reads them at its own pace from
//! the log and is only *woken* by new ones, so a slow subscriber never blocks generation or
//! other subscribers, and never misses an event.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use futures::{
    StreamExt,
    stream::{BoxStream, SelectAll},
};
use tokio::sync::{broadcast, watch};

use super::events::ReplyEvent;

/// A stream of reply events.
pub type EventStream = BoxStream<'static, ReplyEvent>;

/// Carries reply events from the generator to every subscriber.
#[async_trait]
pub trait ReplyBroker: Send + Sync {
    /// Publishes an event. The first event of a reply opens it; a terminal event closes it.
    async fn publish(&self, event: ReplyEvent);
    /// The reply's events so far, then the rest live, ending with its terminal event; `None`
    /// when the broker holds no live reply of that id (finished, or never started here).
    async fn attach(&self, message_id: &str) -> Option<EventStream>;
    /// The events of every reply of the conversation that starts from now on.
    async fn conversation(&self, conversation_id: &str) -> EventStream;
}

/// A live reply: its events so far and a counter that wakes subscribers.
struct LiveReply {
    events: Mutex<Vec<ReplyEvent>>,
    published: watch::Sender<usize>,
}

impl LiveReply {
    fn new() -> Self {
        Self {
            events: Mutex::new(Vec::new()),
            published: watch::Sender::new(0),
        }
    }

    fn push(&self, event: ReplyEvent) {
        let count = {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            events.push(event);
            events.len()
        };
        self.published.send_replace(count);
    }

    /// Events from `from` on.
    fn since(&self, from: usize) -> Vec<ReplyEvent> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// Every event, from the first, until the terminal one.
    fn follow(self: Arc<Self>) -> EventStream {
        let mut woken = self.published.subscribe();
        async_stream::stream! {
            let mut next = 0;
            loop {
                woken.borrow_and_update();
                let fresh = self.since(next);
                next += fresh.len();
                for event in fresh {
                    let terminal = event.is_terminal();
                    yield event;
                    if terminal {
                        return;
                    }
                }
                if woken.changed().await.is_err() {
                    return;
                }
            }
        }
        .boxed()
    }
}

/// Notices of new replies in a conversation kept for a watcher that is behind (a
/// conversation has one reply at a time, so this is a lot).
const NOTICE_CAPACITY: usize = 16;

/// The in-process broker.
#[derive(Default)]
pub struct LocalBroker {
    replies: Mutex<HashMap<String, Arc<LiveReply>>>,
    conversations: Conversations,
}

impl LocalBroker {
    fn live(&self, message_id: &str) -> Option<Arc<LiveReply>> {
        self.replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(message_id)
            .cloned()
    }

    /// Number of replies being streamed (for tests and metrics).
    pub fn live_replies(&self) -> usize {
        self.replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[async_trait]
impl ReplyBroker for LocalBroker {
    async fn publish(&self, event: ReplyEvent) {
        let terminal = event.is_terminal();
        let message_id = event.message_id().to_owned();
        let (reply, opened) = {
            let mut replies = self.replies.lock().unwrap_or_else(PoisonError::into_inner);
            match replies.get(&message_id) {
                Some(reply) => (reply.clone(), false),
                None => {
                    let reply = Arc::new(LiveReply::new());
                    replies.insert(message_id.clone(), reply.clone());
                    (reply, true)
                }
            }
        };
        let conversation_id = event.conversation_id().to_owned();
        reply.push(event);
        if opened {
            let mut conversations = self
                .conversations
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(notices) = conversations.get(&conversation_id)
                && notices.send(reply).is_err()
            {
                conversations.remove(&conversation_id);
            }
        }
        if terminal {
            self.replies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&message_id);
        }
    }

    async fn attach(&self, message_id: &str) -> Option<EventStream> {
        self.live(message_id).map(LiveReply::follow)
    }

    async fn conversation(&self, conversation_id: &str) -> EventStream {
        let notices = {
            let mut conversations = self
                .conversations
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            conversations
                .entry(conversation_id.to_owned())
                .or_insert_with(|| broadcast::channel(NOTICE_CAPACITY).0)
                .subscribe()
        };
        let mut subscription = Subscription {
            notices: Some(notices),
            conversations: self.conversations.clone(),
            conversation_id: conversation_id.to_owned(),
        };
        async_stream::stream! {
            let mut replies: SelectAll<EventStream> = SelectAll::new();
            loop {
                tokio::select! {
                    notice = subscription.recv() => match notice {
                        Ok(reply) => replies.push(reply.follow()),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "a conversation watcher fell behind and missed replies");
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    Some(event) = replies.next(), if !replies.is_empty() => yield event,
                }
            }
        }
        .boxed()
    }
}

type Conversations = Arc<Mutex<HashMap<String, broadcast::Sender<Arc<LiveReply>>>>>;

/// A subscriber's notice receiver; dropping it drops the conversation's channel when no
/// other subscriber is left.
struct Subscription {
    notices: Option<broadcast::Receiver<Arc<LiveReply>>>,
    conversations: Conversations,
    conversation_id: String,
}

impl Subscription {
    async fn recv(&mut self) -> Result<Arc<LiveReply>, broadcast::error::RecvError> {
        match &mut self.notices {
            Some(notices) => notices.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.notices.take());
        let mut conversations = self
            .conversations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if conversations
            .get(&self.conversation_id)
            .is_some_and(|notices| notices.receiver_count() == 0)
        {
            conversations.remove(&self.conversation_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reply_failure::{ReplyFailure, ReplyFailureCode};

    fn delta(index: u32) -> ReplyEvent {
        ReplyEvent::Delta {
            conversation_id: "conv_1".into(),
            message_id: "msg_1".into(),
            index,
            delta: format!("t{index} "),
        }
    }

    fn failed() -> ReplyEvent {
        ReplyEvent::Failed {
            conversation_id: "conv_1".into(),
            message_id: "msg_1".into(),
            failure: ReplyFailure::new(ReplyFailureCode::Interrupted, "stopped"),
        }
    }

    fn indices(events: &[ReplyEvent]) -> Vec<u32> {
        events
            .iter()
            .filter_map(|e| match e {
                ReplyEvent::Delta { index, .. } => Some(*index),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_late_subscriber_gets_every_event_and_a_watcher_gets_the_replies_that_start_later() {
        let broker = LocalBroker::default();
        let watcher = broker.conversation("conv_1").await;
        for i in 0..100 {
            broker.publish(delta(i)).await;
        }
        let late = broker.attach("msg_1").await.expect("the reply is live");
        for i in 100..200 {
            broker.publish(delta(i)).await;
        }
        broker.publish(failed()).await;
        let expected: Vec<u32> = (0..200).collect();
        let late: Vec<ReplyEvent> = late.collect().await;
        assert_eq!(indices(&late), expected);
        assert!(late.last().is_some_and(ReplyEvent::is_terminal));
        let watched: Vec<ReplyEvent> = watcher.take(201).collect().await;
        assert_eq!(indices(&watched), expected);
        assert!(
            broker.attach("msg_1").await.is_none(),
            "an ended reply is gone"
        );
        assert_eq!(broker.live_replies(), 0);
    }

    #[tokio::test]
    async fn a_subscriber_that_never_reads_does_not_hold_up_the_publisher() {
        let broker = LocalBroker::default();
        broker.publish(delta(0)).await;
        let _stalled = broker.attach("msg_1").await.expect("live");
        // Far more events than any channel buffer: publishing must not wait for readers.
        let publishing = async {
            for i in 1..100_000 {
                broker.publish(delta(i)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), publishing)
            .await
            .expect("publishing never blocks on a subscriber");
    }
}
