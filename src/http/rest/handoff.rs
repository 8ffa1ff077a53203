//! `/api/v1/conversations/{conversation_id}/…`: handing a conversation to a person and back,
//! closing it, and a person's messages.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ErrorBody;
use crate::{
    auth::Principal,
    domain::ids::ConversationId,
    error::AppResult,
    http::extract::ApiJson,
    services::{self, handoff::RequestHandoff},
    state::AppState,
    views::{
        conversations::{Conversation, Message},
        handoff::AgentInput,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_handoff, release_handoff))
        .routes(routes!(close_conversation))
        .routes(routes!(send_agent_message))
}

/// Body of a handoff request (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct HandoffBody {
    /// Why, in words (at most 500 characters).
    reason: Option<String>,
    /// For the person who takes over (at most 4,000 characters).
    note: Option<String>,
}

/// Hands a conversation to a person (visitor or API key): visitor messages are stored and
/// streamed, and no reply is generated until it is released. `conversation.handoff_requested`
/// is sent once per handoff.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/handoff", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`")), request_body(content = HandoffBody, description = "Optional: `reason` and `note`"),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`CONVERSATION_CLOSED`"), (status = 422, body = ErrorBody)))]
async fn request_handoff(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
    body: Option<ApiJson<HandoffBody>>,
) -> AppResult<Json<Conversation>> {
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    let input = RequestHandoff {
        conversation_id: ConversationId::parse(&conversation_id)?,
        reason: body.reason,
        note: body.note,
    };
    Ok(Json(
        services::handoff::request(&state, &principal, input)
            .await?
            .into(),
    ))
}

/// Gives a handed-off conversation back to the assistant (API key);
/// `conversation.handoff_released` is sent.
#[utoipa::path(delete, path = "/api/v1/conversations/{conversation_id}/handoff", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`")),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`CONVERSATION_CLOSED`")))]
async fn release_handoff(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
) -> AppResult<Json<Conversation>> {
    let id = ConversationId::parse(&conversation_id)?;
    Ok(Json(
        services::handoff::release(&state, &principal, &id)
            .await?
            .into(),
    ))
}

/// Closes a conversation (visitor or API key): it stays readable and takes no more messages.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/close", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`")),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody)))]
async fn close_conversation(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
) -> AppResult<Json<Conversation>> {
    let id = ConversationId::parse(&conversation_id)?;
    Ok(Json(
        services::handoff::close(&state, &principal, &id)
            .await?
            .into(),
    ))
}

/// A person's message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentMessageBody {
    /// The text, 1–16,000 characters.
    content: String,
    /// Who writes it.
    agent: Option<AgentInput>,
}

/// A person's message in a handed-off conversation (API key), streamed live to the
/// conversation's watchers, the visitor's widget included.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/agent-messages", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`")), request_body = AgentMessageBody,
    responses((status = 201, body = Message), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not handed off, or `CONVERSATION_CLOSED`"),
        (status = 422, body = ErrorBody)))]
async fn send_agent_message(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
    ApiJson(body): ApiJson<AgentMessageBody>,
) -> AppResult<(StatusCode, Json<Message>)> {
    let input = AgentInput::into_message(
        ConversationId::parse(&conversation_id)?,
        body.content,
        body.agent,
    );
    let stored = services::handoff::send_agent_message(&state, &principal, input).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}
