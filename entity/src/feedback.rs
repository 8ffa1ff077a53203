//! `feedback`: a rating of a conversation or of one of its messages.

use sea_orm::entity::prelude::*;

/// One piece of feedback (`fb_…`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "feedback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub conversation_id: String,
    pub message_id: Option<String>,
    /// 1–5; thumbs down is 1, thumbs up 5.
    pub rating: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    /// `VISITOR`, `AGENT` or `SYSTEM`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    /// JSON object.
    pub actor_metadata: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
