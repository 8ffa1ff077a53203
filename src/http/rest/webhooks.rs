//! `/api/v1/webhooks` and `/api/v1/webhook-deliveries`: webhook endpoints, their deliveries
//! and attempts (admin scope).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ErrorBody, List};
use crate::{
    auth::Principal,
    domain::ids::{DeliveryId, WebhookId},
    domain::pagination::PageRequest,
    error::AppResult,
    http::extract::{ApiJson, ApiQuery},
    services,
    state::AppState,
    views::{
        common::DeletePayload,
        webhooks::{
            CreateWebhookInput, UpdateWebhookInput, Webhook, WebhookDelivery,
            WebhookDeliveryStatus, WebhookWithSecretPayload,
        },
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(resend_delivery))
}

/// The organization's endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<Webhook>), (status = 403, body = ErrorBody)))]
async fn list_webhooks(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Vec<Webhook>>> {
    let endpoints = services::webhooks::list(&state, &principal).await?;
    Ok(Json(endpoints.into_iter().map(Into::into).collect()))
}

/// Creates an endpoint. Its signing secret appears only in this response (and on rotation).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhookInput,
    responses((status = 201, body = WebhookWithSecretPayload), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_webhook(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateWebhookInput>,
) -> AppResult<(StatusCode, Json<WebhookWithSecretPayload>)> {
    let created = services::webhooks::create(&state, &principal, input.into()).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody)))]
async fn get_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(webhook_id): Path<String>,
) -> AppResult<Json<Webhook>> {
    Ok(Json(
        services::webhooks::get(&state, &principal, &WebhookId::parse(&webhook_id)?)
            .await?
            .into(),
    ))
}

/// Changes an endpoint's URL, event types, label or enabled flag.
#[utoipa::path(patch, path = "/api/v1/webhooks/{webhook_id}", tag = "webhooks", request_body = UpdateWebhookInput,
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(webhook_id): Path<String>,
    ApiJson(input): ApiJson<UpdateWebhookInput>,
) -> AppResult<Json<Webhook>> {
    Ok(Json(
        services::webhooks::update(
            &state,
            &principal,
            &WebhookId::parse(&webhook_id)?,
            input.into(),
        )
        .await?
        .into(),
    ))
}

/// Deletes an endpoint with its deliveries.
#[utoipa::path(delete, path = "/api/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(webhook_id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    services::webhooks::delete(&state, &principal, &WebhookId::parse(&webhook_id)?).await?;
    Ok(Json(DeletePayload::of(webhook_id)))
}

/// Body of `rotate-secret`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateSecretBody {
    /// Seconds the old secret keeps signing as a second `v1` (default 0, at most 7 days).
    keep_previous_seconds: Option<i64>,
}

/// Replaces the signing secret; the new one appears only in this response.
#[utoipa::path(post, path = "/api/v1/webhooks/{webhook_id}/rotate-secret", tag = "webhooks", request_body = RotateSecretBody,
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses((status = 200, body = WebhookWithSecretPayload), (status = 404, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    Path(webhook_id): Path<String>,
    body: Option<ApiJson<RotateSecretBody>>,
) -> AppResult<Json<WebhookWithSecretPayload>> {
    let keep = body.and_then(|ApiJson(b)| b.keep_previous_seconds);
    Ok(Json(
        services::webhooks::rotate_secret(
            &state,
            &principal,
            &WebhookId::parse(&webhook_id)?,
            keep,
        )
        .await?
        .into(),
    ))
}

/// Sends a `webhook.test` event now; answers with the delivery after its first attempt.
#[utoipa::path(post, path = "/api/v1/webhooks/{webhook_id}/test", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`")),
    responses((status = 200, body = WebhookDelivery), (status = 404, body = ErrorBody)))]
async fn test_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(webhook_id): Path<String>,
) -> AppResult<Json<WebhookDelivery>> {
    Ok(Json(
        services::webhooks::test(&state, &principal, &WebhookId::parse(&webhook_id)?)
            .await?
            .into(),
    ))
}

/// `?status=&limit=&cursor=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// `PENDING`, `SUCCEEDED` or `FAILED`.
    status: Option<WebhookDeliveryStatus>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An endpoint's deliveries with their attempts, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "`wh_…`"), DeliveryParams),
    responses((status = 200, body = List<WebhookDelivery>), (status = 404, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(webhook_id): Path<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> AppResult<Json<List<WebhookDelivery>>> {
    let page = PageRequest::rest(params.limit, params.cursor)?;
    let status = params.status.map(Into::into);
    let rows = services::webhooks::deliveries(
        &state,
        &principal,
        &WebhookId::parse(&webhook_id)?,
        status,
        &page,
    )
    .await?;
    Ok(Json(List::from_page(
        rows,
        |r| r.delivery.id.clone(),
        WebhookDelivery::from,
    )))
}

/// One delivery with its event and attempts.
#[utoipa::path(get, path = "/api/v1/webhook-deliveries/{delivery_id}", tag = "webhooks",
    params(("delivery_id" = String, Path, description = "`whd_…`")),
    responses((status = 200, body = WebhookDelivery), (status = 404, body = ErrorBody)))]
async fn get_delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(delivery_id): Path<String>,
) -> AppResult<Json<WebhookDelivery>> {
    Ok(Json(
        services::webhooks::delivery(&state, &principal, &DeliveryId::parse(&delivery_id)?)
            .await?
            .into(),
    ))
}

/// Sends a delivery again now, with the same event id and body.
#[utoipa::path(post, path = "/api/v1/webhook-deliveries/{delivery_id}/resend", tag = "webhooks",
    params(("delivery_id" = String, Path, description = "`whd_…`")),
    responses((status = 200, body = WebhookDelivery), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resend_delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(delivery_id): Path<String>,
) -> AppResult<Json<WebhookDelivery>> {
    Ok(Json(
        services::webhooks::resend(&state, &principal, &DeliveryId::parse(&delivery_id)?)
            .await?
            .into(),
    ))
}
