//! The shared limiter: one Redis counter per organization and window, incremented by an
//! atomic script so concurrent replicas never over-admit.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use redis::{Script, aio::ConnectionManager};

use super::{Limiter, Policy};
use crate::domain::ids::OrgId;

/// Adds `ARGV[2]` to the window's counter, unless `ARGV[3]` (a limit, or -1 for none) would
/// be passed: then the counter is left as it is and what it would have become is returned.
/// The first hit sets the key to expire after the window.
const INCREMENT: &str = r"
local by = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
if cap >= 0 then
  local current = tonumber(redis.call('GET', KEYS[1]) or '0')
  if current + by > cap then
    return current + by
  end
end
local count = redis.call('INCRBY', KEYS[1], by)
if count == by then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
";

/// Counts in Redis, shared by every replica pointed at the same server.
#[derive(Clone)]
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: Script,
    prefix: String,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Connects with `client`; keys start with `prefix`.
    pub async fn connect(client: redis::Client, prefix: &str) -> anyhow::Result<Self> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            connection,
            script: Script::new(INCREMENT),
            prefix: prefix.to_owned(),
        })
    }
}

impl RedisLimiter {
    fn mark_key(&self, org: &OrgId, what: &str, policy: Policy, window_start: u64) -> String {
        format!(
            "{}ratelimit-mark:{}:{}:{}:{}",
            self.prefix,
            org.as_str(),
            what,
            policy.window_seconds,
            window_start
        )
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn increment(
        &self,
        org: &OrgId,
        policy: Policy,
        window_start: u64,
        by: u64,
        all_or_nothing: bool,
    ) -> anyhow::Result<u64> {
        let key = format!(
            "{}ratelimit:{}:{}:{}",
            self.prefix,
            org.as_str(),
            policy.window_seconds,
            window_start
        );
        // Kept a second past the window's end so a late hit never restarts a finished window.
        let ttl_ms = (u64::from(policy.window_seconds) + 1) * 1000;
        let mut connection = self.connection.clone();
        self.script
            .key(key)
            .arg(ttl_ms)
            .arg(by)
            .arg(if all_or_nothing {
                i64::from(policy.limit)
            } else {
                -1
            })
            .invoke_async(&mut connection)
            .await
            .context("counting the request in Redis")
    }

    async fn first_in_window(
        &self,
        org: &OrgId,
        what: &str,
        policy: Policy,
        window_start: u64,
    ) -> anyhow::Result<bool> {
        let ttl_ms = (u64::from(policy.window_seconds) + 1) * 1000;
        let mut connection = self.connection.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.mark_key(org, what, policy, window_start))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut connection)
            .await
            .context("marking an alert in Redis")?;
        Ok(set.is_some())
    }

    async fn unmark(
        &self,
        org: &OrgId,
        what: &str,
        policy: Policy,
        window_start: u64,
    ) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.mark_key(org, what, policy, window_start))
            .query_async::<()>(&mut connection)
            .await
            .context("clearing an alert mark in Redis")
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
