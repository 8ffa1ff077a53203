//! `conversation`: a session's exchange with one assistant.

use sea_orm::entity::prelude::*;

/// One conversation (`conv_…`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub session_id: String,
    pub assistant_id: String,
    /// Pinned version number; the live version answers when unset.
    pub assistant_version: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub title: Option<String>,
    /// Copied from the session, for listing a visitor's journey.
    pub external_user_id: Option<String>,
    pub created_at: DateTimeUtc,
    /// Time of the latest message.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
