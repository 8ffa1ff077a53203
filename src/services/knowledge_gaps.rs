//! The knowledge-gap inbox: visitor questions the assistant could not answer well (a reply
//! citing no passage, a rating of 1–2, a handoff), embedded and grouped by
//! meaning. Resolving a gap writes a Q&A pair from its representative question, so the next
//! paraphrase is answered from it.

use std::sync::LazyLock;
use tracing::Instrument;

use chrono::Utc;
use entity::{
    conversation, knowledge_gap,
    knowledge_source::Kind,
    message::{self, Role},
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        ids::{AssistantId, GapId, MessageId, SourceId},
        knowledge_gap::{GapExample, GapReason, GapStatus, MAX_EXAMPLES, merged, similarity},
        pagination::{Page, PageRequest},
    },
    error::{AppError, AppResult},
    language::normalized,
    repo::{
        self,
        assistant_knowledge::Rule,
        knowledge_gaps::{GapFilter, Grown, NewGap},
    },
    services::knowledge,
    state::AppState,
};

/// How close (cosine, to the mean of a gap's questions) a question must be to join the gap,
/// by embedder, measured on our paraphrase set (`tests/fixtures/paraphrases.json`: 50
/// English questions of 4 meanings, 36 in Dutch, Portuguese and Spanish;
/// `scripts/eval/gaps.py`). all-MiniLM-L6-v2 (and an embedder we have not measured): from
/// 0.35 to 0.6 each English question lands in the gap of its meaning (4 gaps), 0.65 splits
/// meanings; in the other languages, which MiniLM does not know, 0.6 keeps 31 of 36 in the
/// gap of their meaning (15 gaps), 0.5 only 13.
pub const SIMILARITY: f32 = 0.6;
/// multilingual-e5-small, whose vectors are all close to each other: 0.86–0.89 groups the
/// English set exactly; in Dutch, Portuguese and Spanish 0.89 keeps every gap to one meaning
/// (7 gaps: the languages of one meaning meet, not always), 0.87 mixes a third of them.
pub const E5_SIMILARITY: f32 = 0.89;
/// The `hash` embedder (shared words, no meaning): 0.5 keeps every gap to one meaning (29
/// gaps for the 50 English questions: only wordings sharing most of their words meet), 0.4
/// mixes two.
pub const HASH_SIMILARITY: f32 = 0.5;

/// How close a question must be to a gap to join it, with the vectors of `embedder`.
fn threshold(embedder: &str) -> f32 {
    if embedder.starts_with("multilingual-e5") {
        E5_SIMILARITY
    } else if embedder.starts_with("hash") {
        HASH_SIMILARITY
    } else {
        SIMILARITY
    }
}

/// Longest representative question kept (a Q&A pair's question holds as much).
const MAX_QUESTION_CHARS: usize = 1_000;
/// Messages read back to find a conversation's latest visitor question.
const RECENT: u64 = 20;
/// Tries when other signals change the chosen gap first.
const ATTEMPTS: usize = 3;
/// Held while a question joins or opens a gap.
static RECORDING: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));
/// The tag of Q&A pairs written by resolving a gap.
pub const TAG: &str = "knowledge-gap";

/// A visitor question that was not answered well.
#[derive(Debug, Clone)]
pub struct Signal {
    /// The assistant that answered (`asst_…`).
    pub assistant_id: String,
    /// `conv_…`
    pub conversation_id: String,
    /// The visitor's message (`msg_…`).
    pub message_id: String,
    /// What the visitor asked.
    pub question: String,
    /// Why it counts.
    pub reason: GapReason,
}

/// Records `signal` in a task of its own (embedding the question takes a while); a failure
/// is logged, never the caller's.
pub(crate) fn spawn_record(state: &AppState, work: &Tenant, signal: Signal) {
    let (state, work) = (state.clone(), work.clone());
    tokio::spawn(
        async move {
            if let Err(e) = record(&state, &work, signal).await {
                e.log();
                tracing::warn!(code = e.code(), "a knowledge gap could not be recorded");
            }
        }
        .in_current_span(),
    );
}

/// Records a signal about a visitor question of `conversation` — the message `message_id`
/// (a visitor's, or the one a reply answers), else the conversation's latest visitor
/// message — in a task of its own.
pub(crate) fn spawn_about(
    state: &AppState,
    tenant: &Tenant,
    conversation: &conversation::Model,
    message_id: Option<String>,
    reason: GapReason,
) {
    let (state, tenant) = (state.clone(), tenant.clone());
    let (conversation_id, assistant_id) =
        (conversation.id.clone(), conversation.assistant_id.clone());
    tokio::spawn(async move {
        let recorded = async {
            let Some(asked) = question_of(&state, &tenant, &conversation_id, message_id).await?
            else {
                return Ok(());
            };
            let signal = Signal {
                assistant_id,
                conversation_id,
                message_id: asked.id,
                question: asked.content,
                reason,
            };
            record(&state, &tenant, signal).await
        };
        if let Err(e) = recorded.await {
            e.log();
            tracing::warn!(code = e.code(), "a knowledge gap could not be recorded");
        }
    });
}

