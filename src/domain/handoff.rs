//! Human handoff: what hands a conversation to a person, and the rules an assistant version
//! sets for doing it by itself.

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Most keywords a version's rules hold.
pub const MAX_KEYWORDS: usize = 50;
/// Longest keyword (a word or a phrase), in characters.
pub const MAX_KEYWORD_CHARS: usize = 100;
/// Most unanswered turns a rule may wait for.
pub const MAX_UNANSWERED_TURNS: i32 = 20;

/// A conversation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationState {
    /// The assistant answers.
    Bot,
    /// A person answers; visitor messages get no generated reply.
    HandedOff,
    /// Ended: it takes no more messages.
    Closed,
}

impl ConversationState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "BOT",
            Self::HandedOff => "HANDED_OFF",
            Self::Closed => "CLOSED",
        }
    }

    /// Reads the stored name (written by [`ConversationState::as_str`]).
    pub fn from_db(raw: &str) -> Self {
        match raw {
            "HANDED_OFF" => Self::HandedOff,
            "CLOSED" => Self::Closed,
            _ => Self::Bot,
        }
    }
}

/// What handed a conversation to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The visitor asked (the widget's "talk to a person").
    Visitor,
    /// The organization asked, with an API key.
    Operator,
    /// A rating at or below the version's `on_rating_at_most`.
    Rating,
    /// Replies that found no passage above the minimum score, `after_unanswered_turns` in a row.
    Unanswered,
    /// A visitor message holding one of the version's keywords.
    Keyword,
}

impl Trigger {
    /// Every trigger, in the order reports list them.
    pub const ALL: [Trigger; 5] = [
        Trigger::Visitor,
        Trigger::Operator,
        Trigger::Rating,
        Trigger::Unanswered,
        Trigger::Keyword,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visitor => "VISITOR",
            Self::Operator => "OPERATOR",
            Self::Rating => "RATING",
            Self::Unanswered => "UNANSWERED",
            Self::Keyword => "KEYWORD",
        }
    }

    /// Reads a stored name.
    pub fn from_db(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// When an assistant version hands a conversation to a person by itself. Every rule is off
/// until set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRules {
    /// A rating (of the conversation or one of its replies) at most this, 1–5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_rating_at_most: Option<i32>,
    /// This many visitor turns in a row whose replies found no passage above the minimum
    /// score, 1–20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_unanswered_turns: Option<i32>,
    /// Words or phrases that hand off a visitor message holding one (case and accents
    /// aside, whole words): "human", "agent", "mens", "pessoa", "persona"…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
}

impl HandoffRules {
    /// Whether no rule is set.
    pub fn is_off(&self) -> bool {
        self.on_rating_at_most.is_none()
            && self.after_unanswered_turns.is_none()
            && self.keywords.is_empty()
    }

    /// Checks every rule (keywords trimmed, blank and repeated ones dropped); the first
    /// violation names its field.
    pub fn validated(mut self) -> Result<Self, AppError> {
        if let Some(rating) = self.on_rating_at_most
            && !(1..=5).contains(&rating)
        {
            return Err(AppError::bad_input(
                "handoff.on_rating_at_most",
                "must be between 1 and 5",
            ));
        }
        if let Some(turns) = self.after_unanswered_turns
            && !(1..=MAX_UNANSWERED_TURNS).contains(&turns)
        {
            return Err(AppError::bad_input(
                "handoff.after_unanswered_turns",
                format!("must be between 1 and {MAX_UNANSWERED_TURNS}"),
            ));
        }
        let mut keywords: Vec<String> = Vec::new();
        for keyword in self.keywords {
            let keyword = keyword.trim().to_owned();
            if keyword.chars().count() > MAX_KEYWORD_CHARS {
                return Err(AppError::bad_input(
                    "handoff.keywords",
                    format!("each must be at most {MAX_KEYWORD_CHARS} characters"),
                ));
            }
            if !keyword.is_empty() && !keywords.contains(&keyword) {
                keywords.push(keyword);
            }
        }
        if keywords.len() > MAX_KEYWORDS {
            return Err(AppError::bad_input(
                "handoff.keywords",
                format!("at most {MAX_KEYWORDS}"),
            ));
        }
        self.keywords = keywords;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_out_of_range_name_their_field_and_keywords_are_trimmed_once() {
        let bad = HandoffRules {
            on_rating_at_most: Some(6),
            ..HandoffRules::default()
        };
        let Err(AppError::BadInput { field, .. }) = bad.validated() else {
            panic!("a rating of 6 is refused");
        };
        assert_eq!(field.as_deref(), Some("handoff.on_rating_at_most"));
        let rules = HandoffRules {
            keywords: vec![" human ".into(), "human".into(), "  ".into(), "mens".into()],
            ..HandoffRules::default()
        }
        .validated()
        .expect("valid");
        assert_eq!(rules.keywords, ["human", "mens"]);
        assert!(HandoffRules::default().is_off());
    }
}
