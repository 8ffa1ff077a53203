//! `/api/v1/knowledge`: files, Q&A pairs and URLs, search and re-indexing.

mod files;
mod qas;
mod urls;

use axum::{
    Json,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
};
use base64::Engine;
use entity::knowledge_source::Kind;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ErrorBody, List};
use crate::{
    auth::Principal,
    domain::ids::{AssistantId, SourceId},
    error::{AppError, AppResult},
    http::extract::{ApiJson, ApiQuery},
    repo::knowledge::SourceFilter,
    services::{
        knowledge::{self, NewFile},
        retrieval::{self, Search},
    },
    state::AppState,
    views::knowledge::{
        KnowledgeHit, KnowledgeIndex, KnowledgeKind, KnowledgeQaInput, KnowledgeSource,
        KnowledgeStatus, KnowledgeUrlInput, SearchMode,
    },
};

/// The knowledge routes; uploads may be as large as `max_upload_bytes`.
pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(files::upload_file, files::list_files))
        .layer(DefaultBodyLimit::max(max_upload_bytes + 64 * 1024));
    OpenApiRouter::new()
        .routes(routes!(list_sources, create_source))
        .merge(uploads)
        .routes(routes!(files::get_file, files::delete_file))
        .routes(routes!(qas::list_qas, qas::create_qa))
        .routes(routes!(qas::get_qa, qas::update_qa, qas::delete_qa))
        .routes(routes!(urls::list_urls, urls::add_url))
        .routes(routes!(urls::get_url, urls::delete_url))
        .routes(routes!(urls::refresh_url))
        .routes(routes!(urls::url_refreshes))
        .routes(routes!(search))
        .routes(routes!(reembed))
        .routes(routes!(index_status))
}

/// `?limit=&cursor=&status=&q=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SourceParams {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only sources in this status.
    status: Option<KnowledgeStatus>,
    /// Only sources whose title, file name, URL or question contains this text.
    q: Option<String>,
    /// Only this kind (on `/api/v1/knowledge`).
    kind: Option<KnowledgeKind>,
}

async fn list_of(
    state: &AppState,
    principal: &Principal,
    params: SourceParams,
    kind: Option<Kind>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    let page = crate::domain::pagination::PageRequest::rest(params.limit, params.cursor)?;
    let filter = SourceFilter {
        kind: kind.or(params.kind.map(Into::into)),
        status: params.status.map(Into::into),
        text: params.q,
    };
    let sources = knowledge::list(state, principal, &filter, &page).await?;
    Ok(Json(List::from_page(
        sources,
        |s| s.id.clone(),
        KnowledgeSource::from,
    )))
}

/// Every knowledge source, oldest first.
#[utoipa::path(get, path = "/api/v1/knowledge", tag = "knowledge", params(SourceParams),
    responses((status = 200, body = List<KnowledgeSource>)))]
async fn list_sources(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    list_of(&state, &principal, params, None).await
}

/// A source of any kind, by `type`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
enum NewSource {
    /// A file given inline, base64-encoded (`/api/v1/knowledge/files` takes multipart).
    File {
        /// The file's name.
        file_name: String,
        /// The content, base64.
        content_base64: String,
        /// Display title.
        title: Option<String>,
        /// What the file shows (images).
        description: Option<String>,
    },
    /// A Q&A pair.
    Qa(KnowledgeQaInput),
    /// A URL.
    Url(KnowledgeUrlInput),
}

/// Accepts a source of any kind (`"type": "file" | "qa" | "url"`); answers `PENDING` at once.
#[utoipa::path(post, path = "/api/v1/knowledge", tag = "knowledge", request_body = NewSource,
    responses((status = 201, body = KnowledgeSource), (status = 422, body = ErrorBody)))]
async fn create_source(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<NewSource>,
) -> AppResult<(StatusCode, Json<KnowledgeSource>)> {
    let source = match input {
        NewSource::File {
            file_name,
            content_base64,
            title,
            description,
        } => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(content_base64.trim())
                .map_err(|_| AppError::bad_input("content_base64", "is not valid base64"))?;
            knowledge::upload_file(
                &state,
                &principal,
                NewFile {
                    file_name,
                    content_type: None,
                    bytes,
                    title,
                    description,
                },
            )
            .await?
        }
        NewSource::Qa(qa) => knowledge::create_qa(&state, &principal, qa.into()).await?,
        NewSource::Url(url) => knowledge::add_url(&state, &principal, url.into()).await?,
    };
    Ok((StatusCode::CREATED, Json(source.into())))
}

/// The embedder in use and how many sources a previous one indexed.
#[utoipa::path(get, path = "/api/v1/knowledge/index", tag = "knowledge",
    responses((status = 200, body = KnowledgeIndex)))]
async fn index_status(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<KnowledgeIndex>> {
    Ok(Json(
        knowledge::index_status(&state, &principal).await?.into(),
    ))
}

/// A search.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    /// What to look for.
    query: String,
    /// Only the sources this assistant may use (and its top-k and minimum score by default).
    assistant_id: Option<String>,
    /// Hits wanted, 1–50.
    top_k: Option<i32>,
    /// `hybrid` (default), `vector` or `text`.
    mode: Option<SearchMode>,
    /// Lowest score kept, 0–1.
    min_score: Option<f64>,
}

/// Searches the organization's knowledge.
#[utoipa::path(post, path = "/api/v1/knowledge/search", tag = "knowledge", request_body = SearchBody,
    responses((status = 200, body = Vec<KnowledgeHit>), (status = 422, body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<SearchBody>,
) -> AppResult<Json<Vec<KnowledgeHit>>> {
    let search = Search {
        query: body.query,
        assistant_id: body
            .assistant_id
            .as_deref()
            .map(AssistantId::parse)
            .transpose()?,
        top_k: body.top_k,
        mode: body.mode.map(Into::into),
        min_score: body.min_score,
    };
    let hits = retrieval::search(&state, &principal, search).await?;
    Ok(Json(hits.into_iter().map(Into::into).collect()))
}

/// Which sources to re-index.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct ReembedBody {
    /// Source ids; every source when absent.
    ids: Option<Vec<String>>,
}

/// How many sources were queued.
#[derive(serde::Serialize, ToSchema)]
struct Queued {
    /// Sources queued for re-indexing.
    queued: usize,
}

/// Re-indexes sources in the background; current chunks answer until replaced.
#[utoipa::path(post, path = "/api/v1/knowledge/reembed", tag = "knowledge", request_body = ReembedBody,
    responses((status = 202, body = Queued), (status = 404, body = ErrorBody)))]
async fn reembed(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ReembedBody>,
) -> AppResult<(StatusCode, Json<Queued>)> {
    let ids = body
        .ids
        .map(|ids| {
            ids.iter()
                .map(|id| SourceId::parse(id))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let queued = knowledge::reembed(&state, &principal, ids).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { queued })))
}
