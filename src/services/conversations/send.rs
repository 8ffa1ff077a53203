//! Sending a visitor's message: storing it with its pending reply, then preparing and
//! generating the reply in a task of its own. While a person answers the conversation the
//! message is stored alone; a keyword of the version's handoff rules hands it off.

use std::sync::Arc;

use entity::{assistant_version, conversation, message};
use futures::{FutureExt, future::BoxFuture};
use serde_json::Value;
use tokio::{task::JoinHandle, time::Instant};

use super::{assistant_of, existing, usable_assistant, version, visitor_may_pin};
use crate::{
    auth::{Principal, Scope, Tenant, Work},
    domain::{
        handoff::{ConversationState, HandoffRules, Trigger},
        ids::{AssistantId, ConversationId, SessionId},
        knowledge_gap::GapReason,
        reply_failure::{ReplyFailure, ReplyFailureCode},
    },
    error::{AppError, AppResult},
    repo::{self, conversations::NewConversation, handoff::NewHandoff},
    services::{
        handoff,
        knowledge_gaps::{self, Signal},
        replies::{self, Prepared, ReplyJob, prompt},
        retrieval::{self, Hit},
        sessions,
    },
    state::AppState,
};

/// Earlier messages read for the history (then trimmed to the token budget).
const HISTORY_MESSAGES: u64 = 50;

/// A visitor's message to send.
#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    /// The conversation (`conv_…`)…
    pub conversation_id: Option<ConversationId>,
    /// …or the session (`sess_…`): its latest conversation with the assistant, or a new one.
    pub session_id: Option<SessionId>,
    /// The assistant, for a session opened without one.
    pub assistant_id: Option<AssistantId>,
    /// What the visitor says.
    pub message: String,
    /// Answer with this version number instead of the pinned or live one.
    pub assistant_version: Option<i32>,
    /// A task template of the version to wrap the message in.
    pub template: Option<String>,
    /// Values of the template's placeholders (a JSON object).
    pub variables: Option<Value>,
    /// The turns a conversation this message opens starts with (a transcript the client
    /// kept); ignored when the message continues a conversation.
    pub history: Vec<(message::Role, String)>,
}

/// A sent message and its reply, which is being generated.
pub struct Sent {
    /// The visitor's message, stored.
    pub user_message: message::Model,
    /// The reply as stored when it started (`PENDING`); `None` when a person answers the
    /// conversation.
    pub reply: Option<message::Model>,
    /// The conversation as the message left it (handed off by it, perhaps).
    pub conversation: conversation::Model,
    /// Yields the stored reply when it has ended.
    finished: Option<JoinHandle<Option<Arc<message::Model>>>>,
}

impl Sent {
    /// A message stored for a person to answer.
    fn for_a_person(user_message: message::Model, conversation: conversation::Model) -> Self {
        Self {
            user_message,
            reply: None,
            conversation,
            finished: None,
        }
    }

    /// Waits for the reply to end and returns it as stored (`None` when a person answers).
    pub async fn wait(self) -> AppResult<Option<message::Model>> {
        let (Some(reply), Some(finished)) = (self.reply, self.finished) else {
            return Ok(None);
        };
        match finished.await {
            Ok(Some(stored)) => Ok(Some(Arc::unwrap_or_clone(stored))),
            Ok(None) => Err(AppError::Internal(anyhow::anyhow!(
                "reply {} was not stored",
                reply.id
            ))),
            Err(e) => Err(AppError::Internal(anyhow::anyhow!(
                "reply {} task failed: {e}",
                reply.id
            ))),
        }
    }
}

