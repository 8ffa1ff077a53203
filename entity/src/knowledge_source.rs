//! `knowledge_source`: a file, Q&A pair or URL an organization's assistants can draw on.

use sea_orm::entity::prelude::*;

/// What kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum Kind {
    /// An uploaded file.
    #[sea_orm(string_value = "FILE")]
    File,
    /// A curated question and answer.
    #[sea_orm(string_value = "QA")]
    Qa,
    /// A web page, fetched and refreshed.
    #[sea_orm(string_value = "URL")]
    Url,
}

/// Where the source is in its ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(12))")]
pub enum Status {
    /// Accepted, waiting for a worker.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// A worker is indexing it.
    #[sea_orm(string_value = "PROCESSING")]
    Processing,
    /// Indexed and searchable.
    #[sea_orm(string_value = "READY")]
    Ready,
    /// Could not be indexed; `error` says why.
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// One knowledge source (`ks_…`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "knowledge_source")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub kind: Kind,
    pub title: String,
    pub status: Status,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Why it failed, as a code (`FILE_TOO_COMPLEX`…); null while nothing went wrong.
    pub error_code: Option<String>,
    /// Files: the uploaded name, detected type, size and storage key under the data dir.
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub byte_size: Option<i64>,
    pub storage_key: Option<String>,
    /// Caller-supplied description (used for images).
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// Q&A pairs.
    #[sea_orm(column_type = "Text", nullable)]
    pub question: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub answer: Option<String>,
    /// JSON array of strings.
    pub tags: Json,
    /// URLs: address, refresh interval, validators and schedule.
    #[sea_orm(column_type = "Text", nullable)]
    pub url: Option<String>,
    pub refresh_interval_minutes: Option<i32>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_fetched_at: Option<DateTimeUtc>,
    pub next_refresh_at: Option<DateTimeUtc>,
    /// Hex SHA-256 of the indexed content.
    pub content_hash: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub summary: Option<String>,
    /// JSON array of strings.
    pub keywords: Json,
    pub chunk_count: i32,
    /// The embedder that indexed the current chunks.
    pub embedding_model: Option<String>,
    pub indexed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
