//! Knowledge sources: accepting files, Q&A pairs and URLs (persisted with a job, answered at
//! once), listing them, deleting them, and re-indexing.

use chrono::Utc;
use entity::knowledge_source::{self, Kind};
use sea_orm::DatabaseTransaction;

use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        ids::SourceId,
        pagination::{Page, PageRequest},
    },
    error::{AppError, AppResult},
    ingest::{fetch, pipeline::kinds},
    repo::{
        self,
        knowledge::{NewSource, QaContent, SourceFilter},
    },
    state::AppState,
    storage::BlobStore,
};

/// A file to ingest.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// The uploaded file's name.
    pub file_name: String,
    /// The declared content type (content sniffing decides).
    pub content_type: Option<String>,
    /// The content.
    pub bytes: Vec<u8>,
    /// Display title; the file name when absent.
    pub title: Option<String>,
    /// What the file shows (used for images).
    pub description: Option<String>,
}

/// A Q&A pair to store.
#[derive(Debug, Clone)]
pub struct QaPair {
    /// The question, matched first.
    pub question: String,
    /// The answer, given verbatim on a strong match.
    pub answer: String,
    /// Free labels.
    pub tags: Vec<String>,
}

/// A URL to ingest and refresh.
#[derive(Debug, Clone)]
pub struct NewUrl {
    /// Absolute http(s) URL.
    pub url: String,
    /// Minutes between refreshes; the configured default when absent.
    pub refresh_interval_minutes: Option<i32>,
    /// Display title; the URL when absent.
    pub title: Option<String>,
}

/// Accepts a file: stored, persisted `PENDING` with its job, indexed in the background.
pub async fn upload_file(
    state: &AppState,
    principal: &Principal,
    file: NewFile,
) -> AppResult<knowledge_source::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let limit = state.settings.http.max_upload_bytes;
    if file.bytes.len() > limit {
        return Err(AppError::PayloadTooLarge(format!(
            "the file exceeds the {limit}-byte upload limit"
        )));
    }
    if file.bytes.is_empty() {
        return Err(AppError::bad_input("file", "the file is empty"));
    }
    let file_name = clean(&file.file_name, 255).unwrap_or_else(|| "upload".to_owned());
    let title = optional_text("title", file.title, 300)?.unwrap_or_else(|| file_name.clone());
    let description = optional_text("description", file.description, 5_000)?;
    let mut source = NewSource::new(Kind::File, title);
    let key = BlobStore::key(tenant.org(), source.id());
    state.blobs.put(&key, &file.bytes).await?;
    source.file_name = Some(file_name);
    source.content_type = file.content_type.and_then(|c| clean(&c, 100));
    source.byte_size = Some(file.bytes.len() as i64);
    source.storage_key = Some(key.clone());
    source.description = description;
    match accept(state, &tenant, source).await {
        Ok(model) => Ok(model),
        Err(e) => {
            let _ = state.blobs.delete(&key).await;
            Err(e)
        }
    }
}

/// Stores a Q&A pair and indexes it.
pub async fn create_qa(
    state: &AppState,
    principal: &Principal,
    pair: QaPair,
) -> AppResult<knowledge_source::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let pair = validated(pair)?;
    let mut source = NewSource::new(Kind::Qa, qa_title(&pair.question));
    source.question = Some(pair.question);
    source.answer = Some(pair.answer);
    source.tags = pair.tags;
    accept(state, &tenant, source).await
}

/// Replaces a Q&A pair and re-indexes it; the old version answers until then.
pub async fn update_qa(
    state: &AppState,
    principal: &Principal,
    id: &SourceId,
    pair: QaPair,
) -> AppResult<knowledge_source::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let pair = validated(pair)?;
    find_kind(state, &tenant, id, Some(Kind::Qa)).await?;
    let content = QaContent {
        title: qa_title(&pair.question),
        question: pair.question,
        answer: pair.answer,
        tags: pair.tags,
    };
    let txn = crate::db::begin_write(&state.db).await?;
    let source = repo::knowledge::replace_qa(&txn, &tenant, id, content)
        .await?
        .ok_or(AppError::NotFound("knowledge source"))?;
    commit_with_job(state, txn, &tenant, id, kinds::INDEX).await?;
    Ok(source)
}

