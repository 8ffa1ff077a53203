//! Visitor sessions and their contexts (SPEC §6).

use std::collections::HashMap;

use chrono::{Duration, Utc};
use entity::{session_context, visitor_session};
use serde_json::Value;

use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        ids::{AssistantId, ContextId, SessionId},
        pagination::{Page, PageRequest},
    },
    error::{AppError, AppResult},
    repo::{self, sessions::ContextFilter},
    state::AppState,
};

/// Longest session lifetime a caller may ask for (30 days).
pub const MAX_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;
/// Shortest session lifetime (one minute).
pub const MIN_TTL_SECONDS: i64 = 60;

/// A session to open.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    /// The assistant the visitor talks to.
    pub assistant_id: Option<AssistantId>,
    /// The customer's own id of an authenticated visitor.
    pub external_user_id: Option<String>,
    /// `web`, `widget`, `api` (default)…
    pub channel: Option<String>,
    /// Free-form JSON object.
    pub metadata: Option<Value>,
    /// Lifetime in seconds (default from configuration).
    pub ttl_seconds: Option<i64>,
}

/// Opens a session.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    mut input: CreateSession,
) -> AppResult<visitor_session::Model> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    input.assistant_id = tenant.assistant_for(input.assistant_id)?;
    let mut visitor_id = None;
    if let Some(grant) = tenant.visitor() {
        if input
            .external_user_id
            .as_ref()
            .is_some_and(|asked| Some(asked) != grant.external_user_id.as_ref())
        {
            return Err(AppError::Forbidden(
                "a widget token acts for its own visitor only".into(),
            ));
        }
        input.external_user_id = grant.external_user_id.clone();
        input.channel.get_or_insert_with(|| "widget".to_owned());
        visitor_id = Some(grant.visitor_id.clone());
    }
    let channel = input.channel.unwrap_or_else(|| "api".to_owned());
    check_channel(&channel)?;
    let external_user_id = input
        .external_user_id
        .map(|id| check_external_user_id(&id).map(|()| id))
        .transpose()?;
    let metadata = json_object(
        input.metadata,
        "metadata",
        state.settings.replies.max_traits_bytes,
    )?;
    let ttl = input
        .ttl_seconds
        .unwrap_or(state.settings.replies.session_ttl_seconds as i64);
    if !(MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl) {
        return Err(AppError::bad_input(
            "ttl_seconds",
            format!("must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS}"),
        ));
    }
    if let Some(assistant) = &input.assistant_id {
        live_assistant(state, &tenant, assistant).await?;
    }
    Ok(repo::sessions::insert(
        &state.db,
        &tenant,
        repo::sessions::NewSession {
            assistant_id: input.assistant_id.map(AssistantId::into_string),
            external_user_id,
            channel,
            metadata,
            expires_at: Utc::now() + Duration::seconds(ttl),
            visitor_id,
        },
    )
    .await?)
}

/// The assistant `id` of the handle's organization, not deleted (`NOT_FOUND` otherwise).
async fn live_assistant(state: &AppState, tenant: &Tenant, id: &AssistantId) -> AppResult<()> {
    repo::assistants::find(&state.db, tenant, id)
        .await?
        .map(|_| ())
        .ok_or(AppError::NotFound("assistant"))
}

/// The session `id`.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: &SessionId,
) -> AppResult<visitor_session::Model> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    existing(state, &tenant, id).await
}

/// The session `id` as `tenant` sees it, or `NOT_FOUND`.
pub(crate) async fn existing(
    state: &AppState,
    tenant: &Tenant,
    id: &SessionId,
) -> AppResult<visitor_session::Model> {
    repo::sessions::find(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("session"))
}

/// Fails with `SESSION_EXPIRED` when the session no longer takes messages.
pub fn ensure_open(session: &visitor_session::Model) -> AppResult<()> {
    if session.ended_at.is_some() || session.expires_at <= Utc::now() {
        Err(AppError::SessionExpired)
    } else {
        Ok(())
    }
}

/// Whether the session still takes messages.
pub fn is_open(session: &visitor_session::Model) -> bool {
    ensure_open(session).is_ok()
}

/// A page of sessions, optionally of one visitor (`external_user_id`).
pub async fn list(
    state: &AppState,
    principal: &Principal,
    external_user_id: Option<&str>,
    page: &PageRequest,
) -> AppResult<Page<visitor_session::Model>> {
    let tenant = principal.scope(Scope::Read)?;
    Ok(repo::sessions::list(&state.db, &tenant, external_user_id, page).await?)
}

