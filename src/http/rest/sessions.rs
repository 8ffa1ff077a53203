//! `/api/v1/sessions` and `/api/v1/contexts`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ErrorBody, List};
use crate::{
    auth::Principal,
    domain::ids::SessionId,
    domain::pagination::PageRequest,
    error::AppResult,
    http::extract::{ApiJson, ApiQuery},
    services,
    state::AppState,
    views::sessions::{AttachContextInput, Context, CreateSessionInput, Session},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, create_session))
        .routes(routes!(get_session))
        .routes(routes!(end_session))
        .routes(routes!(list_contexts, attach_context))
}

/// `?limit=&cursor=&external_user_id=&session_id=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct VisitorParams {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only this visitor's records, across channels.
    external_user_id: Option<String>,
    /// Only this session's records (contexts).
    session_id: Option<String>,
}

/// Sessions, oldest first; `external_user_id` lists one visitor's sessions on every channel.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(VisitorParams),
    responses((status = 200, body = List<Session>), (status = 401, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<VisitorParams>,
) -> AppResult<Json<List<Session>>> {
    let page = PageRequest::rest(params.limit, params.cursor)?;
    let rows = services::sessions::list(
        &state,
        &principal,
        params.external_user_id.as_deref(),
        &page,
    )
    .await?;
    Ok(Json(List::from_page(rows, |s| s.id.clone(), Session::from)))
}

/// Opens a session: anonymous, or authenticated with `external_user_id`.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = CreateSessionInput,
    responses((status = 201, body = Session), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateSessionInput>,
) -> AppResult<(StatusCode, Json<Session>)> {
    let session = services::sessions::create(&state, &principal, input.try_into()?).await?;
    Ok((StatusCode::CREATED, Json(session.into())))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, description = "`sess_…`")),
    responses((status = 200, body = Session), (status = 404, body = ErrorBody)))]
async fn get_session(
    State(state): State<AppState>,
    principal: Principal,
    Path(session_id): Path<String>,
) -> AppResult<Json<Session>> {
    Ok(Json(
        services::sessions::get(&state, &principal, &SessionId::parse(&session_id)?)
            .await?
            .into(),
    ))
}

/// Ends a session: it stays readable and refuses new messages (410 `SESSION_EXPIRED`).
#[utoipa::path(post, path = "/api/v1/sessions/{session_id}/end", tag = "sessions",
    params(("session_id" = String, Path, description = "`sess_…`")),
    responses((status = 200, body = Session), (status = 404, body = ErrorBody)))]
async fn end_session(
    State(state): State<AppState>,
    principal: Principal,
    Path(session_id): Path<String>,
) -> AppResult<Json<Session>> {
    Ok(Json(
        services::sessions::end(&state, &principal, &SessionId::parse(&session_id)?)
            .await?
            .into(),
    ))
}

/// Contexts of a session (`session_id`) or of a visitor's sessions (`external_user_id`),
/// oldest first.
#[utoipa::path(get, path = "/api/v1/contexts", tag = "sessions", params(VisitorParams),
    responses((status = 200, body = List<Context>), (status = 404, body = ErrorBody)))]
async fn list_contexts(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<VisitorParams>,
) -> AppResult<Json<List<Context>>> {
    let page = PageRequest::rest(params.limit, params.cursor)?;
    let session = params
        .session_id
        .as_deref()
        .map(SessionId::parse)
        .transpose()?;
    let rows = services::sessions::list_contexts(
        &state,
        &principal,
        session.as_ref(),
        params.external_user_id.as_deref(),
        &page,
    )
    .await?;
    Ok(Json(List::from_page(rows, |c| c.id.clone(), Context::from)))
}

/// Attaches visitor traits to a session; the latest are given to the assistant.
#[utoipa::path(post, path = "/api/v1/contexts", tag = "sessions", request_body = AttachContextInput,
    responses((status = 201, body = Context), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn attach_context(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<AttachContextInput>,
) -> AppResult<(StatusCode, Json<Context>)> {
    let session = SessionId::parse(&input.session_id)?;
    let context =
        services::sessions::attach_context(&state, &principal, &session, input.traits.0).await?;
    Ok((StatusCode::CREATED, Json(context.into())))
}
