//! The vector store: the only module that imports lancedb.
//!
//! One table per embedding model and dimension (`chunks_<model>_<dim>`); every row carries
//! its organization and source, and every query is filtered by organization. A source's
//! chunks are replaced in one commit, so a reader sees the old chunks or the new ones, never
//! a mix or none.

mod batch;
mod maintenance;
mod search;
mod upgrade;

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use lancedb::{
    Connection, Error, Table,
    arrow::arrow_array::{RecordBatchIterator, RecordBatchReader},
    database::CreateTableMode,
    index::{Index, scalar::FtsIndexBuilder},
    table::{OptimizeAction, OptimizeOptions},
};
use tokio::sync::Mutex;

use crate::{
    domain::ids::{OrgId, SourceId},
    language,
};

pub use search::{SearchMode, SearchRequest, VectorHit};

/// Prefix of the chunk tables.
const TABLE_PREFIX: &str = "chunks_";

/// One chunk to store.
#[derive(Debug, Clone)]
pub struct ChunkRow {
    /// Owning organization.
    pub org_id: String,
    /// Source it came from.
    pub source_id: String,
    /// Position in the source.
    pub chunk_index: i32,
    /// The chunk's text (full-text indexed).
    pub text: String,
    /// Heading path, `A > B`.
    pub heading: String,
    /// Its embedding.
    pub vector: Vec<f32>,
}

/// Handle to the LanceDB database; cheap to clone.
#[derive(Clone)]
pub struct VectorStore {
    db: Connection,
    tables: Arc<Mutex<HashMap<String, Table>>>,
    /// Held by every write of this process, so that a write and the full-text index update
    /// after it never race another write: a failed index update would leave rows that a
    /// search scores with other statistics than the indexed ones.
    writing: Arc<Mutex<()>>,
    /// Rows a table needs before it gets an approximate vector index.
    index_threshold: usize,
}

impl VectorStore {
    /// Opens (creating if needed) the database at `uri`: a directory or an object-store URI
    /// (`s3://bucket/prefix`, its credentials and endpoint from the usual `AWS_*` variables).
    /// Replicas may share it: each write commits with a conditional put (lance retries on a
    /// conflict and rebases), and each table checks for other replicas' commits at most a
    /// second before it is read.
    pub async fn open(uri: &str, index_threshold: usize) -> anyhow::Result<Self> {
        let mut connect = lancedb::connect(uri).read_consistency_interval(Duration::from_secs(1));
        // An S3-compatible service on plain HTTP (a local MinIO or moto).
        let plain_http = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .is_ok_and(|endpoint| endpoint.starts_with("http://"));
        if plain_http && !uri.starts_with('/') && uri.contains("://") {
            connect = connect.storage_option("allow_http", "true");
        }
        let db = connect
            .execute()
            .await
            .with_context(|| format!("opening the vector store at {uri}"))?;
        Ok(Self {
            db,
            tables: Arc::default(),
            writing: Arc::default(),
            index_threshold,
        })
    }

    /// The table of `model` at `dimension`, created with its full-text index on first use.
    async fn table(&self, model: &str, dimension: usize) -> anyhow::Result<Table> {
        let name = table_name(model, dimension);
        let mut tables = self.tables.lock().await;
        if let Some(table) = tables.get(&name) {
            return Ok(table.clone());
        }
        let table = match self.db.open_table(&name).execute().await {
            Ok(table) => {
                upgrade::to_current(&table).await?;
                table
            }
            Err(Error::TableNotFound { .. }) => {
                let table = self
                    .db
                    .create_empty_table(&name, batch::schema(dimension)?)
                    .mode(CreateTableMode::exist_ok(|request| request))
                    .execute()
                    .await
                    .with_context(|| format!("creating vector table {name}"))?;
                create_text_index(&table).await?;
                table
            }
            Err(e) => return Err(e).with_context(|| format!("opening vector table {name}")),
        };
        tables.insert(name, table.clone());
        Ok(table)
    }

    /// How many chunk tables the store holds, each opened: the store answers and its
    /// manifests read.
    pub async fn table_count(&self) -> anyhow::Result<usize> {
        Ok(self.all_tables().await?.len())
    }

    /// Every chunk table that exists.
    async fn all_tables(&self) -> anyhow::Result<Vec<Table>> {
        let names = self
            .db
            .table_names()
            .execute()
            .await
            .context("listing vector tables")?;
        let mut tables = Vec::new();
        for name in names.into_iter().filter(|n| n.starts_with(TABLE_PREFIX)) {
            let cached = self.tables.lock().await.get(&name).cloned();
            let table = match cached {
                Some(table) => table,
                None => self
                    .db
                    .open_table(&name)
                    .execute()
                    .await
                    .with_context(|| format!("opening {name}"))?,
            };
            tables.push(table);
        }
        Ok(tables)
    }

