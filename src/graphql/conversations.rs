//! Conversations, messages, replies and feedback.

use async_graphql::{
    ComplexObject, Context, ID, Object, Result, Subscription, connection::Connection,
};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use super::{
    context::{connection, page, parts},
    loaders::{self, CONVERSATION_FEEDBACK, MESSAGE_FEEDBACK, MESSAGES},
};
use crate::{
    domain::ids::{ConversationId, MessageId},
    services::{self, conversations::ListConversations},
    views::conversations::{
        Conversation, CreateConversationInput, Feedback, FeedbackInput, Message, ReplyEvent,
        SendMessageInput, SendMessagePayload,
    },
};

#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// Conversations, oldest first, filtered by session, assistant, visitor
    /// (`externalUserId`, across channels) and start time.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        session_id: Option<ID>,
        assistant_id: Option<ID>,
        external_user_id: Option<String>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Connection<String, Conversation>> {
        let (state, principal) = parts(ctx)?;
        let filter = ListConversations {
            session_id: session_id.map(|id| id.0),
            assistant_id: assistant_id.map(|id| id.0),
            external_user_id,
            since,
            until,
        };
        let rows = services::conversations::list(
            state,
            principal,
            filter,
            &page(first, after, last, before)?,
        )
        .await?;
        Ok(connection(rows, |c| c.id.clone(), Conversation::from))
    }

    /// One conversation, or null when it does not exist in this organization.
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Conversation>> {
        let (state, principal) = parts(ctx)?;
        let Ok(id) = ConversationId::parse(&id) else {
            return Ok(None);
        };
        super::node::found(
            services::conversations::get(state, principal, &id)
                .await
                .map(Conversation::from),
        )
    }

    /// One message, or null when it does not exist in this organization.
    async fn message(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Message>> {
        let (state, principal) = parts(ctx)?;
        let Ok(id) = MessageId::parse(&id) else {
            return Ok(None);
        };
        super::node::found(
            services::conversations::message(state, principal, &id)
                .await
                .map(Message::from),
        )
    }
}

#[ComplexObject]
impl Conversation {
    /// The messages, oldest first.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Message>> {
        let page = page(first, after, last, before)?;
        let rows = loaders::children::<MESSAGES, _>(ctx, &self.id, page).await?;
        Ok(connection(rows, |m| m.id.clone(), Message::from))
    }

    /// Feedback on this conversation and its messages, oldest first.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn feedback(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Feedback>> {
        let page = page(first, after, last, before)?;
        let rows = loaders::children::<CONVERSATION_FEEDBACK, _>(ctx, &self.id, page).await?;
        Ok(connection(rows, |f| f.id.clone(), Feedback::from))
    }
}

#[ComplexObject]
impl Message {
    /// Feedback on this message, oldest first.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn feedback(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Feedback>> {
        let page = page(first, after, last, before)?;
        let rows = loaders::children::<MESSAGE_FEEDBACK, _>(ctx, &self.id, page).await?;
        Ok(connection(rows, |f| f.id.clone(), Feedback::from))
    }
}

#[derive(Default)]
pub struct ConversationMutation;

#[Object]
impl ConversationMutation {
    /// Opens a conversation in an open session.
    async fn create_conversation(
        &self,
        ctx: &Context<'_>,
        input: CreateConversationInput,
    ) -> Result<Conversation> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::conversations::create(state, principal, input.try_into()?)
                .await?
                .into(),
        )
    }

    /// Sends a visitor's message. With `wait` (the default) the payload holds the finished
    /// reply; with `wait: false` it returns at once and the reply streams through
    /// `replyStream(messageId:)`. Either way the reply is generated and stored to the end.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
        #[graphql(default = true)] wait: bool,
    ) -> Result<SendMessagePayload> {
        let (state, principal) = parts(ctx)?;
        let sent = services::conversations::send(state, principal, input.try_into()?).await?;
        let user_message = sent.user_message.clone().into();
        let reply = if wait { sent.wait().await? } else { sent.reply };
        Ok(SendMessagePayload {
            user_message,
            reply: reply.map(Into::into),
        })
    }

    /// Stops a reply being generated; the text written so far is kept (`CANCELLED`).
    async fn cancel_reply(&self, ctx: &Context<'_>, message_id: ID) -> Result<Message> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::replies::cancel(state, principal, &MessageId::parse(&message_id)?)
                .await?
                .into(),
        )
    }

    /// Rates a conversation or one of its messages (1–5; thumbs down 1, up 5).
    async fn submit_feedback(&self, ctx: &Context<'_>, input: FeedbackInput) -> Result<Feedback> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::feedback::submit(state, principal, input.try_into()?)
                .await?
                .into(),
        )
    }
}

#[derive(Default)]
pub struct ConversationSubscription;

#[Subscription]
impl ConversationSubscription {
    /// Sends a visitor's message and streams the reply: `ReplyStarted`, `ReplyDelta`s,
    /// `ReplyCitations`, then `ReplyCompleted` (or `ReplyFailed`). While a person answers
    /// the conversation (`HANDED_OFF`, perhaps by this message): `VisitorMessage` and
    /// `ConversationStatusChanged`, then the conversation's events until the person's first
    /// `AgentMessage` (or another change of state).
    async fn chat(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> Result<impl Stream<Item = ReplyEvent> + use<>> {
        let (state, principal) = parts(ctx)?;
        let sent = services::conversations::send(state, principal, input.try_into()?).await?;
        let events = services::replies::sent_reply_stream(state, principal, &sent).await?;
        Ok(events.map(ReplyEvent::from))
    }

    /// A reply's events: what was generated so far, then the rest live (the whole reply
    /// when it has ended). Use it to re-attach after a dropped connection.
    async fn reply_stream(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> Result<impl Stream<Item = ReplyEvent> + use<>> {
        let (state, principal) = parts(ctx)?;
        let events =
            services::replies::reply_stream(state, principal, &MessageId::parse(&message_id)?)
                .await?;
        Ok(events.map(ReplyEvent::from))
    }

    /// The events of a conversation from now on: every reply's, a visitor's and a person's
    /// messages while a person answers (`VisitorMessage`, `AgentMessage`), and changes of
    /// state (`ConversationStatusChanged`).
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> Result<impl Stream<Item = ReplyEvent> + use<>> {
        let (state, principal) = parts(ctx)?;
        let events = services::replies::conversation_events(
            state,
            principal,
            &ConversationId::parse(&conversation_id)?,
        )
        .await?;
        Ok(events.map(ReplyEvent::from))
    }
}
