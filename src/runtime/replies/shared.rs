//! The reply broker of several replicas: every event also goes to the shared log (Redis
//! Streams), so a subscriber on any replica follows a reply any replica generates.
//!
//! - A reply's events are appended to `reply:<message>` (bounded, renewed while the reply
//!   runs, kept a few minutes after its terminal event for late re-attaches); its start is
//!   also noted in `conversation:<conversation>` for the conversation's watchers.
//! - A subscriber of a reply this process generates follows it in memory (the
//!   [`LocalBroker`]); any other reply is replayed from the log and then followed through
//!   the process's one shared reader.
//! - Events are appended by one task, in order, batching what queued up meanwhile into one
//!   round trip: generation never waits for Redis, except for a reply's start, which returns
//!   once it is in the log (so a client told of the reply finds it on any replica).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use entity::{conversation, message};
use futures::{StreamExt, stream::SelectAll};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{
    broker::{EventStream, LocalBroker, ReplyBroker},
    events::{Citation, ReplyEvent},
};
use crate::{
    domain::reply_failure::{ReplyFailure, ReplyFailureCode},
    shared_log::{Append, SharedLog, Sink},
};

/// Entries a reply's stream keeps (far more than a reply has events).
const REPLY_MAX_LEN: usize = 20_000;
/// A running reply's stream expires this long after its last event.
const RUNNING_EXPIRY: Duration = Duration::from_secs(3600);
/// An ended reply's stream stays for re-attaches this long.
const ENDED_EXPIRY: Duration = Duration::from_secs(300);
/// Notices of new replies a conversation's stream keeps.
const NOTICE_MAX_LEN: usize = 16;
/// Events appended in one round trip at most.
const BATCH: usize = 256;

/// Carries reply events between replicas through the shared log.
#[derive(Clone)]
pub struct SharedBroker {
    inner: Arc<Inner>,
}

struct Inner {
    log: SharedLog,
    local: LocalBroker,
    outgoing: mpsc::UnboundedSender<Queued>,
}

/// An event to append, and who waits until it is appended (or could not be).
type Queued = (ReplyEvent, Option<oneshot::Sender<()>>);

impl SharedBroker {
    /// A broker over `log`; starts the task that appends events.
    pub fn new(log: SharedLog) -> Self {
        let (outgoing, queued) = mpsc::unbounded_channel();
        tokio::spawn(append(log.clone(), queued));
        Self {
            inner: Arc::new(Inner {
                log,
                local: LocalBroker::default(),
                outgoing,
            }),
        }
    }

    /// Streams of the shared log this process follows (for tests and metrics).
    pub fn followed(&self) -> usize {
        self.inner.log.followed()
    }
}

#[async_trait]
impl ReplyBroker for SharedBroker {
    async fn publish(&self, event: ReplyEvent) {
        self.inner.local.publish(event.clone()).await;
        let (appended, waiting) = if event.opens() {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // The receiver lives as long as the broker.
        let _ = self.inner.outgoing.send((event, appended));
        if let Some(waiting) = waiting {
            let _ = waiting.await;
        }
    }

    async fn attach(&self, message_id: &str) -> Option<EventStream> {
        self.inner.attach(message_id).await
    }

    async fn conversation(&self, conversation_id: &str) -> EventStream {
        let stream = notice_stream(conversation_id);
        let after = match self.inner.log.last(&stream).await {
            Ok(after) => after,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "Redis is unreachable: a conversation watcher sees only this replica's replies"
                );
                return self.inner.local.conversation(conversation_id).await;
            }
        };
        let (notices_tx, mut notices) = mpsc::unbounded_channel();
        self.inner
            .log
            .follow(&stream, after, Box::new(Notices(notices_tx)))
            .await;
        let inner = self.inner.clone();
        async_stream::stream! {
            let mut replies: SelectAll<EventStream> = SelectAll::new();
            loop {
                tokio::select! {
                    notice = notices.recv() => match notice {
                        Some(message_id) => {
                            if let Some(reply) = inner.attach(&message_id).await {
                                replies.push(reply);
                            }
                        }
                        None => return,
                    },
                    Some(event) = replies.next(), if !replies.is_empty() => yield event,
                }
            }
        }
        .boxed()
    }
}

impl Inner {
    /// A reply of this process from memory; another's replayed from the log and followed.
    async fn attach(&self, message_id: &str) -> Option<EventStream> {
        if let Some(local) = self.local.attach(message_id).await {
            return Some(local);
        }
        let stream = reply_stream(message_id);
        let (payloads, last) = match self.log.range(&stream).await {
            Ok(range) => range,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "could not replay a reply from Redis"
                );
                return None;
            }
        };
        let replayed: Vec<ReplyEvent> = payloads.iter().filter_map(|p| decode(p)).collect();
        if replayed.is_empty() {
            return None;
        }
        if replayed.last().is_some_and(ReplyEvent::is_terminal) {
            return Some(futures::stream::iter(replayed).boxed());
        }
        let (events_tx, mut events) = mpsc::unbounded_channel();
        self.log
            .follow(&stream, last, Box::new(Events(events_tx)))
            .await;
        Some(
            async_stream::stream! {
                for event in replayed {
                    yield event;
                }
                while let Some(event) = events.recv().await {
                    let terminal = event.is_terminal();
                    yield event;
                    if terminal {
                        return;
                    }
                }
            }
            .boxed(),
        )
    }
}

