//! The knowledge-gap inbox: visitor questions an assistant could not answer well, grouped by
//! meaning so that one answer closes every paraphrase.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most examples a gap keeps (the newest).
pub const MAX_EXAMPLES: usize = 5;

/// Why a visitor's question counts as not answered well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// The reply cites no passage: none above the assistant's minimum score, or none the
    /// answerer found relevant.
    NoPassage,
    /// The reply (or its conversation) was rated 1 or 2.
    LowRating,
    /// The conversation was handed to a person after it.
    Handoff,
}

impl GapReason {
    /// Every reason, in the order reports list them.
    pub const ALL: [GapReason; 3] = [Self::NoPassage, Self::LowRating, Self::Handoff];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoPassage => "NO_PASSAGE",
            Self::LowRating => "LOW_RATING",
            Self::Handoff => "HANDOFF",
        }
    }

    /// Reads a stored name.
    pub fn from_db(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// Where a gap is in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapStatus {
    /// Waiting for an answer.
    Open,
    /// Answered with a Q&A pair.
    Resolved,
    /// Not worth an answer; its paraphrases still count, quietly.
    Dismissed,
}

impl GapStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Resolved => "RESOLVED",
            Self::Dismissed => "DISMISSED",
        }
    }

    /// Reads the stored name (written by [`GapStatus::as_str`]).
    pub fn from_db(raw: &str) -> Self {
        match raw {
            "RESOLVED" => Self::Resolved,
            "DISMISSED" => Self::Dismissed,
            _ => Self::Open,
        }
    }
}

/// One visitor question of a gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapExample {
    /// The visitor's message (`msg_…`).
    pub message_id: String,
    /// Its conversation (`conv_…`).
    pub conversation_id: String,
    /// What the visitor asked.
    pub question: String,
    /// Why it counts (the first signal; later ones of the same message add to the reasons).
    pub reason: String,
    /// When.
    pub seen_at: DateTime<Utc>,
}

/// Cosine similarity of two L2-normalised vectors (0 when their lengths differ).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The normalised mean of `count` vectors whose normalised mean is `centroid`, and `next`.
pub fn merged(centroid: &[f32], count: i32, next: &[f32]) -> Vec<f32> {
    if centroid.len() != next.len() {
        return next.to_vec();
    }
    let weight = count.max(1) as f32;
    let sum: Vec<f32> = centroid
        .iter()
        .zip(next)
        .map(|(c, n)| c * weight + n)
        .collect();
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return sum;
    }
    sum.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_mean_stays_normalised_and_leans_to_the_majority() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let two_a = merged(&a, 1, &a);
        assert!((similarity(&two_a, &a) - 1.0).abs() < 1e-6);
        let mean = merged(&two_a, 2, &b);
        let norm: f32 = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6);
        assert!(similarity(&mean, &a) > similarity(&mean, &b));
        assert_eq!(similarity(&a, &[1.0]), 0.0, "other lengths never match");
    }
}
