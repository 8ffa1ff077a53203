//! Knowledge sources, search, and per-assistant scoping.

use async_graphql::{ComplexObject, Context, ID, Object, Result, Upload, connection::Connection};

use super::context::{connection, page, parts};
use crate::{
    domain::ids::{AssistantId, SourceId},
    repo::knowledge::SourceFilter,
    services::{
        self,
        knowledge::NewFile,
        retrieval::{self, Search},
    },
    views::{
        assistants::Assistant,
        common::DeletePayload,
        knowledge::{
            KnowledgeHit, KnowledgeIndex, KnowledgeKind, KnowledgeQaInput, KnowledgeSource,
            KnowledgeStatus, KnowledgeUrlInput, SearchMode, UrlRefresh,
        },
    },
};

#[derive(Default)]
pub struct KnowledgeQuery;

#[Object]
impl KnowledgeQuery {
    /// The organization's knowledge sources, oldest first, filtered by kind, status and text
    /// (in the title, file name, URL or question).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn knowledge_sources(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        kind: Option<KnowledgeKind>,
        status: Option<KnowledgeStatus>,
        search: Option<String>,
    ) -> Result<Connection<String, KnowledgeSource>> {
        let (state, principal) = parts(ctx)?;
        let filter = SourceFilter {
            kind: kind.map(Into::into),
            status: status.map(Into::into),
            text: search,
        };
        let sources = services::knowledge::list(
            state,
            principal,
            &filter,
            &page(first, after, last, before)?,
        )
        .await?;
        Ok(connection(sources, |s| s.id.clone(), KnowledgeSource::from))
    }

    /// One source, or null when it does not exist in this organization.
    async fn knowledge_source(&self, ctx: &Context<'_>, id: ID) -> Result<Option<KnowledgeSource>> {
        let (state, principal) = parts(ctx)?;
        let Ok(id) = SourceId::parse(&id) else {
            return Ok(None);
        };
        super::node::found(
            services::knowledge::get(state, principal, &id)
                .await
                .map(KnowledgeSource::from),
        )
    }

    /// The embedder in use, and how many sources a previous embedder indexed (re-index them
    /// with `reembedKnowledge`).
    async fn knowledge_index(&self, ctx: &Context<'_>) -> Result<KnowledgeIndex> {
        let (state, principal) = parts(ctx)?;
        Ok(services::knowledge::index_status(state, principal)
            .await?
            .into())
    }

    /// The chunks that best answer `query`; with `assistantId`, only from the sources that
    /// assistant may use, with its top-k and minimum score unless given here.
    async fn search_knowledge(
        &self,
        ctx: &Context<'_>,
        query: String,
        assistant_id: Option<ID>,
        top_k: Option<i32>,
        mode: Option<SearchMode>,
        min_score: Option<f64>,
    ) -> Result<Vec<KnowledgeHit>> {
        let (state, principal) = parts(ctx)?;
        let search = Search {
            query,
            assistant_id: assistant_id.map(|a| AssistantId::parse(&a)).transpose()?,
            top_k,
            mode: mode.map(Into::into),
            min_score,
        };
        let hits = retrieval::search(state, principal, search).await?;
        Ok(hits.into_iter().map(Into::into).collect())
    }
}