/// Stores the visitor's message and starts the reply: retrieval from the sources the
/// assistant may use, then a verbatim Q&A answer or a generated one.
pub async fn send(state: &AppState, principal: &Principal, input: SendMessage) -> AppResult<Sent> {
    let received = Instant::now();
    let tenant = principal.visitor_scope(Scope::Write)?;
    let text = input.message.trim();
    if text.is_empty() || text.chars().count() > state.settings.replies.max_message_chars {
        return Err(AppError::bad_input(
            "message",
            format!(
                "must be 1 to {} characters",
                state.settings.replies.max_message_chars
            ),
        ));
    }
    let Target {
        conversation,
        opens,
        traits,
        assistant: (assistant, live),
    } = target(state, &tenant, &input).await?;
    // Stamped before the message, stored with it (or with nothing, when it is refused).
    let history = if opens {
        repo::conversations::history(&tenant, &conversation.id, input.history.clone())
    } else {
        Vec::new()
    };
    match ConversationState::from_db(&conversation.status) {
        ConversationState::Closed => return Err(AppError::ConversationClosed),
        ConversationState::HandedOff => {
            let user =
                handoff::visitor_message(state, &tenant, None, &[], &conversation.id, text).await?;
            return Ok(Sent::for_a_person(user, conversation));
        }
        ConversationState::Bot => {}
    }
    let pinned = input.assistant_version.or(conversation.assistant_version);
    let version = version(state, &tenant, &assistant, pinned)
        .await?
        .unwrap_or(live);
    if input.assistant_version.is_some() {
        visitor_may_pin(&tenant, &assistant, &version)?;
    }
    let rules = repo::assistants::handoff_of(&version);
    if let Some(keyword) = handoff::keyword_in(&rules, text) {
        let reason = format!("the visitor wrote \"{keyword}\"");
        let opened = opens.then(|| conversation.clone());
        let user =
            handoff::visitor_message(state, &tenant, opened, &history, &conversation.id, text)
                .await?;
        let request = NewHandoff {
            trigger: Trigger::Keyword,
            reason: Some(reason),
            note: None,
        };
        let conversation = handoff::hand_off(state, &tenant, conversation, request).await?;
        return Ok(Sent::for_a_person(user, conversation));
    }
    // One organization's replies may not fill the model's queue for every other's.
    let most = state.settings.replies.max_concurrent_replies;
    let permit = state
        .replies
        .permit(tenant.org(), most)
        .ok_or(AppError::RateLimited { retry_after: 1 })?;
    let prompt_text = match &input.template {
        None => text.to_owned(),
        Some(name) => render_template(&version, name, input.variables.as_ref(), text, &traits)?,
    };
    let conversation_id = conversation.id.clone();
    let exchange = repo::conversations::exchange(
        &tenant,
        &conversation_id,
        opens.then(|| conversation.clone()),
        history,
        text,
        version.version,
    );
    let stored = state.exchanges.store(exchange).await?;
    let (user_message, reply) = (stored.user, stored.reply);
    // Retrieval and the prompt are prepared in the reply's own task: once the visitor's
    // message is stored, its reply is generated whoever waits for it. The reply draws on
    // the organization's knowledge, which the visitor itself may not search.
    let work = tenant.on_behalf(Work::Replies);
    let prepare = prepare(
        state.clone(),
        work.clone(),
        Question {
            conversation_id: conversation_id.clone(),
            opened: opens,
            assistant_id: AssistantId::from_db(assistant.id.clone()),
            text: text.to_owned(),
            prompt_text,
            traits,
            before: user_message.id.clone(),
        },
        version,
    );
    let job = ReplyJob {
        work: work.clone(),
        reply: reply.clone(),
        prepare,
        received,
        permit,
    };
    let finished = replies::start(state, job).await;
    let asked = Signal {
        assistant_id: assistant.id.clone(),
        conversation_id,
        message_id: user_message.id.clone(),
        question: text.to_owned(),
        reason: GapReason::NoPassage,
    };
    // The rule on unanswered turns reads the conversation as it is now, not again.
    let watched = rules
        .after_unanswered_turns
        .is_some()
        .then(|| conversation.clone());
    let finished = after_reply(state, work, asked, rules, watched, finished);
    Ok(Sent {
        user_message,
        reply: Some(reply),
        conversation,
        finished: Some(finished),
    })
}

