//! The sandbox (SPEC §10): a sandbox organization (`cmp_test_` keys) with sample
//! assistants, knowledge in every file format plus Q&A, visitor sessions with traits,
//! conversations answered by the configured model, feedback, and an OAuth app for the chat
//! widget, so a newcomer sees a living system at once. Sandbox data lives in its own
//! organization and never mixes with live ones.

pub mod samples;

use std::time::Duration;

use entity::knowledge_source::Status;
use serde_json::json;

use super::{
    assistants, conversations, feedback, knowledge, knowledge_gaps, oauth_apps, organizations,
    sessions,
};
use crate::{
    auth::{Principal, Scope, Scopes},
    domain::{
        assistant::AssistantPatch,
        handoff::HandoffRules,
        ids::{AssistantId, ConversationId, KeyId, MessageId, OrgId, SessionId},
        knowledge_gap::GapReason,
        pagination::PageRequest,
    },
    error::{AppError, AppResult},
    repo,
    state::AppState,
};

/// The sandbox organization's name.
pub const NAME: &str = "Companin sandbox";
/// How long seeding waits for the sample knowledge to be indexed.
const INDEXING_PATIENCE: Duration = Duration::from_secs(300);

/// What seeding made, with the credentials to use it.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The sandbox organization.
    pub org_id: String,
    /// Its admin key (`cmp_test_…`), shown once.
    pub api_key: String,
    /// The chat widget's OAuth app.
    pub client_id: String,
    /// Its client secret, shown once.
    pub client_secret: String,
    /// The assistants, by name.
    pub assistants: Vec<(String, String)>,
}

/// A sample assistant: its name as listed, its instructions, whether it is active, whether
/// it hands conversations to a person by itself ([`handoff_rules`]).
struct SampleAssistant {
    name: &'static str,
    listed_as: &'static str,
    instructions: &'static str,
    active: bool,
    hands_off: bool,
}

/// The shop helper's handoff rules: a rating of 1–2, two unanswered turns in a row, or a
/// visitor asking for a person in the customers' languages. The sample visitor who rates 2
/// is handed off by them.
fn handoff_rules() -> HandoffRules {
    HandoffRules {
        on_rating_at_most: Some(2),
        after_unanswered_turns: Some(2),
        keywords: [
            "human",
            "person",
            "agent",
            "mens",
            "medewerker",
            "pessoa",
            "atendente",
            "persona",
        ]
        .map(str::to_owned)
        .to_vec(),
    }
}

/// The sample assistants; the first answers the sample visitors and the widget.
const ASSISTANTS: [SampleAssistant; 3] = [
    SampleAssistant {
        name: "Shop helper",
        listed_as: "Shop helper",
        instructions: "You answer questions of Acme Home's customers about opening hours, shipping, returns, prices and warranty. Answer briefly and cite your sources.",
        active: true,
        hands_off: true,
    },
    SampleAssistant {
        name: "Concierge",
        listed_as: "Concierge",
        instructions: "You greet visitors warmly and point them to the right page of the shop.",
        active: true,
        hands_off: false,
    },
    SampleAssistant {
        name: "Night shift",
        listed_as: "Night shift (paused)",
        instructions: "You answer outside opening hours.",
        active: false,
        hands_off: false,
    },
];

/// A sample visitor: where it came from, what it told about itself, what it asked and how
/// it rated the answer.
struct SampleVisitor {
    channel: &'static str,
    external_user_id: Option<&'static str>,
    traits: &'static str,
    question: &'static str,
    rating: i32,
}

const VISITORS: [SampleVisitor; 5] = [
    SampleVisitor {
        channel: "web",
        external_user_id: None,
        traits: r#"{ "plan": "free", "language": "en" }"#,
        question: "What are your opening hours?",
        rating: 5,
    },
    SampleVisitor {
        channel: "email",
        external_user_id: Some("cust-1001"),
        traits: r#"{ "plan": "pro", "orders": 7 }"#,
        question: "How long does shipping take to Belgium?",
        rating: 4,
    },
    SampleVisitor {
        channel: "widget",
        external_user_id: None,
        traits: r#"{ "page": "/returns" }"#,
        question: "Can I return a kettle I bought last week?",
        rating: 2,
    },
    SampleVisitor {
        channel: "web",
        external_user_id: None,
        traits: r#"{ "plan": "free" }"#,
        question: "Do you sell gift cards?",
        rating: 1,
    },
    SampleVisitor {
        channel: "widget",
        external_user_id: Some("cust-1002"),
        traits: r#"{ "page": "/gifts" }"#,
        question: "Can I buy a gift voucher for my sister?",
        rating: 2,
    },
];
/// How long seeding waits for the low ratings to reach the knowledge-gap inbox.
const GAP_PATIENCE: Duration = Duration::from_secs(30);

/// Seeds a new sandbox organization. Ingestion workers must be running for `state`.
/// `origins` are the pages the playground's widget runs on.
pub async fn seed(state: &AppState, origins: Vec<String>) -> AppResult<Seeded> {
    let (org, key) = organizations::create(&state.db, NAME, true).await?;
    let principal = Principal::api_key(
        OrgId::from_db(org.id.clone()),
        KeyId::from_db(key.record.id.clone()),
        Scopes::all(),
    );
    let mut assistants = Vec::new();
    for sample in &ASSISTANTS {
        let id = assistant(state, &principal, sample).await?;
        assistants.push((sample.listed_as.to_owned(), id));
    }
    let shop = assistants[0].1.clone();
    sample_knowledge(state, &principal).await?;
    for visitor in &VISITORS {
        visit(state, &principal, &shop, visitor).await?;
    }
    gaps_recorded(state, &principal).await?;
    let app = oauth_apps::create(
        state,
        &principal,
        oauth_apps::NewOAuthApp {
            name: "Playground widget".into(),
            allowed_origins: origins,
            default_assistant_id: Some(shop),
        },
    )
    .await?;
    Ok(Seeded {
        org_id: org.id,
        api_key: key.key,
        client_id: app.app.client_id,
        client_secret: app.client_secret,
        assistants,
    })
}

