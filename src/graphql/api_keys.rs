//! API key management (admin scope).

use async_graphql::{Context, ID, Object, Result};

use super::context::parts;
use crate::{
    domain::ids::KeyId,
    services,
    views::api_keys::{ApiKey, CreateApiKeyInput, CreatedApiKey},
};

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The organization's API keys, oldest first (admin scope).
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        let (state, principal) = parts(ctx)?;
        let keys = services::api_keys::list(&state.db, principal).await?;
        Ok(keys.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Issues an API key (admin scope). The plaintext key and secret are shown only here.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        let (state, principal) = parts(ctx)?;
        let created =
            services::api_keys::create(&state.db, principal, input.into_new_key()?).await?;
        Ok(created.into())
    }

    /// Revokes an API key (admin scope); it stops authenticating at once.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::api_keys::revoke(&state.db, principal, &KeyId::parse(&id)?)
                .await?
                .into(),
        )
    }
}
