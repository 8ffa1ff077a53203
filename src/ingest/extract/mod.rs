//! Extractors: one per format, each turning bytes into a [`Document`]. They are synchronous
//! and CPU-bound: callers run them on the blocking pool, where a panic inside a parsing crate
//! becomes a failed source instead of a crashed server.

mod csv;
mod html;
mod image;
mod json;
mod pdf;
pub mod text;

use std::borrow::Cow;

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

/// `text` cut to at most `max` characters, an ellipsis marking the cut.
fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    if text.char_indices().nth(max).is_none() {
        return text.into();
    }
    let end = text
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    format!("{}…", &text[..end]).into()
}

fn utf8(bytes: &[u8]) -> Result<&str, ExtractError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("the text is not valid UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Pieces of every text format's structure, shuffled into documents.
    fn markup() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<div>"),
            Just("</div>"),
            Just("<p>"),
            Just("<h2>"),
            Just("</h2>"),
            Just("<a id=\"x\"/>"),
            Just("<?xml version=\"1.0\"?>"),
            Just("# "),
            Just("## "),
            Just("\n"),
            Just("\n\n"),
            Just("word "),
            Just("```"),
            Just(","),
            Just("\""),
            Just("{"),
            Just("}"),
            Just("["),
            Just("]"),
            Just(":"),
            Just("é"),
            Just("\u{0}"),
            Just("\r\n"),
            Just("| a | b |\n|---|---|\n"),
        ];
        proptest::collection::vec(piece, 0..300).prop_map(|pieces| pieces.concat())
    }

    const IN_PROCESS: [Format; 6] = [
        Format::Csv,
        Format::Json,
        Format::Html,
        Format::Markdown,
        Format::Text,
        Format::Image,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// PDFs are left out: pdf-extract panics and overflows its stack on such input,
        /// which is why every file is extracted in a child process (`ingest::isolated`).
        #[test]
        fn no_extractor_but_the_pdf_one_panics_on_any_input(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            text in markup(),
            which in 0..IN_PROCESS.len(),
        ) {
            let hints = Hints::default();
            let _ = extract(IN_PROCESS[which], &bytes, &hints);
            let _ = extract(IN_PROCESS[which], text.as_bytes(), &hints);
            let _ = super::super::sniff::sniff(&bytes, Some("x.bin"), None);
            let _ = super::super::sniff::sniff(text.as_bytes(), None, Some("text/html"));
        }
    }
}
