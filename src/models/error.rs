//! What can go wrong with a model, in words a client can act on.

/// A model could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The request cannot be served as asked (a prompt longer than the model's context, …).
    #[error("{0}")]
    Invalid(String),
    /// The provider is rate limiting or out of quota; retrying later may work.
    #[error("{0}")]
    RateLimited(String),
    /// The model or its provider failed or is missing.
    #[error("{0}")]
    Unavailable(String),
}

impl ModelError {
    /// [`ModelError::Unavailable`] with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }

    /// What kind of failure it is, for traces (`error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        Self::Unavailable(format!("local model: {e}"))
    }
}
