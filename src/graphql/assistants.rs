//! Assistants and their versions.

use async_graphql::{ComplexObject, Context, ID, Object, Result, connection::Connection};

use super::{
    context::{connection, page, parts},
    loaders::{self, RulesOf, VERSIONS},
};
use crate::{
    domain::ids::AssistantId,
    services,
    views::{
        assistants::{Assistant, AssistantVersion, CreateAssistantInput, UpdateAssistantInput},
        common::DeletePayload,
    },
};

#[derive(Default)]
pub struct AssistantQuery;

#[Object]
impl AssistantQuery {
    /// The organization's assistants, oldest first.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn assistants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Assistant>> {
        let (state, principal) = parts(ctx)?;
        let rows =
            services::assistants::list(&state.db, principal, &page(first, after, last, before)?)
                .await?;
        Ok(connection(rows, |(a, _)| a.id.clone(), Assistant::from))
    }

    /// One assistant, or null when it does not exist in this organization.
    async fn assistant(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Assistant>> {
        let (state, principal) = parts(ctx)?;
        let Ok(id) = AssistantId::parse(&id) else {
            return Ok(None);
        };
        super::node::found(
            services::assistants::get(&state.db, principal, &id)
                .await
                .map(Assistant::from),
        )
    }
}

#[ComplexObject]
impl Assistant {
    /// Every version of this assistant's configuration, oldest first.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, AssistantVersion>> {
        let page = page(first, after, last, before)?;
        let versions = loaders::children::<VERSIONS, _>(ctx, &self.id, page).await?;
        Ok(connection(
            versions,
            |v| v.id.clone(),
            |v| {
                let live = v.version == self.version;
                AssistantVersion::new(v, live)
            },
        ))
    }

    /// Sources linked to this assistant: when any is, only those are used.
    async fn linked_source_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let (linked, _) = rules(ctx, &self.id).await?;
        Ok(linked.into_iter().map(ID).collect())
    }

    /// Sources this assistant never uses.
    async fn excluded_source_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let (_, excluded) = rules(ctx, &self.id).await?;
        Ok(excluded.into_iter().map(ID).collect())
    }
}

/// The linked and excluded source ids of an assistant, read with its siblings'.
async fn rules(ctx: &Context<'_>, assistant: &str) -> Result<(Vec<String>, Vec<String>)> {
    Ok(loaders::of(ctx)?
        .load_one(RulesOf(assistant.to_owned()))
        .await?
        .unwrap_or_default())
}

#[derive(Default)]
pub struct AssistantMutation;

#[Object]
impl AssistantMutation {
    /// Creates an assistant; its version 1 is live.
    async fn create_assistant(
        &self,
        ctx: &Context<'_>,
        input: CreateAssistantInput,
    ) -> Result<Assistant> {
        let (state, principal) = parts(ctx)?;
        let (patch, active) = input.into_patch();
        Ok(
            services::assistants::create(&state.db, principal, patch, active)
                .await?
                .into(),
        )
    }

    /// Writes a new immutable version. It goes live unless `promote` is false (a draft).
    async fn update_assistant(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateAssistantInput,
        #[graphql(default_with = "Some(true)")] promote: Option<bool>,
    ) -> Result<AssistantVersion> {
        let (state, principal) = parts(ctx)?;
        let (patch, base) = input.into_patch();
        let promote = promote.unwrap_or(true);
        let written = services::assistants::update(
            state,
            principal,
            &AssistantId::parse(&id)?,
            patch,
            promote,
            base,
        )
        .await?;
        Ok(written.into())
    }

    /// Makes a version live: a newer draft, or an older version (rollback).
    async fn promote_assistant_version(
        &self,
        ctx: &Context<'_>,
        assistant_id: ID,
        version: i32,
    ) -> Result<Assistant> {
        let (state, principal) = parts(ctx)?;
        Ok(services::assistants::promote(
            state,
            principal,
            &AssistantId::parse(&assistant_id)?,
            version,
        )
        .await?
        .into())
    }

    /// Pauses (`false`) or resumes an assistant. Versions and history are untouched.
    async fn set_assistant_active(
        &self,
        ctx: &Context<'_>,
        id: ID,
        active: bool,
    ) -> Result<Assistant> {
        let (state, principal) = parts(ctx)?;
        Ok(services::assistants::set_active(
            &state.db,
            principal,
            &AssistantId::parse(&id)?,
            active,
        )
        .await?
        .into())
    }

    /// Deletes an assistant. Past conversations keep resolving its name.
    async fn delete_assistant(&self, ctx: &Context<'_>, id: ID) -> Result<DeletePayload> {
        let (state, principal) = parts(ctx)?;
        services::assistants::delete(&state.db, principal, &AssistantId::parse(&id)?).await?;
        Ok(DeletePayload::of(id.0))
    }
}
