//! `knowledge_gap`: visitor questions an assistant could not answer well, grouped by meaning.

use sea_orm::entity::prelude::*;

/// One gap (`gap_…`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "knowledge_gap")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// The assistant that could not answer (`asst_…`).
    pub assistant_id: String,
    /// `OPEN`, `RESOLVED` or `DISMISSED`.
    pub status: String,
    /// The representative question: the first one asked.
    #[sea_orm(column_type = "Text")]
    pub question: String,
    /// Visitor questions grouped into it.
    pub count: i32,
    /// Signals by reason (JSON object): `{"NO_PASSAGE": 2, "LOW_RATING": 1}`.
    pub reasons: Json,
    /// The newest questions, at most five (JSON array of objects).
    pub examples: Json,
    /// The normalised mean embedding of its questions (JSON array of numbers)…
    pub embedding: Json,
    /// …by this embedder (`hash-v1`, `minilm-l6-v2`).
    pub embedder: String,
    /// The Q&A pair that resolved it (`ks_…`).
    pub source_id: Option<String>,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
    /// Every change (grouping compares it before writing).
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