/// The reply's handle, after which a question the reply found no passage for goes to the
/// knowledge-gap inbox, and the version's rule on unanswered turns is applied to `watched`
/// (the conversation as the message found it; none when the version has no such rule).
fn after_reply(
    state: &AppState,
    work: Tenant,
    asked: Signal,
    rules: HandoffRules,
    watched: Option<conversation::Model>,
    finished: JoinHandle<Option<Arc<message::Model>>>,
) -> JoinHandle<Option<Arc<message::Model>>> {
    let state = state.clone();
    tokio::spawn(async move {
        let stored = finished.await.ok().flatten();
        let unanswered = stored.as_ref().is_some_and(|reply| {
            reply.status == message::Status::Complete && replies::citations_of(reply).is_empty()
        });
        if !unanswered {
            return stored;
        }
        knowledge_gaps::spawn_record(&state, &work, asked);
        if let Some(conversation) = watched
            && let Err(e) = handoff::after_reply(&state, &work, conversation, &rules).await
        {
            e.log();
            tracing::warn!(
                code = e.code(),
                "unanswered turns could not hand the conversation off"
            );
        }
        stored
    })
}

/// What the reply answers.
struct Question {
    conversation_id: String,
    /// Whether the message opens the conversation (it then has no history).
    opened: bool,
    assistant_id: AssistantId,
    /// The visitor's words, searched for.
    text: String,
    /// The message as the model sees it (a task template applied).
    prompt_text: String,
    traits: Value,
    /// The visitor's message: the history is what came before it.
    before: String,
}

/// Prepares the reply's prompt with the organization's reach (`work`): passages from the
/// knowledge the assistant may use, a verbatim Q&A answer when one matches, the history.
fn prepare(
    state: AppState,
    work: Tenant,
    question: Question,
    version: assistant_version::Model,
) -> BoxFuture<'static, Result<Prepared, ReplyFailure>> {
    async move {
        let passages = retrieve(
            &state,
            &work,
            &question.assistant_id,
            &version,
            &question.text,
        )
        .await;
        let verbatim = passages
            .first()
            .filter(|hit| hit.strong_qa_match)
            .and_then(|hit| hit.source.answer.clone());
        let history = if question.opened {
            Vec::new()
        } else {
            history(&state, &work, &question).await?
        };
        let chat = state.models.chat.clone();
        let request = prompt::build(
            &prompt::PromptParts {
                version: &version,
                traits: &question.traits,
                history: &history,
                message: &question.prompt_text,
                passages: &passages,
                history_tokens: state.settings.replies.history_tokens,
            },
            &|t| chat.count_tokens(t),
        );
        Ok(Prepared {
            request,
            passages,
            verbatim,
        })
    }
    .boxed()
}

/// The messages before the question in its conversation, newest first.
async fn history(
    state: &AppState,
    work: &Tenant,
    question: &Question,
) -> Result<Vec<message::Model>, ReplyFailure> {
    repo::conversations::recent_messages(
        &state.db,
        work,
        &question.conversation_id,
        &question.before,
        HISTORY_MESSAGES,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "could not read a conversation's history");
        ReplyFailure::new(
            ReplyFailureCode::Internal,
            "the conversation history could not be read; try again",
        )
    })
}

/// The conversation a message goes to, with its open session and its usable assistant.
async fn target(state: &AppState, tenant: &Tenant, input: &SendMessage) -> AppResult<Target> {
    match (&input.conversation_id, &input.session_id) {
        (Some(id), session_id) => {
            let conversation = existing(state, tenant, id).await?;
            if session_id
                .as_ref()
                .is_some_and(|s| s.as_str() != conversation.session_id)
            {
                return Err(AppError::bad_input(
                    "session_id",
                    "the conversation belongs to another session",
                ));
            }
            if input
                .assistant_id
                .as_ref()
                .is_some_and(|a| a.as_str() != conversation.assistant_id)
            {
                return Err(AppError::bad_input(
                    "assistant_id",
                    "the conversation is with another assistant",
                ));
            }
            let session_id = SessionId::from_db(conversation.session_id.clone());
            let (_, traits) = sessions::open_with_traits(state, tenant, &session_id).await?;
            let assistant_id = AssistantId::from_db(conversation.assistant_id.clone());
            let assistant = usable_assistant(state, tenant, &assistant_id).await?;
            Ok(Target {
                conversation,
                opens: false,
                traits,
                assistant,
            })
        }
        (None, Some(session_id)) => in_session(state, tenant, session_id, input).await,
        (None, None) => Err(AppError::bad_input(
            "conversation_id",
            "give conversation_id or session_id",
        )),
    }
}

