//! Plain text and Markdown, sectioned by headings.

use super::shorten;
use crate::ingest::{Block, BlockKind, Document};

/// Longest heading kept: a section's heading path is repeated on each of its blocks and
/// chunks, so a long one would multiply the text.
const MAX_HEADING_CHARS: usize = 200;

/// Plain text: one prose block.
pub fn plain(text: &str) -> Document {
    Document {
        blocks: vec![Block {
            heading_path: Vec::new(),
            text: text.trim().to_owned(),
            kind: BlockKind::Prose,
        }],
    }
}

/// Markdown: a block per section, each with the path of headings above it. Lines inside
/// fenced code blocks are never taken for headings.
pub fn markdown(text: &str) -> Document {
    let mut blocks = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut in_fence = false;
    let flush = |current: &mut String, path: &[(usize, String)], blocks: &mut Vec<Block>| {
        let text = current.trim();
        if !text.is_empty() {
            blocks.push(Block {
                heading_path: path.iter().map(|(_, h)| h.clone()).collect(),
                text: text.to_owned(),
                kind: BlockKind::Prose,
            });
        }
        current.clear();
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        match heading(line).filter(|_| !in_fence) {
            Some((level, title)) => {
                flush(&mut current, &path, &mut blocks);
                path.retain(|(l, _)| *l < level);
                path.push((level, title));
            }
            None => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    flush(&mut current, &path, &mut blocks);
    Document { blocks }
}

/// `## Title` → (2, "Title").
fn heading(line: &str) -> Option<(usize, String)> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !rest.starts_with(' ') && !rest.starts_with('\t') {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim();
    (!title.is_empty()).then(|| (level, shorten(title, MAX_HEADING_CHARS).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_carry_the_headings_above_them() {
        let doc = markdown(
            "Intro line\n# Billing\n## Refunds\nWithin 30 days.\n## Invoices\nMonthly.\n# Shipping\nFree.\n",
        );
        let paths: Vec<_> = doc
            .blocks
            .iter()
            .map(|b| (b.heading_path.join(" > "), b.text.clone()))
            .collect();
        assert_eq!(
            paths,
            vec![
                (String::new(), "Intro line".to_owned()),
                ("Billing > Refunds".to_owned(), "Within 30 days.".to_owned()),
                ("Billing > Invoices".to_owned(), "Monthly.".to_owned()),
                ("Shipping".to_owned(), "Free.".to_owned()),
            ]
        );
    }

    #[test]
    fn hashes_in_code_fences_and_hashtags_are_not_headings() {
        let doc = markdown("# Setup\n```sh\n# install\nmake\n```\n#hashtag stays text\n");
        assert_eq!(doc.blocks.len(), 1);
        assert_eq!(doc.blocks[0].heading_path, vec!["Setup"]);
        assert!(
            doc.blocks[0].text.contains("# install") && doc.blocks[0].text.contains("#hashtag")
        );
    }
}
