//! Webhook endpoints and their deliveries (admin scope).

use async_graphql::{ComplexObject, Context, ID, Object, Result, connection::Connection};

use super::context::{connection, page, parts};
use crate::{
    domain::ids::{DeliveryId, WebhookId},
    services,
    views::{
        common::DeletePayload,
        webhooks::{
            CreateWebhookInput, UpdateWebhookInput, Webhook, WebhookDelivery,
            WebhookDeliveryStatus, WebhookWithSecretPayload,
        },
    },
};

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The organization's webhook endpoints, oldest first (admin scope).
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<Webhook>> {
        let (state, principal) = parts(ctx)?;
        let endpoints = services::webhooks::list(state, principal).await?;
        Ok(endpoints.into_iter().map(Into::into).collect())
    }

    /// The event types an endpoint can subscribe to.
    async fn webhook_event_types(&self) -> Vec<String> {
        services::webhooks::EventType::SUBSCRIBABLE
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    }
}

#[ComplexObject]
impl Webhook {
    /// Deliveries to this endpoint, oldest first, optionally of one status.
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        status: Option<WebhookDeliveryStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, WebhookDelivery>> {
        let (state, principal) = parts(ctx)?;
        let rows = services::webhooks::deliveries(
            state,
            principal,
            &WebhookId::from_db(self.id.to_string()),
            status.map(Into::into),
            &page(first, after, last, before)?,
        )
        .await?;
        Ok(connection(
            rows,
            |r| r.delivery.id.clone(),
            WebhookDelivery::from,
        ))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an endpoint (admin scope). Its signing secret is shown only here (and on
    /// rotation).
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> Result<WebhookWithSecretPayload> {
        let (state, principal) = parts(ctx)?;
        Ok(services::webhooks::create(state, principal, input.into())
            .await?
            .into())
    }

    /// Changes an endpoint's URL, event types, label or enabled flag (admin scope).
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookInput,
    ) -> Result<Webhook> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::webhooks::update(state, principal, &WebhookId::parse(&id)?, input.into())
                .await?
                .into(),
        )
    }

    /// Replaces the signing secret (admin scope). The old one keeps signing, as a second
    /// `v1`, for `keepPreviousSeconds` (default 0, at most 7 days) so receivers can switch.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        keep_previous_seconds: Option<i32>,
    ) -> Result<WebhookWithSecretPayload> {
        let (state, principal) = parts(ctx)?;
        let keep = keep_previous_seconds.map(i64::from);
        Ok(
            services::webhooks::rotate_secret(state, principal, &WebhookId::parse(&id)?, keep)
                .await?
                .into(),
        )
    }

    /// Deletes an endpoint with its deliveries (admin scope).
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<DeletePayload> {
        let (state, principal) = parts(ctx)?;
        services::webhooks::delete(state, principal, &WebhookId::parse(&id)?).await?;
        Ok(DeletePayload::of(id.0))
    }

    /// Sends a `webhook.test` event to the endpoint now and returns the delivery after its
    /// first attempt (admin scope).
    async fn test_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookDelivery> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::webhooks::test(state, principal, &WebhookId::parse(&id)?)
                .await?
                .into(),
        )
    }

    /// Sends a delivery again now, with the same event id and body; retried for another
    /// day if it fails (admin scope).
    async fn resend_webhook_delivery(&self, ctx: &Context<'_>, id: ID) -> Result<WebhookDelivery> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::webhooks::resend(state, principal, &DeliveryId::parse(&id)?)
                .await?
                .into(),
        )
    }
}
