//! `Idempotency-Key` on writes: the first request with a key claims it and its answer is
//! kept for 24 hours; a retry with the same key and the same request gets that answer again
//! without the work being done twice, one with another request is refused, and one while the
//! first still runs is told to retry. Keys are the organization's (a visitor's are its own)
//! and live in the database, so every replica sees them.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};

use crate::{
    auth::{Principal, Tenant, Work},
    error::{AppError, AppResult},
    repo::{
        self,
        idempotency::{Claim, Claimed, DONE},
    },
    state::AppState,
};

/// How long a key's answer is kept.
pub const KEPT_FOR: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a running request holds its key before a retry may take it over (its process
/// died): longer than any request runs, streamed replies included.
const LOCK: Duration = Duration::from_secs(10 * 60);
/// Longest key.
pub const MAX_KEY_LEN: usize = 255;
/// How often expired keys are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// What a request with a key does.
pub enum Outcome {
    /// Run it: the key is its own. Keep its answer with [`Run::finish`], or [`Run::release`]
    /// the key.
    Run(Run),
    /// Answer what the first request answered.
    Replay(Answer),
}

/// An answer kept for a key.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

/// A request holding its key.
pub struct Run {
    db: DatabaseConnection,
    tenant: Tenant,
    claimed: Claimed,
}

/// Claims `raw` for a request whose method, path and body hash to `fingerprint`.
pub async fn begin(
    state: &AppState,
    principal: &Principal,
    raw: &str,
    fingerprint: &str,
) -> AppResult<Outcome> {
    if raw.is_empty()
        || raw.len() > MAX_KEY_LEN
        || !raw.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(AppError::bad_input(
            "idempotency_key",
            format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters (a UUID, say)"),
        ));
    }
    // A visitor's keys are its own; the stored key is a digest of fixed length.
    let key = match principal.visitor_grant() {
        Some(grant) => format!("visitor:{}:{raw}", grant.visitor_id),
        None => format!("key:{raw}"),
    };
    let key = hex::encode(Sha256::digest(key.as_bytes()));
    let tenant = Tenant::for_work(principal.billed_org().clone(), Work::Governance);
    let now = Utc::now().trunc_subsecs(6);
    let claimed = Claimed { key, at: now };
    let held = repo::idempotency::claim(
        &state.db,
        &tenant,
        &claimed,
        fingerprint,
        now + chrono::Duration::from_std(LOCK).unwrap_or_default(),
        now + chrono::Duration::from_std(KEPT_FOR).unwrap_or_default(),
    )
    .await?;
    let held = match held {
        Claim::Taken => {
            return Ok(Outcome::Run(Run {
                db: state.db.clone(),
                tenant,
                claimed,
            }));
        }
        Claim::Held(held) => held,
    };
    if held.fingerprint != fingerprint {
        return Err(AppError::bad_input(
            "idempotency_key",
            "this Idempotency-Key was used with another request: send a new key for a new request",
        ));
    }
    if held.state != DONE {
        return Err(AppError::Conflict(
            "a request with this Idempotency-Key is still running: retry once it has answered"
                .into(),
        ));
    }
    let headers = serde_json::from_value(held.headers).unwrap_or_default();
    Ok(Outcome::Replay(Answer {
        status: u16::try_from(held.status.unwrap_or(200)).unwrap_or(200),
        headers,
        body: held.body.unwrap_or_default(),
    }))
}

impl Run {
    /// Keeps `answer` for the key's retries.
    pub async fn finish(self, answer: Answer) {
        let headers = serde_json::to_value(&answer.headers).unwrap_or_default();
        if let Err(e) = repo::idempotency::finish(
            &self.db,
            &self.tenant,
            &self.claimed,
            answer.status,
            headers,
            answer.body,
        )
        .await
        {
            tracing::warn!(error = %e, "could not keep an idempotent answer; a retry runs again");
            self.release().await;
        }
    }

    /// Frees the key: the request kept no answer, and a retry runs it again.
    pub async fn release(self) {
        if let Err(e) = repo::idempotency::release(&self.db, &self.tenant, &self.claimed).await {
            tracing::warn!(error = %e, "could not release an idempotency key; it frees itself when its lock passes");
        }
    }
}

/// Deletes expired keys every hour, on one replica a pass.
pub fn spawn_prune(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            if state.take_lease("idempotency-retention", PRUNE_EVERY).await {
                match repo::idempotency::prune(&state.db, Utc::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(keys = n, "pruned expired idempotency keys"),
                    Err(e) => tracing::warn!(error = %e, "could not prune idempotency keys"),
                }
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    });
}
