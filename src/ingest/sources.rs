//! What each kind of knowledge source contributes to an ingestion job — a file, a Q&A pair,
//! a URL — read into the same [`Content`]: chunks, a summary, the hash that tells whether it
//! changed. [`read`] is the one interface; each kind has its reader.

use std::sync::Arc;

use entity::knowledge_source::{self, Kind, Status};

use super::{
    Block, BlockKind, Document,
    chunk::{self, Chunk, ChunkSettings, Window},
    fetch::{self, Fetched},
    isolated::{self, Isolation},
    pipeline::{JobError, kinds, sha256},
};
use crate::{
    auth::Tenant,
    domain::{ids::SourceId, source_failure::FailureCode},
    models::Summary,
    repo::{self, knowledge::Validators},
    state::AppState,
};

/// A source's content, ready to embed.
pub(super) struct Content {
    /// The chunks to embed.
    pub chunks: Vec<Chunk>,
    /// Summary and keywords.
    pub summary: Summary,
    /// Hex SHA-256 of the raw content.
    pub hash: String,
    /// A fetched page's cache validators.
    pub validators: Option<Validators>,
    /// A refresh found new content: the previous hash and the HTTP status.
    pub changed: Option<(Option<String>, i32)>,
}

/// What reading a source found.
pub(super) enum Read {
    /// Content to index.
    Content(Content),
    /// A refreshed URL whose content did not change (already recorded): nothing to index.
    Unchanged,
}

/// Reads `source` of the handle's organization as its kind does, for a job of `job_kind`.
pub(super) async fn read(
    state: &AppState,
    tenant: &Tenant,
    source: knowledge_source::Model,
    job_kind: &str,
) -> Result<Read, JobError> {
    match source.kind {
        Kind::File => file(state, &source).await.map(Read::Content),
        Kind::Qa => qa(state, &source).await.map(Read::Content),
        Kind::Url => url(state, tenant, source, job_kind).await,
    }
}

/// An uploaded file: extracted from the stored bytes (an image described when a vision model
/// is configured), chunked as prose and records.
async fn file(state: &AppState, source: &knowledge_source::Model) -> Result<Content, JobError> {
    let key = source
        .storage_key
        .as_deref()
        .ok_or_else(|| JobError::permanent(FailureCode::FileDamaged, "the file is missing"))?;
    let bytes = state.blobs.get(key).await?;
    let mut document = extract_isolated(state, bytes.clone(), source, None).await?;
    describe_image(state, &bytes, &mut document).await;
    prose(state, &document, sha256(&bytes), None, None).await
}

/// A Q&A pair: one chunk of question and answer, embedded by its question (what a visitor's
/// wording is compared with); its summary is the answer.
async fn qa(state: &AppState, source: &knowledge_source::Model) -> Result<Content, JobError> {
    let question = source.question.clone().unwrap_or_default();
    let answer = source.answer.clone().unwrap_or_default();
    let text = format!("Q: {question}\nA: {answer}");
    let hash = sha256(text.as_bytes());
    let document = Document {
        blocks: vec![Block {
            heading_path: Vec::new(),
            text,
            kind: BlockKind::Records,
        }],
    };
    let keywords = state
        .models
        .summarizer
        .summarize(&document.full_text())
        .await?
        .keywords;
    Ok(Content {
        chunks: vec![Chunk {
            index: 0,
            text: document.full_text(),
            heading_path: Vec::new(),
            embed_as: Some(question),
        }],
        summary: Summary {
            summary: answer,
            keywords,
        },
        hash,
        validators: None,
        changed: None,
    })
}

/// A URL: fetched (conditionally, on a refresh of a ready source); unchanged content is
/// recorded and not indexed again.
async fn url(
    state: &AppState,
    tenant: &Tenant,
    source: knowledge_source::Model,
    job_kind: &str,
) -> Result<Read, JobError> {
    let conditional = job_kind == kinds::REFRESH && source.status == Status::Ready;
    let page = match fetch_url(state, tenant, &source, conditional).await? {
        Fetched::NotModified { status } => {
            unchanged(state, tenant, source, Some(status), None).await?;
            return Ok(Read::Unchanged);
        }
        Fetched::Content(page) => page,
    };
    let hash = sha256(&page.bytes);
    let validators = Validators {
        etag: page.etag,
        last_modified: page.last_modified,
    };
    if conditional && source.content_hash.as_deref() == Some(hash.as_str()) {
        unchanged(state, tenant, source, Some(page.status), Some(validators)).await?;
        return Ok(Read::Unchanged);
    }
    let document = extract_isolated(state, page.bytes, &source, page.content_type.clone()).await?;
    let id = SourceId::from_db(source.id.clone());
    repo::knowledge::record_refresh(&state.db, tenant, &id, "CHANGED", Some(page.status), None)
        .await?;
    let changed = conditional.then(|| (source.content_hash.clone(), page.status));
    prose(state, &document, hash, Some(validators), changed)
        .await
        .map(Read::Content)
}