    /// Replaces every chunk of `source` with `rows` in one commit, then drops the source's
    /// chunks from tables of other models (a re-embed with a new model).
    pub async fn replace_source(
        &self,
        model: &str,
        dimension: usize,
        org: &OrgId,
        source: &SourceId,
        rows: Vec<ChunkRow>,
    ) -> anyhow::Result<()> {
        let table = self.table(model, dimension).await?;
        let filter = source_filter(org, source);
        let _writing = self.writing.lock().await;
        // Another replica may have committed since this process last read the table:
        // writing on top of its latest version commits without a conflict to resolve.
        table
            .checkout_latest()
            .await
            .context("reading the table's latest version")?;
        if rows.is_empty() {
            table
                .delete(filter.as_str())
                .await
                .context("deleting chunks")?;
        } else {
            let language = language::detect(rows.iter().map(|r| r.text.as_str()));
            let batch = batch::to_batch(dimension, &rows, language)?;
            let schema = batch.schema();
            let reader: Box<dyn RecordBatchReader + Send> =
                Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema));
            let mut merge = table.merge_insert(&["id"]);
            merge
                .when_matched_update_all(None)
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(Some(filter.clone()));
            merge.execute(reader).await.context("writing chunks")?;
            index_new_text(&table).await;
        }
        let current = table_name(model, dimension);
        for other in self.all_tables().await? {
            if other.name() != current {
                other
                    .delete(filter.as_str())
                    .await
                    .context("deleting chunks of an older model")?;
            }
        }
        Ok(())
    }

    /// Deletes every chunk of `source`, in every table.
    pub async fn delete_source(&self, org: &OrgId, source: &SourceId) -> anyhow::Result<()> {
        let filter = source_filter(org, source);
        let _writing = self.writing.lock().await;
        for table in self.all_tables().await? {
            table
                .delete(filter.as_str())
                .await
                .context("deleting chunks")?;
        }
        Ok(())
    }

    /// How many chunks `org` has for `source` in the table of `model`.
    pub async fn count_source(
        &self,
        model: &str,
        dimension: usize,
        org: &OrgId,
        source: &SourceId,
    ) -> anyhow::Result<usize> {
        let table = self.table(model, dimension).await?;
        Ok(table.count_rows(Some(source_filter(org, source))).await?)
    }
}

/// The full-text index, over the analysed terms: they are split at spaces and taken as
/// they are, since the analysis (stemming, stop words, folding) is done before they are
/// written and before a query is sent.
async fn create_text_index(table: &Table) -> anyhow::Result<()> {
    let params = FtsIndexBuilder::default()
        .base_tokenizer("whitespace".to_owned())
        .max_token_length(None)
        .lower_case(false)
        .stem(false)
        .remove_stop_words(false)
        .ascii_folding(false);
    table
        .create_index(&[batch::TERMS], Index::FTS(params))
        .name(TEXT_INDEX.to_owned())
        .replace(true)
        .execute()
        .await
        .with_context(|| format!("creating the full-text index of {}", table.name()))
}

/// Folds rows written since into the full-text index. Until then a search scans them one by
/// one, which made a small knowledge base slower to search than a large, maintained one, and
/// scores them with statistics of their own, which ranked a matching chunk below weaker
/// indexed ones. Tried again when another writer (another replica) committed first; left to
/// maintenance when that keeps happening.
async fn index_new_text(table: &Table) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let mut options = OptimizeOptions::default();
        options.index_names = Some(vec![TEXT_INDEX.to_owned()]);
        match table.optimize(OptimizeAction::Index(options)).await {
            Ok(_) => return,
            Err(e) if attempt == ATTEMPTS => tracing::warn!(
                table = table.name(),
                error = %e,
                "new chunks stay outside the full-text index until maintenance"
            ),
            Err(e) => tracing::info!(
                table = table.name(),
                attempt,
                error = %e,
                "updating the full-text index again"
            ),
        }
    }
}

/// The name of the full-text index.
const TEXT_INDEX: &str = "terms_idx";

/// `chunks_<model>_<dim>`, with any character a table name cannot hold replaced.
fn table_name(model: &str, dimension: usize) -> String {
    let model: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{TABLE_PREFIX}{model}_{dimension}")
}

/// A SQL string literal. Ids are validated before they get here; quoting is belt and braces.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn source_filter(org: &OrgId, source: &SourceId) -> String {
    format!(
        "org_id = {} AND source_id = {}",
        literal(org.as_str()),
        literal(source.as_str())
    )
}
