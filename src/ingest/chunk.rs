//! Cutting a document into chunks that respect its structure: sections stay apart, prose is
//! split at paragraphs then sentences (with overlap), records are packed whole. When the
//! embedder reads a bounded window of tokens, a chunk and its heading path fit in it, measured
//! with the embedder's own tokenizer: what lies past the window would not be embedded.

use std::sync::Arc;

use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter};

use super::{BlockKind, Document};

/// Chunk sizes.
#[derive(Clone)]
pub struct ChunkSettings {
    /// Size to aim for, in characters.
    pub target_chars: usize,
    /// Characters a prose chunk repeats from the end of the previous one.
    pub overlap_chars: usize,
    /// The embedder's window, when it has one.
    pub window: Option<Window>,
}

/// The tokens an embedder reads of one text, and how it counts them.
#[derive(Clone)]
pub struct Window {
    /// Tokens read, special tokens aside.
    pub tokens: usize,
    /// Tokens of a text.
    pub count: Arc<dyn Fn(&str) -> usize + Send + Sync>,
}

/// The heading path may take at most this share of the window; deeper headings are kept
/// before outer ones.
const HEADING_SHARE: usize = 4;

/// A chunk's size in units of the capacity: characters, or, under a window, whichever of
/// tokens and characters (scaled to the same capacity) is nearer its limit.
#[derive(Clone)]
struct Sizer {
    window: Option<(Window, usize)>,
    target_chars: usize,
}

impl Sizer {
    /// The capacity chunks are cut to.
    fn capacity(&self) -> usize {
        self.window
            .as_ref()
            .map_or(self.target_chars, |(_, room)| *room)
    }

    /// Characters expressed in units of the capacity.
    fn scale(&self, chars: usize) -> usize {
        (chars * self.capacity()).div_ceil(self.target_chars)
    }
}

impl ChunkSizer for Sizer {
    fn size(&self, chunk: &str) -> usize {
        let chars = chunk.chars().count();
        match &self.window {
            None => chars,
            Some((window, _)) => (window.count)(chunk).max(self.scale(chars)),
        }
    }
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
    /// What is embedded instead of the text and its headings: a Q&A pair's question, so
    /// that a visitor's wording of it is found by meaning and matched strongly.
    pub embed_as: Option<String>,
}

impl Chunk {
    /// The headings joined for display (`Billing > Refunds`).
    pub fn heading(&self) -> String {
        self.heading_path.join(" > ")
    }

    /// What is embedded: the heading path gives the chunk its context.
    pub fn embedding_text(&self) -> String {
        if let Some(embedded) = &self.embed_as {
            return embedded.clone();
        }
        if self.heading_path.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.heading(), self.text)
        }
    }
}

/// The chunks of `document`.
pub fn chunk(document: &Document, settings: &ChunkSettings) -> Vec<Chunk> {
    let target = settings.target_chars.max(50);
    let mut chunks = Vec::new();
    for block in &document.blocks {
        let (heading_path, sizer) = fit(&block.heading_path, settings, target);
        let capacity = sizer.capacity();
        let overlap = sizer.scale(settings.overlap_chars.min(target / 2));
        let texts: Vec<String> = match block.kind {
            BlockKind::Prose => {
                let config = ChunkConfig::new(capacity)
                    .with_overlap(overlap.min(capacity / 2))
                    .unwrap_or_else(|_| ChunkConfig::new(capacity))
                    .with_sizer(sizer.clone());
                MarkdownSplitter::new(config)
                    .chunks(&block.text)
                    .map(str::to_owned)
                    .collect()
            }
            BlockKind::Records => pack_records(&block.text, &sizer),
        };
        for text in texts.into_iter().filter(|t| !t.trim().is_empty()) {
            chunks.push(Chunk {
                index: chunks.len(),
                text,
                heading_path: heading_path.clone(),
                embed_as: None,
            });
        }
    }
    chunks
}

