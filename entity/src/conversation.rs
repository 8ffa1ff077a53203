//! `conversation`: a session's exchange with one assistant.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One conversation (`conv_…`).
/// Serializable: replicas tell each other of a conversation's new state (the reply broker).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
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
    /// `BOT` (the assistant answers), `HANDED_OFF` (a person answers) or `CLOSED`.
    pub status: String,
    /// What handed it to a person last (`VISITOR`, `OPERATOR`, `RATING`, `UNANSWERED`,
    /// `KEYWORD`); kept when it is released.
    pub handoff_trigger: Option<String>,
    /// Why, in words.
    #[sea_orm(column_type = "Text", nullable)]
    pub handoff_reason: Option<String>,
    /// For the person who takes it over.
    #[sea_orm(column_type = "Text", nullable)]
    pub handoff_note: Option<String>,
    /// When it was last handed to a person.
    pub handed_off_at: Option<DateTimeUtc>,
    /// When it was closed.
    pub closed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// Time of the latest message.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
