//! Knowledge sources, searches and their hits.

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{knowledge_source, url_refresh};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    services::{knowledge::NewUrl, knowledge::QaPair, retrieval},
    vector::SearchMode as StoreMode,
};

/// What kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KnowledgeKind {
    /// An uploaded file (PDF, CSV, text, Markdown, JSON, HTML, image).
    File,
    /// A curated question and answer.
    Qa,
    /// A web page, fetched and refreshed.
    Url,
}

impl From<knowledge_source::Kind> for KnowledgeKind {
    fn from(k: knowledge_source::Kind) -> Self {
        match k {
            knowledge_source::Kind::File => Self::File,
            knowledge_source::Kind::Qa => Self::Qa,
            knowledge_source::Kind::Url => Self::Url,
        }
    }
}

impl From<KnowledgeKind> for knowledge_source::Kind {
    fn from(k: KnowledgeKind) -> Self {
        match k {
            KnowledgeKind::File => Self::File,
            KnowledgeKind::Qa => Self::Qa,
            KnowledgeKind::Url => Self::Url,
        }
    }
}

/// Where a source is in its ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum KnowledgeStatus {
    /// Accepted, waiting for a worker.
    Pending,
    /// Being indexed.
    Processing,
    /// Indexed and searchable.
    Ready,
    /// Could not be indexed; `error` says why.
    Failed,
}

impl From<knowledge_source::Status> for KnowledgeStatus {
    fn from(s: knowledge_source::Status) -> Self {
        match s {
            knowledge_source::Status::Pending => Self::Pending,
            knowledge_source::Status::Processing => Self::Processing,
            knowledge_source::Status::Ready => Self::Ready,
            knowledge_source::Status::Failed => Self::Failed,
        }
    }
}

impl From<KnowledgeStatus> for knowledge_source::Status {
    fn from(s: KnowledgeStatus) -> Self {
        match s {
            KnowledgeStatus::Pending => Self::Pending,
            KnowledgeStatus::Processing => Self::Processing,
            KnowledgeStatus::Ready => Self::Ready,
            KnowledgeStatus::Failed => Self::Failed,
        }
    }
}

