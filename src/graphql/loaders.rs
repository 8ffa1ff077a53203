//! Batched reads for nested fields: a list of twenty conversations asking for their messages
//! and feedback reads each relation once for all twenty (async-graphql's `DataLoader`), not
//! once per conversation. Each request gets its own loader, acting as its caller.

use std::{collections::HashMap, future::Future, sync::Arc};

use async_graphql::{Context, dataloader::DataLoader};
use entity::{assistant_version, conversation, feedback, message, session_context};

use crate::{
    auth::Principal,
    domain::pagination::{Page, PageRequest},
    error::{AppError, AppResult},
    services::{self, feedback::About},
    state::AppState,
};

/// A conversation's messages.
pub const MESSAGES: u8 = 0;
/// The feedback on a conversation.
pub const CONVERSATION_FEEDBACK: u8 = 1;
/// The feedback on a message.
pub const MESSAGE_FEEDBACK: u8 = 2;
/// A session's contexts.
pub const CONTEXTS: u8 = 3;
/// A session's conversations.
pub const SESSION_CONVERSATIONS: u8 = 4;
/// An assistant's versions.
pub const VERSIONS: u8 = 5;

/// One page of the `RELATION` children of one parent record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Children<const RELATION: u8> {
    /// The parent's id.
    pub parent: String,
    /// The page asked for.
    pub page: PageRequest,
}

/// The link rules (linked, excluded source ids) of an assistant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RulesOf(pub String);

/// Reads for one request's caller.
pub struct Reads {
    state: AppState,
    principal: Principal,
}

/// The loader a request's resolvers share.
pub type Loader = Arc<DataLoader<Reads>>;

/// A loader acting as `principal`, for one request.
pub fn for_request(state: &AppState, principal: &Principal) -> Loader {
    Arc::new(DataLoader::new(
        Reads {
            state: state.clone(),
            principal: principal.clone(),
        },
        tokio::spawn,
    ))
}

/// The request's loader.
pub fn of<'a>(ctx: &Context<'a>) -> Result<&'a Loader, AppError> {
    ctx.data::<Loader>()
        .map_err(|_| AppError::Internal(anyhow::anyhow!("request built without its loader")))
}

/// The page of `parent`'s children, read in one batch with its siblings'.
pub async fn children<const RELATION: u8, T>(
    ctx: &Context<'_>,
    parent: &str,
    page: PageRequest,
) -> async_graphql::Result<Page<T>>
where
    Reads: async_graphql::dataloader::Loader<
            Children<RELATION>,
            Value = Page<T>,
            Error = async_graphql::Error,
        >,
    T: Send + Sync + Clone + 'static,
{
    let key = Children {
        parent: parent.to_owned(),
        page: page.clone(),
    };
    Ok(of(ctx)?
        .load_one(key)
        .await?
        .unwrap_or_else(|| page.finish(Vec::new())))
}

/// Loads the keys page by page: one read per distinct page asked for (usually one).
async fn by_page<const RELATION: u8, V, F, Fut>(
    keys: &[Children<RELATION>],
    load: F,
) -> Result<HashMap<Children<RELATION>, V>, async_graphql::Error>
where
    F: Fn(Vec<String>, PageRequest) -> Fut,
    Fut: Future<Output = AppResult<HashMap<String, V>>>,
{
    let mut pages: Vec<&PageRequest> = Vec::new();
    for key in keys {
        if !pages.contains(&&key.page) {
            pages.push(&key.page);
        }
    }
    let mut found = HashMap::new();
    for page in pages {
        let of_page: Vec<&Children<RELATION>> = keys.iter().filter(|k| &k.page == page).collect();
        let parents = of_page.iter().map(|k| k.parent.clone()).collect();
        let mut loaded = load(parents, page.clone()).await?;
        for key in of_page {
            if let Some(value) = loaded.remove(&key.parent) {
                found.insert(key.clone(), value);
            }
        }
    }
    Ok(found)
}

macro_rules! children_loader {
    ($relation:ident, $model:ty, |$reads:ident, $parents:ident, $page:ident| $load:expr) => {
        impl async_graphql::dataloader::Loader<Children<$relation>> for Reads {
            type Value = Page<$model>;
            type Error = async_graphql::Error;

            async fn load(
                &self,
                keys: &[Children<$relation>],
            ) -> Result<HashMap<Children<$relation>, Self::Value>, Self::Error> {
                let $reads = self;
                by_page(
                    keys,
                    |$parents: Vec<String>, $page: PageRequest| async move { $load.await },
                )
                .await
            }
        }
    };
}

children_loader!(MESSAGES, message::Model, |reads, parents, page| {
    services::conversations::messages_of_many(&reads.state, &reads.principal, &parents, &page)
});
children_loader!(
    CONVERSATION_FEEDBACK,
    feedback::Model,
    |reads, parents, page| {
        let about = About::Conversations;
        services::feedback::of_many(&reads.state, &reads.principal, about, &parents, &page)
    }
);
children_loader!(MESSAGE_FEEDBACK, feedback::Model, |reads, parents, page| {
    let about = About::Messages;
    services::feedback::of_many(&reads.state, &reads.principal, about, &parents, &page)
});
children_loader!(CONTEXTS, session_context::Model, |reads, parents, page| {
    services::sessions::contexts_of_many(&reads.state, &reads.principal, &parents, &page)
});
children_loader!(
    SESSION_CONVERSATIONS,
    conversation::Model,
    |reads, parents, page| {
        services::conversations::of_sessions(&reads.state, &reads.principal, &parents, &page)
    }
);
children_loader!(
    VERSIONS,
    assistant_version::Model,
    |reads, parents, page| {
        services::assistants::versions_of_many(&reads.state.db, &reads.principal, &parents, &page)
    }
);

impl async_graphql::dataloader::Loader<RulesOf> for Reads {
    type Value = (Vec<String>, Vec<String>);
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[RulesOf]) -> Result<HashMap<RulesOf, Self::Value>, Self::Error> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let mut rules =
            services::retrieval::rules_of_many(&self.state, &self.principal, &ids).await?;
        Ok(keys
            .iter()
            .filter_map(|k| Some((k.clone(), rules.remove(&k.0)?)))
            .collect())
    }
}
