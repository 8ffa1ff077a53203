//! Arrow shapes of the chunk tables.

use std::sync::Arc;

use anyhow::Context;
use lancedb::arrow::{
    arrow_array::{FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray},
    arrow_schema::{DataType, Field, Schema, SchemaRef},
};

use super::ChunkRow;
use crate::language;

fn item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, true))
}

/// The schema of a table of `dimension`-long vectors.
pub fn schema(dimension: usize) -> anyhow::Result<SchemaRef> {
    let dimension = i32::try_from(dimension).context("vector dimension")?;
    Ok(Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("org_id", DataType::Utf8, false),
        Field::new("source_id", DataType::Utf8, false),
        Field::new("chunk_index", DataType::Int32, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("heading", DataType::Utf8, false),
        Field::new("vector", DataType::FixedSizeList(item(), dimension), false),
        // The full-text leg's analysed terms and the language they were analysed in; both
        // null only in rows an older version wrote, until the store fills them in.
        Field::new(TERMS, DataType::Utf8, true),
        Field::new(LANGUAGE, DataType::Utf8, true),
    ])))
}

/// The column of analysed terms, the one the full-text index covers.
pub const TERMS: &str = "terms";
/// The column of a row's language code (ISO 639-1), empty when undetermined.
pub const LANGUAGE: &str = "language";

/// The full-text terms of a row: its heading path and text, analysed in `language`.
pub fn terms(language: Option<&str>, heading: &str, text: &str) -> String {
    language::document_terms(language, &[heading, text])
}

/// Rows of one source in `language` as one record batch; every vector must be `dimension`
/// long.
pub fn to_batch(
    dimension: usize,
    rows: &[ChunkRow],
    language: Option<&str>,
) -> anyhow::Result<RecordBatch> {
    if let Some(bad) = rows.iter().find(|r| r.vector.len() != dimension) {
        anyhow::bail!(
            "a vector has {} values, the table holds {dimension}",
            bad.vector.len()
        );
    }
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.vector.iter().copied()).collect();
    let vectors = FixedSizeListArray::try_new(
        item(),
        i32::try_from(dimension)?,
        Arc::new(Float32Array::from(flat)),
        None,
    )?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}", r.source_id, r.chunk_index))
        .collect();
    Ok(RecordBatch::try_new(
        schema(dimension)?,
        vec![
            Arc::new(StringArray::from_iter_values(ids)),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.org_id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.source_id.as_str()),
            )),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.chunk_index),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.text.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.heading.as_str()),
            )),
            Arc::new(vectors),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| terms(language, &r.heading, &r.text)),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|_| language.unwrap_or_default()),
            )),
        ],
    )?)
}
