//! Opaque, prefixed, time-sortable identifiers (`asst_0192…`).
//!
//! An id is its prefix followed by the 32 hex digits of a UUIDv7, so ids sort by creation
//! time as plain strings, which is what cursors and `ORDER BY id` rely on.

use std::{fmt, hash::Hash, marker::PhantomData};

use crate::error::AppError;

/// A kind of record with its id prefix.
pub trait IdKind {
    /// The prefix, including the underscore.
    const PREFIX: &'static str;
    /// The record's name in `NOT_FOUND` messages.
    const NAME: &'static str;
}

macro_rules! id_kinds {
    ($($(#[$doc:meta])* $kind:ident, $alias:ident, $prefix:literal, $name:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $kind {}
        impl IdKind for $kind {
            const PREFIX: &'static str = $prefix;
            const NAME: &'static str = $name;
        }
        $(#[$doc])*
        pub type $alias = Id<$kind>;
    )*};
}

id_kinds! {
    /// An organization.
    Org, OrgId, "org_", "organization";
    /// An API key.
    Key, KeyId, "key_", "API key";
    /// An assistant.
    Asst, AssistantId, "asst_", "assistant";
    /// A version of an assistant's configuration.
    Ver, VersionId, "ver_", "assistant version";
    /// A knowledge source.
    Ks, SourceId, "ks_", "knowledge source";
    /// An ingestion job.
    Job, JobId, "job_", "job";
    /// One fetch of a URL source.
    Fetch, RefreshId, "ref_", "refresh";
    /// A visitor session.
    Sess, SessionId, "sess_", "session";
    /// Visitor traits attached to a session.
    Ctx, ContextId, "ctx_", "context";
    /// A conversation.
    Conv, ConversationId, "conv_", "conversation";
    /// A message.
    Msg, MessageId, "msg_", "message";
    /// Feedback on a conversation or message.
    Fb, FeedbackId, "fb_", "feedback";
    /// An anonymous visitor.
    Vis, VisitorId, "vis_", "visitor";
    /// An OAuth app (the chat widget's credentials).
    App, AppId, "app_", "OAuth app";
    /// A webhook endpoint.
    Wh, WebhookId, "wh_", "webhook";
    /// A webhook event.
    Evt, EventId, "evt_", "webhook event";
    /// One event's delivery to one webhook endpoint.
    Whd, DeliveryId, "whd_", "webhook delivery";
    /// One HTTP request of a delivery.
    Wha, AttemptId, "wha_", "webhook attempt";
    /// Visitor questions an assistant could not answer well, grouped.
    Gap, GapId, "gap_", "knowledge gap";
}

/// An id of kind `K`.
pub struct Id<K> {
    value: String,
    kind: PhantomData<fn() -> K>,
}

const HEX_LEN: usize = 32;

impl<K: IdKind> Id<K> {
    /// A new id, later than every id generated before it in this process.
    pub fn generate() -> Self {
        Self::from_db(format!("{}{}", K::PREFIX, uuid::Uuid::now_v7().simple()))
    }

    /// Parses a client-supplied id. A malformed id answers like an unknown one: `NOT_FOUND`.
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        if Self::is_well_formed(raw) {
            Ok(Self::from_db(raw.to_owned()))
        } else {
            Err(AppError::NotFound(K::NAME))
        }
    }

    /// Whether `raw` has this kind's prefix and a well-formed body.
    pub fn is_well_formed(raw: &str) -> bool {
        raw.strip_prefix(K::PREFIX).is_some_and(|hex| {
            hex.len() == HEX_LEN
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    }

    /// Wraps an id read from the database, which was valid when written.
    pub fn from_db(value: String) -> Self {
        Self {
            value,
            kind: PhantomData,
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.value
    }
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}
impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<K> Eq for Id<K> {}
impl<K> Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}
impl<K> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}
impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_their_prefix_and_parse_back() {
        let id = AssistantId::generate();
        assert!(id.as_str().starts_with("asst_"));
        assert_eq!(AssistantId::parse(id.as_str()).ok(), Some(id));
    }

    #[test]
    fn ids_generated_later_sort_later() {
        let ids: Vec<_> = (0..50).map(|_| OrgId::generate().into_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn an_id_of_another_kind_or_malformed_answers_not_found() {
        let version = VersionId::generate();
        assert!(matches!(
            AssistantId::parse(version.as_str()),
            Err(AppError::NotFound("assistant"))
        ));
        for raw in ["", "asst_", "asst_XYZ", "asst_0192' OR 1=1 --"] {
            assert!(AssistantId::parse(raw).is_err(), "{raw}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_as_an_id_never_panics_and_accepts_only_its_own_shape(
            raw in proptest::prelude::any::<String>(),
            suffix in proptest::prelude::any::<String>(),
        ) {
            let prefixed = format!("asst_{suffix}");
            for text in [raw.as_str(), prefixed.as_str()] {
                if let Ok(id) = AssistantId::parse(text) {
                    proptest::prop_assert_eq!(id.as_str(), text);
                    proptest::prop_assert!(text.starts_with("asst_"));
                }
            }
        }
    }
}
