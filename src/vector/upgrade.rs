//! Bringing a chunk table an older version wrote up to the current shape: the analysed
//! terms and language columns, filled in for the rows that lack them, and the full-text index
//! over the terms in place of the one over the raw text.

use std::{collections::HashMap, sync::Arc};

use anyhow::Context;
use futures::TryStreamExt;
use lancedb::{
    Table,
    arrow::{
        arrow_array::{
            RecordBatch, RecordBatchIterator, RecordBatchReader,
            cast::AsArray,
            types::{Float32Type, Int32Type},
        },
        arrow_schema::{DataType, Field, Schema},
    },
    index::IndexType,
    query::{ExecutableQuery, QueryBase, Select},
    table::NewColumnTransform,
};

use super::{ChunkRow, TEXT_INDEX, batch, create_text_index};
use crate::language;

/// Rows written back per commit while filling in terms.
const FILL_BATCH: usize = 8_192;

/// Upgrades `table` in place; a table already current is left as it is.
pub async fn to_current(table: &Table) -> anyhow::Result<()> {
    let schema = table.schema().await?;
    if schema.field_with_name(batch::TERMS).is_err() {
        let added = Arc::new(Schema::new(vec![
            Field::new(batch::TERMS, DataType::Utf8, true),
            Field::new(batch::LANGUAGE, DataType::Utf8, true),
        ]));
        let result = table
            .add_columns()
            .transform(NewColumnTransform::AllNulls(added))
            .execute()
            .await;
        // Another replica may have added them meanwhile.
        if let Err(e) = result
            && table.schema().await?.field_with_name(batch::TERMS).is_err()
        {
            return Err(e).with_context(|| format!("adding the terms of {}", table.name()));
        }
    }
    fill_terms(table).await?;
    let indices = table.list_indices().await?;
    if !indices.iter().any(|i| i.name == TEXT_INDEX) {
        create_text_index(table).await?;
    }
    for old in indices
        .iter()
        .filter(|i| i.index_type == IndexType::FTS && i.columns.iter().any(|c| c == "text"))
    {
        table
            .drop_index(&old.name)
            .await
            .with_context(|| format!("dropping the raw-text index of {}", table.name()))?;
    }
    Ok(())
}

/// Analyses the rows without terms, each source in its detected language.
async fn fill_terms(table: &Table) -> anyhow::Result<()> {
    let missing = format!("{} IS NULL", batch::TERMS);
    let stale = table.count_rows(Some(missing.clone())).await?;
    if stale == 0 {
        return Ok(());
    }
    tracing::info!(
        table = table.name(),
        rows = stale,
        "analysing the text of chunks an older version wrote"
    );
    let batches: Vec<RecordBatch> = table
        .query()
        .only_if(missing)
        .select(Select::columns(&[
            "org_id",
            "source_id",
            "chunk_index",
            "text",
            "heading",
            "vector",
        ]))
        .execute()
        .await?
        .try_collect()
        .await
        .context("reading chunks without terms")?;
    let mut by_source: HashMap<(String, String), Vec<ChunkRow>> = HashMap::new();
    let mut dimension = 0;
    for batch in &batches {
        for row in rows(batch)? {
            dimension = row.vector.len();
            by_source
                .entry((row.org_id.clone(), row.source_id.clone()))
                .or_default()
                .push(row);
        }
    }
    let mut pending = Vec::new();
    let mut pending_rows = 0;
    for rows in by_source.into_values() {
        let language = language::detect(rows.iter().map(|r| r.text.as_str()));
        pending_rows += rows.len();
        pending.push(batch::to_batch(dimension, &rows, language)?);
        if pending_rows >= FILL_BATCH {
            write_back(table, std::mem::take(&mut pending)).await?;
            pending_rows = 0;
        }
    }
    write_back(table, pending).await
}

async fn write_back(table: &Table, batches: Vec<RecordBatch>) -> anyhow::Result<()> {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(());
    };
    let reader: Box<dyn RecordBatchReader + Send> = Box::new(RecordBatchIterator::new(
        batches.into_iter().map(Ok),
        schema,
    ));
    let mut merge = table.merge_insert(&["id"]);
    merge.when_matched_update_all(None);
    merge
        .execute(reader)
        .await
        .context("writing the terms of older chunks")?;
    Ok(())
}

