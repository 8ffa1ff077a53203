//! Knowledge sources and their URL refresh log. The queries are here; the writes, each
//! filtered by organization, in `changes`; the refresh log in `refresh_log`.

mod changes;
mod refresh_log;

use chrono::{DateTime, Utc};
use entity::knowledge_source::{self, Kind, Status};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

pub use self::{
    changes::{
        Indexed, NewSource, QaContent, Validators, claim_refresh, insert, mark_ready,
        mark_unchanged, replace_qa, set_status, touch,
    },
    refresh_log::{record_refresh, refreshes},
};
use super::windowed;
use crate::domain::access::Tenant;
use crate::domain::{
    ids::{OrgId, SourceId},
    pagination::{Page, PageRequest},
};

/// Filters of a source list.
#[derive(Debug, Clone, Default)]
pub struct SourceFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this status.
    pub status: Option<Status>,
    /// Title, file name, URL or question containing this text.
    pub text: Option<String>,
}

/// The source `id` of the organization.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
) -> Result<Option<knowledge_source::Model>, DbErr> {
    let org = tenant.org();
    knowledge_source::Entity::find_by_id(id.as_str())
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// The sources of the organization among `ids`.
pub async fn find_many(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    ids: &[String],
) -> Result<Vec<knowledge_source::Model>, DbErr> {
    let org = tenant.org();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    knowledge_source::Entity::find()
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()))
        .filter(knowledge_source::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(db)
        .await
}

/// Every source id of the organization, optionally only those among `ids`.
pub async fn ids(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    only: Option<&[SourceId]>,
) -> Result<Vec<SourceId>, DbErr> {
    let org = tenant.org();
    let mut query = knowledge_source::Entity::find()
        .select_only()
        .column(knowledge_source::Column::Id)
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()));
    if let Some(only) = only {
        query = query.filter(knowledge_source::Column::Id.is_in(only.iter().map(SourceId::as_str)));
    }
    let ids: Vec<String> = query.into_tuple().all(db).await?;
    Ok(ids.into_iter().map(SourceId::from_db).collect())
}

/// A page of the organization's sources, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &SourceFilter,
    page: &PageRequest,
) -> Result<Page<knowledge_source::Model>, DbErr> {
    let org = tenant.org();
    let mut query =
        knowledge_source::Entity::find().filter(knowledge_source::Column::OrgId.eq(org.as_str()));
    if let Some(kind) = filter.kind {
        query = query.filter(knowledge_source::Column::Kind.eq(kind));
    }
    if let Some(status) = filter.status {
        query = query.filter(knowledge_source::Column::Status.eq(status));
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.trim().is_empty()) {
        let text = text.trim();
        query = query.filter(
            Condition::any()
                .add(knowledge_source::Column::Title.contains(text))
                .add(knowledge_source::Column::FileName.contains(text))
                .add(knowledge_source::Column::Url.contains(text))
                .add(knowledge_source::Column::Question.contains(text)),
        );
    }
    let rows = windowed(query, knowledge_source::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// Deletes a source (its jobs, refresh log and assistant rules cascade).
pub async fn delete(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let result = knowledge_source::Entity::delete_many()
        .filter(knowledge_source::Column::Id.eq(id.as_str()))
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Whether the organization has any source with chunks indexed by `model` (a search of an organization
/// without any is answered without asking the vector store).
pub async fn has_indexed(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    model: &str,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let found = knowledge_source::Entity::find()
        .select_only()
        .column(knowledge_source::Column::Id)
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()))
        .filter(knowledge_source::Column::EmbeddingModel.eq(model))
        .filter(knowledge_source::Column::IndexedAt.is_not_null())
        .into_tuple::<String>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// How many of the organization's ready sources were indexed by an embedder other than `model`.
pub async fn count_indexed_by_others(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    model: &str,
) -> Result<u64, DbErr> {
    let org = tenant.org();
    knowledge_source::Entity::find()
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()))
        .filter(knowledge_source::Column::Status.eq(Status::Ready))
        .filter(knowledge_source::Column::EmbeddingModel.ne(model))
        .count(db)
        .await
}

/// Ready sources indexed by an embedder other than `model`, across organizations, for the
/// start-up warning. Unscoped by necessity, like [`due_for_refresh`]; it returns a count only.
pub async fn count_all_indexed_by_others(
    db: &impl ConnectionTrait,
    model: &str,
) -> Result<u64, DbErr> {
    knowledge_source::Entity::find()
        .filter(knowledge_source::Column::Status.eq(Status::Ready))
        .filter(knowledge_source::Column::EmbeddingModel.ne(model))
        .count(db)
        .await
}

/// URL sources whose next refresh is due, across organizations, for the scheduler.
///
/// Unscoped by necessity: the scheduler serves every organization; each due source then
/// becomes a job carrying its own organization.
pub async fn due_for_refresh(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<knowledge_source::Model>, DbErr> {
    knowledge_source::Entity::find()
        .filter(knowledge_source::Column::Kind.eq(Kind::Url))
        .filter(knowledge_source::Column::NextRefreshAt.lte(now))
        .order_by_asc(knowledge_source::Column::NextRefreshAt)
        .limit(limit)
        .all(db)
        .await
}

/// The sources among `ids` that still exist, with their organizations, for the sweep that
/// removes the chunks of deleted sources.
///
/// Unscoped by necessity: the sweep serves every organization; each row names its own.
pub async fn existing(
    db: &impl ConnectionTrait,
    ids: &[SourceId],
) -> Result<std::collections::HashSet<(OrgId, SourceId)>, DbErr> {
    let mut found = std::collections::HashSet::new();
    for part in ids.chunks(500) {
        let rows: Vec<(String, String)> = knowledge_source::Entity::find()
            .select_only()
            .column(knowledge_source::Column::OrgId)
            .column(knowledge_source::Column::Id)
            .filter(knowledge_source::Column::Id.is_in(part.iter().map(SourceId::as_str)))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(
            rows.into_iter()
                .map(|(org, id)| (OrgId::from_db(org), SourceId::from_db(id))),
        );
    }
    Ok(found)
}
