//! The knowledge-gap inbox: questions an assistant could not answer well, grouped.

use async_graphql::{Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};
use entity::knowledge_gap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::knowledge_gap::{GapExample, GapReason, GapStatus};

/// Where a gap is in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KnowledgeGapStatus {
    /// Waiting for an answer.
    Open,
    /// Answered with a Q&A pair.
    Resolved,
    /// Not worth an answer; its paraphrases still count in it.
    Dismissed,
}

impl From<GapStatus> for KnowledgeGapStatus {
    fn from(s: GapStatus) -> Self {
        match s {
            GapStatus::Open => Self::Open,
            GapStatus::Resolved => Self::Resolved,
            GapStatus::Dismissed => Self::Dismissed,
        }
    }
}

impl From<KnowledgeGapStatus> for GapStatus {
    fn from(s: KnowledgeGapStatus) -> Self {
        match s {
            KnowledgeGapStatus::Open => Self::Open,
            KnowledgeGapStatus::Resolved => Self::Resolved,
            KnowledgeGapStatus::Dismissed => Self::Dismissed,
        }
    }
}

/// Why a visitor's question counts as not answered well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KnowledgeGapReason {
    /// The reply cites no passage: none above the assistant's minimum score, or none the
    /// answerer found relevant.
    NoPassage,
    /// The reply or its conversation was rated 1 or 2.
    LowRating,
    /// The conversation was handed to a person.
    Handoff,
}

impl From<GapReason> for KnowledgeGapReason {
    fn from(r: GapReason) -> Self {
        match r {
            GapReason::NoPassage => Self::NoPassage,
            GapReason::LowRating => Self::LowRating,
            GapReason::Handoff => Self::Handoff,
        }
    }
}

/// How often a reason was seen in a gap.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct KnowledgeGapReasonCount {
    /// The reason.
    pub reason: KnowledgeGapReason,
    /// Signals of it.
    pub count: i32,
}

/// One visitor question of a gap.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct KnowledgeGapExample {
    /// The visitor's message (`msg_…`).
    #[schema(value_type = String)]
    pub message_id: ID,
    /// Its conversation (`conv_…`).
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// What the visitor asked.
    pub question: String,
    /// Why it counts.
    pub reason: KnowledgeGapReason,
    /// When.
    pub seen_at: DateTime<Utc>,
}

/// Visitor questions an assistant could not answer well, grouped by meaning.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct KnowledgeGap {
    /// `gap_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The assistant that could not answer (`asst_…`).
    #[schema(value_type = String)]
    pub assistant_id: ID,
    /// Open, resolved or dismissed.
    pub status: KnowledgeGapStatus,
    /// The representative question (the first asked); resolving answers it.
    pub question: String,
    /// Visitor questions grouped into it.
    pub count: i32,
    /// Signals by reason.
    pub reasons: Vec<KnowledgeGapReasonCount>,
    /// The newest questions, at most five, newest first.
    pub examples: Vec<KnowledgeGapExample>,
    /// When it was first asked.
    pub first_seen_at: DateTime<Utc>,
    /// When it was last asked.
    pub last_seen_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The Q&A pair that resolved it (`ks_…`).
    #[schema(value_type = Option<String>)]
    pub source_id: Option<ID>,
}

impl From<knowledge_gap::Model> for KnowledgeGap {
    fn from(g: knowledge_gap::Model) -> Self {
        let reasons = GapReason::ALL
            .into_iter()
            .filter_map(|reason| {
                let count = g.reasons.get(reason.as_str())?.as_i64()?;
                Some(KnowledgeGapReasonCount {
                    reason: reason.into(),
                    count: i32::try_from(count).unwrap_or(i32::MAX),
                })
            })
            .collect();
        let examples: Vec<GapExample> =
            serde_json::from_value(g.examples.clone()).unwrap_or_default();
        let examples = examples
            .into_iter()
            .filter_map(|e| {
                Some(KnowledgeGapExample {
                    reason: GapReason::from_db(&e.reason)?.into(),
                    message_id: ID(e.message_id),
                    conversation_id: ID(e.conversation_id),
                    question: e.question,
                    seen_at: e.seen_at,
                })
            })
            .collect();
        Self {
            id: ID(g.id),
            assistant_id: ID(g.assistant_id),
            status: GapStatus::from_db(&g.status).into(),
            question: g.question,
            count: g.count,
            reasons,
            examples,
            first_seen_at: g.first_seen_at,
            last_seen_at: g.last_seen_at,
            resolved_at: g.resolved_at,
            source_id: g.source_id.map(ID),
        }
    }
}
