//! `assistant_knowledge`: which sources an assistant may (linked) or must not (excluded) use.

use sea_orm::entity::prelude::*;

/// One assistant–source rule.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "assistant_knowledge")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub assistant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_id: String,
    pub org_id: String,
    /// `LINKED` or `EXCLUDED`.
    pub mode: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
