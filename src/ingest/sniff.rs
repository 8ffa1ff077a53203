//! Telling what a file is from its bytes first, its name and declared type second.

use super::ExtractError;

/// The formats the extractors read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PDF with a text layer.
    Pdf,
    /// Comma-separated values with a header row.
    Csv,
    /// Any JSON document.
    Json,
    /// HTML page.
    Html,
    /// Markdown.
    Markdown,
    /// Plain text.
    Text,
    /// PNG, JPEG, GIF, WebP…
    Image,
}

impl Format {
    /// The MIME type stored on the source.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Csv => "text/csv",
            Self::Json => "application/json",
            Self::Html => "text/html",
            Self::Markdown => "text/markdown",
            Self::Text => "text/plain",
            Self::Image => "image",
        }
    }
}

/// The file name extensions of the formats read (for images, the common ones: an image is
/// known by its bytes whatever its name).
pub const EXTENSIONS: [(&str, Format); 14] = [
    ("md", Format::Markdown),
    ("markdown", Format::Markdown),
    ("txt", Format::Text),
    ("text", Format::Text),
    ("csv", Format::Csv),
    ("json", Format::Json),
    ("html", Format::Html),
    ("htm", Format::Html),
    ("pdf", Format::Pdf),
    ("png", Format::Image),
    ("jpg", Format::Image),
    ("jpeg", Format::Image),
    ("gif", Format::Image),
    ("webp", Format::Image),
];

/// The format a file name's extension names, if any.
pub fn format_of_name(filename: &str) -> Option<Format> {
    let (_, extension) = filename.rsplit_once('.')?;
    EXTENSIONS
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(extension))
        .map(|(_, format)| *format)
}

/// Detects the format of `bytes`. Magic numbers decide for binary formats; text is told
/// apart by its shape, then by the file name and the declared content type.
pub fn sniff(
    bytes: &[u8],
    filename: Option<&str>,
    declared: Option<&str>,
) -> Result<Format, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Corrupt("the file is empty".into()));
    }
    if let Some(kind) = infer::get(bytes) {
        let mime = kind.mime_type();
        return match mime {
            "application/pdf" => Ok(Format::Pdf),
            m if m.starts_with("image/") => Ok(Format::Image),
            "text/html" | "text/xml" => Ok(Format::Html),
            other => Err(ExtractError::Unsupported(format!(
                "unsupported file type {other}"
            ))),
        };
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(ExtractError::Unsupported(
            "unsupported file type: binary content that is neither PDF nor an image".into(),
        ));
    };
    let named = filename.and_then(format_of_name);
    let declared = declared.unwrap_or_default().to_ascii_lowercase();
    let start = text
        .trim_start()
        .get(..15)
        .unwrap_or(text.trim_start())
        .to_ascii_lowercase();
    Ok(
        if start.starts_with("<!doctype html")
            || start.starts_with("<html")
            || named == Some(Format::Html)
            || declared.contains("html")
        {
            Format::Html
        } else if named == Some(Format::Json)
            || declared.contains("json")
            || ((start.starts_with('{') || start.starts_with('['))
                && serde_json::from_str::<serde_json::Value>(text).is_ok())
        {
            Format::Json
        } else if named == Some(Format::Csv) || declared.contains("csv") {
            Format::Csv
        } else if named == Some(Format::Markdown) || declared.contains("markdown") {
            Format::Markdown
        } else {
            Format::Text
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_before_the_file_name() {
        assert_eq!(
            sniff(b"%PDF-1.4\n...", Some("notes.txt"), None),
            Ok(Format::Pdf)
        );
        assert_eq!(
            sniff(b"{\"a\": 1}", Some("data.txt"), None),
            Ok(Format::Json)
        );
        assert_eq!(
            sniff(b"<!DOCTYPE html><html></html>", Some("page.txt"), None),
            Ok(Format::Html)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("x.csv"), None),
            Ok(Format::Image)
        );
    }

    #[test]
    fn text_formats_fall_back_to_the_name_and_declared_type() {
        assert_eq!(sniff(b"a,b\n1,2\n", Some("t.csv"), None), Ok(Format::Csv));
        assert_eq!(
            sniff(b"a,b\n1,2\n", None, Some("text/csv")),
            Ok(Format::Csv)
        );
        assert_eq!(
            sniff(b"# Title\n\nBody", Some("README.md"), None),
            Ok(Format::Markdown)
        );
        assert_eq!(sniff(b"just words", None, None), Ok(Format::Text));
    }

    #[test]
    fn archives_binaries_and_empty_files_are_refused() {
        assert!(matches!(
            sniff(b"PK\x03\x04rest-of-zip", Some("a.pdf"), None),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            sniff(&[0xff, 0xfe, 0x00, 0x81], None, None),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            sniff(b"", None, None),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
