//! Extractors: one per format, each turning bytes into a [`Document`]. They are synchronous
//! and CPU-bound: callers run them on the blocking pool, where a panic inside a parsing crate
//! becomes a failed source instead of a crashed server.

mod csv;
mod html;
mod image;
mod json;
mod pdf;
pub mod text;

use super::{Document, ExtractError, sniff::Format};

/// What an extractor may use besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct Hints<'a> {
    /// The source's title (file name or caller-supplied).
    pub title: Option<&'a str>,
    /// Caller-supplied description (images).
    pub description: Option<&'a str>,
    /// Address the content came from (HTML links).
    pub url: Option<&'a str>,
}

/// Extracts the text of `bytes` in `format`.
pub fn extract(format: Format, bytes: &[u8], hints: &Hints<'_>) -> Result<Document, ExtractError> {
    let document = match format {
        Format::Pdf => pdf::extract(bytes)?,
        Format::Csv => csv::extract(bytes)?,
        Format::Json => json::extract(bytes)?,
        Format::Html => html::extract(utf8(bytes)?, hints.url)?,
        Format::Markdown => text::markdown(utf8(bytes)?),
        Format::Text => text::plain(utf8(bytes)?),
        Format::Image => image::extract(bytes, hints)?,
    };
    if document.is_blank() {
        return Err(ExtractError::Corrupt("no text could be extracted".into()));
    }
    Ok(document)
}

fn utf8(bytes: &[u8]) -> Result<&str, ExtractError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("the text is not valid UTF-8: {e}")))
}
