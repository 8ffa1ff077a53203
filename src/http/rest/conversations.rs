//! `/api/v1/conversations` and `/api/v1/messages`: conversations, replies (JSON or
//! `text/event-stream`) and feedback.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ErrorBody, List, ListParams,
    sse::{accepts_event_stream, event_stream, last_event_id},
};
use crate::{
    auth::Principal,
    domain::ids::{ConversationId, MessageId},
    domain::pagination::PageRequest,
    error::{AppError, AppResult},
    http::extract::{ApiJson, ApiQuery},
    services::{self, conversations::ListConversations, feedback::SubmitFeedback},
    state::AppState,
    views::conversations::{
        Conversation, CreateConversationInput, Feedback, FeedbackActorInput, FeedbackInput,
        Message, SendMessageInput, SendMessagePayload,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations, create_conversation))
        .routes(routes!(send_message))
        .routes(routes!(get_conversation))
        .routes(routes!(list_messages))
        .routes(routes!(list_feedback, submit_feedback))
        .routes(routes!(cancel_reply))
        .routes(routes!(reply_stream))
}

/// `?limit=&cursor=&session_id=&assistant_id=&external_user_id=&since=&until=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConversationParams {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Of this session.
    session_id: Option<String>,
    /// With this assistant.
    assistant_id: Option<String>,
    /// Of this visitor, across channels.
    external_user_id: Option<String>,
    /// Started at or after (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Started before (RFC 3339).
    until: Option<DateTime<Utc>>,
}

/// Conversations, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(ConversationParams),
    responses((status = 200, body = List<Conversation>), (status = 401, body = ErrorBody)))]
async fn list_conversations(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ConversationParams>,
) -> AppResult<Json<List<Conversation>>> {
    let page = PageRequest::rest(params.limit, params.cursor)?;
    let filter = ListConversations {
        session_id: params.session_id,
        assistant_id: params.assistant_id,
        external_user_id: params.external_user_id,
        since: params.since,
        until: params.until,
    };
    let rows = services::conversations::list(&state, &principal, filter, &page).await?;
    Ok(Json(List::from_page(
        rows,
        |c| c.id.clone(),
        Conversation::from,
    )))
}

