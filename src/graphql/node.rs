//! The `Node` interface and `node(id:)`.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::context::parts;
use crate::{
    error::AppError,
    services,
    views::{
        api_keys::ApiKey,
        assistants::{Assistant, AssistantVersion},
        conversations::{Conversation, Feedback, Message},
        knowledge::KnowledgeSource,
        oauth_apps::OAuthApp,
        organizations::Organization,
        sessions::{Context as VisitorContext, Session},
        webhooks::{Webhook, WebhookDelivery},
    },
};

/// Any record with a global id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "&ID",
    desc = "The global id, prefixed by type (`asst_…`)."
))]
pub enum Node {
    /// An organization.
    Organization(Organization),
    /// An API key.
    ApiKey(ApiKey),
    /// An assistant.
    Assistant(Assistant),
    /// A version of an assistant.
    AssistantVersion(AssistantVersion),
    /// A knowledge source.
    KnowledgeSource(KnowledgeSource),
    /// A visitor session.
    Session(Session),
    /// Visitor traits attached to a session.
    Context(VisitorContext),
    /// A conversation.
    Conversation(Conversation),
    /// A message.
    Message(Message),
    /// Feedback.
    Feedback(Feedback),
    /// An OAuth app.
    OAuthApp(OAuthApp),
    /// A webhook endpoint.
    Webhook(Webhook),
    /// A webhook delivery.
    WebhookDelivery(WebhookDelivery),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any record by its id, or null when it does not exist in this organization.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let (state, principal) = parts(ctx)?;
        let db = &state.db;
        let prefix = id.split('_').next().unwrap_or_default();
        let node = match prefix {
            "org" if id.as_str() == principal.billed_org().as_str() => {
                services::organizations::current(db, principal)
                    .await
                    .map(|o| Node::Organization(o.into()))
            }
            "key" => services::api_keys::get(db, principal, &id)
                .await
                .map(|k| Node::ApiKey(k.into())),
            "asst" => services::assistants::get(db, principal, &id)
                .await
                .map(|a| Node::Assistant(a.into())),
            "ver" => services::assistants::version_by_id(db, principal, &id)
                .await
                .map(|v| Node::AssistantVersion(v.into())),
            "ks" => services::knowledge::get(state, principal, &id)
                .await
                .map(|s| Node::KnowledgeSource(s.into())),
            "sess" => services::sessions::get(state, principal, &id)
                .await
                .map(|s| Node::Session(s.into())),
            "ctx" => services::sessions::get_context(state, principal, &id)
                .await
                .map(|c| Node::Context(c.into())),
            "conv" => services::conversations::get(state, principal, &id)
                .await
                .map(|c| Node::Conversation(c.into())),
            "msg" => services::conversations::message(state, principal, &id)
                .await
                .map(|m| Node::Message(m.into())),
            "fb" => services::feedback::get(state, principal, &id)
                .await
                .map(|f| Node::Feedback(f.into())),
            "app" => services::oauth_apps::get(db, principal, &id)
                .await
                .map(|a| Node::OAuthApp(a.into())),
            "wh" => services::webhooks::get(state, principal, &id)
                .await
                .map(|w| Node::Webhook(w.into())),
            "whd" => services::webhooks::delivery(state, principal, &id)
                .await
                .map(|d| Node::WebhookDelivery(d.into())),
            _ => Err(AppError::NotFound("node")),
        };
        found(node)
    }
}

/// `NOT_FOUND` becomes null, as single-record queries answer for a missing id.
pub fn found<T>(result: Result<T, AppError>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
