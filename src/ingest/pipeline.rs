//! One ingestion job: content → text → chunks → summary, keywords, vectors → the store.

use entity::knowledge_source::Status;
use sha2::{Digest, Sha256};

use super::{
    ExtractError,
    chunk::Chunk,
    sources::{self, Content, Read},
};
use crate::{
    auth::Tenant,
    domain::{
        ids::SourceId,
        source_failure::{FailureCode, SourceFailure},
    },
    repo::{self, knowledge::Indexed},
    runtime::outbox::{self, Event},
    state::AppState,
    vector::ChunkRow,
};

/// Why a job did not finish.
#[derive(Debug)]
pub enum JobError {
    /// Retrying cannot help (corrupt or unsupported content, a refused URL): the source fails.
    Permanent(SourceFailure),
    /// Worth retrying later (storage, network, a busy database).
    Transient(anyhow::Error),
}

impl JobError {
    /// A failure retrying cannot help.
    pub fn permanent(code: FailureCode, message: impl Into<String>) -> Self {
        Self::Permanent(SourceFailure::new(code, message))
    }

    /// `permanent` or `transient`, for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Permanent(_) => "permanent",
            Self::Transient(_) => "transient",
        }
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Transient(e.into())
    }
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        Self::Transient(e)
    }
}

impl From<ExtractError> for JobError {
    fn from(e: ExtractError) -> Self {
        Self::Permanent(e.into())
    }
}

/// Job kinds.
pub mod kinds {
    /// New or changed content.
    pub const INDEX: &str = "index";
    /// Fetch a URL again; unchanged content is not re-embedded.
    pub const REFRESH: &str = "refresh";
    /// Re-embed the same content (after a model change).
    pub const REEMBED: &str = "reembed";
}

const EMBED_BATCH: usize = 64;

/// Runs one job for `source` of the handle's organization: reads the source as its kind does, embeds its
/// chunks, replaces them in the vector store, and marks it ready with its events.
pub async fn run(
    state: &AppState,
    tenant: &Tenant,
    source_id: &SourceId,
    kind: &str,
) -> Result<(), JobError> {
    let Some(source) = repo::knowledge::find(&state.db, tenant, source_id).await? else {
        // Deleted, perhaps while an earlier attempt was writing: leave no chunks behind.
        state.vectors.delete_source(tenant.org(), source_id).await?;
        return Ok(());
    };
    repo::knowledge::set_status(&state.db, tenant, source_id, Status::Processing, None).await?;
    let content = match sources::read(state, tenant, source, kind).await? {
        Read::Content(content) => content,
        Read::Unchanged => return Ok(()),
    };
    let rows = embed(state, tenant, source_id, &content.chunks).await?;
    let embedder = &state.models.embedder;
    state
        .vectors
        .replace_source(
            embedder.id(),
            embedder.dimension(),
            tenant.org(),
            source_id,
            rows,
        )
        .await?;
    mark_ready(state, tenant, source_id, content, kind != kinds::REEMBED).await
}

/// Marks the source ready with what was indexed and raises `knowledge.ready` (unless the
/// job only re-embedded the same content) and `url.changed`, in one transaction.
async fn mark_ready(
    state: &AppState,
    tenant: &Tenant,
    source_id: &SourceId,
    content: Content,
    news: bool,
) -> Result<(), JobError> {
    let indexed = Indexed {
        content_hash: content.hash,
        summary: content.summary.summary,
        keywords: content.summary.keywords,
        chunk_count: content.chunks.len() as i32,
        embedding_model: state.models.embedder.id().to_owned(),
        fetched: content.validators,
    };
    let txn = crate::db::begin_write(&state.db).await?;
    let Some(ready) = repo::knowledge::mark_ready(&txn, tenant, source_id, indexed).await? else {
        // Deleted while it was indexed: leave no chunks behind.
        txn.rollback().await?;
        state.vectors.delete_source(tenant.org(), source_id).await?;
        return Ok(());
    };
    let mut events = Vec::new();
    if news {
        events.push(Event::knowledge_ready(&ready));
    }
    if let Some((previous_hash, status)) = content.changed {
        events.push(Event::url_changed(&ready, previous_hash.as_deref(), status));
    }
    let mut emitted = false;
    for event in events {
        emitted |= outbox::emit(&txn, state.outbox(), tenant, event)
            .await?
            .is_some();
    }
    txn.commit().await?;
    if emitted {
        state.webhook_signal.notify();
    }
    Ok(())
}

async fn embed(
    state: &AppState,
    tenant: &Tenant,
    source: &SourceId,
    chunks: &[Chunk],
) -> Result<Vec<ChunkRow>, JobError> {
    let mut rows = Vec::with_capacity(chunks.len());
    for batch in chunks.chunks(EMBED_BATCH) {
        let texts: Vec<String> = batch.iter().map(Chunk::embedding_text).collect();
        let vectors = state.models.embedder.embed(&texts).await?;
        for (chunk, vector) in batch.iter().zip(vectors) {
            rows.push(ChunkRow {
                org_id: tenant.org().as_str().to_owned(),
                source_id: source.as_str().to_owned(),
                chunk_index: chunk.index as i32,
                text: chunk.text.clone(),
                heading: chunk.heading(),
                vector,
            });
        }
    }
    Ok(rows)
}

/// Hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
