//! From raw content to chunks: sniffing, extraction, chunking, and the durable jobs that run
//! them.

pub mod chunk;
pub mod extract;
pub mod fetch;
pub mod pipeline;
pub mod sniff;
mod sources;
pub mod worker;

/// Text extracted from a source, in blocks that keep the document's structure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// The blocks, in document order.
    pub blocks: Vec<Block>,
}

/// A run of text under one heading path.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// Why content could not be turned into text. These are final: retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractError {
    /// A type Companin does not read.
    Unsupported(String),
    /// A supported type whose content is damaged or empty.
    Corrupt(String),
}

impl ExtractError {
    /// The message stored on the failed source.
    pub fn message(&self) -> String {
        match self {
            Self::Unsupported(m) | Self::Corrupt(m) => m.clone(),
        }
    }
}
