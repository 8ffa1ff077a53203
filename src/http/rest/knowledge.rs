//! `/api/v1/knowledge`: files, Q&A pairs and URLs, search and re-indexing.

use axum::{
    Json,
    extract::{DefaultBodyLimit, Multipart, Path, State},
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
    error::{AppError, AppResult},
    http::extract::{ApiJson, ApiQuery},
    repo::knowledge::SourceFilter,
    services::{
        knowledge::{self, NewFile},
        retrieval::{self, Search},
    },
    state::AppState,
    views::{
        common::DeletePayload,
        knowledge::{
            KnowledgeHit, KnowledgeKind, KnowledgeQaInput, KnowledgeSource, KnowledgeStatus,
            KnowledgeUrlInput, SearchMode, UrlRefresh,
        },
    },
};

/// The knowledge routes; uploads may be as large as `max_upload_bytes`.
pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload_file, list_files))
        .layer(DefaultBodyLimit::max(max_upload_bytes + 64 * 1024));
    OpenApiRouter::new()
        .routes(routes!(list_sources, create_source))
        .merge(uploads)
        .routes(routes!(get_file, delete_file))
        .routes(routes!(list_qas, create_qa))
        .routes(routes!(get_qa, update_qa, delete_qa))
        .routes(routes!(list_urls, add_url))
        .routes(routes!(get_url, delete_url))
        .routes(routes!(refresh_url))
        .routes(routes!(url_refreshes))
        .routes(routes!(search))
        .routes(routes!(reembed))
}

/// `?limit=&cursor=&status=&q=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SourceParams {
    /// Page size, 1–100 (default 20).
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

/// Uploads a file as `multipart/form-data` (`file`, optional `title` and `description`).
/// Answers `PENDING` at once; corrupt or unsupported files end `FAILED` with the reason.
#[utoipa::path(post, path = "/api/v1/knowledge/files", tag = "knowledge",
    request_body(content_type = "multipart/form-data", description = "`file` (required), `title`, `description`"),
    responses((status = 201, body = KnowledgeSource), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload_file(
    State(state): State<AppState>,
    principal: Principal,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AppResult<(StatusCode, Json<KnowledgeSource>)> {
    let mut multipart = multipart.map_err(|e| AppError::Malformed(e.body_text()))?;
    let (mut file, mut title, mut description) = (None, None, None);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" => {
                let name = field.file_name().unwrap_or("upload").to_owned();
                let content_type = field.content_type().map(str::to_owned);
                let bytes = field.bytes().await.map_err(multipart_error)?;
                file = Some((name, content_type, bytes.to_vec()));
            }
            "title" => title = Some(field.text().await.map_err(multipart_error)?),
            "description" => description = Some(field.text().await.map_err(multipart_error)?),
            other => {
                return Err(AppError::bad_input(
                    other,
                    "unknown form field: send `file`, `title` and `description`",
                ));
            }
        }
    }
    let (file_name, content_type, bytes) =
        file.ok_or_else(|| AppError::bad_input("file", "is required"))?;
    let source = knowledge::upload_file(
        &state,
        &principal,
        NewFile {
            file_name,
            content_type,
            bytes,
            title,
            description,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(source.into())))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("the upload exceeds the size limit".into())
    } else {
        AppError::Malformed(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// Uploaded files.
#[utoipa::path(get, path = "/api/v1/knowledge/files", tag = "knowledge", params(SourceParams),
    responses((status = 200, body = List<KnowledgeSource>)))]
async fn list_files(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    list_of(&state, &principal, params, Some(Kind::File)).await
}

/// One file source.
#[utoipa::path(get, path = "/api/v1/knowledge/files/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
async fn get_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::get_kind(&state, &principal, &id, Kind::File)
            .await?
            .into(),
    ))
}

/// Deletes a file source, its chunks and the stored file.
#[utoipa::path(delete, path = "/api/v1/knowledge/files/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
async fn delete_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    knowledge::delete(&state, &principal, &id, Some(Kind::File)).await?;
    Ok(Json(DeletePayload::of(id)))
}

