//! Outcome analytics: whether the assistant resolves conversations. Per day or per assistant
//! version: conversations, containment (ended without a handoff and without a rating of 1–2),
//! handoffs by what triggered them, unanswered replies (citing no passage),
//! citations, CSAT (the share of ratings 4–5), the average rating, and first-token latency.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::DatabaseConnection;

use crate::{
    auth::{Principal, Scope},
    domain::handoff::Trigger,
    error::{AppError, AppResult},
    repo::{
        self,
        outcomes::{ConversationRow, OutcomeRange, RatingRow, ReplyRow},
    },
    services::analytics::{percentile, ratio},
};

/// The longest range a report covers, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The range when none is given: the last 30 days.
const DEFAULT_DAYS: i64 = 30;
/// Most rows of each kind read for one report.
const MAX_ROWS: u64 = 500_000;
/// Ratings at most this are low (they count against containment).
const LOW_RATING: i32 = 2;

/// How a report's rows are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One row per UTC day of the range, empty days included.
    Day,
    /// One row per assistant version that answered (a conversation counts for the version
    /// of its first reply; `none` when nothing answered it).
    Version,
}

/// What to report on.
#[derive(Debug, Clone, Default)]
pub struct OutcomeQuery {
    /// Conversations started at or after (default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Conversations started before (default: now).
    pub to: Option<DateTime<Utc>>,
    /// Only this assistant's.
    pub assistant_id: Option<String>,
}

/// One row: a day, a version, or the whole range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `2026-12-07`, `3`, `none` or `total`.
    pub key: String,
    /// Conversations started.
    pub conversations: i64,
    /// Of them, ended without a handoff and without a rating of 1–2.
    pub contained: i64,
    /// Of them, handed to a person (at any time), by what handed them off last.
    pub handoffs: BTreeMap<&'static str, i64>,
    /// Complete replies.
    pub answers: i64,
    /// Of them, citing no passage.
    pub unanswered: i64,
    /// Ratings given.
    pub ratings: i64,
    /// Of them, 4 or 5.
    pub satisfied: i64,
    /// Their sum.
    pub rating_sum: i64,
    /// First-token latencies of the replies, in ms, sorted.
    pub first_tokens: Vec<f64>,
}

impl Outcome {
    fn new(key: String) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// Conversations handed to a person.
    pub fn handed_off(&self) -> i64 {
        self.handoffs.values().sum()
    }

    /// `contained / conversations`.
    pub fn containment_rate(&self) -> f64 {
        ratio(self.contained, self.conversations)
    }

    /// `handed off / conversations`.
    pub fn handoff_rate(&self) -> f64 {
        ratio(self.handed_off(), self.conversations)
    }

    /// `unanswered / answers`.
    pub fn unanswered_rate(&self) -> f64 {
        ratio(self.unanswered, self.answers)
    }

    /// Replies citing a passage, of all replies.
    pub fn citation_rate(&self) -> f64 {
        ratio(self.answers - self.unanswered, self.answers)
    }

    /// The share of ratings 4–5; none without ratings.
    pub fn csat(&self) -> Option<f64> {
        (self.ratings > 0).then(|| ratio(self.satisfied, self.ratings))
    }

    /// The mean rating; none without ratings.
    pub fn average_rating(&self) -> Option<f64> {
        (self.ratings > 0).then(|| ratio(self.rating_sum, self.ratings))
    }

    /// The `p` percentile (0–1) of first-token latency; none without replies.
    pub fn first_token_ms(&self, p: f64) -> Option<f64> {
        (!self.first_tokens.is_empty()).then(|| percentile(&self.first_tokens, p))
    }
}

/// A report: its rows and the whole range's.
#[derive(Debug, Clone)]
pub struct OutcomeReport {
    /// The range covered.
    pub from: DateTime<Utc>,
    /// Its end (exclusive).
    pub to: DateTime<Utc>,
    /// Per day or version, in order.
    pub rows: Vec<Outcome>,
    /// The whole range.
    pub total: Outcome,
}