/// A file, Q&A pair or URL the organization's assistants can draw on.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(complex)]
pub struct KnowledgeSource {
    /// `ks_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// File, Q&A or URL.
    pub kind: KnowledgeKind,
    /// Display title.
    pub title: String,
    /// Ingestion status.
    pub status: KnowledgeStatus,
    /// Why the source failed (or why it is being retried), in words for people.
    pub error: Option<String>,
    /// Why the source failed, as a code: `UNSUPPORTED_FILE`, `FILE_DAMAGED`,
    /// `FILE_TOO_COMPLEX` (reading it would pass a limit: time, memory, nesting, text or
    /// chunks), `URL_FAILED`, `INDEXING_FAILED` (given up after repeated interruptions), or
    /// `RETRYING` while a `PENDING` source waits to be tried again; null otherwise.
    pub error_code: Option<String>,
    /// Generated summary.
    pub summary: Option<String>,
    /// Key phrases.
    pub keywords: Vec<String>,
    /// Chunks indexed.
    pub chunk_count: i32,
    /// SHA-256 of the indexed content.
    pub content_hash: Option<String>,
    /// The embedder that indexed it.
    pub embedding_model: Option<String>,
    /// When it was last indexed.
    pub indexed_at: Option<DateTime<Utc>>,
    /// Files: the uploaded name.
    pub file_name: Option<String>,
    /// Files: the declared content type.
    pub content_type: Option<String>,
    /// Files: size in bytes.
    pub byte_size: Option<i64>,
    /// Files: the caller's description (images).
    pub description: Option<String>,
    /// Q&A: the question.
    pub question: Option<String>,
    /// Q&A: the answer.
    pub answer: Option<String>,
    /// Q&A: labels.
    pub tags: Vec<String>,
    /// URLs: the address.
    pub url: Option<String>,
    /// URLs: minutes between refreshes (the server default when null).
    pub refresh_interval_minutes: Option<i32>,
    /// URLs: when it was last fetched.
    pub last_fetched_at: Option<DateTime<Utc>>,
    /// URLs: when it is fetched next.
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

impl From<knowledge_source::Model> for KnowledgeSource {
    fn from(m: knowledge_source::Model) -> Self {
        Self {
            id: ID(m.id),
            kind: m.kind.into(),
            title: m.title,
            status: m.status.into(),
            error: m.error,
            error_code: m.error_code,
            summary: m.summary,
            keywords: strings(&m.keywords),
            chunk_count: m.chunk_count,
            content_hash: m.content_hash,
            embedding_model: m.embedding_model,
            indexed_at: m.indexed_at,
            file_name: m.file_name,
            content_type: m.content_type,
            byte_size: m.byte_size,
            description: m.description,
            question: m.question,
            answer: m.answer,
            tags: strings(&m.tags),
            url: m.url,
            refresh_interval_minutes: m.refresh_interval_minutes,
            last_fetched_at: m.last_fetched_at,
            next_refresh_at: m.next_refresh_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// One fetch of a URL source.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct UrlRefresh {
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// `CHANGED` (re-indexed), `UNCHANGED` (kept, not re-embedded) or `FAILED`.
    pub outcome: String,
    /// HTTP status, when one came back.
    pub http_status: Option<i32>,
    /// What went wrong.
    pub error: Option<String>,
}

impl From<url_refresh::Model> for UrlRefresh {
    fn from(m: url_refresh::Model) -> Self {
        Self {
            fetched_at: m.fetched_at,
            outcome: m.outcome,
            http_status: m.http_status,
            error: m.error,
        }
    }
}

/// How to retrieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Vector and full-text, fused by their normalised scores, weighted towards the leg that
    /// reads the chunks' language best.
    #[default]
    Hybrid,
    /// Nearest vectors only.
    Vector,
    /// Full text (BM25) only.
    Text,
}

impl From<SearchMode> for StoreMode {
    fn from(m: SearchMode) -> Self {
        match m {
            SearchMode::Hybrid => Self::Hybrid,
            SearchMode::Vector => Self::Vector,
            SearchMode::Text => Self::Text,
        }
    }
}

/// The embedder that indexes the organization's knowledge.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct KnowledgeIndex {
    /// Id of the embedder in use (`all-MiniLM-L6-v2`, `hash-v1`, `openai:…`).
    pub embedder: String,
    /// Length of its vectors.
    pub dimension: i32,
    /// Ready sources indexed by a previous embedder. Searches do not find them until
    /// `reembedKnowledge` re-indexes them.
    pub stale_sources: i32,
}

impl From<crate::services::knowledge::IndexStatus> for KnowledgeIndex {
    fn from(s: crate::services::knowledge::IndexStatus) -> Self {
        Self {
            embedder: s.embedder,
            dimension: i32::try_from(s.dimension).unwrap_or(i32::MAX),
            stale_sources: i32::try_from(s.stale_sources).unwrap_or(i32::MAX),
        }
    }
}

/// A retrieved chunk.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct KnowledgeHit {
    /// The source it comes from.
    pub source: KnowledgeSource,
    /// Position of the chunk in the source.
    pub chunk_index: i32,
    /// The chunk's text.
    pub text: String,
    /// Headings above the chunk (`Billing > Refunds`).
    pub heading: String,
    /// Ranking score, 0–1 (similarity in vector mode, relative BM25 in text mode, the
    /// weighted sum of both legs' scaled scores in hybrid mode).
    pub score: f64,
    /// Cosine similarity between the query and the chunk.
    pub similarity: f64,
    /// A Q&A pair whose question matches strongly: its `answer` can be given verbatim.
    pub strong_qa_match: bool,
}

impl From<retrieval::Hit> for KnowledgeHit {
    fn from(h: retrieval::Hit) -> Self {
        Self {
            source: h.source.into(),
            chunk_index: h.chunk_index,
            text: h.text,
            heading: h.heading,
            score: f64::from(h.score),
            similarity: f64::from(h.similarity),
            strong_qa_match: h.strong_qa_match,
        }
    }
}

/// A Q&A pair.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeQaInput {
    /// The question (1–1,000 characters).
    pub question: String,
    /// The answer (1–10,000 characters).
    pub answer: String,
    /// Labels.
    pub tags: Option<Vec<String>>,
}

impl From<KnowledgeQaInput> for QaPair {
    fn from(i: KnowledgeQaInput) -> Self {
        Self {
            question: i.question,
            answer: i.answer,
            tags: i.tags.unwrap_or_default(),
        }
    }
}

/// A URL to ingest.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeUrlInput {
    /// Absolute http(s) URL.
    pub url: String,
    /// Minutes between refreshes (default: the server's, 1440).
    pub refresh_interval_minutes: Option<i32>,
    /// Display title (default: the URL).
    pub title: Option<String>,
}

impl From<KnowledgeUrlInput> for NewUrl {
    fn from(i: KnowledgeUrlInput) -> Self {
        Self {
            url: i.url,
            refresh_interval_minutes: i.refresh_interval_minutes,
            title: i.title,
        }
    }
}