/// Q&A pairs.
#[utoipa::path(get, path = "/api/v1/knowledge/qas", tag = "knowledge", params(SourceParams),
    responses((status = 200, body = List<KnowledgeSource>)))]
async fn list_qas(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    list_of(&state, &principal, params, Some(Kind::Qa)).await
}

/// Stores a Q&A pair.
#[utoipa::path(post, path = "/api/v1/knowledge/qas", tag = "knowledge", request_body = KnowledgeQaInput,
    responses((status = 201, body = KnowledgeSource), (status = 422, body = ErrorBody)))]
async fn create_qa(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<KnowledgeQaInput>,
) -> AppResult<(StatusCode, Json<KnowledgeSource>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            knowledge::create_qa(&state, &principal, input.into())
                .await?
                .into(),
        ),
    ))
}

/// One Q&A pair.
#[utoipa::path(get, path = "/api/v1/knowledge/qas/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
async fn get_qa(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::get_kind(&state, &principal, &id, Kind::Qa)
            .await?
            .into(),
    ))
}

/// Replaces a Q&A pair and re-indexes it.
#[utoipa::path(patch, path = "/api/v1/knowledge/qas/{id}", tag = "knowledge", params(("id" = String, Path)), request_body = KnowledgeQaInput,
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
async fn update_qa(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<KnowledgeQaInput>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::update_qa(&state, &principal, &id, input.into())
            .await?
            .into(),
    ))
}

/// Deletes a Q&A pair.
#[utoipa::path(delete, path = "/api/v1/knowledge/qas/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
async fn delete_qa(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    knowledge::delete(&state, &principal, &id, Some(Kind::Qa)).await?;
    Ok(Json(DeletePayload::of(id)))
}

/// URL sources.
#[utoipa::path(get, path = "/api/v1/knowledge/urls", tag = "knowledge", params(SourceParams),
    responses((status = 200, body = List<KnowledgeSource>)))]
async fn list_urls(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    list_of(&state, &principal, params, Some(Kind::Url)).await
}

/// Adds a URL, fetched in the background and refreshed on its interval.
#[utoipa::path(post, path = "/api/v1/knowledge/urls", tag = "knowledge", request_body = KnowledgeUrlInput,
    responses((status = 201, body = KnowledgeSource), (status = 422, body = ErrorBody)))]
async fn add_url(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<KnowledgeUrlInput>,
) -> AppResult<(StatusCode, Json<KnowledgeSource>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            knowledge::add_url(&state, &principal, input.into())
                .await?
                .into(),
        ),
    ))
}

/// One URL source.
#[utoipa::path(get, path = "/api/v1/knowledge/urls/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
async fn get_url(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::get_kind(&state, &principal, &id, Kind::Url)
            .await?
            .into(),
    ))
}

/// Deletes a URL source and its chunks.
#[utoipa::path(delete, path = "/api/v1/knowledge/urls/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
async fn delete_url(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    knowledge::delete(&state, &principal, &id, Some(Kind::Url)).await?;
    Ok(Json(DeletePayload::of(id)))
}

/// Fetches a URL again now; unchanged content is not re-embedded.
#[utoipa::path(post, path = "/api/v1/knowledge/urls/{id}/refresh", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
async fn refresh_url(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::refresh_url(&state, &principal, &id)
            .await?
            .into(),
    ))
}

/// The latest fetches of a URL source, newest first.
#[utoipa::path(get, path = "/api/v1/knowledge/urls/{id}/refreshes", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = Vec<UrlRefresh>), (status = 404, body = ErrorBody)))]
async fn url_refreshes(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<UrlRefresh>>> {
    let log = knowledge::refreshes(&state, &principal, &id, 100).await?;
    Ok(Json(log.into_iter().map(Into::into).collect()))
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
        assistant_id: body.assistant_id,
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
    let queued = knowledge::reembed(&state, &principal, body.ids).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { queued })))
}
