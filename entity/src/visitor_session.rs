//! `visitor_session`: one visitor's presence on a channel.

use sea_orm::entity::prelude::*;

/// One session (`sess_…`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "visitor_session")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// The assistant the visitor talks to, when the session was opened for one.
    pub assistant_id: Option<String>,
    /// Generated for every session (`vis_…`); stable for an anonymous visitor's session.
    pub visitor_id: String,
    /// The customer's own id of an authenticated visitor.
    pub external_user_id: Option<String>,
    /// `web`, `widget`, `api`, `email`…
    pub channel: String,
    /// Free-form JSON object (CRM ids…).
    pub metadata: Json,
    pub expires_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
