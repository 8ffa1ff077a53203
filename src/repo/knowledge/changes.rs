//! Writes to knowledge sources: the insert, and named changes of one source that each filter
//! by the organization and touch `updated_at`.

use chrono::{DateTime, Utc};
use entity::knowledge_source::{self, Kind, Status};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::find;
use crate::domain::access::Tenant;
use crate::domain::ids::{OrgId, SourceId};
use crate::domain::source_failure::SourceFailure;

/// A source to insert: `PENDING`, nothing fetched or indexed yet.
#[derive(Debug, Clone)]
pub struct NewSource {
    id: SourceId,
    /// File, Q&A pair or URL.
    pub kind: Kind,
    /// Display title.
    pub title: String,
    /// An uploaded file's name.
    pub file_name: Option<String>,
    /// An uploaded file's declared content type.
    pub content_type: Option<String>,
    /// An uploaded file's size in bytes.
    pub byte_size: Option<i64>,
    /// Where an uploaded file is stored.
    pub storage_key: Option<String>,
    /// What an uploaded file shows.
    pub description: Option<String>,
    /// A Q&A pair's question.
    pub question: Option<String>,
    /// A Q&A pair's answer.
    pub answer: Option<String>,
    /// A Q&A pair's labels.
    pub tags: Vec<String>,
    /// A URL source's address.
    pub url: Option<String>,
    /// Minutes between a URL source's refreshes (the configured default when absent).
    pub refresh_interval_minutes: Option<i32>,
    /// When a URL source is first refreshed.
    pub next_refresh_at: Option<DateTime<Utc>>,
}

impl NewSource {
    /// A source of `kind` titled `title`, under a new id, without content yet.
    pub fn new(kind: Kind, title: String) -> Self {
        Self {
            id: SourceId::generate(),
            kind,
            title,
            file_name: None,
            content_type: None,
            byte_size: None,
            storage_key: None,
            description: None,
            question: None,
            answer: None,
            tags: Vec::new(),
            url: None,
            refresh_interval_minutes: None,
            next_refresh_at: None,
        }
    }

    /// The id it is inserted under, known beforehand so that an uploaded file can be stored
    /// under it before the row is written.
    pub fn id(&self) -> &SourceId {
        &self.id
    }
}

