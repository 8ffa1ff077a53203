//! Confining visitor credentials (widget tokens, external issuers' tokens) to their own
//! visitor and assistant: a visitor sees only its own sessions, and only the conversations of
//! those sessions (with its assistant, when the credential names one). Anything else answers
//! `NOT_FOUND`, like a record that does not exist.

use entity::{conversation, visitor_session};

use crate::{
    auth::Principal,
    domain::ids::OrgId,
    error::{AppError, AppResult},
    repo,
    state::AppState,
};

/// The assistant a visitor operation uses: the credential's own when it names one (naming
/// another is refused), otherwise the one asked for.
pub fn assistant_for(principal: &Principal, asked: Option<String>) -> AppResult<Option<String>> {
    let Some(bound) = principal.visitor_grant().and_then(|g| g.assistant.as_ref()) else {
        return Ok(asked);
    };
    match asked {
        Some(id) if id != bound.as_str() => Err(AppError::Forbidden(
            "this token is bound to another assistant".into(),
        )),
        _ => Ok(Some(bound.as_str().to_owned())),
    }
}

/// `NOT_FOUND` unless the session is visible to the caller.
pub fn session_visible(principal: &Principal, session: &visitor_session::Model) -> AppResult<()> {
    match principal.visitor_grant() {
        Some(grant) if !grant.owns(&session.visitor_id, session.external_user_id.as_deref()) => {
            Err(AppError::NotFound("session"))
        }
        _ => Ok(()),
    }
}

/// `NOT_FOUND` unless the conversation is visible to the caller.
pub async fn conversation_visible(
    state: &AppState,
    principal: &Principal,
    org: &OrgId,
    conversation: &conversation::Model,
) -> AppResult<()> {
    let Some(grant) = principal.visitor_grant() else {
        return Ok(());
    };
    if grant
        .assistant
        .as_ref()
        .is_some_and(|bound| conversation.assistant_id != bound.as_str())
    {
        return Err(AppError::NotFound("conversation"));
    }
    let session = repo::sessions::find(
        &state.db,
        org,
        &crate::domain::ids::SessionId::from_db(conversation.session_id.clone()),
    )
    .await?
    .ok_or(AppError::NotFound("conversation"))?;
    if grant.owns(&session.visitor_id, session.external_user_id.as_deref()) {
        Ok(())
    } else {
        Err(AppError::NotFound("conversation"))
    }
}