/// Accepts a URL: checked, persisted `PENDING`, fetched in the background and refreshed on
/// its interval.
pub async fn add_url(
    state: &AppState,
    principal: &Principal,
    input: NewUrl,
) -> AppResult<knowledge_source::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let url = fetch::parse(&input.url).map_err(|e| AppError::bad_input("url", e.message()))?;
    fetch::check_target(&url, state.settings.ingestion.allow_private_urls)
        .await
        .map_err(|e| AppError::bad_input("url", e.message()))?;
    let minutes = match input.refresh_interval_minutes {
        None => None,
        Some(m) if (1..=525_600).contains(&m) => Some(m),
        Some(_) => {
            return Err(AppError::bad_input(
                "refresh_interval_minutes",
                "must be between 1 and 525600",
            ));
        }
    };
    let title = optional_text("title", input.title, 300)?.unwrap_or_else(|| url.to_string());
    let mut source = NewSource::new(Kind::Url, title);
    source.url = Some(url.to_string());
    source.refresh_interval_minutes = minutes;
    let interval = minutes.unwrap_or(state.settings.ingestion.url_refresh_minutes);
    source.next_refresh_at = Some(Utc::now() + chrono::Duration::minutes(i64::from(interval)));
    accept(state, &tenant, source).await
}

/// Fetches a URL source again now; unchanged content is not re-embedded.
pub async fn refresh_url(
    state: &AppState,
    principal: &Principal,
    id: &SourceId,
) -> AppResult<knowledge_source::Model> {
    let tenant = principal.scope(Scope::Write)?;
    find_kind(state, &tenant, id, Some(Kind::Url)).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    let source = repo::knowledge::touch(&txn, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("knowledge source"))?;
    commit_with_job(state, txn, &tenant, id, kinds::REFRESH).await?;
    Ok(source)
}

/// One source.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: &SourceId,
) -> AppResult<knowledge_source::Model> {
    let tenant = principal.scope(Scope::Read)?;
    find_kind(state, &tenant, id, None).await
}

/// One source of a given kind (REST paths are per kind).
pub async fn get_kind(
    state: &AppState,
    principal: &Principal,
    id: &SourceId,
    kind: Kind,
) -> AppResult<knowledge_source::Model> {
    let tenant = principal.scope(Scope::Read)?;
    find_kind(state, &tenant, id, Some(kind)).await
}

/// A page of sources.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    filter: &SourceFilter,
    page: &PageRequest,
) -> AppResult<Page<knowledge_source::Model>> {
    let tenant = principal.scope(Scope::Read)?;
    Ok(repo::knowledge::list(&state.db, &tenant, filter, page).await?)
}

/// The refresh log of a URL source, newest first.
pub async fn refreshes(
    state: &AppState,
    principal: &Principal,
    id: &SourceId,
    limit: u64,
) -> AppResult<Vec<entity::url_refresh::Model>> {
    let tenant = principal.scope(Scope::Read)?;
    find_kind(state, &tenant, id, Some(Kind::Url)).await?;
    Ok(repo::knowledge::refreshes(&state.db, &tenant, id, limit).await?)
}

/// Deletes a source, its chunks and its file.
pub async fn delete(
    state: &AppState,
    principal: &Principal,
    id: &SourceId,
    kind: Option<Kind>,
) -> AppResult<()> {
    let tenant = principal.scope(Scope::Write)?;
    let source = find_kind(state, &tenant, id, kind).await?;
    repo::knowledge::delete(&state.db, &tenant, id).await?;
    if let Err(e) = state.vectors.delete_source(tenant.org(), id).await {
        tracing::warn!(source = %id, error = format!("{e:#}"), "chunks of a deleted source remain; searches skip them");
    }
    if let Some(key) = &source.storage_key
        && let Err(e) = state.blobs.delete(key).await
    {
        tracing::warn!(source = %id, error = format!("{e:#}"), "file of a deleted source remains");
    }
    Ok(())
}