/// Inserts a source of the organization.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewSource,
) -> Result<knowledge_source::Model, DbErr> {
    let org = tenant.org();
    let now = Utc::now();
    knowledge_source::ActiveModel {
        id: Set(new.id.into_string()),
        org_id: Set(org.as_str().to_owned()),
        kind: Set(new.kind),
        title: Set(new.title),
        status: Set(Status::Pending),
        error: Set(None),
        error_code: Set(None),
        file_name: Set(new.file_name),
        content_type: Set(new.content_type),
        byte_size: Set(new.byte_size),
        storage_key: Set(new.storage_key),
        description: Set(new.description),
        question: Set(new.question),
        answer: Set(new.answer),
        tags: Set(serde_json::Value::from(new.tags)),
        url: Set(new.url),
        refresh_interval_minutes: Set(new.refresh_interval_minutes),
        etag: Set(None),
        last_modified: Set(None),
        last_fetched_at: Set(None),
        next_refresh_at: Set(new.next_refresh_at),
        content_hash: Set(None),
        summary: Set(None),
        keywords: Set(serde_json::json!([])),
        chunk_count: Set(0),
        embedding_model: Set(None),
        indexed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// A Q&A pair's new content.
#[derive(Debug, Clone)]
pub struct QaContent {
    /// Display title.
    pub title: String,
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
    /// Free labels.
    pub tags: Vec<String>,
}

/// Replaces the content of the Q&A source `id` of the organization and sets it `PENDING` again (its
/// current chunks answer until it is re-indexed). `None` when the organization has no such source.
pub async fn replace_qa(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
    content: QaContent,
) -> Result<Option<knowledge_source::Model>, DbErr> {
    let changes = knowledge_source::ActiveModel {
        title: Set(content.title),
        question: Set(Some(content.question)),
        answer: Set(Some(content.answer)),
        tags: Set(serde_json::Value::from(content.tags)),
        status: Set(Status::Pending),
        ..Default::default()
    };
    apply_and_read(db, tenant, id, changes).await
}

/// Touches `updated_at` of the source `id` of the organization (a refresh was asked for). `None` when
/// the organization has no such source.
pub async fn touch(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
) -> Result<Option<knowledge_source::Model>, DbErr> {
    apply_and_read(db, tenant, id, Default::default()).await
}

/// Moves the next refresh of the source `id` of the organization to `next` if it was due at
/// `now`: of schedulers on several replicas claiming the same due refresh, one gets `true`.
pub async fn claim_refresh(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
    now: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let result = knowledge_source::Entity::update_many()
        .col_expr(
            knowledge_source::Column::NextRefreshAt,
            sea_orm::sea_query::Expr::value(next),
        )
        .col_expr(
            knowledge_source::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(knowledge_source::Column::Id.eq(id.as_str()))
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()))
        .filter(knowledge_source::Column::NextRefreshAt.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Sets the status of the source `id` of the organization, with why it failed or is retried.
pub async fn set_status(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
    status: Status,
    failure: Option<&SourceFailure>,
) -> Result<(), DbErr> {
    let org = tenant.org();
    let changes = knowledge_source::ActiveModel {
        status: Set(status),
        error: Set(failure.map(|f| f.message.clone())),
        error_code: Set(failure.map(|f| f.code.as_str().to_owned())),
        ..Default::default()
    };
    apply(db, org, id, changes).await?;
    Ok(())
}

/// The HTTP cache validators a page was served with.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
}

/// What indexing a source produced.
#[derive(Debug, Clone)]
pub struct Indexed {
    /// Hex SHA-256 of the content.
    pub content_hash: String,
    /// The summary.
    pub summary: String,
    /// Key phrases, most important first.
    pub keywords: Vec<String>,
    /// How many chunks were stored.
    pub chunk_count: i32,
    /// The embedder that produced the vectors.
    pub embedding_model: String,
    /// A URL source's validators, when its page was fetched for this indexing.
    pub fetched: Option<Validators>,
}

/// Marks the source `id` of the organization `READY` with what indexing produced, indexed now (and, for
/// a fetched page, fetched now with its validators). `None` when the organization has no such source
/// (it was deleted meanwhile).
pub async fn mark_ready(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
    indexed: Indexed,
) -> Result<Option<knowledge_source::Model>, DbErr> {
    let now = Utc::now();
    let mut changes = knowledge_source::ActiveModel {
        status: Set(Status::Ready),
        error: Set(None),
        error_code: Set(None),
        content_hash: Set(Some(indexed.content_hash)),
        summary: Set(Some(indexed.summary)),
        keywords: Set(serde_json::Value::from(indexed.keywords)),
        chunk_count: Set(indexed.chunk_count),
        embedding_model: Set(Some(indexed.embedding_model)),
        indexed_at: Set(Some(now)),
        ..Default::default()
    };
    if let Some(validators) = indexed.fetched {
        changes.etag = Set(validators.etag);
        changes.last_modified = Set(validators.last_modified);
        changes.last_fetched_at = Set(Some(now));
    }
    apply_and_read(db, tenant, id, changes).await
}

/// Marks the URL source `id` of the organization `READY` again after a fetch found its content
/// unchanged (its chunks stay): fetched now, with the page's validators when given. Whether
/// the organization has the source.
pub async fn mark_unchanged(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
    validators: Option<Validators>,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let mut changes = knowledge_source::ActiveModel {
        status: Set(Status::Ready),
        error: Set(None),
        error_code: Set(None),
        last_fetched_at: Set(Some(Utc::now())),
        ..Default::default()
    };
    if let Some(validators) = validators {
        changes.etag = Set(validators.etag);
        changes.last_modified = Set(validators.last_modified);
    }
    apply(db, org, id, changes).await
}

/// Writes the fields set in `changes`, and `updated_at` now, to the source `id` of the organization;
/// whether the organization has it.
async fn apply(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &SourceId,
    mut changes: knowledge_source::ActiveModel,
) -> Result<bool, DbErr> {
    changes.updated_at = Set(Utc::now());
    let result = knowledge_source::Entity::update_many()
        .set(changes)
        .filter(knowledge_source::Column::Id.eq(id.as_str()))
        .filter(knowledge_source::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// [`apply`], then the source as written.
async fn apply_and_read(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SourceId,
    changes: knowledge_source::ActiveModel,
) -> Result<Option<knowledge_source::Model>, DbErr> {
    if apply(db, tenant.org(), id, changes).await? {
        find(db, tenant, id).await
    } else {
        Ok(None)
    }
}
