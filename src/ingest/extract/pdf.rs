//! PDF: the text layer, a block per page.

use crate::ingest::{Block, BlockKind, Document, ExtractError};

/// The text of each page. Scanned PDFs without a text layer are refused with a reason.
pub fn extract(bytes: &[u8]) -> Result<Document, ExtractError> {
    let pages = pdf_extract::extract_text_from_mem_by_pages(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("the PDF could not be read: {e}")))?;
    let blocks: Vec<Block> = pages
        .into_iter()
        .enumerate()
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(i, text)| Block {
            heading_path: vec![format!("Page {}", i + 1)],
            text: tidy(&text),
            kind: BlockKind::Prose,
        })
        .collect();
    if blocks.is_empty() {
        return Err(ExtractError::Corrupt(
            "the PDF has no text layer (scanned pages are not read)".into(),
        ));
    }
    Ok(Document { blocks })
}

/// Joins the hard-wrapped lines of a paragraph; keeps blank lines between paragraphs.
fn tidy(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}