/// A document chunked as prose and records, with the summarizer's summary and keywords.
async fn prose(
    state: &AppState,
    document: &Document,
    hash: String,
    validators: Option<Validators>,
    changed: Option<(Option<String>, i32)>,
) -> Result<Content, JobError> {
    // Measuring chunks with the embedder's tokenizer is CPU work: off the async runtime.
    let settings = chunk_settings(state);
    let to_chunk = document.clone();
    let chunks = tokio::task::spawn_blocking(move || chunk::chunk(&to_chunk, &settings))
        .await
        .map_err(|e| JobError::Transient(anyhow::anyhow!("chunking stopped: {e}")))?;
    let most = state.settings.ingestion.max_chunks_per_source;
    if chunks.len() > most {
        return Err(JobError::permanent(
            FailureCode::FileTooComplex,
            format!(
                "the source gives {} chunks, more than the {most} one source may hold; split it \
                 into smaller files",
                chunks.len()
            ),
        ));
    }
    let summary = state
        .models
        .summarizer
        .summarize(&document.full_text())
        .await?;
    Ok(Content {
        chunks,
        summary,
        hash,
        validators,
        changed,
    })
}

/// The content did not change: log it, keep the chunks, and the source is ready again.
async fn unchanged(
    state: &AppState,
    tenant: &Tenant,
    source: knowledge_source::Model,
    status: Option<i32>,
    validators: Option<Validators>,
) -> Result<(), JobError> {
    let id = SourceId::from_db(source.id);
    repo::knowledge::record_refresh(&state.db, tenant, &id, "UNCHANGED", status, None).await?;
    // A source deleted meanwhile has nothing left to mark.
    repo::knowledge::mark_unchanged(&state.db, tenant, &id, validators).await?;
    Ok(())
}

/// Fetches the source's URL (conditionally when `conditional`); a failure is recorded in its
/// refresh log and fails the job, permanently or for a retry.
async fn fetch_url(
    state: &AppState,
    tenant: &Tenant,
    source: &knowledge_source::Model,
    conditional: bool,
) -> Result<Fetched, JobError> {
    let url = source
        .url
        .as_deref()
        .ok_or_else(|| JobError::permanent(FailureCode::UrlFailed, "the source has no URL"))?;
    let validators = conditional.then(|| (source.etag.clone(), source.last_modified.clone()));
    let options = fetch::FetchOptions::from_settings(&state.settings.ingestion);
    match fetch::fetch(url, validators, &options).await {
        Ok(fetched) => Ok(fetched),
        Err(e) => {
            let id = SourceId::from_db(source.id.clone());
            repo::knowledge::record_refresh(
                &state.db,
                tenant,
                &id,
                "FAILED",
                e.status(),
                Some(e.message()),
            )
            .await?;
            Err(if e.is_permanent() {
                JobError::permanent(FailureCode::UrlFailed, e.message())
            } else {
                JobError::Transient(anyhow::anyhow!(e.message()))
            })
        }
    }
}

/// Extraction runs in a child process under limits: a parser that crashes, runs away or
/// exhausts its memory fails the source, not the server.
async fn extract_isolated(
    state: &AppState,
    bytes: Vec<u8>,
    source: &knowledge_source::Model,
    content_type: Option<String>,
) -> Result<Document, JobError> {
    let request = isolated::Request {
        file_name: source.file_name.clone().or_else(|| source.url.clone()),
        content_type: content_type.or_else(|| source.content_type.clone()),
        title: source.title.clone(),
        description: source.description.clone(),
        url: source.url.clone(),
    };
    let isolation = Isolation::from_settings(&state.settings.ingestion)?;
    Ok(isolation.extract(&request, bytes).await??)
}

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

fn chunk_settings(state: &AppState) -> ChunkSettings {
    let embedder = state.models.embedder.clone();
    ChunkSettings {
        target_chars: state.settings.ingestion.chunk_target_chars,
        overlap_chars: state.settings.ingestion.chunk_overlap_chars,
        window: embedder.window().map(|tokens| Window {
            tokens,
            count: Arc::new(move |text: &str| embedder.count_tokens(text)),
        }),
    }
}
