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
}

impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        Self::Unavailable(format!("local model: {e}"))
    }
}