/// The heading path a block's chunks carry and the sizer of its chunks: under a window, the
/// room the path leaves (a path over its share loses its outer headings).
fn fit(heading_path: &[String], settings: &ChunkSettings, target: usize) -> (Vec<String>, Sizer) {
    let Some(window) = &settings.window else {
        return (
            heading_path.to_vec(),
            Sizer {
                window: None,
                target_chars: target,
            },
        );
    };
    let mut path = heading_path.to_vec();
    let cost = |path: &[String]| {
        if path.is_empty() {
            0
        } else {
            (window.count)(&format!("{}\n", path.join(" > ")))
        }
    };
    while !path.is_empty() && cost(&path) > window.tokens / HEADING_SHARE {
        path.remove(0);
    }
    let room = window.tokens.saturating_sub(cost(&path)).max(1);
    (
        path,
        Sizer {
            window: Some((window.clone(), room)),
            target_chars: target,
        },
    )
}

/// Greedily packs whole lines up to the capacity; a single line over it is split alone.
fn pack_records(text: &str, sizer: &Sizer) -> Vec<String> {
    let capacity = sizer.capacity();
    let splitter = MarkdownSplitter::new(ChunkConfig::new(capacity).with_sizer(sizer.clone()));
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if sizer.size(line) > capacity {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.extend(splitter.chunks(line).map(str::to_owned));
            continue;
        }
        if !current.is_empty() && sizer.size(&format!("{current}\n{line}")) > capacity {
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
    use proptest::prelude::*;

    use super::*;
    use crate::ingest::{Block, extract::text};

    const SMALL: ChunkSettings = ChunkSettings {
        target_chars: 120,
        overlap_chars: 30,
        window: None,
    };

    #[test]
    fn chunks_stay_within_their_section_and_keep_its_headings() {
        let body = "Refunds are paid within thirty days of the return. ".repeat(6);
        let doc = text::markdown(&format!(
            "# Billing\n## Refunds\n{body}\n# Shipping\nShipping is free above fifty euros."
        ));
        let chunks = chunk(&doc, &SMALL);
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
    fn under_a_window_every_chunk_and_its_headings_fit_and_deep_headings_are_kept() {
        // A "tokenizer" of one token per word: the window holds 24 words.
        let words = |t: &str| t.split_whitespace().count();
        let settings = ChunkSettings {
            window: Some(Window {
                tokens: 24,
                count: Arc::new(words),
            }),
            ..SMALL
        };
        let body = "Refunds are paid within thirty days. ".repeat(12);
        let doc = text::markdown(&format!(
            "# Customer service and everything around it\n## Refunds\n{body}"
        ));
        let chunks = chunk(&doc, &settings);
        assert!(chunks.len() > 3, "{chunks:?}");
        for c in &chunks {
            assert!(words(&c.embedding_text()) <= 24, "{c:?}");
        }
        let rejoined: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert!(rejoined.contains("thirty days"));
        // The outer heading would take more than a quarter of the window: only the inner one
        // is carried.
        assert!(
            chunks.iter().all(|c| c.heading() == "Refunds"),
            "{chunks:?}"
        );
    }

    #[test]
    fn consecutive_prose_chunks_overlap() {
        let words: Vec<String> = (0..80).map(|i| format!("w{i}")).collect();
        let doc = text::plain(&words.join(" "));
        let chunks = chunk(&doc, &SMALL);
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
        let chunks = chunk(&doc, &SMALL);
        assert!(chunks.len() > 1);
        let rejoined: Vec<&str> = chunks.iter().flat_map(|c| c.text.lines()).collect();
        assert_eq!(
            rejoined,
            rows.iter().map(String::as_str).collect::<Vec<_>>(),
            "every row exactly once, in order"
        );
    }

    /// Pieces of prose, headings and code, shuffled into documents.
    fn documents() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("# Title\n"),
            Just("## Sub\n"),
            Just("word "),
            Just("Sentence ends. "),
            Just("\n\n"),
            Just("```\ncode\n```\n"),
            Just("ünïcödé "),
            Just("x"),
        ];
        proptest::collection::vec(piece, 0..400).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn any_document_chunks_into_nonblank_chunks_within_the_size(text in documents()) {
            for doc in [text::markdown(&text), text::plain(&text)] {
                for chunk in chunk(&doc, &SMALL) {
                    prop_assert!(!chunk.text.trim().is_empty(), "{chunk:?}");
                    prop_assert!(chunk.text.chars().count() <= SMALL.target_chars, "{chunk:?}");
                }
            }
        }
    }
}
