//! Cutting a document into chunks that respect its structure: sections stay apart, prose is
//! split at paragraphs then sentences (with overlap), records are packed whole.

use text_splitter::{ChunkConfig, MarkdownSplitter};

use super::{BlockKind, Document};

/// Chunk sizes, in characters.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSettings {
    /// Size to aim for.
    pub target_chars: usize,
    /// Characters a prose chunk repeats from the end of the previous one.
    pub overlap_chars: usize,
}

/// One chunk, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position in the source, from 0.
    pub index: usize,
    /// The chunk's text.
    pub text: String,
    /// The headings above it, outermost first.
    pub heading_path: Vec<String>,
}

impl Chunk {
    /// The headings joined for display (`Billing > Refunds`).
    pub fn heading(&self) -> String {
        self.heading_path.join(" > ")
    }

    /// What is embedded: the heading path gives the chunk its context.
    pub fn embedding_text(&self) -> String {
        if self.heading_path.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.heading(), self.text)
        }
    }
}

/// The chunks of `document`.
pub fn chunk(document: &Document, settings: ChunkSettings) -> Vec<Chunk> {
    let target = settings.target_chars.max(50);
    let overlap = settings.overlap_chars.min(target / 2);
    let config = ChunkConfig::new(target)
        .with_overlap(overlap)
        .unwrap_or_else(|_| ChunkConfig::new(target));
    let prose = MarkdownSplitter::new(config);
    let whole_lines = MarkdownSplitter::new(ChunkConfig::new(target));
    let mut chunks = Vec::new();
    for block in &document.blocks {
        let texts: Vec<String> = match block.kind {
            BlockKind::Prose => prose.chunks(&block.text).map(str::to_owned).collect(),
            BlockKind::Records => pack_records(&block.text, target, &whole_lines),
        };
        for text in texts.into_iter().filter(|t| !t.trim().is_empty()) {
            chunks.push(Chunk {
                index: chunks.len(),
                text,
                heading_path: block.heading_path.clone(),
            });
        }
    }
    chunks
}

/// Greedily packs whole lines up to `target`; a single line over it is split alone.
fn pack_records(
    text: &str,
    target: usize,
    splitter: &MarkdownSplitter<text_splitter::Characters>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if line.chars().count() > target {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.extend(splitter.chunks(line).map(str::to_owned));
            continue;
        }
        if !current.is_empty() && current.chars().count() + 1 + line.chars().count() > target {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Block, extract::text};

    const SMALL: ChunkSettings = ChunkSettings {
        target_chars: 120,
        overlap_chars: 30,
    };

    #[test]
    fn chunks_stay_within_their_section_and_keep_its_headings() {
        let body = "Refunds are paid within thirty days of the return. ".repeat(6);
        let doc = text::markdown(&format!(
            "# Billing\n## Refunds\n{body}\n# Shipping\nShipping is free above fifty euros."
        ));
        let chunks = chunk(&doc, SMALL);
        assert!(chunks.len() >= 3, "{chunks:?}");
        assert!(chunks.iter().all(|c| c.text.chars().count() <= 120));
        let last = chunks.last().expect("chunks");
        assert_eq!(last.heading(), "Shipping");
        assert!(
            chunks[..chunks.len() - 1]
                .iter()
                .all(|c| c.heading() == "Billing > Refunds" && !c.text.contains("Shipping"))
        );
        assert!(chunks.iter().enumerate().all(|(i, c)| c.index == i));
    }

    #[test]
    fn consecutive_prose_chunks_overlap() {
        let words: Vec<String> = (0..80).map(|i| format!("w{i}")).collect();
        let doc = text::plain(&words.join(" "));
        let chunks = chunk(&doc, SMALL);
        let first_tail = chunks[0].text.split_whitespace().last().expect("words");
        assert!(chunks[1].text.contains(first_tail), "{chunks:?}");
    }

    #[test]
    fn records_are_packed_whole_and_never_split() {
        let rows: Vec<String> = (0..20)
            .map(|i| format!("sku: A{i}; name: Kettle model {i}; price: {i}"))
            .collect();
        let doc = Document {
            blocks: vec![Block {
                heading_path: vec![],
                text: rows.join("\n"),
                kind: BlockKind::Records,
            }],
        };
        let chunks = chunk(&doc, SMALL);
        assert!(chunks.len() > 1);
        let rejoined: Vec<&str> = chunks.iter().flat_map(|c| c.text.lines()).collect();
        assert_eq!(
            rejoined,
            rows.iter().map(String::as_str).collect::<Vec<_>>(),
            "every row exactly once, in order"
        );
    }
}
