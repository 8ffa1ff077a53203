//! The GraphQL schema: one query, mutation (and later subscription) root merged from a
//! module per capability, with the limits from configuration.

mod analytics;
mod api_keys;
mod assistants;
mod context;
mod conversations;
pub mod cost;
mod handoff;
mod knowledge;
mod knowledge_gaps;
pub mod loaders;
mod node;
mod oauth_apps;
mod rate_limits;
mod sessions;
mod spans;
mod viewer;
mod webhooks;

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema};

use crate::{config::HttpSettings, state::AppState};

pub use node::Node;

/// Every query field.
#[derive(MergedObject, Default)]
pub struct Query(
    viewer::ViewerQuery,
    node::NodeQuery,
    assistants::AssistantQuery,
    knowledge::KnowledgeQuery,
    knowledge_gaps::KnowledgeGapQuery,
    sessions::SessionQuery,
    conversations::ConversationQuery,
    api_keys::ApiKeyQuery,
    rate_limits::RateLimitQuery,
    analytics::AnalyticsQuery,
    oauth_apps::OAuthAppQuery,
    webhooks::WebhookQuery,
);

/// Every mutation field.
#[derive(MergedObject, Default)]
pub struct Mutation(
    assistants::AssistantMutation,
    knowledge::KnowledgeMutation,
    knowledge_gaps::KnowledgeGapMutation,
    sessions::SessionMutation,
    conversations::ConversationMutation,
    api_keys::ApiKeyMutation,
    rate_limits::RateLimitMutation,
    oauth_apps::OAuthAppMutation,
    webhooks::WebhookMutation,
    handoff::HandoffMutation,
);

/// Every subscription field.
#[derive(MergedSubscription, Default)]
pub struct Subscription(conversations::ConversationSubscription);

/// The schema type served at `/graphql`.
pub type CompaninSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema with the configured limits; `state` is absent only to print the SDL.
pub fn build(settings: &HttpSettings, state: Option<AppState>) -> CompaninSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(settings.graphql_max_depth)
    .limit_complexity(settings.graphql_max_complexity);
    if crate::telemetry::exporting() {
        builder = builder.extension(spans::RootFieldSpans);
    }
    if !settings.graphql_introspection {
        builder = builder.disable_introspection();
    }
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

/// The schema's SDL, sorted, as committed in `schema.graphql`.
pub fn sdl(schema: &CompaninSchema) -> String {
    schema.sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}
