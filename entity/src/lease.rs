//! `lease`: who runs a periodic pass that must run once across replicas, and until when.

use sea_orm::entity::prelude::*;

/// One pass's lease.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lease")]
pub struct Model {
    /// The pass (`vector-maintenance`, `webhook-retention`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The replica that took it last.
    pub holder: String,
    /// Until when it holds; another replica may take it after.
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
