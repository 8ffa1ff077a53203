//! `organization`: the tenant every other record belongs to.

use sea_orm::entity::prelude::*;

/// One organization (`org_…`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organization")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// Sandbox organizations get `cmp_test_` keys and never mix with live ones.
    pub sandbox: bool,
    /// Requests per window; the server default when null.
    pub rate_limit: Option<i32>,
    /// Length of the rate-limit window in seconds; one hour when null.
    pub rate_limit_window_seconds: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