/// Ends a session: it stays readable and refuses new messages.
pub async fn end(
    state: &AppState,
    principal: &Principal,
    id: &SessionId,
) -> AppResult<visitor_session::Model> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    if !repo::sessions::end(&state.db, &tenant, id).await? {
        return Err(AppError::NotFound("session"));
    }
    existing(state, &tenant, id).await
}

/// Attaches traits to an open session; they are in force from the next message on.
pub async fn attach_context(
    state: &AppState,
    principal: &Principal,
    session_id: &SessionId,
    traits: Value,
) -> AppResult<session_context::Model> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    let session = existing(state, &tenant, session_id).await?;
    ensure_open(&session)?;
    let traits = json_object(
        Some(traits),
        "traits",
        state.settings.replies.max_traits_bytes,
    )?;
    Ok(repo::sessions::insert_context(&state.db, &tenant, &session, traits).await?)
}

/// The context `id`.
pub async fn get_context(
    state: &AppState,
    principal: &Principal,
    id: &ContextId,
) -> AppResult<session_context::Model> {
    let tenant = principal.scope(Scope::Read)?;
    repo::sessions::find_context(&state.db, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("context"))
}

/// A page of contexts of a session, or of every session of a visitor.
pub async fn list_contexts(
    state: &AppState,
    principal: &Principal,
    session_id: Option<&SessionId>,
    external_user_id: Option<&str>,
    page: &PageRequest,
) -> AppResult<Page<session_context::Model>> {
    let tenant = principal.scope(Scope::Read)?;
    if let Some(id) = session_id {
        existing(state, &tenant, id).await?;
    }
    let session_id = session_id.cloned();
    let filter = ContextFilter {
        session_id,
        external_user_id: external_user_id.map(str::to_owned),
    };
    Ok(repo::sessions::list_contexts(&state.db, &tenant, &filter, page).await?)
}

/// A page of each session's contexts, oldest first, in one read (read scope).
pub async fn contexts_of_many(
    state: &AppState,
    principal: &Principal,
    session_ids: &[String],
    page: &PageRequest,
) -> AppResult<HashMap<String, Page<session_context::Model>>> {
    let tenant = principal.scope(Scope::Read)?;
    Ok(repo::sessions::contexts_of_many(&state.db, &tenant, session_ids, page).await?)
}

/// The session `id` as `tenant` sees it (`NOT_FOUND`), still open (`SESSION_EXPIRED`), with
/// the traits in force (an empty object when none were attached): one read.
pub(crate) async fn open_with_traits(
    state: &AppState,
    tenant: &Tenant,
    id: &SessionId,
) -> AppResult<(visitor_session::Model, Value)> {
    let (session, context) = repo::sessions::find_with_context(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("session"))?;
    ensure_open(&session)?;
    let traits = context.map_or_else(|| Value::Object(Default::default()), |c| c.traits);
    Ok((session, traits))
}

fn check_channel(channel: &str) -> AppResult<()> {
    let ok = (1..=32).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_input(
            "channel",
            "must be 1 to 32 lowercase letters, digits, `-` or `_` (web, widget, api, email…)",
        ))
    }
}

/// A customer's own id of a visitor: 1 to 255 characters, no control characters.
pub(crate) fn check_external_user_id(id: &str) -> AppResult<()> {
    if id.trim().is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "external_user_id",
            "must be 1 to 255 characters without control characters",
        ));
    }
    Ok(())
}

/// A JSON object of at most `max_bytes` (an absent one is empty).
pub(crate) fn json_object(value: Option<Value>, field: &str, max_bytes: usize) -> AppResult<Value> {
    match value {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(Value::Object(map)) => {
            let value = Value::Object(map);
            let size = value.to_string().len();
            if size > max_bytes {
                Err(AppError::bad_input(
                    field,
                    format!("is {size} bytes of JSON; the limit is {max_bytes}"),
                ))
            } else {
                Ok(value)
            }
        }
        Some(_) => Err(AppError::bad_input(field, "must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traits_must_be_a_bounded_json_object() {
        assert!(json_object(Some(serde_json::json!({"plan": "pro"})), "traits", 100).is_ok());
        assert!(json_object(Some(serde_json::json!(["plan"])), "traits", 100).is_err());
        let big = serde_json::json!({ "notes": "x".repeat(200) });
        assert!(json_object(Some(big), "traits", 100).is_err());
        assert_eq!(
            json_object(None, "traits", 100).ok(),
            Some(serde_json::json!({}))
        );
    }
}
