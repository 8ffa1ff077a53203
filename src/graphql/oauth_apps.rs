//! OAuth app management (admin scope).

use async_graphql::{Context, ID, Object, Result};

use super::context::parts;
use crate::{
    domain::ids::AppId,
    services,
    views::oauth_apps::{CreateOAuthAppInput, CreatedOAuthApp, OAuthApp},
};

#[derive(Default)]
pub struct OAuthAppQuery;

#[Object]
impl OAuthAppQuery {
    /// The organization's OAuth apps, oldest first (admin scope).
    #[graphql(name = "oauthApps")]
    async fn oauth_apps(&self, ctx: &Context<'_>) -> Result<Vec<OAuthApp>> {
        let (state, principal) = parts(ctx)?;
        let apps = services::oauth_apps::list(&state.db, principal).await?;
        Ok(apps.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct OAuthAppMutation;

#[Object]
impl OAuthAppMutation {
    /// Creates an OAuth app for the chat widget (admin scope). The client secret is shown
    /// only here.
    #[graphql(name = "createOAuthApp")]
    async fn create_oauth_app(
        &self,
        ctx: &Context<'_>,
        input: CreateOAuthAppInput,
    ) -> Result<CreatedOAuthApp> {
        let (state, principal) = parts(ctx)?;
        let created = services::oauth_apps::create(state, principal, input.into()).await?;
        Ok(created.into())
    }

    /// Revokes an OAuth app (admin scope): it mints no more tokens and its tokens stop
    /// working at once.
    #[graphql(name = "revokeOAuthApp")]
    async fn revoke_oauth_app(&self, ctx: &Context<'_>, id: ID) -> Result<OAuthApp> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::oauth_apps::revoke(state, principal, &AppId::parse(&id)?)
                .await?
                .into(),
        )
    }
}
