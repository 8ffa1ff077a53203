//! Why a knowledge source is not indexed: a code a client can branch on and a sentence its
//! user can act on. Internals (paths, SQL, providers' answers) go to the logs, never here.

use std::fmt;

/// Why a source failed, or why its indexing is being retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFailure {
    /// What kind of failure.
    pub code: FailureCode,
    /// What happened, in words the organization's user can act on.
    pub message: String,
}

impl SourceFailure {
    /// A failure of `code` saying `message`.
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// The codes of `KnowledgeSource.errorCode` (REST `error_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// A type Companin does not read (an archive, an executable…).
    UnsupportedFile,
    /// A readable type whose content is damaged, empty or has no text.
    FileDamaged,
    /// Reading it would pass a limit: time, memory, nesting, extracted text or chunks.
    FileTooComplex,
    /// The URL could not be fetched (refused address, error status, not a page).
    UrlFailed,
    /// Indexing kept failing for reasons outside the content and was given up.
    IndexingFailed,
    /// Indexing failed for a passing reason and will be tried again (the source is
    /// `PENDING`).
    Retrying,
}

impl FailureCode {
    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedFile => "UNSUPPORTED_FILE",
            Self::FileDamaged => "FILE_DAMAGED",
            Self::FileTooComplex => "FILE_TOO_COMPLEX",
            Self::UrlFailed => "URL_FAILED",
            Self::IndexingFailed => "INDEXING_FAILED",
            Self::Retrying => "RETRYING",
        }
    }
}
