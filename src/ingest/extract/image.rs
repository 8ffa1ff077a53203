//! Images: what can be known without a vision model (format, size) plus the caller's words.

use super::Hints;
use crate::ingest::{Block, BlockKind, Document, ExtractError};

/// Largest image read, in pixels: Pillow's threshold for a decompression bomb (a few
/// kilobytes that declare more pixels than any photo; a vision model would be asked to
/// decode them).
const MAX_PIXELS: usize = 178_956_970;

/// A description block: title, format, dimensions and the supplied description.
pub fn extract(bytes: &[u8], hints: &Hints<'_>) -> Result<Document, ExtractError> {
    let size = imagesize::blob_size(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("the image could not be read: {e}")))?;
    let pixels = size.width.saturating_mul(size.height);
    if pixels > MAX_PIXELS {
        return Err(ExtractError::TooComplex(format!(
            "the image declares {}×{} pixels; images of up to {} megapixels are read",
            size.width,
            size.height,
            MAX_PIXELS / 1_000_000
        )));
    }
    let format = infer::get(bytes)
        .map_or("image", |k| k.extension())
        .to_ascii_uppercase();
    let mut text = format!(
        "Image: {}. {format}, {}×{} pixels.",
        hints.title.unwrap_or("untitled"),
        size.width,
        size.height
    );
    if let Some(description) = hints.description.filter(|d| !d.trim().is_empty()) {
        text.push_str(&format!("\n{}", description.trim()));
    }
    Ok(Document {
        blocks: vec![Block {
            heading_path: Vec::new(),
            text,
            kind: BlockKind::Prose,
        }],
    })
}
