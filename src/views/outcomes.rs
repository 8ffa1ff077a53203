//! Outcome analytics: whether the assistant resolves conversations, per day or version.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::handoff::HandoffTrigger;
use crate::{
    domain::handoff::Trigger,
    services::outcomes::{GroupBy, Outcome, OutcomeReport},
};

/// How an outcome report's rows are cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Enum, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeGroupBy {
    /// One row per UTC day of the range, empty days included.
    #[default]
    Day,
    /// One row per assistant version (a conversation counts for its first reply's version;
    /// `none` when nothing answered it).
    Version,
}

impl From<OutcomeGroupBy> for GroupBy {
    fn from(g: OutcomeGroupBy) -> Self {
        match g {
            OutcomeGroupBy::Day => Self::Day,
            OutcomeGroupBy::Version => Self::Version,
        }
    }
}

/// Conversations handed off by one trigger.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct HandoffCount {
    /// What handed them off (last).
    pub trigger: HandoffTrigger,
    /// How many.
    pub count: i64,
}

/// Outcomes of the conversations of one day, one version, or the whole range.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct OutcomeRow {
    /// `2026-12-07` (a UTC day), a version number (`3`), `none`, or `total`.
    pub key: String,
    /// Conversations started.
    pub conversations: i64,
    /// Of them, ended without a handoff and without a rating of 1–2.
    pub contained: i64,
    /// `contained / conversations` (0 without conversations).
    pub containment_rate: f64,
    /// Conversations handed to a person.
    pub handoffs: i64,
    /// `handoffs / conversations`.
    pub handoff_rate: f64,
    /// Handoffs by what triggered them (the latest handoff of each conversation).
    pub handoffs_by_trigger: Vec<HandoffCount>,
    /// Complete replies.
    pub answers: i64,
    /// Of them, citing no passage: none above the assistant's minimum score, or none the
    /// answerer found relevant.
    pub unanswered: i64,
    /// `unanswered / answers`.
    pub unanswered_rate: f64,
    /// Replies citing a passage, of all replies.
    pub citation_rate: f64,
    /// Ratings given.
    pub ratings: i64,
    /// The share of ratings 4–5; null without ratings.
    pub csat: Option<f64>,
    /// The mean rating; null without ratings.
    pub average_rating: Option<f64>,
    /// Median time to a reply's first token, in ms; null without replies.
    pub first_token_p50_ms: Option<f64>,
    /// 95th percentile of it.
    pub first_token_p95_ms: Option<f64>,
}

impl From<Outcome> for OutcomeRow {
    fn from(o: Outcome) -> Self {
        let handoffs_by_trigger = Trigger::ALL
            .into_iter()
            .filter_map(|t| {
                let count = *o.handoffs.get(t.as_str())?;
                Some(HandoffCount {
                    trigger: t.into(),
                    count,
                })
            })
            .collect();
        Self {
            conversations: o.conversations,
            contained: o.contained,
            containment_rate: o.containment_rate(),
            handoffs: o.handed_off(),
            handoff_rate: o.handoff_rate(),
            handoffs_by_trigger,
            answers: o.answers,
            unanswered: o.unanswered,
            unanswered_rate: o.unanswered_rate(),
            citation_rate: o.citation_rate(),
            ratings: o.ratings,
            csat: o.csat(),
            average_rating: o.average_rating(),
            first_token_p50_ms: o.first_token_ms(0.50),
            first_token_p95_ms: o.first_token_ms(0.95),
            key: o.key,
        }
    }
}

/// Whether the assistant resolves conversations, per day or version, and over the range.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct OutcomeAnalytics {
    /// Conversations started at or after…
    pub from: DateTime<Utc>,
    /// …and before.
    pub to: DateTime<Utc>,
    /// How the rows are cut.
    pub group_by: OutcomeGroupBy,
    /// Per day (oldest first) or per version.
    pub rows: Vec<OutcomeRow>,
    /// The whole range.
    pub total: OutcomeRow,
}

impl OutcomeAnalytics {
    /// The view of `report`, cut by `group_by`.
    pub fn of(report: OutcomeReport, group_by: OutcomeGroupBy) -> Self {
        Self {
            from: report.from,
            to: report.to,
            group_by,
            rows: report.rows.into_iter().map(Into::into).collect(),
            total: report.total.into(),
        }
    }
}
