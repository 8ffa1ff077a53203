//! Feedback on conversations and messages (SPEC §7).

use std::collections::HashMap;

use entity::feedback;
use serde_json::Value;

use crate::{
    auth::{Principal, Scope},
    domain::{
        ids::{ConversationId, FeedbackId, MessageId},
        knowledge_gap::GapReason,
        pagination::{Page, PageRequest},
    },
    error::{AppError, AppResult},
    repo::{self, feedback::NewFeedback},
    services::{
        handoff, knowledge_gaps,
        sessions::json_object,
        webhooks::{self, Event},
    },
    state::AppState,
};

pub use crate::repo::feedback::About;

/// Ratings up to this one raise `feedback.negative`.
pub const NEGATIVE_RATING: i32 = 2;

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 4_000;

/// Who gives feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorType {
    /// The visitor.
    Visitor,
    /// A person of the organization.
    Agent,
    /// An automated process.
    System,
}

impl ActorType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visitor => "VISITOR",
            Self::Agent => "AGENT",
            Self::System => "SYSTEM",
        }
    }

    /// Reads the stored name (written by [`ActorType::as_str`]).
    pub fn from_db(raw: &str) -> Self {
        match raw {
            "AGENT" => Self::Agent,
            "SYSTEM" => Self::System,
            _ => Self::Visitor,
        }
    }
}

/// Feedback to record.
#[derive(Debug, Clone)]
pub struct SubmitFeedback {
    /// `conv_…`
    pub conversation_id: ConversationId,
    /// `msg_…` of that conversation.
    pub message_id: Option<MessageId>,
    /// 1–5 (thumbs: 1 down, 5 up).
    pub rating: i32,
    /// Free text.
    pub comment: Option<String>,
    /// Who gives it (default the visitor).
    pub actor_type: ActorType,
    /// The actor's id in the customer's system.
    pub actor_id: Option<String>,
    /// The actor's name.
    pub actor_name: Option<String>,
    /// JSON object.
    pub actor_metadata: Option<Value>,
}

/// Records feedback on a conversation or one of its messages.
pub async fn submit(
    state: &AppState,
    principal: &Principal,
    mut input: SubmitFeedback,
) -> AppResult<feedback::Model> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    let conversation = repo::conversations::find(&state.db, &tenant, &input.conversation_id)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    if let Some(grant) = tenant.visitor() {
        // A widget speaks for its visitor, whatever the page claims.
        input.actor_type = ActorType::Visitor;
        input.actor_id = Some(
            grant
                .external_user_id
                .clone()
                .unwrap_or_else(|| grant.visitor_id.clone()),
        );
    }
    if let Some(message_id) = &input.message_id {
        repo::conversations::find_message(&state.db, &tenant, message_id)
            .await?
            .filter(|m| m.conversation_id == conversation.id)
            .ok_or(AppError::NotFound("message"))?;
    }
    check(&input)?;
    let actor_metadata = json_object(
        input.actor_metadata,
        "actor.metadata",
        state.settings.replies.max_traits_bytes,
    )?;
    let txn = crate::db::begin_write(&state.db).await?;
    let feedback = repo::feedback::insert(
        &txn,
        &tenant,
        NewFeedback {
            conversation_id: conversation.id.clone(),
            message_id: input.message_id.map(MessageId::into_string),
            rating: input.rating,
            comment: input.comment.filter(|c| !c.trim().is_empty()),
            actor_type: input.actor_type.as_str().to_owned(),
            actor_id: input.actor_id,
            actor_name: input.actor_name,
            actor_metadata,
        },
    )
    .await?;
    let event = (feedback.rating <= NEGATIVE_RATING)
        .then(|| Event::feedback_negative(&feedback, &conversation.assistant_id));
    let emitted = match event {
        Some(event) => webhooks::emit(&txn, state.outbox(), &tenant, event).await?,
        None => None,
    };
    txn.commit().await?;
    if emitted.is_some() {
        state.webhook_signal.notify();
    }
    if feedback.rating <= NEGATIVE_RATING {
        knowledge_gaps::spawn_about(
            state,
            &tenant,
            &conversation,
            feedback.message_id.clone(),
            GapReason::LowRating,
        );
    }
    // The feedback is stored whatever the handoff rule does.
    if let Err(e) = handoff::after_rating(state, &tenant, conversation, feedback.rating).await {
        e.log();
        tracing::warn!(
            code = e.code(),
            "a low rating could not hand the conversation off"
        );
    }
    Ok(feedback)
}

/// Checks the rating, the comment and the actor's id and name.
fn check(input: &SubmitFeedback) -> AppResult<()> {
    if !(1..=5).contains(&input.rating) {
        return Err(AppError::bad_input(
            "rating",
            "must be 1 to 5 (thumbs down is 1, thumbs up 5)",
        ));
    }
    if input
        .comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(AppError::bad_input(
            "comment",
            format!("must be at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    for (field, value) in [
        ("actor.id", &input.actor_id),
        ("actor.name", &input.actor_name),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 255) {
            return Err(AppError::bad_input(field, "must be at most 255 characters"));
        }
    }
    Ok(())
}

/// A page of the feedback on a conversation (or on one of its messages), oldest first.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    conversation_id: &ConversationId,
    message_id: Option<&str>,
    page: &PageRequest,
) -> AppResult<Page<feedback::Model>> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    let conversation = repo::conversations::find(&state.db, &tenant, conversation_id)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    Ok(repo::feedback::list(&state.db, &tenant, &conversation.id, message_id, page).await?)
}

/// A page of the feedback on each conversation or message, oldest first, in one read
/// (nested GraphQL fields).
pub async fn of_many(
    state: &AppState,
    principal: &Principal,
    about: About,
    ids: &[String],
    page: &PageRequest,
) -> AppResult<HashMap<String, Page<feedback::Model>>> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    Ok(repo::feedback::of_many(&state.db, &tenant, about, ids, page).await?)
}

/// The feedback `id` (for `node(id:)`).
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: &FeedbackId,
) -> AppResult<feedback::Model> {
    let tenant = principal.scope(Scope::Read)?;
    repo::feedback::find(&state.db, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("feedback"))
}