/// Opens a conversation in an open session.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", request_body = CreateConversationInput,
    responses((status = 201, body = Conversation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn create_conversation(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateConversationInput>,
) -> AppResult<(StatusCode, Json<Conversation>)> {
    let conversation =
        services::conversations::create(&state, &principal, input.try_into()?).await?;
    Ok((StatusCode::CREATED, Json(conversation.into())))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`")),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody)))]
async fn get_conversation(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
) -> AppResult<Json<Conversation>> {
    Ok(Json(
        services::conversations::get(
            &state,
            &principal,
            &ConversationId::parse(&conversation_id)?,
        )
        .await?
        .into(),
    ))
}

/// A conversation's messages, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation_id}/messages", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`"), ListParams),
    responses((status = 200, body = List<Message>), (status = 404, body = ErrorBody)))]
async fn list_messages(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<Json<List<Message>>> {
    let rows = services::conversations::messages(
        &state,
        &principal,
        &ConversationId::parse(&conversation_id)?,
        &params.page()?,
    )
    .await?;
    Ok(Json(List::from_page(rows, |m| m.id.clone(), Message::from)))
}

/// Body of `send-message`.
#[derive(Deserialize, ToSchema)]
struct SendMessageBody {
    /// The message and where it goes.
    #[serde(flatten)]
    input: SendMessageInput,
    /// Answer with `text/event-stream` (also chosen by `Accept: text/event-stream`).
    #[serde(default)]
    stream: bool,
}

/// Sends a visitor's message. Answers JSON with the finished reply, or streams it as
/// `text/event-stream` when asked (`"stream": true` or `Accept: text/event-stream`): events
/// `reply_started`, `reply_delta`, `reply_citations`, `reply_completed` or `reply_failed`,
/// then `done`. The reply is generated and stored to the end even if the client goes away.
#[utoipa::path(post, path = "/api/v1/conversations/send-message", tag = "conversations", request_body = SendMessageBody,
    responses((status = 200, description = "JSON, or `text/event-stream` when asked",
            content((SendMessagePayload = "application/json"), (String = "text/event-stream"))),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_message(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendMessageBody>,
) -> AppResult<Response> {
    let wants_stream = body.stream || accepts_event_stream(&headers);
    let sent = services::conversations::send(&state, &principal, body.input.try_into()?).await?;
    if wants_stream {
        let events = services::replies::sent_reply_stream(&state, &principal, &sent).await?;
        return Ok(event_stream(events, None));
    }
    let user_message = sent.user_message.clone().into();
    let reply = sent.wait().await?;
    Ok(Json(SendMessagePayload {
        user_message,
        reply: reply.map(Into::into),
    })
    .into_response())
}

/// Stops a reply being generated; the text written so far is kept (`CANCELLED`).
#[utoipa::path(post, path = "/api/v1/messages/{message_id}/cancel", tag = "conversations",
    params(("message_id" = String, Path, description = "`msg_…` of the reply")),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_reply(
    State(state): State<AppState>,
    principal: Principal,
    Path(message_id): Path<String>,
) -> AppResult<Json<Message>> {
    Ok(Json(
        services::replies::cancel(&state, &principal, &MessageId::parse(&message_id)?)
            .await?
            .into(),
    ))
}

/// A reply as `text/event-stream`: what was generated so far, then the rest live (the whole
/// reply when it has ended). Re-attaches after a dropped connection: with `Last-Event-ID`
/// (the `id:` of the last event received), only what follows it.
#[utoipa::path(get, path = "/api/v1/messages/{message_id}/stream", tag = "conversations",
    params(("message_id" = String, Path, description = "`msg_…` of the reply"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event: the `id:` of the last event received")),
    responses((status = 200, description = "The reply's events", content((String = "text/event-stream"))),
        (status = 404, body = ErrorBody)))]
async fn reply_stream(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(message_id): Path<String>,
) -> AppResult<Response> {
    let after = last_event_id(&headers)?;
    let events =
        services::replies::reply_stream(&state, &principal, &MessageId::parse(&message_id)?)
            .await?;
    Ok(event_stream(events, after))
}

/// `up` or `down`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Thumbs {
    /// Rating 5.
    Up,
    /// Rating 1.
    Down,
}

/// Feedback on a conversation: a `rating` 1–5, or `thumbs`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    /// A message of the conversation (`msg_…`), when the feedback is about one.
    message_id: Option<String>,
    /// 1–5.
    rating: Option<i32>,
    /// `up` (5) or `down` (1), instead of `rating`.
    thumbs: Option<Thumbs>,
    /// Free text.
    comment: Option<String>,
    /// Who gives it (default: the visitor).
    actor: Option<FeedbackActorInput>,
}

/// Rates a conversation or one of its messages.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/feedback", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`")), request_body = FeedbackBody,
    responses((status = 201, body = Feedback), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn submit_feedback(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> AppResult<(StatusCode, Json<Feedback>)> {
    let rating = match (body.rating, body.thumbs) {
        (Some(rating), None) => rating,
        (None, Some(Thumbs::Up)) => 5,
        (None, Some(Thumbs::Down)) => 1,
        _ => {
            return Err(AppError::bad_input(
                "rating",
                "give either `rating` (1–5) or `thumbs` (up or down)",
            ));
        }
    };
    let input = FeedbackInput {
        conversation_id: conversation_id.into(),
        message_id: body.message_id.map(Into::into),
        rating,
        comment: body.comment,
        actor: body.actor,
    };
    let feedback: SubmitFeedback = input.try_into()?;
    let stored = services::feedback::submit(&state, &principal, feedback).await?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// `?limit=&cursor=&message_id=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FeedbackParams {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only the feedback on this message.
    message_id: Option<String>,
}

/// Feedback on a conversation and its messages, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation_id}/feedback", tag = "conversations",
    params(("conversation_id" = String, Path, description = "`conv_…`"), FeedbackParams),
    responses((status = 200, body = List<Feedback>), (status = 404, body = ErrorBody)))]
async fn list_feedback(
    State(state): State<AppState>,
    principal: Principal,
    Path(conversation_id): Path<String>,
    ApiQuery(params): ApiQuery<FeedbackParams>,
) -> AppResult<Json<List<Feedback>>> {
    let page = PageRequest::rest(params.limit, params.cursor)?;
    let rows = services::feedback::list(
        &state,
        &principal,
        &ConversationId::parse(&conversation_id)?,
        params.message_id.as_deref(),
        &page,
    )
    .await?;
    Ok(Json(List::from_page(
        rows,
        |f| f.id.clone(),
        Feedback::from,
    )))
}
