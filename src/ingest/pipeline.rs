//! One ingestion job: content → text → chunks → summary, keywords, vectors → the store.

use entity::knowledge_source::{self, Kind, Status};
use sea_orm::TransactionTrait;
use sha2::{Digest, Sha256};

use super::{
    Block, BlockKind, Document, ExtractError,
    chunk::{self, Chunk, ChunkSettings},
    extract::{self, Hints},
    fetch::{self, Fetched},
    sniff,
};
use crate::{
    domain::ids::{OrgId, SourceId},
    repo::{
        self,
        knowledge::{Indexed, Validators},
    },
    runtime::outbox::{self, Event},
    state::AppState,
    vector::ChunkRow,
};

/// Why a job did not finish.
#[derive(Debug)]
pub enum JobError {
    /// Retrying cannot help (corrupt or unsupported content, a refused URL): the source fails.
    Permanent(String),
    /// Worth retrying later (storage, network, a busy database).
    Transient(anyhow::Error),
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
        Self::Permanent(e.message())
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

/// Runs one job for `source` of `org`.
pub async fn run(
    state: &AppState,
    org: &OrgId,
    source_id: &SourceId,
    kind: &str,
) -> Result<(), JobError> {
    let db = &state.db;
    let Some(source) = repo::knowledge::find(db, org, source_id).await? else {
        // Deleted, perhaps while an earlier attempt was writing: leave no chunks behind.
        state.vectors.delete_source(org, source_id).await?;
        return Ok(());
    };
    repo::knowledge::set_status(db, org, source_id, Status::Processing, None).await?;
    // For a refresh that found new content: the previous hash and the HTTP status.
    let mut changed = None;
    let (document, hash, validators) = match source.kind {
        Kind::File => {
            let key = source
                .storage_key
                .as_deref()
                .ok_or_else(|| JobError::Permanent("the file is missing".into()))?;
            let bytes = state.blobs.get(key).await?;
            let mut document = extract_blocking(bytes.clone(), &source, None).await?;
            describe_image(state, &bytes, &mut document).await;
            (document, sha256(&bytes), None)
        }
        Kind::Qa => {
            let question = source.question.clone().unwrap_or_default();
            let answer = source.answer.clone().unwrap_or_default();
            let text = format!("Q: {question}\nA: {answer}");
            let hash = sha256(text.as_bytes());
            (
                Document {
                    blocks: vec![Block {
                        heading_path: Vec::new(),
                        text,
                        kind: BlockKind::Records,
                    }],
                },
                hash,
                None,
            )
        }
        Kind::Url => {
            let conditional = kind == kinds::REFRESH && source.status == Status::Ready;
            match fetch_url(state, &source, conditional).await? {
                Fetched::NotModified { status } => {
                    return unchanged(state, org, source, Some(status), None).await;
                }
                Fetched::Content(page) => {
                    let hash = sha256(&page.bytes);
                    let validators = Validators {
                        etag: page.etag,
                        last_modified: page.last_modified,
                    };
                    if conditional && source.content_hash.as_deref() == Some(hash.as_str()) {
                        return unchanged(state, org, source, Some(page.status), Some(validators))
                            .await;
                    }
                    let document =
                        extract_blocking(page.bytes, &source, page.content_type.clone()).await?;
                    repo::knowledge::record_refresh(
                        db,
                        org,
                        source_id,
                        "CHANGED",
                        Some(page.status),
                        None,
                    )
                    .await?;
                    if conditional {
                        changed = Some((source.content_hash.clone(), page.status));
                    }
                    (document, hash, Some(validators))
                }
            }
        }
    };
    let chunks = if source.kind == Kind::Qa {
        vec![Chunk {
            index: 0,
            text: document.full_text(),
            heading_path: Vec::new(),
        }]
    } else {
        chunk::chunk(&document, chunk_settings(state))
    };
    let summary = match source.kind {
        Kind::Qa => crate::models::Summary {
            summary: source.answer.clone().unwrap_or_default(),
            keywords: state
                .models
                .summarizer
                .summarize(&document.full_text())
                .await?
                .keywords,
        },
        _ => {
            state
                .models
                .summarizer
                .summarize(&document.full_text())
                .await?
        }
    };
    let rows = embed(state, org, source_id, &chunks).await?;
    let embedder = &state.models.embedder;
    state
        .vectors
        .replace_source(embedder.id(), embedder.dimension(), org, source_id, rows)
        .await?;

    let indexed = Indexed {
        content_hash: hash,
        summary: summary.summary,
        keywords: summary.keywords,
        chunk_count: chunks.len() as i32,
        embedding_model: embedder.id().to_owned(),
        fetched: validators,
    };
    let txn = db.begin().await?;
    let Some(ready) = repo::knowledge::mark_ready(&txn, org, source_id, indexed).await? else {
        // Deleted while it was indexed: leave no chunks behind.
        txn.rollback().await?;
        state.vectors.delete_source(org, source_id).await?;
        return Ok(());
    };
    // Re-embedding the same content (a model change) is not news to subscribers.
    let mut events = Vec::new();
    if kind != kinds::REEMBED {
        events.push(Event::knowledge_ready(&ready));
    }
    if let Some((previous_hash, status)) = changed {
        events.push(Event::url_changed(&ready, previous_hash.as_deref(), status));
    }
    let mut emitted = false;
    for event in events {
        emitted |= outbox::emit(&txn, state.outbox(), org, event)
            .await?
            .is_some();
    }
    txn.commit().await?;
    if emitted {
        state.webhook_signal.notify();
    }
    Ok(())
}

/// The content did not change: log it, keep the chunks, and the source is ready again.
async fn unchanged(
    state: &AppState,
    org: &OrgId,
    source: knowledge_source::Model,
    status: Option<i32>,
    validators: Option<Validators>,
) -> Result<(), JobError> {
    let id = SourceId::from_db(source.id);
    repo::knowledge::record_refresh(&state.db, org, &id, "UNCHANGED", status, None).await?;
    // A source deleted meanwhile has nothing left to mark.
    repo::knowledge::mark_unchanged(&state.db, org, &id, validators).await?;
    Ok(())
}

async fn fetch_url(
    state: &AppState,
    source: &knowledge_source::Model,
    conditional: bool,
) -> Result<Fetched, JobError> {
    let url = source
        .url
        .as_deref()
        .ok_or_else(|| JobError::Permanent("the source has no URL".into()))?;
    let validators = conditional.then(|| (source.etag.clone(), source.last_modified.clone()));
    let options = fetch::FetchOptions::from_settings(&state.settings);
    match fetch::fetch(url, validators, &options).await {
        Ok(fetched) => Ok(fetched),
        Err(e) => {
            let id = SourceId::from_db(source.id.clone());
            let org = OrgId::from_db(source.org_id.clone());
            repo::knowledge::record_refresh(
                &state.db,
                &org,
                &id,
                "FAILED",
                e.status(),
                Some(e.message()),
            )
            .await?;
            Err(if e.is_permanent() {
                JobError::Permanent(e.message())
            } else {
                JobError::Transient(anyhow::anyhow!(e.message()))
            })
        }
    }
}

/// Extraction runs on the blocking pool; a panic in a parser fails the source, not the
/// server.
/// Adds what a vision model sees in an image, when one is configured. Without one, or when it
/// fails, the image is indexed by its metadata and the uploader's description alone.
async fn describe_image(state: &AppState, bytes: &[u8], document: &mut Document) {
    let Some(kind) = infer::get(bytes).filter(|k| k.mime_type().starts_with("image/")) else {
        return;
    };
    match state
        .models
        .summarizer
        .describe_image(bytes, kind.mime_type())
        .await
    {
        Ok(Some(text)) => document.blocks.push(Block {
            heading_path: Vec::new(),
            text,
            kind: BlockKind::Prose,
        }),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "image description failed; indexing its metadata only")
        }
    }
}

