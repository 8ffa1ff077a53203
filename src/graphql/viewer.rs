//! `viewer`: who is calling.

use async_graphql::{Context, Object, Result};

use super::context::parts;
use crate::{services, views::organizations::Viewer};

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The caller: its organization, API key and scopes.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let (state, principal) = parts(ctx)?;
        Ok(services::organizations::viewer(&state.db, principal)
            .await?
            .into())
    }
}