#[ComplexObject]
impl KnowledgeSource {
    /// URLs: the latest fetches, newest first.
    async fn refreshes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: u64,
    ) -> Result<Vec<UrlRefresh>> {
        if self.kind != KnowledgeKind::Url {
            return Ok(Vec::new());
        }
        let (state, principal) = parts(ctx)?;
        let id = SourceId::from_db(self.id.to_string());
        let log = services::knowledge::refreshes(state, principal, &id, limit.min(100)).await?;
        Ok(log.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct KnowledgeMutation;

#[Object]
impl KnowledgeMutation {
    /// Uploads a file (GraphQL multipart request). Answers at once with `PENDING`; a worker
    /// indexes it. Corrupt or unsupported files end `FAILED` with the reason.
    async fn upload_knowledge_file(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        title: Option<String>,
        description: Option<String>,
    ) -> Result<KnowledgeSource> {
        let (state, principal) = parts(ctx)?;
        let upload = file.value(ctx)?;
        let (file_name, content_type) = (upload.filename.clone(), upload.content_type.clone());
        let bytes = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut upload.into_read(), &mut bytes).map(|_| bytes)
        })
        .await??;
        let new = NewFile {
            file_name,
            content_type,
            bytes,
            title,
            description,
        };
        Ok(services::knowledge::upload_file(state, principal, new)
            .await?
            .into())
    }

    /// Stores a Q&A pair; a strong match on its question is answered verbatim.
    async fn create_knowledge_qa(
        &self,
        ctx: &Context<'_>,
        input: KnowledgeQaInput,
    ) -> Result<KnowledgeSource> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::knowledge::create_qa(state, principal, input.into())
                .await?
                .into(),
        )
    }

    /// Replaces a Q&A pair; the old one answers until the new one is indexed.
    async fn update_knowledge_qa(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: KnowledgeQaInput,
    ) -> Result<KnowledgeSource> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::knowledge::update_qa(state, principal, &SourceId::parse(&id)?, input.into())
                .await?
                .into(),
        )
    }

    /// Adds a URL, fetched in the background and refreshed on its interval.
    async fn add_knowledge_url(
        &self,
        ctx: &Context<'_>,
        input: KnowledgeUrlInput,
    ) -> Result<KnowledgeSource> {
        let (state, principal) = parts(ctx)?;
        Ok(services::knowledge::add_url(state, principal, input.into())
            .await?
            .into())
    }

    /// Fetches a URL again now; unchanged content is not re-embedded.
    async fn refresh_knowledge_url(&self, ctx: &Context<'_>, id: ID) -> Result<KnowledgeSource> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::knowledge::refresh_url(state, principal, &SourceId::parse(&id)?)
                .await?
                .into(),
        )
    }

    /// Deletes a source with its chunks and file.
    async fn delete_knowledge_source(&self, ctx: &Context<'_>, id: ID) -> Result<DeletePayload> {
        let (state, principal) = parts(ctx)?;
        services::knowledge::delete(state, principal, &SourceId::parse(&id)?, None).await?;
        Ok(DeletePayload::of(id.0))
    }

    /// Re-indexes sources (all when `ids` is absent) in the background; current chunks keep
    /// answering until replaced. Returns how many sources were queued.
    async fn reembed_knowledge(&self, ctx: &Context<'_>, ids: Option<Vec<ID>>) -> Result<i32> {
        let (state, principal) = parts(ctx)?;
        let ids = ids
            .map(|ids| {
                ids.iter()
                    .map(|id| SourceId::parse(id))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(services::knowledge::reembed(state, principal, ids).await? as i32)
    }

    /// Links a source to an assistant: once any source is linked, only linked sources are used.
    async fn link_knowledge(
        &self,
        ctx: &Context<'_>,
        assistant_id: ID,
        source_id: ID,
    ) -> Result<Assistant> {
        set_rule(ctx, &assistant_id, &source_id, Some(true)).await
    }

    /// Excludes a source from an assistant: it is never used for it.
    async fn exclude_knowledge(
        &self,
        ctx: &Context<'_>,
        assistant_id: ID,
        source_id: ID,
    ) -> Result<Assistant> {
        set_rule(ctx, &assistant_id, &source_id, Some(false)).await
    }

    /// Removes a source's link or exclusion.
    async fn unlink_knowledge(
        &self,
        ctx: &Context<'_>,
        assistant_id: ID,
        source_id: ID,
    ) -> Result<Assistant> {
        set_rule(ctx, &assistant_id, &source_id, None).await
    }
}

/// Links, excludes or clears a source for an assistant.
async fn set_rule(
    ctx: &Context<'_>,
    assistant_id: &str,
    source_id: &str,
    linked: Option<bool>,
) -> Result<Assistant> {
    let (state, principal) = parts(ctx)?;
    let (assistant, source) = (
        AssistantId::parse(assistant_id)?,
        SourceId::parse(source_id)?,
    );
    Ok(
        retrieval::set_rule(state, principal, &assistant, &source, linked)
            .await?
            .into(),
    )
}