/// A message's conversation, the traits in force in its open session, and its usable
/// assistant.
struct Target {
    conversation: conversation::Model,
    /// The message opens `conversation`: it is stored with the message.
    opens: bool,
    traits: Value,
    assistant: repo::assistants::AssistantRow,
}

/// The session's latest conversation with the assistant, or a new one (stored with the
/// message).
async fn in_session(
    state: &AppState,
    tenant: &Tenant,
    session_id: &SessionId,
    input: &SendMessage,
) -> AppResult<Target> {
    let (session, traits) = sessions::open_with_traits(state, tenant, session_id).await?;
    let asked = tenant.assistant_for(input.assistant_id.clone())?;
    let assistant_id = assistant_of(&session, asked)?;
    let assistant = usable_assistant(state, tenant, &assistant_id).await?;
    let latest =
        repo::conversations::latest_of_session(&state.db, tenant, &session.id, &assistant.0.id)
            .await?;
    // A closed conversation ends there: the session's next message opens a new one.
    let latest =
        latest.filter(|c| ConversationState::from_db(&c.status) != ConversationState::Closed);
    let (conversation, opens) = match latest {
        Some(conversation) => (conversation, false),
        None => (
            repo::conversations::opened(
                tenant,
                NewConversation {
                    session_id: session.id.clone(),
                    assistant_id: assistant.0.id.clone(),
                    assistant_version: None,
                    title: None,
                    external_user_id: session.external_user_id.clone(),
                },
            ),
            true,
        ),
    };
    Ok(Target {
        conversation,
        opens,
        traits,
        assistant,
    })
}

/// The message wrapped in the version's task template `name`. Placeholders take the
/// `variables`, then `message`, then `traits.<name>`.
fn render_template(
    version: &assistant_version::Model,
    name: &str,
    variables: Option<&Value>,
    message: &str,
    traits: &Value,
) -> AppResult<String> {
    let template = repo::assistants::templates_of(version)
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            AppError::bad_input(
                "template",
                format!("version {} has no task template `{name}`", version.version),
            )
        })?;
    if variables.is_some_and(|v| !v.is_object()) {
        return Err(AppError::bad_input("variables", "must be a JSON object"));
    }
    let lookup = |path: &str| -> Option<String> {
        if path == "message" {
            return Some(message.to_owned());
        }
        let (root, rest) = match path.strip_prefix("traits.") {
            Some(rest) => (traits, rest),
            None => (variables?, path),
        };
        let value = rest.split('.').try_fold(root, |v, key| v.get(key))?;
        Some(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    template
        .render(lookup)
        .map_err(|e| AppError::bad_input("variables", e))
}

/// Passages for the message from the sources the assistant may use, searched for the
/// organization by the reply's `work` handle. A retrieval failure (an embedding provider
/// outage) is logged and the reply goes on without knowledge.
async fn retrieve(
    state: &AppState,
    work: &Tenant,
    assistant_id: &AssistantId,
    version: &assistant_version::Model,
    text: &str,
) -> Vec<Hit> {
    let query: String = text.chars().take(retrieval::MAX_QUERY_CHARS).collect();
    let found = retrieval::for_reply(
        state,
        work,
        assistant_id,
        &query,
        version.top_k,
        version.min_score,
    )
    .await;
    match found {
        Ok(hits) => hits,
        Err(e) => {
            e.log();
            tracing::warn!(
                assistant = %assistant_id,
                code = e.code(),
                message = e.message(),
                "knowledge retrieval failed; replying without knowledge"
            );
            Vec::new()
        }
    }
}