/// The visitor message a signal is about: `message_id` when it is the visitor's, the one it
/// answers when it is a reply; else the conversation's latest visitor message.
async fn question_of(
    state: &AppState,
    tenant: &Tenant,
    conversation_id: &str,
    message_id: Option<String>,
) -> AppResult<Option<message::Model>> {
    let Some(id) = message_id else {
        let latest =
            repo::handoff::latest_messages(&state.db, tenant, conversation_id, RECENT).await?;
        return Ok(latest.into_iter().rev().find(|m| m.role == Role::User));
    };
    let found =
        repo::conversations::find_message(&state.db, tenant, &MessageId::from_db(id)).await?;
    let Some(found) = found else {
        return Ok(None);
    };
    match (found.role, found.reply_to.clone()) {
        (Role::User, _) => Ok(Some(found)),
        (_, Some(asked)) => {
            Ok(
                repo::conversations::find_message(&state.db, tenant, &MessageId::from_db(asked))
                    .await?,
            )
        }
        _ => Ok(None),
    }
}

/// Adds `signal` to the closest gap of its assistant when one is close enough, else opens a
/// gap with it. A message counted already only adds its new reason.
pub(crate) async fn record(state: &AppState, work: &Tenant, signal: Signal) -> AppResult<()> {
    let question: String = signal
        .question
        .trim()
        .chars()
        .take(MAX_QUESTION_CHARS)
        .collect();
    if !worth_a_gap(&question) {
        return Ok(());
    }
    let embedder = &state.models.embedder;
    let embedding = embedder
        .embed_query(&question)
        .await
        .map_err(AppError::Internal)?;
    let same = normalized(&question);
    let example = GapExample {
        message_id: signal.message_id,
        conversation_id: signal.conversation_id,
        question,
        reason: signal.reason.as_str().to_owned(),
        seen_at: Utc::now(),
    };
    // One question at a time per process, so that two paraphrases recorded at once do not
    // both open a gap. Across replicas growing a gap is a compare-and-set; two replicas
    // opening a gap for the same question at the same moment open two (left as is).
    let _one_at_a_time = RECORDING.lock().await;
    for _ in 0..ATTEMPTS {
        let candidates =
            repo::knowledge_gaps::candidates(&state.db, work, &signal.assistant_id, embedder.id())
                .await?;
        let closest = candidates
            .iter()
            .filter_map(|gap| {
                let centroid: Vec<f32> = serde_json::from_value(gap.embedding.clone()).ok()?;
                let score = if normalized(&gap.question) == same {
                    1.0
                } else {
                    similarity(&centroid, &embedding)
                };
                Some((gap, centroid, score))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2));
        let Some((gap, centroid, score)) =
            closest.filter(|(_, _, score)| *score >= threshold(embedder.id()))
        else {
            let new = NewGap {
                assistant_id: signal.assistant_id,
                reason: signal.reason,
                example,
                embedding,
                embedder: embedder.id().to_owned(),
            };
            repo::knowledge_gaps::insert(&state.db, work, new).await?;
            return Ok(());
        };
        tracing::debug!(gap = %gap.id, score, "a question joins a knowledge gap");
        let grown = grown(gap, &centroid, &embedding, &example, signal.reason);
        if repo::knowledge_gaps::grow(&state.db, work, gap, grown).await? {
            return Ok(());
        }
    }
    Err(AppError::Conflict(
        "the knowledge gap kept changing while a question was added".into(),
    ))
}

/// Whether a visitor message asks something: a question mark, or at least three words
/// ("thanks", "hi there" are no gaps in the knowledge).
fn worth_a_gap(text: &str) -> bool {
    text.contains('?')
        || normalized(text)
            .split(' ')
            .filter(|w| !w.is_empty())
            .count()
            >= 3
}

