//! `assistant`: the persona's identity and its live-version pointer.

use sea_orm::entity::prelude::*;

/// One assistant (`asst_…`). Its configuration lives in immutable versions.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "assistant")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// The live version's id (`ver_…`).
    pub live_version_id: String,
    /// Highest version number written so far.
    pub latest_version: i32,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Soft delete: history keeps resolving the assistant.
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::assistant_version::Entity",
        from = "Column::LiveVersionId",
        to = "super::assistant_version::Column::Id"
    )]
    LiveVersion,
}

impl Related<super::assistant_version::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::LiveVersion.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
