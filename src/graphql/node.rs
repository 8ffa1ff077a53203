//! The `Node` interface and `node(id:)`.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::context::parts;
use crate::{
    auth::Principal,
    domain::ids::{
        AppId, AssistantId, ContextId, ConversationId, DeliveryId, FeedbackId, GapId, KeyId,
        MessageId, SessionId, SourceId, VersionId, WebhookId,
    },
    error::AppError,
    services,
    state::AppState,
    views::{
        api_keys::ApiKey,
        assistants::{Assistant, AssistantVersion},
        conversations::{Conversation, Feedback, Message},
        knowledge::KnowledgeSource,
        knowledge_gaps::KnowledgeGap,
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
    /// Questions an assistant could not answer well.
    KnowledgeGap(KnowledgeGap),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any record by its id, or null when it does not exist in this organization.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let (state, principal) = parts(ctx)?;
        found(resolve(state, principal, &id).await)
    }
}

/// The record `id` names, by its prefix; a malformed id is `NOT_FOUND` like an unknown one.
async fn resolve(state: &AppState, principal: &Principal, id: &str) -> Result<Node, AppError> {
    let db = &state.db;
    let prefix = id.split('_').next().unwrap_or_default();
    Ok(match prefix {
        "org" if id == principal.billed_org().as_str() => Node::Organization(
            services::organizations::current(db, principal)
                .await?
                .into(),
        ),
        "key" => Node::ApiKey(
            services::api_keys::get(db, principal, &KeyId::parse(id)?)
                .await?
                .into(),
        ),
        "asst" => Node::Assistant(
            services::assistants::get(db, principal, &AssistantId::parse(id)?)
                .await?
                .into(),
        ),
        "ver" => Node::AssistantVersion(
            services::assistants::version_by_id(db, principal, &VersionId::parse(id)?)
                .await?
                .into(),
        ),
        "ks" => Node::KnowledgeSource(
            services::knowledge::get(state, principal, &SourceId::parse(id)?)
                .await?
                .into(),
        ),
        "sess" => Node::Session(
            services::sessions::get(state, principal, &SessionId::parse(id)?)
                .await?
                .into(),
        ),
        "ctx" => Node::Context(
            services::sessions::get_context(state, principal, &ContextId::parse(id)?)
                .await?
                .into(),
        ),
        "conv" => Node::Conversation(
            services::conversations::get(state, principal, &ConversationId::parse(id)?)
                .await?
                .into(),
        ),
        "msg" => Node::Message(
            services::conversations::message(state, principal, &MessageId::parse(id)?)
                .await?
                .into(),
        ),
        "gap" => Node::KnowledgeGap(
            services::knowledge_gaps::get(state, principal, &GapId::parse(id)?)
                .await?
                .into(),
        ),
        "fb" => Node::Feedback(
            services::feedback::get(state, principal, &FeedbackId::parse(id)?)
                .await?
                .into(),
        ),
        "app" => Node::OAuthApp(
            services::oauth_apps::get(db, principal, &AppId::parse(id)?)
                .await?
                .into(),
        ),
        "wh" => Node::Webhook(
            services::webhooks::get(state, principal, &WebhookId::parse(id)?)
                .await?
                .into(),
        ),
        "whd" => Node::WebhookDelivery(
            services::webhooks::delivery(state, principal, &DeliveryId::parse(id)?)
                .await?
                .into(),
        ),
        _ => return Err(AppError::NotFound("node")),
    })
}

/// `NOT_FOUND` becomes null, as single-record queries answer for a missing id.
pub fn found<T>(result: Result<T, AppError>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
