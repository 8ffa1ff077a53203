//! Why a reply failed: a code a client can branch on and a sentence a visitor can act on.
//! Internals (providers' addresses and answers, SQL) go to the logs, never here.

/// Why a reply could not be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyFailure {
    /// What kind of failure.
    pub code: ReplyFailureCode,
    /// What happened, in words a visitor can act on.
    pub message: String,
}

impl ReplyFailure {
    /// A failure of `code` saying `message`.
    pub fn new(code: ReplyFailureCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The failure a stored reply records; an unknown or missing code (a reply failed before
    /// codes were stored) reads as `INTERNAL_SERVER_ERROR`.
    pub fn from_stored(code: Option<&str>, message: Option<&str>) -> Self {
        let code = code
            .and_then(ReplyFailureCode::parse)
            .unwrap_or(ReplyFailureCode::Internal);
        Self::new(code, message.unwrap_or("the reply failed"))
    }
}

/// The codes of `Message.errorCode` and `ReplyFailed.errorCode` (REST `error_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFailureCode {
    /// The chat model is saturated (its provider rate-limited us): try again shortly.
    ModelBusy,
    /// The chat model refused the request as asked (too long a message or history).
    ModelRejected,
    /// The chat model could not be reached or stopped mid-reply: try again later.
    ModelUnavailable,
    /// The server stopped before the reply was finished.
    Interrupted,
    /// Companin itself failed (reading the history, storing the reply, a reply's task that
    /// ended unexpectedly).
    Internal,
}

impl ReplyFailureCode {
    const ALL: [Self; 5] = [
        Self::ModelBusy,
        Self::ModelRejected,
        Self::ModelUnavailable,
        Self::Interrupted,
        Self::Internal,
    ];

    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModelBusy => "MODEL_BUSY",
            Self::ModelRejected => "MODEL_REJECTED",
            Self::ModelUnavailable => "MODEL_UNAVAILABLE",
            Self::Interrupted => "INTERRUPTED",
            Self::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The code named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_itself_and_unknown_codes_read_as_internal() {
        for code in ReplyFailureCode::ALL {
            assert_eq!(ReplyFailureCode::parse(code.as_str()), Some(code));
        }
        let old = ReplyFailure::from_stored(None, Some("stopped"));
        assert_eq!(old.code, ReplyFailureCode::Internal);
        assert_eq!(old.message, "stopped");
        let odd = ReplyFailure::from_stored(Some("SOMETHING_ELSE"), None);
        assert_eq!(odd.code, ReplyFailureCode::Internal);
    }
}
