//! Human handoff: handing a conversation to a person, back to the assistant, closing it, and
//! a person's messages.

use async_graphql::{Context, ID, Object, Result};

use super::context::parts;
use crate::{
    domain::ids::ConversationId,
    services::{self, handoff::RequestHandoff},
    views::{
        conversations::{Conversation, Message},
        handoff::AgentInput,
    },
};

#[derive(Default)]
pub struct HandoffMutation;

#[Object]
impl HandoffMutation {
    /// Hands a conversation to a person: visitor messages are stored and streamed to the
    /// conversation's watchers, and no reply is generated until it is released. A visitor
    /// (the widget's "talk to a person") or an API key may ask; `conversation.handoff_requested`
    /// is sent once per handoff. A conversation already handed off is returned as it is;
    /// a closed one answers `CONVERSATION_CLOSED`.
    async fn request_handoff(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        #[graphql(desc = "Why, in words (at most 500 characters).")] reason: Option<String>,
        #[graphql(desc = "For the person who takes over (at most 4,000 characters).")] note: Option<
            String,
        >,
    ) -> Result<Conversation> {
        let (state, principal) = parts(ctx)?;
        let input = RequestHandoff {
            conversation_id: ConversationId::parse(&conversation_id)?,
            reason,
            note,
        };
        Ok(services::handoff::request(state, principal, input)
            .await?
            .into())
    }

    /// Gives a handed-off conversation back to the assistant (API key);
    /// `conversation.handoff_released` is sent.
    async fn release_handoff(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> Result<Conversation> {
        let (state, principal) = parts(ctx)?;
        let id = ConversationId::parse(&conversation_id)?;
        Ok(services::handoff::release(state, principal, &id)
            .await?
            .into())
    }

    /// Closes a conversation (visitor or API key): it stays readable and takes no more
    /// messages (`CONVERSATION_CLOSED`); a message sent to its session opens a new one.
    async fn close_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> Result<Conversation> {
        let (state, principal) = parts(ctx)?;
        let id = ConversationId::parse(&conversation_id)?;
        Ok(services::handoff::close(state, principal, &id)
            .await?
            .into())
    }

    /// A person's message in a handed-off conversation (API key), streamed live to the
    /// conversation's watchers (`AgentMessage`), the visitor's widget included.
    async fn send_agent_message(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        #[graphql(desc = "The text, 1–16,000 characters.")] content: String,
        #[graphql(desc = "Who writes it: their id in the helpdesk and the name the visitor sees.")]
        agent: Option<AgentInput>,
    ) -> Result<Message> {
        let (state, principal) = parts(ctx)?;
        let input =
            AgentInput::into_message(ConversationId::parse(&conversation_id)?, content, agent);
        Ok(
            services::handoff::send_agent_message(state, principal, input)
                .await?
                .into(),
        )
    }
}
