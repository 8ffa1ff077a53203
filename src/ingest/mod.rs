//! From raw content to chunks: sniffing, extraction, chunking, and the durable jobs that run
//! them.

pub mod chunk;
pub mod extract;
pub mod fetch;
pub mod isolated;
pub mod pipeline;
pub mod sniff;
mod sources;
pub mod worker;

use serde::{Deserialize, Serialize};

use crate::domain::source_failure::{FailureCode, SourceFailure};

/// Text extracted from a source, in blocks that keep the document's structure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The blocks, in document order.
    pub blocks: Vec<Block>,
}

/// A run of text under one heading path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The headings above this block, outermost first.
    pub heading_path: Vec<String>,
    /// The text.
    pub text: String,
    /// Prose is split at paragraphs and sentences; records (CSV rows, JSON lines) are never
    /// split, only packed together.
    pub kind: BlockKind,
}

/// How a block may be cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockKind {
    /// Paragraphs and sentences.
    Prose,
    /// One record per line.
    Records,
}

impl Document {
    /// All the text, blocks separated by blank lines.
    pub fn full_text(&self) -> String {
        self.blocks
            .iter()
            .map(|b| b.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// Whether there is no text at all.
    pub fn is_blank(&self) -> bool {
        self.blocks.iter().all(|b| b.text.trim().is_empty())
    }

    /// Characters of text and headings, as chunking will read them.
    pub fn chars(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| {
                b.text.chars().count()
                    + b.heading_path
                        .iter()
                        .map(|h| h.chars().count())
                        .sum::<usize>()
            })
            .sum()
    }
}

/// Why content could not be turned into text. These are final: retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtractError {
    /// A type Companin does not read.
    Unsupported(String),
    /// A supported type whose content is damaged or empty.
    Corrupt(String),
    /// Reading it would pass a limit: time, memory, nesting or the text one source may give.
    TooComplex(String),
}

impl From<ExtractError> for SourceFailure {
    fn from(e: ExtractError) -> Self {
        match e {
            ExtractError::Unsupported(m) => Self::new(FailureCode::UnsupportedFile, m),
            ExtractError::Corrupt(m) => Self::new(FailureCode::FileDamaged, m),
            ExtractError::TooComplex(m) => Self::new(FailureCode::FileTooComplex, m),
        }
    }
}
