//! `/api/v1/knowledge/files`: uploads.

use axum::extract::Multipart;
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use entity::knowledge_source::Kind;

use super::{SourceParams, list_of};
use crate::{
    auth::Principal,
    domain::ids::SourceId,
    error::{AppError, AppResult},
    http::{
        extract::ApiQuery,
        rest::{ErrorBody, List},
    },
    services::knowledge::{self, NewFile},
    state::AppState,
    views::{common::DeletePayload, knowledge::KnowledgeSource},
};

/// Uploads a file as `multipart/form-data` (`file`, optional `title` and `description`).
/// Answers `PENDING` at once; corrupt or unsupported files end `FAILED` with the reason.
#[utoipa::path(post, path = "/api/v1/knowledge/files", tag = "knowledge",
    request_body(content_type = "multipart/form-data", description = "`file` (required), `title`, `description`"),
    responses((status = 201, body = KnowledgeSource), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn upload_file(
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
pub(super) async fn list_files(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    list_of(&state, &principal, params, Some(Kind::File)).await
}

/// One file source.
#[utoipa::path(get, path = "/api/v1/knowledge/files/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
pub(super) async fn get_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::get_kind(&state, &principal, &SourceId::parse(&id)?, Kind::File)
            .await?
            .into(),
    ))
}

/// Deletes a file source, its chunks and the stored file.
#[utoipa::path(delete, path = "/api/v1/knowledge/files/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_file(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    knowledge::delete(&state, &principal, &SourceId::parse(&id)?, Some(Kind::File)).await?;
    Ok(Json(DeletePayload::of(id)))
}