/// `gap` with one more signal: `example` as its newest question (unless its message is
/// there already), its reason counted, and the mean embedding moved towards it.
fn grown(
    gap: &knowledge_gap::Model,
    centroid: &[f32],
    embedding: &[f32],
    example: &GapExample,
    reason: GapReason,
) -> Grown {
    let mut reasons = gap.reasons.as_object().cloned().unwrap_or_default();
    let counted = reasons
        .get(reason.as_str())
        .and_then(Value::as_i64)
        .unwrap_or(0);
    reasons.insert(reason.as_str().to_owned(), json!(counted + 1));
    let mut examples: Vec<GapExample> =
        serde_json::from_value(gap.examples.clone()).unwrap_or_default();
    if examples.iter().any(|e| e.message_id == example.message_id) {
        return Grown {
            count: gap.count,
            reasons: Value::Object(reasons),
            examples: gap.examples.clone(),
            embedding: centroid.to_vec(),
        };
    }
    examples.insert(0, example.clone());
    examples.truncate(MAX_EXAMPLES);
    Grown {
        count: gap.count + 1,
        reasons: Value::Object(reasons),
        examples: json!(examples),
        embedding: merged(centroid, gap.count, embedding),
    }
}

/// Which gaps to list.
#[derive(Debug, Clone, Default)]
pub struct ListGaps {
    /// Of this assistant (`asst_…`).
    pub assistant_id: Option<String>,
    /// In this state.
    pub status: Option<GapStatus>,
}

/// A page of the organization's gaps, oldest first.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    filter: ListGaps,
    page: &PageRequest,
) -> AppResult<Page<knowledge_gap::Model>> {
    let tenant = principal.scope(Scope::Read)?;
    let filter = GapFilter {
        assistant_id: filter.assistant_id,
        status: filter.status,
    };
    Ok(repo::knowledge_gaps::list(&state.db, &tenant, &filter, page).await?)
}

/// The gap `id`.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: &GapId,
) -> AppResult<knowledge_gap::Model> {
    let tenant = principal.scope(Scope::Read)?;
    found(state, &tenant, id).await
}

async fn found(state: &AppState, tenant: &Tenant, id: &GapId) -> AppResult<knowledge_gap::Model> {
    repo::knowledge_gaps::find(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("knowledge gap"))
}

/// Answers a gap: a Q&A pair of its representative question and `answer` (tagged
/// `knowledge-gap`, linked to the assistant when the assistant uses linked sources only),
/// and the gap marked resolved by it. A resolved gap answers `CONFLICT`.
pub async fn resolve(
    state: &AppState,
    principal: &Principal,
    id: &GapId,
    answer: String,
) -> AppResult<knowledge_gap::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let gap = found(state, &tenant, id).await?;
    if GapStatus::from_db(&gap.status) == GapStatus::Resolved {
        return Err(AppError::Conflict(
            "this knowledge gap is resolved already".into(),
        ));
    }
    let pair = knowledge::QaPair {
        question: gap.question.clone(),
        answer,
        tags: vec![TAG.to_owned()],
    };
    let source = knowledge::create_qa(state, principal, pair).await?;
    let source = SourceId::from_db(source.id);
    let assistant = AssistantId::from_db(gap.assistant_id.clone());
    let (linked, _) = repo::assistant_knowledge::rules(&state.db, &tenant, &assistant).await?;
    if !linked.is_empty() {
        repo::assistant_knowledge::set(&state.db, &tenant, &assistant, &source, Rule::Linked)
            .await?;
    }
    if !repo::knowledge_gaps::resolve(&state.db, &tenant, id, &source).await? {
        // Another request resolved it first: its pair answers, this one goes.
        knowledge::delete(state, principal, &source, Some(Kind::Qa)).await?;
        return Err(AppError::Conflict(
            "this knowledge gap was resolved meanwhile".into(),
        ));
    }
    found(state, &tenant, id).await
}

/// Dismisses an open gap: it leaves the open inbox, and its paraphrases keep counting in it
/// quietly. Dismissing a dismissed gap returns it; a resolved one answers `CONFLICT`.
pub async fn dismiss(
    state: &AppState,
    principal: &Principal,
    id: &GapId,
) -> AppResult<knowledge_gap::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let gap = found(state, &tenant, id).await?;
    match GapStatus::from_db(&gap.status) {
        GapStatus::Dismissed => return Ok(gap),
        GapStatus::Resolved => {
            return Err(AppError::Conflict("this knowledge gap is resolved".into()));
        }
        GapStatus::Open => {}
    }
    if !repo::knowledge_gaps::dismiss(&state.db, &tenant, id).await? {
        let now = found(state, &tenant, id).await?;
        if GapStatus::from_db(&now.status) != GapStatus::Dismissed {
            return Err(AppError::Conflict(
                "this knowledge gap was resolved meanwhile".into(),
            ));
        }
        return Ok(now);
    }
    found(state, &tenant, id).await
}
