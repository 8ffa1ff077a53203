//! The knowledge-gap inbox: visitor questions an assistant could not answer well, grouped by
//! meaning.

use chrono::{DateTime, SubsecRound, Utc};
use entity::knowledge_gap;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use serde_json::{Value, json};

use super::windowed;
use crate::domain::{
    access::Tenant,
    ids::{GapId, SourceId},
    knowledge_gap::{GapExample, GapReason, GapStatus},
    pagination::{Page, PageRequest},
};

/// Most gaps a new question is compared with: the most recently seen.
pub const MAX_CANDIDATES: u64 = 500;

/// A gap to open with its first question.
#[derive(Debug, Clone)]
pub struct NewGap {
    /// `asst_…`
    pub assistant_id: String,
    /// Why the question counts.
    pub reason: GapReason,
    /// The question.
    pub example: GapExample,
    /// Its embedding…
    pub embedding: Vec<f32>,
    /// …by this embedder.
    pub embedder: String,
}

/// Now, to the microsecond the databases keep, so a row's `updated_at` compares equal to
/// what is read back.
fn stored_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Opens a gap holding one question.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewGap,
) -> Result<knowledge_gap::Model, DbErr> {
    let now = stored_now();
    knowledge_gap::ActiveModel::from(knowledge_gap::Model {
        id: GapId::generate().into_string(),
        org_id: tenant.org().as_str().to_owned(),
        assistant_id: new.assistant_id,
        status: GapStatus::Open.as_str().to_owned(),
        question: new.example.question.clone(),
        count: 1,
        reasons: Value::Object(
            [(new.reason.as_str().to_owned(), json!(1))]
                .into_iter()
                .collect(),
        ),
        examples: json!([new.example]),
        embedding: json!(new.embedding),
        embedder: new.embedder,
        source_id: None,
        first_seen_at: now,
        last_seen_at: now,
        resolved_at: None,
        updated_at: now,
    })
    .insert(db)
    .await
}

/// The gaps of `assistant_id` a new question may join, most recently seen first: open and
/// dismissed ones (a resolved gap's question that fails again is a new gap), embedded by
/// `embedder`.
pub async fn candidates(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    assistant_id: &str,
    embedder: &str,
) -> Result<Vec<knowledge_gap::Model>, DbErr> {
    knowledge_gap::Entity::find()
        .filter(knowledge_gap::Column::OrgId.eq(tenant.org().as_str()))
        .filter(knowledge_gap::Column::AssistantId.eq(assistant_id))
        .filter(knowledge_gap::Column::Embedder.eq(embedder))
        .filter(knowledge_gap::Column::Status.ne(GapStatus::Resolved.as_str()))
        .order_by_desc(knowledge_gap::Column::LastSeenAt)
        .limit(MAX_CANDIDATES)
        .all(db)
        .await
}

/// A gap after one more signal.
#[derive(Debug, Clone)]
pub struct Grown {
    /// Questions in it.
    pub count: i32,
    /// Signals by reason.
    pub reasons: Value,
    /// The newest questions.
    pub examples: Value,
    /// The mean embedding.
    pub embedding: Vec<f32>,
}

/// Writes `grown` over `gap` unless the gap changed since it was read (another signal came
/// first: the caller reads it again). Returns whether it was written.
pub async fn grow(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    gap: &knowledge_gap::Model,
    grown: Grown,
) -> Result<bool, DbErr> {
    let now = stored_now();
    let written = knowledge_gap::Entity::update_many()
        .col_expr(knowledge_gap::Column::Count, Expr::value(grown.count))
        .col_expr(knowledge_gap::Column::Reasons, Expr::value(grown.reasons))
        .col_expr(knowledge_gap::Column::Examples, Expr::value(grown.examples))
        .col_expr(
            knowledge_gap::Column::Embedding,
            Expr::value(json!(grown.embedding)),
        )
        .col_expr(knowledge_gap::Column::LastSeenAt, Expr::value(now))
        .col_expr(knowledge_gap::Column::UpdatedAt, Expr::value(now))
        .filter(knowledge_gap::Column::Id.eq(gap.id.as_str()))
        .filter(knowledge_gap::Column::OrgId.eq(tenant.org().as_str()))
        .filter(knowledge_gap::Column::UpdatedAt.eq(gap.updated_at))
        .exec(db)
        .await?;
    Ok(written.rows_affected > 0)
}

/// Which gaps to list.
#[derive(Debug, Clone, Default)]
pub struct GapFilter {
    /// Of this assistant.
    pub assistant_id: Option<String>,
    /// In this state.
    pub status: Option<GapStatus>,
}

/// A page of the organization's gaps, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &GapFilter,
    page: &PageRequest,
) -> Result<Page<knowledge_gap::Model>, DbErr> {
    let mut query = knowledge_gap::Entity::find()
        .filter(knowledge_gap::Column::OrgId.eq(tenant.org().as_str()));
    if let Some(assistant) = &filter.assistant_id {
        query = query.filter(knowledge_gap::Column::AssistantId.eq(assistant.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(knowledge_gap::Column::Status.eq(status.as_str()));
    }
    let rows = windowed(query, knowledge_gap::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// The gap `id` of the organization.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &GapId,
) -> Result<Option<knowledge_gap::Model>, DbErr> {
    knowledge_gap::Entity::find_by_id(id.as_str())
        .filter(knowledge_gap::Column::OrgId.eq(tenant.org().as_str()))
        .one(db)
        .await
}

/// Marks the gap `id` resolved by the Q&A pair `source`, unless it is resolved already.
/// Returns whether it was changed.
pub async fn resolve(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &GapId,
    source: &SourceId,
) -> Result<bool, DbErr> {
    let now = stored_now();
    let changed = knowledge_gap::Entity::update_many()
        .col_expr(
            knowledge_gap::Column::Status,
            Expr::value(GapStatus::Resolved.as_str()),
        )
        .col_expr(
            knowledge_gap::Column::SourceId,
            Expr::value(source.as_str()),
        )
        .col_expr(knowledge_gap::Column::ResolvedAt, Expr::value(Some(now)))
        .col_expr(knowledge_gap::Column::UpdatedAt, Expr::value(now))
        .filter(knowledge_gap::Column::Id.eq(id.as_str()))
        .filter(knowledge_gap::Column::OrgId.eq(tenant.org().as_str()))
        .filter(knowledge_gap::Column::Status.ne(GapStatus::Resolved.as_str()))
        .exec(db)
        .await?;
    Ok(changed.rows_affected > 0)
}

/// Dismisses the gap `id` when it is open. Returns whether it was changed.
pub async fn dismiss(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &GapId,
) -> Result<bool, DbErr> {
    let changed = knowledge_gap::Entity::update_many()
        .col_expr(
            knowledge_gap::Column::Status,
            Expr::value(GapStatus::Dismissed.as_str()),
        )
        .col_expr(knowledge_gap::Column::UpdatedAt, Expr::value(stored_now()))
        .filter(knowledge_gap::Column::Id.eq(id.as_str()))
        .filter(knowledge_gap::Column::OrgId.eq(tenant.org().as_str()))
        .filter(knowledge_gap::Column::Status.eq(GapStatus::Open.as_str()))
        .exec(db)
        .await?;
    Ok(changed.rows_affected > 0)
}
