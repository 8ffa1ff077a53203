//! Confining widget tokens to their own visitor and assistant: a widget sees only the
//! sessions of its visitor, and only the conversations of those sessions with its
//! assistant. Anything else answers `NOT_FOUND`, like a record that does not exist.

use entity::{conversation, visitor_session};

use crate::{
    auth::Principal,
    domain::ids::OrgId,
    error::{AppError, AppResult},
    repo,
    state::AppState,
};

/// The assistant a visitor operation uses: a widget's own (naming another is refused),
/// otherwise the one asked for.
pub fn assistant_for(principal: &Principal, asked: Option<String>) -> AppResult<Option<String>> {
    let Some(grant) = principal.widget_grant() else {
        return Ok(asked);
    };
    match asked {
        Some(id) if id != grant.assistant.as_str() => Err(AppError::Forbidden(
            "this widget token is bound to another assistant".into(),
        )),
        _ => Ok(Some(grant.assistant.as_str().to_owned())),
    }
}

/// `NOT_FOUND` unless the session is visible to the caller.
pub fn session_visible(principal: &Principal, session: &visitor_session::Model) -> AppResult<()> {
    match principal.widget_grant() {
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
    let Some(grant) = principal.widget_grant() else {
        return Ok(());
    };
    if conversation.assistant_id != grant.assistant.as_str() {
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
