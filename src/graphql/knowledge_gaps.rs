//! The knowledge-gap inbox: what the assistant could not answer, and answering it.

use async_graphql::{Context, ID, Object, Result, connection::Connection};

use super::context::{connection, page, parts};
use crate::{
    domain::ids::GapId,
    services::{self, knowledge_gaps::ListGaps},
    views::knowledge_gaps::{KnowledgeGap, KnowledgeGapStatus},
};

#[derive(Default)]
pub struct KnowledgeGapQuery;

#[Object]
impl KnowledgeGapQuery {
    /// Visitor questions the assistant could not answer well — no passage above its minimum
    /// score, a rating of 1–2, a handoff — grouped by meaning, oldest first; open ones by
    /// default (`status: null` for every state).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn knowledge_gaps(
        &self,
        ctx: &Context<'_>,
        assistant_id: Option<ID>,
        #[graphql(default_with = "Some(KnowledgeGapStatus::Open)")] status: Option<
            KnowledgeGapStatus,
        >,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, KnowledgeGap>> {
        let (state, principal) = parts(ctx)?;
        let filter = ListGaps {
            assistant_id: assistant_id.map(|id| id.0),
            status: status.map(Into::into),
        };
        let rows = services::knowledge_gaps::list(
            state,
            principal,
            filter,
            &page(first, after, last, before)?,
        )
        .await?;
        Ok(connection(rows, |g| g.id.clone(), KnowledgeGap::from))
    }

    /// One gap, or null when it does not exist in this organization.
    async fn knowledge_gap(&self, ctx: &Context<'_>, id: ID) -> Result<Option<KnowledgeGap>> {
        let (state, principal) = parts(ctx)?;
        let Ok(id) = GapId::parse(&id) else {
            return Ok(None);
        };
        super::node::found(
            services::knowledge_gaps::get(state, principal, &id)
                .await
                .map(KnowledgeGap::from),
        )
    }
}

#[derive(Default)]
pub struct KnowledgeGapMutation;

#[Object]
impl KnowledgeGapMutation {
    /// Answers a gap: a Q&A pair of its representative question and `answer` (tagged
    /// `knowledge-gap`; linked to the assistant when it uses linked sources only) is indexed,
    /// and the gap is resolved by it, so the next paraphrase is answered from it.
    async fn resolve_knowledge_gap(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "The answer, 1–10,000 characters.")] answer: String,
    ) -> Result<KnowledgeGap> {
        let (state, principal) = parts(ctx)?;
        let id = GapId::parse(&id)?;
        Ok(
            services::knowledge_gaps::resolve(state, principal, &id, answer)
                .await?
                .into(),
        )
    }

    /// Dismisses an open gap: it leaves the open inbox; its paraphrases still count in it.
    async fn dismiss_knowledge_gap(&self, ctx: &Context<'_>, id: ID) -> Result<KnowledgeGap> {
        let (state, principal) = parts(ctx)?;
        let id = GapId::parse(&id)?;
        Ok(services::knowledge_gaps::dismiss(state, principal, &id)
            .await?
            .into())
    }
}
