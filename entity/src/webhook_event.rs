//! `webhook_event`: the outbox. An event is written in the same transaction as the change
//! that raised it, with one delivery per endpoint that wants it.

use sea_orm::entity::prelude::*;

/// One event (`evt_…`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// `rate_limit.approaching`, `knowledge.ready`…
    pub event_type: String,
    /// The exact JSON body every attempt sends.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
