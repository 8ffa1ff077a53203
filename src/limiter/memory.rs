//! The in-process limiter: one counter per organization and window.

use std::{collections::HashMap, sync::Mutex};

use async_trait::async_trait;

use super::{Limiter, Policy};
use crate::domain::ids::OrgId;

/// A window: its start (Unix seconds) and length (seconds).
type Window = (u64, u32);

/// Counts in this process only; the default when no Redis is configured.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    /// Per organization: the window being counted, and its count.
    windows: Mutex<HashMap<OrgId, (Window, u64)>>,
    marks: Mutex<HashMap<(OrgId, String), Window>>,
}

#[async_trait]
impl Limiter for MemoryLimiter {
    async fn increment(
        &self,
        org: &OrgId,
        policy: Policy,
        window_start: u64,
        by: u64,
        all_or_nothing: bool,
    ) -> anyhow::Result<u64> {
        let window = (window_start, policy.window_seconds);
        let mut windows = self
            .windows
            .lock()
            .map_err(|_| anyhow::anyhow!("rate limiter lock poisoned"))?;
        let entry = windows.entry(org.clone()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if all_or_nothing && entry.1 + by > u64::from(policy.limit) {
            return Ok(entry.1 + by);
        }
        entry.1 += by;
        Ok(entry.1)
    }

    async fn first_in_window(
        &self,
        org: &OrgId,
        what: &str,
        policy: Policy,
        window_start: u64,
    ) -> anyhow::Result<bool> {
        let window = (window_start, policy.window_seconds);
        let mut marks = self
            .marks
            .lock()
            .map_err(|_| anyhow::anyhow!("rate limiter lock poisoned"))?;
        let previous = marks.insert((org.clone(), what.to_owned()), window);
        Ok(previous != Some(window))
    }

    async fn unmark(
        &self,
        org: &OrgId,
        what: &str,
        policy: Policy,
        window_start: u64,
    ) -> anyhow::Result<()> {
        let window = (window_start, policy.window_seconds);
        let mut marks = self
            .marks
            .lock()
            .map_err(|_| anyhow::anyhow!("rate limiter lock poisoned"))?;
        let key = (org.clone(), what.to_owned());
        if marks.get(&key) == Some(&window) {
            marks.remove(&key);
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