/// Appends queued events to the log, in order, a batch per round trip.
async fn append(log: SharedLog, mut queued: mpsc::UnboundedReceiver<Queued>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut batch, BATCH).await > 0 {
        let mut waiting = Vec::new();
        let mut appends = Vec::new();
        for (event, appended) in batch.drain(..) {
            appends.extend(appends_of(event));
            waiting.extend(appended);
        }
        if let Err(e) = log.append(&appends).await {
            // Subscribers on this replica still get them; others see the stored reply.
            tracing::warn!(
                error = format!("{e:#}"),
                events = appends.len(),
                "could not append reply events to Redis"
            );
        }
        for appended in waiting {
            let _ = appended.send(());
        }
    }
}

fn reply_stream(message_id: &str) -> String {
    format!("reply:{message_id}")
}

fn notice_stream(conversation_id: &str) -> String {
    format!("conversation:{conversation_id}")
}

/// The log entries of one event: the event on its reply's stream, and a notice on the
/// conversation's stream when the reply starts.
fn appends_of(event: ReplyEvent) -> Vec<Append> {
    let expire = if event.is_terminal() {
        ENDED_EXPIRY
    } else {
        RUNNING_EXPIRY
    };
    let notice = event.opens().then(|| Append {
        stream: notice_stream(event.conversation_id()),
        payload: event.message_id().as_bytes().to_vec(),
        max_len: NOTICE_MAX_LEN,
        expire: RUNNING_EXPIRY,
    });
    let mut appends = vec![Append {
        stream: reply_stream(event.message_id()),
        payload: encode(event),
        max_len: REPLY_MAX_LEN,
        expire,
    }];
    appends.extend(notice);
    appends
}

/// Hands a followed reply's events to its subscriber.
struct Events(mpsc::UnboundedSender<ReplyEvent>);

impl Sink for Events {
    fn deliver(&mut self, payload: &[u8]) -> bool {
        let Some(event) = decode(payload) else {
            return true;
        };
        let terminal = event.is_terminal();
        self.0.send(event).is_ok() && !terminal
    }

    fn wanted(&self) -> bool {
        !self.0.is_closed()
    }
}

/// Hands the ids of a conversation's new replies to its watcher.
struct Notices(mpsc::UnboundedSender<String>);

impl Sink for Notices {
    fn deliver(&mut self, payload: &[u8]) -> bool {
        match std::str::from_utf8(payload) {
            Ok(message_id) => self.0.send(message_id.to_owned()).is_ok(),
            Err(_) => true,
        }
    }

    fn wanted(&self) -> bool {
        !self.0.is_closed()
    }
}

/// A reply event as replicas exchange it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "event")]
enum Wire {
    Started {
        conversation_id: String,
        message_id: String,
        reply_to: Option<String>,
    },
    Delta {
        conversation_id: String,
        message_id: String,
        index: u32,
        delta: String,
    },
    Citations {
        conversation_id: String,
        message_id: String,
        citations: Vec<Citation>,
    },
    Completed {
        message: Box<message::Model>,
    },
    Failed {
        conversation_id: String,
        message_id: String,
        code: String,
        message: String,
    },
    Posted {
        message: Box<message::Model>,
    },
    StateChanged {
        key: String,
        conversation: Box<conversation::Model>,
    },
}

fn encode(event: ReplyEvent) -> Vec<u8> {
    let wire = match event {
        ReplyEvent::Started {
            conversation_id,
            message_id,
            reply_to,
        } => Wire::Started {
            conversation_id,
            message_id,
            reply_to,
        },
        ReplyEvent::Delta {
            conversation_id,
            message_id,
            index,
            delta,
        } => Wire::Delta {
            conversation_id,
            message_id,
            index,
            delta,
        },
        ReplyEvent::Citations {
            conversation_id,
            message_id,
            citations,
        } => Wire::Citations {
            conversation_id,
            message_id,
            citations,
        },
        ReplyEvent::Completed { message } => Wire::Completed {
            message: Box::new(Arc::unwrap_or_clone(message)),
        },
        ReplyEvent::Failed {
            conversation_id,
            message_id,
            failure,
        } => Wire::Failed {
            conversation_id,
            message_id,
            code: failure.code.as_str().to_owned(),
            message: failure.message,
        },
        ReplyEvent::Posted { message } => Wire::Posted {
            message: Box::new(Arc::unwrap_or_clone(message)),
        },
        ReplyEvent::StateChanged { key, conversation } => Wire::StateChanged {
            key,
            conversation: Box::new(Arc::unwrap_or_clone(conversation)),
        },
    };
    // Strings, numbers and a row of them: serializing cannot fail.
    serde_json::to_vec(&wire).unwrap_or_default()
}