/// The embedder in use and how many ready sources still need re-indexing for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStatus {
    /// Id of the embedder in use.
    pub embedder: String,
    /// Length of its vectors.
    pub dimension: usize,
    /// Ready sources indexed by another embedder: not found by searches until re-embedded.
    pub stale_sources: u64,
}

/// Which embedder indexes the organization's knowledge, and what it has not indexed yet.
pub async fn index_status(state: &AppState, principal: &Principal) -> AppResult<IndexStatus> {
    let tenant = principal.scope(Scope::Read)?;
    let embedder = &state.models.embedder;
    let stale_sources =
        repo::knowledge::count_indexed_by_others(&state.db, &tenant, embedder.id()).await?;
    Ok(IndexStatus {
        embedder: embedder.id().to_owned(),
        dimension: embedder.dimension(),
        stale_sources,
    })
}

/// Re-indexes sources (all, or those among `ids`) in the background; the current chunks
/// keep answering until each source's new chunks replace them. Returns how many were queued.
pub async fn reembed(
    state: &AppState,
    principal: &Principal,
    ids: Option<Vec<SourceId>>,
) -> AppResult<usize> {
    let tenant = principal.scope(Scope::Write)?;
    let found = repo::knowledge::ids(&state.db, &tenant, ids.as_deref()).await?;
    if let Some(ids) = &ids
        && found.len() != ids.iter().collect::<std::collections::HashSet<_>>().len()
    {
        return Err(AppError::NotFound("knowledge source"));
    }
    let now = Utc::now();
    let txn = crate::db::begin_write(&state.db).await?;
    for id in &found {
        repo::jobs::enqueue(&txn, &tenant, id, kinds::REEMBED, now).await?;
    }
    txn.commit().await?;
    state.job_signal.notify();
    Ok(found.len())
}

async fn find_kind(
    state: &AppState,
    tenant: &Tenant,
    id: &SourceId,
    kind: Option<Kind>,
) -> AppResult<knowledge_source::Model> {
    repo::knowledge::find(&state.db, tenant, id)
        .await?
        .filter(|s| kind.is_none_or(|k| s.kind == k))
        .ok_or(AppError::NotFound("knowledge source"))
}

/// Persists a new source and its job in one transaction, then wakes a worker.
async fn accept(
    state: &AppState,
    tenant: &Tenant,
    source: NewSource,
) -> AppResult<knowledge_source::Model> {
    let txn = crate::db::begin_write(&state.db).await?;
    let model = repo::knowledge::insert(&txn, tenant, source).await?;
    let id = SourceId::from_db(model.id.clone());
    commit_with_job(state, txn, tenant, &id, kinds::INDEX).await?;
    Ok(model)
}

/// Queues a `kind` job for the source `id`, written on `txn`, commits, and wakes a worker.
async fn commit_with_job(
    state: &AppState,
    txn: DatabaseTransaction,
    tenant: &Tenant,
    id: &SourceId,
    kind: &str,
) -> AppResult<()> {
    repo::jobs::enqueue(&txn, tenant, id, kind, Utc::now()).await?;
    txn.commit().await?;
    state.job_signal.notify();
    Ok(())
}

/// A Q&A pair's title: the start of its question.
fn qa_title(question: &str) -> String {
    question.chars().take(300).collect()
}

fn validated(pair: QaPair) -> AppResult<QaPair> {
    let question = required_text("question", &pair.question, 1_000)?;
    let answer = required_text("answer", &pair.answer, 10_000)?;
    if pair.tags.len() > 20 {
        return Err(AppError::bad_input("tags", "at most 20 tags"));
    }
    let mut tags = Vec::new();
    for (i, tag) in pair.tags.iter().enumerate() {
        tags.push(required_text(&format!("tags[{i}]"), tag, 50)?);
    }
    Ok(QaPair {
        question,
        answer,
        tags,
    })
}

fn required_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

fn optional_text(field: &str, value: Option<String>, max: usize) -> AppResult<Option<String>> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => Err(AppError::bad_input(
            field,
            format!("must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

fn clean(value: &str, max: usize) -> Option<String> {
    let value: String = value
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    (!value.is_empty()).then_some(value)
}
