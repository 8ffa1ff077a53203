//! `ingest_job`: durable work items for the ingestion workers.

use sea_orm::entity::prelude::*;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum JobStatus {
    /// Waiting until `run_after`.
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    /// Leased by a worker until `lease_until`; an expired lease is taken over.
    #[sea_orm(string_value = "RUNNING")]
    Running,
    /// Finished.
    #[sea_orm(string_value = "DONE")]
    Done,
    /// Gave up; the source says why.
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// One job: (re)index one source.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ingest_job")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub source_id: String,
    /// `index` (new or changed content), `refresh` (re-fetch a URL), `reembed`.
    pub kind: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub run_after: DateTimeUtc,
    pub lease_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