fn decode(payload: &[u8]) -> Option<ReplyEvent> {
    let wire: Wire = match serde_json::from_slice(payload) {
        Ok(wire) => wire,
        Err(e) => {
            tracing::warn!(error = %e, "skipped a reply event this version cannot read");
            return None;
        }
    };
    Some(match wire {
        Wire::Started {
            conversation_id,
            message_id,
            reply_to,
        } => ReplyEvent::Started {
            conversation_id,
            message_id,
            reply_to,
        },
        Wire::Delta {
            conversation_id,
            message_id,
            index,
            delta,
        } => ReplyEvent::Delta {
            conversation_id,
            message_id,
            index,
            delta,
        },
        Wire::Citations {
            conversation_id,
            message_id,
            citations,
        } => ReplyEvent::Citations {
            conversation_id,
            message_id,
            citations,
        },
        Wire::Completed { message } => ReplyEvent::Completed {
            message: Arc::new(*message),
        },
        Wire::Failed {
            conversation_id,
            message_id,
            code,
            message,
        } => ReplyEvent::Failed {
            conversation_id,
            message_id,
            failure: ReplyFailure::new(
                ReplyFailureCode::parse(&code).unwrap_or(ReplyFailureCode::Internal),
                message,
            ),
        },
        Wire::Posted { message } => ReplyEvent::Posted {
            message: Arc::new(*message),
        },
        Wire::StateChanged { key, conversation } => ReplyEvent::StateChanged {
            key,
            conversation: Arc::new(*conversation),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reply_failure::ReplyFailureCode;

    fn delta(message: &str, index: u32) -> ReplyEvent {
        ReplyEvent::Delta {
            conversation_id: "conv_1".into(),
            message_id: message.into(),
            index,
            delta: format!("t{index} "),
        }
    }

    fn started(message: &str) -> ReplyEvent {
        ReplyEvent::Started {
            conversation_id: "conv_1".into(),
            message_id: message.into(),
            reply_to: Some("msg_user".into()),
        }
    }

    fn failed(message: &str) -> ReplyEvent {
        ReplyEvent::Failed {
            conversation_id: "conv_1".into(),
            message_id: message.into(),
            failure: ReplyFailure::new(ReplyFailureCode::ModelBusy, "busy"),
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

    #[test]
    fn every_event_reads_back_as_it_was_written() {
        let events = [started("msg_1"), delta("msg_1", 7), failed("msg_1")];
        for event in events {
            let back = decode(&encode(event.clone())).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{event:?}"));
        }
        assert!(decode(b"{\"event\":\"Unknown\"}").is_none());
    }

    /// Two brokers on one Redis, as two replicas: one generates, the other follows.
    #[tokio::test]
    async fn a_reply_published_on_one_replica_is_followed_whole_and_in_order_on_another() {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            eprintln!("TEST_REDIS_URL is not set: skipped");
            return;
        };
        let prefix = format!("companin-unit-{}:", uuid::Uuid::now_v7().simple());
        let connect = || async {
            let client = redis::Client::open(url.as_str()).expect("a Redis URL");
            SharedBroker::new(SharedLog::connect(client, &prefix).await.expect("Redis"))
        };
        let (a, b) = (connect().await, connect().await);
        let watcher = b.conversation("conv_1").await;
        assert!(b.attach("msg_1").await.is_none(), "nothing published yet");

        a.publish(started("msg_1")).await;
        for i in 0..100 {
            a.publish(delta("msg_1", i)).await;
        }
        // A late subscriber on B: what was published, then the rest live.
        let late = loop {
            if let Some(late) = b.attach("msg_1").await {
                break late;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        for i in 100..200 {
            a.publish(delta("msg_1", i)).await;
        }
        a.publish(failed("msg_1")).await;
        let expected: Vec<u32> = (0..200).collect();
        let late: Vec<ReplyEvent> = tokio::time::timeout(Duration::from_secs(10), late.collect())
            .await
            .expect("the reply ends");
        assert_eq!(indices(&late), expected);
        assert!(matches!(late.first(), Some(ReplyEvent::Started { .. })));
        assert!(
            matches!(late.last(), Some(ReplyEvent::Failed { failure, .. }) if failure.code == ReplyFailureCode::ModelBusy)
        );
        let watched: Vec<ReplyEvent> =
            tokio::time::timeout(Duration::from_secs(10), watcher.take(202).collect())
                .await
                .expect("the watcher sees the reply");
        assert_eq!(indices(&watched), expected);

        // Ended: replayed whole from the log, and nothing is followed any more.
        let replayed: Vec<ReplyEvent> = b.attach("msg_1").await.expect("kept").collect().await;
        assert_eq!(indices(&replayed), expected);
        // The reply's follower left with its terminal event (the watcher's, dropped above,
        // is pruned at the reader's next pass).
        assert!(b.followed() <= 1, "{} streams followed", b.followed());
    }
}