/// The sample Q&A pairs and files, indexed.
async fn sample_knowledge(state: &AppState, principal: &Principal) -> AppResult<()> {
    let mut sources = Vec::new();
    for (question, answer) in samples::QAS {
        let qa = knowledge::QaPair {
            question: question.into(),
            answer: answer.into(),
            tags: vec!["faq".into()],
        };
        sources.push(knowledge::create_qa(state, principal, qa).await?.id);
    }
    for (file_name, content_type, bytes, title) in samples::files() {
        let file = knowledge::NewFile {
            file_name: file_name.into(),
            content_type: Some(content_type.into()),
            bytes,
            title: Some(title.into()),
            description: None,
        };
        sources.push(knowledge::upload_file(state, principal, file).await?.id);
    }
    indexed(state, principal, &sources).await
}

/// One sample visitor's session, context, question, answer and rating.
async fn visit(
    state: &AppState,
    principal: &Principal,
    assistant: &str,
    visitor: &SampleVisitor,
) -> AppResult<()> {
    let session = sessions::create(
        state,
        principal,
        sessions::CreateSession {
            assistant_id: Some(AssistantId::from_db(assistant.to_owned())),
            external_user_id: visitor.external_user_id.map(str::to_owned),
            channel: Some(visitor.channel.into()),
            metadata: Some(json!({ "source": "sandbox" })),
            ttl_seconds: Some(sessions::MAX_TTL_SECONDS),
        },
    )
    .await?;
    let traits = serde_json::from_str(visitor.traits)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("sample traits: {e}")))?;
    let session_id = SessionId::from_db(session.id);
    sessions::attach_context(state, principal, &session_id, traits).await?;
    let sent = conversations::send(
        state,
        principal,
        conversations::SendMessage {
            session_id: Some(session_id),
            message: visitor.question.into(),
            ..Default::default()
        },
    )
    .await?;
    let reply = sent
        .wait()
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the sample was handed off")))?;
    feedback::submit(
        state,
        principal,
        feedback::SubmitFeedback {
            conversation_id: ConversationId::from_db(reply.conversation_id.clone()),
            message_id: Some(MessageId::from_db(reply.id.clone())),
            rating: visitor.rating,
            comment: (visitor.rating <= 2).then(|| "I expected the return conditions".to_owned()),
            actor_type: feedback::ActorType::Visitor,
            actor_id: visitor.external_user_id.map(str::to_owned),
            actor_name: None,
            actor_metadata: None,
        },
    )
    .await?;
    Ok(())
}

async fn assistant(
    state: &AppState,
    principal: &Principal,
    sample: &SampleAssistant,
) -> AppResult<String> {
    let patch = AssistantPatch {
        name: Some(sample.name.into()),
        instructions: Some(sample.instructions.into()),
        tone: Some("friendly".into()),
        language: Some("en".into()),
        handoff: sample.hands_off.then(handoff_rules),
        ..Default::default()
    };
    let (assistant, _) = assistants::create(&state.db, principal, patch, sample.active).await?;
    Ok(assistant.id)
}

/// Waits until the low ratings (and the handoffs they caused) are in the knowledge-gap inbox:
/// they are recorded in the background, and seeding must not end first.
async fn gaps_recorded(state: &AppState, principal: &Principal) -> AppResult<()> {
    let low = VISITORS.iter().filter(|v| v.rating <= 2).count() as i64;
    // A low rating and the handoff it causes: two signals of each such visitor.
    let wanted = 2 * low;
    let deadline = tokio::time::Instant::now() + GAP_PATIENCE;
    loop {
        let page = PageRequest {
            after: None,
            before: None,
            limit: 100,
            from_end: false,
        };
        let gaps =
            knowledge_gaps::list(state, principal, knowledge_gaps::ListGaps::default(), &page)
                .await?;
        let signals: i64 = gaps
            .items
            .iter()
            .filter_map(|g| g.reasons.as_object())
            .flat_map(|reasons| {
                [GapReason::LowRating, GapReason::Handoff]
                    .into_iter()
                    .filter_map(move |r| {
                        reasons.get(r.as_str()).and_then(serde_json::Value::as_i64)
                    })
            })
            .sum();
        if signals >= wanted || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every source is indexed (or failed: the sandbox still works without it).
async fn indexed(state: &AppState, principal: &Principal, ids: &[String]) -> AppResult<()> {
    let deadline = tokio::time::Instant::now() + INDEXING_PATIENCE;
    let tenant = principal.scope(Scope::Read)?;
    loop {
        let sources = repo::knowledge::find_many(&state.db, &tenant, ids).await?;
        let pending = sources
            .iter()
            .filter(|s| !matches!(s.status, Status::Ready | Status::Failed))
            .count();
        for failed in sources.iter().filter(|s| s.status == Status::Failed) {
            tracing::warn!(source = %failed.title, error = ?failed.error, "a sample source failed");
        }
        if pending == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AppError::Internal(anyhow::anyhow!(
                "{pending} sample sources were not indexed in time: are ingestion workers running?"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The sandbox organization seeded earlier, if any.
pub async fn existing(
    db: &sea_orm::DatabaseConnection,
) -> AppResult<Option<entity::organization::Model>> {
    Ok(repo::organizations::find_sandbox(db, NAME).await?)
}