fn rows(batch: &RecordBatch) -> anyhow::Result<Vec<ChunkRow>> {
    let text = |name: &str| -> anyhow::Result<_> {
        Ok(batch
            .column_by_name(name)
            .with_context(|| format!("chunk without `{name}`"))?
            .as_string::<i32>())
    };
    let (org, source, body, heading) = (
        text("org_id")?,
        text("source_id")?,
        text("text")?,
        text("heading")?,
    );
    let index = batch
        .column_by_name("chunk_index")
        .context("chunk without `chunk_index`")?
        .as_primitive::<Int32Type>();
    let vectors = batch
        .column_by_name("vector")
        .context("chunk without `vector`")?
        .as_fixed_size_list();
    Ok((0..batch.num_rows())
        .map(|i| ChunkRow {
            org_id: org.value(i).to_owned(),
            source_id: source.value(i).to_owned(),
            chunk_index: index.value(i),
            text: body.value(i).to_owned(),
            heading: heading.value(i).to_owned(),
            vector: vectors
                .value(i)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use lancedb::{
        arrow::{
            arrow_array::{RecordBatchIterator, RecordBatchReader},
            arrow_schema::Schema,
        },
        index::{Index, scalar::FtsIndexBuilder},
    };

    use crate::{
        domain::ids::{OrgId, SourceId},
        vector::{SearchMode, SearchRequest, VectorStore, batch},
    };

    /// A table as the previous version wrote it: no terms, an index over the raw text.
    async fn old_table(dir: &str, org: &OrgId, source: &SourceId) -> anyhow::Result<()> {
        let db = lancedb::connect(dir).execute().await?;
        let rows: Vec<_> = [
            "Om een pakket te installeren gebruikt u het commando apt install, gevolgd door \
             de naam van het pakket dat u wilt hebben.",
            "De tijdzone van het systeem wordt ingesteld met het commando timedatectl.",
        ]
        .iter()
        .enumerate()
        .map(|(i, text)| super::ChunkRow {
            org_id: org.to_string(),
            source_id: source.to_string(),
            chunk_index: i as i32,
            text: (*text).to_owned(),
            heading: String::new(),
            vector: vec![1.0, i as f32],
        })
        .collect();
        let current = batch::to_batch(2, &rows, None)?;
        let fields: Vec<_> = current.schema().fields()[..7].to_vec();
        let old = current.project(&(0..7).collect::<Vec<_>>())?;
        let schema = std::sync::Arc::new(Schema::new(fields));
        let reader: Box<dyn RecordBatchReader + Send> =
            Box::new(RecordBatchIterator::new([Ok(old)], schema));
        let table = db.create_table("chunks_m_2", reader).execute().await?;
        table
            .create_index(&["text"], Index::FTS(FtsIndexBuilder::default()))
            .execute()
            .await?;
        Ok(())
    }

    #[tokio::test]
    async fn a_table_an_older_version_wrote_is_analysed_on_open_and_searched_by_its_language()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let uri = dir.path().display().to_string();
        let (org, source) = (OrgId::generate(), SourceId::generate());
        old_table(&uri, &org, &source).await?;

        let store = VectorStore::open(&uri, 1_000).await?;
        let request = SearchRequest {
            org: org.clone(),
            // Dutch stemming meets "pakketten" in "pakket" and "installeert" in "installeren".
            text: "Hoe installeert men pakketten?".into(),
            mode: SearchMode::Text,
            allowed: None,
            excluded: Vec::new(),
            limit: 5,
            exact: false,
            embedder_languages: None,
        };
        let hits = store
            .search("m", 2, &request, async { Ok(vec![0.0, 1.0]) })
            .await?;
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].chunk_index, 0);

        let table = store.table("m", 2).await?;
        let indices = table.list_indices().await?;
        let full_text: Vec<_> = indices
            .iter()
            .filter(|i| i.index_type == lancedb::index::IndexType::FTS)
            .map(|i| i.columns.clone())
            .collect();
        assert_eq!(full_text, [vec![batch::TERMS.to_owned()]]);
        assert_eq!(table.count_rows(Some("terms IS NULL".into())).await?, 0);
        assert_eq!(
            table.count_rows(Some("language = 'nl'".into())).await?,
            2,
            "the source's language is detected once, for all its chunks"
        );
        Ok(())
    }
}
