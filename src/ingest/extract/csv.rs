//! CSV: one record per row, each value named by its header.

use super::shorten;
use crate::ingest::{Block, BlockKind, Document, ExtractError};

/// Longest header name written before a value: the names repeat on every row, so a long one
/// would multiply the text.
const MAX_HEADER_CHARS: usize = 64;

/// Rows as `Header: value; Header: value` lines.
pub fn extract(bytes: &[u8]) -> Result<Document, ExtractError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ExtractError::Corrupt(format!("invalid CSV header: {e}")))?
        .iter()
        .map(|h| shorten(h.trim(), MAX_HEADER_CHARS).into_owned())
        .collect();
    let mut lines = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record
            .map_err(|e| ExtractError::Corrupt(format!("invalid CSV at row {}: {e}", i + 2)))?;
        let fields: Vec<String> = record
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(j, v)| match headers.get(j).filter(|h| !h.is_empty()) {
                Some(h) => format!("{h}: {}", v.trim()),
                None => v.trim().to_owned(),
            })
            .collect();
        if !fields.is_empty() {
            lines.push(fields.join("; "));
        }
    }
    if lines.is_empty() {
        return Err(ExtractError::Corrupt("the CSV has no data rows".into()));
    }
    Ok(Document {
        blocks: vec![Block {
            heading_path: Vec::new(),
            text: lines.join("\n"),
            kind: BlockKind::Records,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_names_its_values_by_header() {
        let doc = extract(b"sku,name,price\nA1,Kettle,25\nB2,Toaster,\n").expect("valid");
        assert_eq!(
            doc.blocks[0].text,
            "sku: A1; name: Kettle; price: 25\nsku: B2; name: Toaster"
        );
    }

    #[test]
    fn a_long_header_is_named_short_on_every_row() {
        let csv = format!("{},id\nx,1\ny,2\n", "h".repeat(1_000_000));
        let doc = extract(csv.as_bytes()).expect("valid");
        let short = format!("{}…", "h".repeat(MAX_HEADER_CHARS - 1));
        assert_eq!(
            doc.blocks[0].text,
            format!("{short}: x; id: 1\n{short}: y; id: 2")
        );
    }

    #[test]
    fn a_header_without_rows_is_refused() {
        assert!(matches!(
            extract(b"sku,name\n"),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
