//! `webhook_endpoint`: where an organization's events are delivered.

use sea_orm::entity::prelude::*;

/// One endpoint (`wh_…`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoint")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    pub description: Option<String>,
    /// JSON array of event types (`knowledge.ready`), or `["*"]` for every type.
    pub event_types: Json,
    /// The signing secret (`whsec_…`). Kept readable: every delivery is signed with it.
    pub secret: String,
    /// The secret before the last rotation, still signing until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub enabled: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
