//! `url_refresh`: the log of every fetch of a URL source.

use sea_orm::entity::prelude::*;

/// One fetch of a URL source.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "url_refresh")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub source_id: String,
    pub fetched_at: DateTimeUtc,
    /// `CHANGED`, `UNCHANGED` or `FAILED`.
    pub outcome: String,
    pub http_status: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