/// The outcome report of the organization's conversations (read scope).
pub async fn report(
    db: &DatabaseConnection,
    principal: &Principal,
    query: OutcomeQuery,
    group_by: GroupBy,
) -> AppResult<OutcomeReport> {
    let tenant = principal.scope(Scope::Read)?;
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - Duration::days(DEFAULT_DAYS));
    if from >= to {
        return Err(AppError::bad_input("to", "must be after `from`"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(AppError::bad_input(
            "from",
            format!("a report covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let range = OutcomeRange {
        from,
        to,
        assistant_id: query.assistant_id,
    };
    let conversations = repo::outcomes::conversations(db, &tenant, &range, MAX_ROWS).await?;
    let replies = repo::outcomes::replies(db, &tenant, &range, MAX_ROWS).await?;
    let ratings = repo::outcomes::ratings(db, &tenant, &range, MAX_ROWS).await?;
    let (rows, total) = fold(&conversations, &replies, &ratings, group_by, from, to);
    Ok(OutcomeReport {
        from,
        to,
        rows,
        total,
    })
}

/// Folds the rows read into one outcome per day or version, and the total.
fn fold(
    conversations: &[ConversationRow],
    replies: &[ReplyRow],
    ratings: &[RatingRow],
    group_by: GroupBy,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (Vec<Outcome>, Outcome) {
    // A conversation's version: its first reply's.
    let mut version_of: HashMap<&str, Option<i32>> = HashMap::new();
    for (conversation, version, _, _) in replies {
        version_of.entry(conversation.as_str()).or_insert(*version);
    }
    let key_of = |id: &str, started: &DateTime<Utc>| match group_by {
        GroupBy::Day => day_key(started.date_naive()),
        GroupBy::Version => version_of
            .get(id)
            .copied()
            .flatten()
            .map_or_else(|| "none".to_owned(), |v| v.to_string()),
    };
    let mut groups: BTreeMap<String, Outcome> = BTreeMap::new();
    if group_by == GroupBy::Day {
        // Every day the range touches (`to` is exclusive).
        let last = (to - Duration::nanoseconds(1)).date_naive();
        let days = from.date_naive().iter_days().take_while(|day| *day <= last);
        for day in days.take(MAX_RANGE_DAYS as usize + 1) {
            groups.insert(day_key(day), Outcome::new(day_key(day)));
        }
    }
    let mut key_of_conversation: HashMap<&str, String> = HashMap::new();
    let mut low_rated: HashMap<&str, bool> = HashMap::new();
    for (conversation, rating) in ratings {
        if *rating <= LOW_RATING {
            low_rated.insert(conversation.as_str(), true);
        }
    }
    let mut total = Outcome::new("total".to_owned());
    for (id, started, trigger) in conversations {
        let key = key_of(id.as_str(), started);
        key_of_conversation.insert(id.as_str(), key.clone());
        let group = groups
            .entry(key.clone())
            .or_insert_with(|| Outcome::new(key));
        let trigger = trigger.as_deref().and_then(Trigger::from_db);
        let low = low_rated.contains_key(id.as_str());
        for outcome in [&mut *group, &mut total] {
            outcome.conversations += 1;
            match trigger {
                Some(t) => *outcome.handoffs.entry(t.as_str()).or_default() += 1,
                None if !low => outcome.contained += 1,
                None => {}
            }
        }
    }
    for (conversation, _, cited, first_token) in replies {
        let Some(key) = key_of_conversation.get(conversation.as_str()) else {
            continue;
        };
        let Some(group) = groups.get_mut(key) else {
            continue;
        };
        for outcome in [&mut *group, &mut total] {
            outcome.answers += 1;
            if *cited == 0 {
                outcome.unanswered += 1;
            }
            if let Some(ms) = first_token {
                outcome.first_tokens.push(f64::from(*ms));
            }
        }
    }
    for (conversation, rating) in ratings {
        let Some(key) = key_of_conversation.get(conversation.as_str()) else {
            continue;
        };
        let Some(group) = groups.get_mut(key) else {
            continue;
        };
        for outcome in [&mut *group, &mut total] {
            outcome.ratings += 1;
            outcome.rating_sum += i64::from(*rating);
            if *rating >= 4 {
                outcome.satisfied += 1;
            }
        }
    }
    let mut rows: Vec<Outcome> = groups.into_values().collect();
    for outcome in rows.iter_mut().chain(std::iter::once(&mut total)) {
        outcome.first_tokens.sort_by(f64::total_cmp);
    }
    if group_by == GroupBy::Version {
        // Versions in number order, `none` last.
        rows.sort_by_key(|o| o.key.parse::<i64>().unwrap_or(i64::MAX));
    }
    (rows, total)
}

fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0)
            .single()
            .expect("a time")
    }

    #[test]
    fn days_and_versions_fold_containment_handoffs_ratings_and_latency() {
        let conversations: Vec<ConversationRow> = vec![
            ("c1".into(), at(1, 9), None),
            ("c2".into(), at(1, 10), Some("KEYWORD".into())),
            ("c3".into(), at(3, 8), None),
        ];
        let replies: Vec<ReplyRow> = vec![
            ("c1".into(), Some(1), 1, Some(100)),
            ("c1".into(), Some(2), 0, Some(300)),
            ("c2".into(), Some(2), 0, Some(200)),
            ("c3".into(), Some(2), 1, None),
        ];
        let ratings: Vec<RatingRow> = vec![("c1".into(), 5), ("c3".into(), 2)];
        let (days, total) = fold(
            &conversations,
            &replies,
            &ratings,
            GroupBy::Day,
            at(1, 0),
            at(4, 0),
        );
        let keys: Vec<&str> = days.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            ["2026-12-01", "2026-12-02", "2026-12-03"],
            "empty days kept"
        );
        assert_eq!(
            (
                days[0].conversations,
                days[0].contained,
                days[0].handed_off()
            ),
            (2, 1, 1)
        );
        assert_eq!(days[0].handoffs.get("KEYWORD"), Some(&1));
        assert_eq!((days[0].answers, days[0].unanswered), (3, 2));
        assert_eq!(days[0].first_token_ms(0.5), Some(200.0));
        assert_eq!(days[1].conversations, 0);
        assert_eq!(
            (days[2].contained, days[2].csat()),
            (0, Some(0.0)),
            "rated 2"
        );
        assert_eq!(
            (total.conversations, total.contained, total.ratings),
            (3, 1, 2)
        );
        assert_eq!(total.average_rating(), Some(3.5));
        assert_eq!(total.csat(), Some(0.5));

        let (versions, _) = fold(
            &conversations,
            &replies,
            &ratings,
            GroupBy::Version,
            at(1, 0),
            at(4, 0),
        );
        let keys: Vec<(&str, i64)> = versions
            .iter()
            .map(|v| (v.key.as_str(), v.conversations))
            .collect();
        assert_eq!(
            keys,
            [("1", 1), ("2", 2)],
            "a conversation counts for its first reply's version"
        );
    }
}
