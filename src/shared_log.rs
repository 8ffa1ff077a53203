//! A log every replica shares: Redis Streams (the only module besides the limiter that talks
//! to Redis).
//!
//! Writers append entries (`XADD` with a bounded `MAXLEN`, and an expiry); readers replay a
//! stream (`XRANGE`) and follow it from an entry on. Followers do not each hold a connection:
//! one reader per process follows every stream its followers want with a single blocking
//! `XREAD` on a connection of its own, and hands each entry to the followers that have not
//! seen it. Registering a follower wakes the reader through a stream of the process's own, so
//! the new stream is read at once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context;
use redis::{
    AsyncCommands, AsyncConnectionConfig, Client,
    aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    streams::{StreamId, StreamMaxlen, StreamRangeReply, StreamReadOptions, StreamReadReply},
};

/// How long the reader blocks in one `XREAD` before it looks at its followers again.
const BLOCK: Duration = Duration::from_secs(5);
/// Entries taken per stream and `XREAD`.
const READ_COUNT: usize = 512;
/// How long the reader waits before connecting again after an error.
const RECONNECT_WAIT: Duration = Duration::from_millis(500);
/// The field an entry's payload is stored in.
const FIELD: &str = "e";

/// The position of an entry in its stream (`<ms>-<seq>`), ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EntryId(u64, u64);

impl EntryId {
    /// Before every entry.
    pub const START: Self = Self(0, 0);

    fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct Append {
    /// The stream (without the prefix).
    pub stream: String,
    /// What to store.
    pub payload: Vec<u8>,
    /// The stream keeps about this many entries (older ones are trimmed).
    pub max_len: usize,
    /// The stream expires this long after this append.
    pub expire: Duration,
}

/// Where a follower's entries go.
pub trait Sink: Send {
    /// Takes the next entry; returns whether to go on following.
    fn deliver(&mut self, payload: &[u8]) -> bool;
    /// Whether anyone still wants the entries (checked before each read).
    fn wanted(&self) -> bool;
}

struct Follower {
    after: EntryId,
    sink: Box<dyn Sink>,
}

/// The streams this process follows, by key.
type Followers = Arc<Mutex<HashMap<String, Vec<Follower>>>>;

/// A connection to the shared log.
#[derive(Clone)]
pub struct SharedLog {
    writer: ConnectionManager,
    prefix: String,
    followers: Followers,
    /// The stream that wakes this process's reader.
    wake: String,
}

impl std::fmt::Debug for SharedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLog")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedLog {
    /// Connects with `client` and starts this process's reader; keys start with `prefix`.
    pub async fn connect(client: Client, prefix: &str) -> anyhow::Result<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let writer = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .context("connecting to Redis")?;
        let log = Self {
            writer,
            prefix: prefix.to_owned(),
            followers: Followers::default(),
            wake: format!("{prefix}wake:{}", uuid::Uuid::now_v7().simple()),
        };
        let reader = read_connection(&client)
            .await
            .context("connecting the shared log's reader to Redis")?;
        tokio::spawn(read(
            client,
            reader,
            log.followers.clone(),
            log.wake.clone(),
        ));
        Ok(log)
    }

    fn key(&self, stream: &str) -> String {
        format!("{}{stream}", self.prefix)
    }

    /// Appends `entries` in one round trip, in order.
    pub async fn append(&self, entries: &[Append]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for entry in entries {
            let key = self.key(&entry.stream);
            pipe.xadd_maxlen(
                &key,
                StreamMaxlen::Approx(entry.max_len),
                "*",
                &[(FIELD, entry.payload.as_slice())],
            )
            .ignore()
            .pexpire(&key, entry.expire.as_millis() as i64)
            .ignore();
        }
        let mut writer = self.writer.clone();
        pipe.query_async::<()>(&mut writer)
            .await
            .context("appending to the shared log")
    }

    /// Every entry a stream holds, oldest first, with the position of the last.
    pub async fn range(&self, stream: &str) -> anyhow::Result<(Vec<Vec<u8>>, EntryId)> {
        let mut writer = self.writer.clone();
        let reply: StreamRangeReply = writer
            .xrange_all(self.key(stream))
            .await
            .context("reading the shared log")?;
        let mut last = EntryId::START;
        let mut payloads = Vec::with_capacity(reply.ids.len());
        for entry in &reply.ids {
            if let Some(id) = EntryId::parse(&entry.id) {
                last = last.max(id);
            }
            payloads.push(payload(entry));
        }
        Ok((payloads, last))
    }

    /// The position of a stream's newest entry ([`EntryId::START`] when it has none).
    pub async fn last(&self, stream: &str) -> anyhow::Result<EntryId> {
        let mut writer = self.writer.clone();
        let reply: StreamRangeReply = writer
            .xrevrange_count(self.key(stream), "+", "-", 1)
            .await
            .context("reading the shared log")?;
        Ok(reply
            .ids
            .first()
            .and_then(|entry| EntryId::parse(&entry.id))
            .unwrap_or(EntryId::START))
    }

    /// Hands `sink` every entry of `stream` after `after`, as they are appended, until it
    /// declines one or is no longer wanted.
    pub async fn follow(&self, stream: &str, after: EntryId, sink: Box<dyn Sink>) {
        self.followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(self.key(stream))
            .or_default()
            .push(Follower { after, sink });
        // Wake the reader so that it reads the new stream now rather than after its block.
        let mut writer = self.writer.clone();
        let woken: redis::RedisResult<()> = redis::pipe()
            .xadd_maxlen(&self.wake, StreamMaxlen::Approx(1), "*", &[(FIELD, "1")])
            .ignore()
            .pexpire(&self.wake, 3_600_000)
            .ignore()
            .query_async(&mut writer)
            .await;
        if let Err(e) = woken {
            // The reader still finds the stream at its next read.
            tracing::warn!(error = %e, "could not wake the shared log's reader");
        }
    }

    /// How many streams this process follows (for tests and metrics).
    pub fn followed(&self) -> usize {
        self.followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn payload(entry: &StreamId) -> Vec<u8> {
    entry.get::<Vec<u8>>(FIELD).unwrap_or_default()
}

async fn read_connection(client: &Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// The process's reader: one blocking `XREAD` over every followed stream and the wake stream.
async fn read(
    client: Client,
    mut connection: MultiplexedConnection,
    followers: Followers,
    wake: String,
) {
    let mut woken_after = EntryId::START;
    let options = StreamReadOptions::default()
        .block(BLOCK.as_millis() as usize)
        .count(READ_COUNT);
    loop {
        let (keys, ids) = positions(&followers, &wake, woken_after);
        let reply: redis::RedisResult<Option<StreamReadReply>> =
            connection.xread_options(&keys, &ids, &options).await;
        match reply {
            Ok(Some(reply)) => {
                for stream in reply.keys {
                    if stream.key == wake {
                        if let Some(last) = stream
                            .ids
                            .iter()
                            .filter_map(|e| EntryId::parse(&e.id))
                            .max()
                        {
                            woken_after = woken_after.max(last);
                        }
                        continue;
                    }
                    deliver(&followers, &stream.key, &stream.ids);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the shared log's reader lost Redis; reconnecting");
                loop {
                    tokio::time::sleep(RECONNECT_WAIT).await;
                    match read_connection(&client).await {
                        Ok(fresh) => {
                            connection = fresh;
                            break;
                        }
                        Err(e) => tracing::debug!(error = %e, "Redis is still unreachable"),
                    }
                }
            }
        }
    }
}

/// The streams to read and, for each, the oldest position a follower of it has seen;
/// followers nobody wants any more are dropped first.
fn positions(
    followers: &Followers,
    wake: &str,
    woken_after: EntryId,
) -> (Vec<String>, Vec<String>) {
    let mut followers = followers.lock().unwrap_or_else(PoisonError::into_inner);
    followers.retain(|_, list| {
        list.retain(|f| f.sink.wanted());
        !list.is_empty()
    });
    let mut keys = Vec::with_capacity(followers.len() + 1);
    let mut ids = Vec::with_capacity(followers.len() + 1);
    for (key, list) in followers.iter() {
        let oldest = list.iter().map(|f| f.after).min().unwrap_or_default();
        keys.push(key.clone());
        ids.push(oldest.to_string());
    }
    keys.push(wake.to_owned());
    ids.push(woken_after.to_string());
    (keys, ids)
}

/// Hands a stream's new entries to each follower that has not seen them.
fn deliver(followers: &Followers, key: &str, entries: &[StreamId]) {
    let mut followers = followers.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(list) = followers.get_mut(key) else {
        return;
    };
    list.retain_mut(|follower| {
        for entry in entries {
            let Some(id) = EntryId::parse(&entry.id) else {
                continue;
            };
            if id <= follower.after {
                continue;
            }
            follower.after = id;
            if !follower.sink.deliver(&payload(entry)) {
                return false;
            }
        }
        true
    });
    if list.is_empty() {
        followers.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::EntryId;

    #[test]
    fn entry_ids_order_as_redis_orders_them() {
        let parse = |s| EntryId::parse(s).expect("an entry id");
        assert!(parse("1700000000000-1") > parse("1700000000000-0"));
        assert!(parse("1700000000001-0") > parse("1700000000000-99"));
        assert!(parse("10-0") > parse("9-5"), "numeric, not textual");
        assert_eq!(parse("5-3").to_string(), "5-3");
        assert_eq!(EntryId::parse("garbage"), None);
    }
}
