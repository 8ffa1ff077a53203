//! `POST /v1/chat/completions`: the visitor's message to an assistant, answered as a
//! `chat.completion`, or streamed as `chat.completion.chunk`s ending with `data: [DONE]`.

use std::convert::Infallible;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{StreamExt, stream};
use serde_json::{Value, json};

use super::{
    error::{ApiError, failed, failed_status},
    wire::{ChatRequest, Header},
};
use crate::{
    auth::Principal,
    domain::ids::ConversationId,
    error::AppError,
    services::{
        self,
        conversations::Sent,
        replies::{Citation, ReplyEvent},
    },
    state::AppState,
};

/// The header naming the conversation a call continues, and answering the one it used.
pub const CONVERSATION_HEADER: &str = "x-companin-conversation-id";

/// Sends the last `user` message to the assistant the model names and answers with its reply.
pub async fn completions(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ChatRequest = serde_json::from_slice(&body).map_err(|e| {
        AppError::Malformed(format!("the request is not a chat completion request: {e}"))
    })?;
    let (streams, includes_usage) = (request.streams(), request.includes_usage());
    let model = request.model.clone();
    let mut completion = request.into_completion()?;
    completion.conversation_id = conversation_named(&headers)?;
    let sent = services::completions::start(&state, &principal, completion).await?;
    let conversation =
        HeaderValue::from_str(&sent.conversation.id).map_err(|e| AppError::Internal(e.into()))?;
    let created = sent.user_message.created_at.timestamp();
    let reply_id = sent
        .reply
        .as_ref()
        .map_or(sent.user_message.id.as_str(), |r| r.id.as_str());
    let header = Header::new(reply_id, created, model, sent.conversation.id.clone());
    let mut response = if streams {
        stream_reply(&state, &principal, sent, header, includes_usage).await?
    } else {
        whole_reply(sent, &header).await?
    };
    response
        .headers_mut()
        .insert(CONVERSATION_HEADER, conversation);
    Ok(response)
}

/// The conversation `X-Companin-Conversation-Id` names, if any.
fn conversation_named(headers: &HeaderMap) -> Result<Option<ConversationId>, AppError> {
    let Some(value) = headers.get(CONVERSATION_HEADER) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if !ConversationId::is_well_formed(value) {
        return Err(AppError::bad_input(
            "x-companin-conversation-id",
            "must be a conversation id (conv_…) a previous answer gave",
        ));
    }
    Ok(Some(ConversationId::parse(value)?))
}

/// The finished reply as one `chat.completion`; a reply that failed answers an error.
async fn whole_reply(sent: Sent, header: &Header) -> Result<Response, ApiError> {
    let Some(reply) = sent.wait().await? else {
        return Ok(Json(header.completion(None)).into_response());
    };
    if reply.status == entity::message::Status::Failed {
        let failure = crate::domain::reply_failure::ReplyFailure::from_stored(
            reply.error_code.as_deref(),
            reply.error.as_deref(),
        );
        return Ok((failed_status(&failure), Json(failed(&failure))).into_response());
    }
    Ok(Json(header.completion(Some(&reply))).into_response())
}

/// The reply as `chat.completion.chunk`s: the role, each piece of text, the end (with the
/// citations), the token counts when asked, then `[DONE]`. A person answering the
/// conversation ends the stream at once, with no text.
async fn stream_reply(
    state: &AppState,
    principal: &Principal,
    sent: Sent,
    header: Header,
    includes_usage: bool,
) -> Result<Response, ApiError> {
    let opening = header.chunk(json!({ "role": "assistant", "content": "" }), None);
    let chunks = if sent.reply.is_none() {
        let mut chunks = vec![opening, header.last_chunk(None, &[])];
        if includes_usage {
            chunks.push(header.usage_chunk(None));
        }
        stream::iter(chunks).boxed()
    } else {
        let events = services::replies::sent_reply_stream(state, principal, &sent).await?;
        let mut citations: Vec<Citation> = Vec::new();
        let header = header.clone();
        events
            .flat_map(move |event| {
                let chunks = match event {
                    ReplyEvent::Started { .. } => vec![opening.clone()],
                    ReplyEvent::Delta { delta, .. } => {
                        vec![header.chunk(json!({ "content": delta }), None)]
                    }
                    ReplyEvent::Citations {
                        citations: cited, ..
                    } => {
                        citations = cited;
                        vec![]
                    }
                    ReplyEvent::Completed { message } => {
                        let mut chunks = vec![header.last_chunk(Some(&message), &citations)];
                        if includes_usage {
                            chunks.push(header.usage_chunk(Some(&message)));
                        }
                        chunks
                    }
                    ReplyEvent::Failed { failure, .. } => vec![failed(&failure)],
                    ReplyEvent::Posted { .. } | ReplyEvent::StateChanged { .. } => vec![],
                };
                stream::iter(chunks)
            })
            .boxed()
    };
    let events = chunks
        .map(|chunk: Value| Ok::<_, Infallible>(Event::default().data(chunk.to_string())))
        .chain(stream::once(async { Ok(Event::default().data("[DONE]")) }));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(crate::http::rest::sse::HEARTBEAT))
        .into_response())
}
