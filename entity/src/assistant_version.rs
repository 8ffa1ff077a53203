//! `assistant_version`: one immutable configuration of an assistant.

use sea_orm::entity::prelude::*;

/// One version (`ver_…`) of an assistant's configuration. Never updated once written.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "assistant_version")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub assistant_id: String,
    /// 1, 2, 3… per assistant.
    pub version: i32,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub tone: String,
    pub language: String,
    #[sea_orm(column_type = "Text")]
    pub instructions: String,
    /// JSON array of `{ "name", "template" }`.
    pub task_templates: Json,
    pub temperature: f64,
    pub max_tokens: i32,
    pub top_k: i32,
    pub min_score: f64,
    /// When the version hands a conversation to a person by itself (JSON object; null:
    /// never).
    pub handoff: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
