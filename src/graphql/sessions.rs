//! Visitor sessions and their contexts.

use async_graphql::{ComplexObject, Context, ID, Object, Result, connection::Connection};

use super::{
    context::{connection, page, parts},
    loaders::{self, CONTEXTS, SESSION_CONVERSATIONS},
};
use crate::{
    domain::ids::SessionId,
    services,
    views::{
        conversations::Conversation,
        sessions::{AttachContextInput, Context as VisitorContext, CreateSessionInput, Session},
    },
};

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// Sessions, oldest first; with `externalUserId`, one visitor's sessions on every channel.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        external_user_id: Option<String>,
    ) -> Result<Connection<String, Session>> {
        let (state, principal) = parts(ctx)?;
        let rows = services::sessions::list(
            state,
            principal,
            external_user_id.as_deref(),
            &page(first, after, last, before)?,
        )
        .await?;
        Ok(connection(rows, |s| s.id.clone(), Session::from))
    }

    /// One session, or null when it does not exist in this organization.
    async fn session(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Session>> {
        let (state, principal) = parts(ctx)?;
        let Ok(id) = SessionId::parse(&id) else {
            return Ok(None);
        };
        super::node::found(
            services::sessions::get(state, principal, &id)
                .await
                .map(Session::from),
        )
    }

    /// Contexts of a session, or of every session of a visitor (`externalUserId`), oldest
    /// first.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn contexts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        session_id: Option<ID>,
        external_user_id: Option<String>,
    ) -> Result<Connection<String, VisitorContext>> {
        let (state, principal) = parts(ctx)?;
        let session_id = session_id.map(|id| SessionId::parse(&id)).transpose()?;
        let rows = services::sessions::list_contexts(
            state,
            principal,
            session_id.as_ref(),
            external_user_id.as_deref(),
            &page(first, after, last, before)?,
        )
        .await?;
        Ok(connection(rows, |c| c.id.clone(), VisitorContext::from))
    }
}

#[ComplexObject]
impl Session {
    /// The contexts attached to this session, oldest first; the last is in force.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn contexts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, VisitorContext>> {
        let page = page(first, after, last, before)?;
        let rows = loaders::children::<CONTEXTS, _>(ctx, &self.id, page).await?;
        Ok(connection(rows, |c| c.id.clone(), VisitorContext::from))
    }

    /// The conversations of this session, oldest first.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Conversation>> {
        let page = page(first, after, last, before)?;
        let rows = loaders::children::<SESSION_CONVERSATIONS, _>(ctx, &self.id, page).await?;
        Ok(connection(rows, |c| c.id.clone(), Conversation::from))
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Opens a session for a visitor: anonymous, or authenticated with `externalUserId`.
    async fn create_session(
        &self,
        ctx: &Context<'_>,
        input: CreateSessionInput,
    ) -> Result<Session> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::sessions::create(state, principal, input.try_into()?)
                .await?
                .into(),
        )
    }

    /// Ends a session: it stays readable and refuses new messages (`SESSION_EXPIRED`).
    async fn end_session(&self, ctx: &Context<'_>, id: ID) -> Result<Session> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::sessions::end(state, principal, &SessionId::parse(&id)?)
                .await?
                .into(),
        )
    }

    /// Attaches visitor traits to a session; the latest are given to the assistant with each
    /// message.
    async fn attach_context(
        &self,
        ctx: &Context<'_>,
        input: AttachContextInput,
    ) -> Result<VisitorContext> {
        let (state, principal) = parts(ctx)?;
        let session = SessionId::parse(&input.session_id)?;
        Ok(
            services::sessions::attach_context(state, principal, &session, input.traits.0)
                .await?
                .into(),
        )
    }
}