async fn extract_blocking(
    bytes: Vec<u8>,
    source: &knowledge_source::Model,
    content_type: Option<String>,
) -> Result<Document, JobError> {
    let title = source.title.clone();
    let description = source.description.clone();
    let file_name = source.file_name.clone().or_else(|| source.url.clone());
    let declared = content_type.or_else(|| source.content_type.clone());
    let url = source.url.clone();
    let task = tokio::task::spawn_blocking(move || {
        let format = sniff::sniff(&bytes, file_name.as_deref(), declared.as_deref())?;
        let hints = Hints {
            title: Some(&title),
            description: description.as_deref(),
            url: url.as_deref(),
        };
        extract::extract(format, &bytes, &hints)
    });
    match task.await {
        Ok(result) => Ok(result?),
        Err(e) if e.is_panic() => Err(JobError::Permanent(
            "the file is damaged: its parser could not read it".into(),
        )),
        Err(e) => Err(JobError::Transient(e.into())),
    }
}

async fn embed(
    state: &AppState,
    org: &OrgId,
    source: &SourceId,
    chunks: &[Chunk],
) -> Result<Vec<ChunkRow>, JobError> {
    let mut rows = Vec::with_capacity(chunks.len());
    for batch in chunks.chunks(EMBED_BATCH) {
        let texts: Vec<String> = batch.iter().map(Chunk::embedding_text).collect();
        let vectors = state.models.embedder.embed(&texts).await?;
        for (chunk, vector) in batch.iter().zip(vectors) {
            rows.push(ChunkRow {
                org_id: org.as_str().to_owned(),
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

fn chunk_settings(state: &AppState) -> ChunkSettings {
    ChunkSettings {
        target_chars: state.settings.chunk_target_chars,
        overlap_chars: state.settings.chunk_overlap_chars,
    }
}

/// Hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
