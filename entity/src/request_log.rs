//! `request_log`: one authenticated request, admitted or refused.

use sea_orm::entity::prelude::*;

/// One logged request. `id` is a UUIDv7, so rows sort by time.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "request_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// The API key, for key-authenticated requests.
    pub key_id: Option<String>,
    /// The OAuth app, for widget-token requests.
    pub app_id: Option<String>,
    /// `rest`, `graphql` or `ws`.
    pub transport: String,
    pub method: String,
    /// REST route template (`/api/v1/assistants/{assistant_id}`) or GraphQL operation name.
    pub endpoint: String,
    /// `query`, `mutation` or `subscription` for GraphQL.
    pub operation_type: Option<String>,
    pub status: i32,
    pub latency_ms: f64,
    pub rate_limited: bool,
    pub request_id: Option<String>,
    /// Hours since the Unix epoch, for grouping by hour or day in any database.
    pub hour: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
