//! Keeping the chunk tables fast: a vector index once a table is large, compaction and index
//! updates so many small appends do not degrade queries, and pruning of old versions.

use std::collections::HashSet;

use anyhow::Context;
use futures::TryStreamExt;
use lancedb::{
    DistanceType,
    arrow::arrow_array::cast::AsArray,
    index::{
        Index, IndexType,
        scalar::{BTreeIndexBuilder, BitmapIndexBuilder},
        vector::IvfHnswFlatIndexBuilder,
    },
    query::{ExecutableQuery, QueryBase, Select},
    table::{Duration, OptimizeAction},
};

use super::VectorStore;
use crate::domain::ids::{OrgId, SourceId};

/// Rows per IVF partition of the vector index. Every query searches each partition's HNSW
/// graph at the same breadth, so fewer, larger graphs are cheaper for the same recall: at 100k
/// chunks one graph answered in 10 ms where five of 20k took 24 ms (recall@10 0.97 and 0.98).
const ROWS_PER_PARTITION: usize = 100_000;

/// A filtered column, the kind of index it gets, and how to build one.
type ScalarIndex = (&'static str, IndexType, fn() -> Index);

/// The scalar index each filtered column gets: organization ids are few and every query
/// filters by one, which a bitmap answers from a cached mask (full-text leg 15 → 4 ms at 100k
/// chunks against a B-tree); source ids are many, which suits a B-tree.
const SCALAR_INDEXES: [ScalarIndex; 2] = [
    ("org_id", IndexType::Bitmap, || {
        Index::Bitmap(BitmapIndexBuilder::default())
    }),
    ("source_id", IndexType::BTree, || {
        Index::BTree(BTreeIndexBuilder::default())
    }),
];

impl VectorStore {
    /// Every (organization, source) with chunks, in any table: what the sweep for chunks of
    /// deleted sources compares with the database.
    pub async fn indexed_sources(&self) -> anyhow::Result<HashSet<(OrgId, SourceId)>> {
        let mut found = HashSet::new();
        for table in self.all_tables().await? {
            let mut batches = table
                .query()
                .select(Select::columns(&["org_id", "source_id"]))
                .execute()
                .await
                .with_context(|| format!("reading the sources of {}", table.name()))?;
            while let Some(batch) = batches.try_next().await? {
                let column = |name: &str| -> anyhow::Result<_> {
                    Ok(batch
                        .column_by_name(name)
                        .with_context(|| format!("chunk without `{name}`"))?
                        .as_string::<i32>())
                };
                let (orgs, sources) = (column("org_id")?, column("source_id")?);
                for i in 0..batch.num_rows() {
                    found.insert((
                        OrgId::from_db(orgs.value(i).to_owned()),
                        SourceId::from_db(sources.value(i).to_owned()),
                    ));
                }
            }
        }
        Ok(found)
    }

    /// One maintenance pass over every chunk table.
    pub async fn optimize(&self) -> anyhow::Result<()> {
        for table in self.all_tables().await? {
            let _writing = self.writing.lock().await;
            let rows = table.count_rows(None).await?;
            let indices = table.list_indices().await?;
            let indexed_as = |column: &str, kind: Option<&IndexType>| {
                indices.iter().any(|i| {
                    i.columns.iter().any(|c| c == column)
                        && kind.is_none_or(|kind| &i.index_type == kind)
                })
            };
            let indexed = |column: &str| indexed_as(column, None);
            if rows >= self.index_threshold && !indexed("vector") {
                let partitions = (rows / ROWS_PER_PARTITION).clamp(1, 256) as u32;
                tracing::info!(
                    table = table.name(),
                    rows,
                    partitions,
                    "building the vector index"
                );
                table
                    .create_index(
                        &["vector"],
                        Index::IvfHnswFlat(
                            IvfHnswFlatIndexBuilder::default()
                                .distance_type(DistanceType::Cosine)
                                .num_partitions(partitions)
                                .num_edges(32)
                                .ef_construction(400),
                        ),
                    )
                    .execute()
                    .await
                    .with_context(|| format!("indexing vectors of {}", table.name()))?;
            }
            if rows >= self.index_threshold / 10 {
                for (column, kind, index) in SCALAR_INDEXES {
                    if !indexed_as(column, Some(&kind)) {
                        // Named as Lance names it by default, so an index of another kind (a
                        // B-tree on `org_id` from an earlier version) is replaced, not kept
                        // beside it.
                        table
                            .create_index(&[column], index())
                            .name(format!("{column}_idx"))
                            .replace(true)
                            .execute()
                            .await
                            .with_context(|| format!("indexing {column} of {}", table.name()))?;
                    }
                }
            }
            table
                .optimize(OptimizeAction::All)
                .await
                .with_context(|| format!("optimising {}", table.name()))?;
            table
                .optimize(OptimizeAction::Prune {
                    older_than: Duration::try_hours(1),
                    delete_unverified: Some(false),
                    error_if_tagged_old_versions: None,
                })
                .await
                .with_context(|| format!("pruning {}", table.name()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use lancedb::index::{Index, IndexType, scalar::BTreeIndexBuilder};

    use crate::{
        domain::ids::{OrgId, SourceId},
        vector::{ChunkRow, VectorStore},
    };

    #[tokio::test]
    async fn maintenance_replaces_an_older_b_tree_on_org_id_with_one_bitmap() -> anyhow::Result<()>
    {
        let dir = tempfile::tempdir()?;
        let store = VectorStore::open(&dir.path().display().to_string(), 1_000).await?;
        let (org, source) = (OrgId::generate(), SourceId::generate());
        let rows = (0..200)
            .map(|i| ChunkRow {
                org_id: org.to_string(),
                source_id: source.to_string(),
                chunk_index: i,
                text: format!("chunk {i}"),
                heading: String::new(),
                vector: vec![i as f32, 1.0],
            })
            .collect();
        store.replace_source("m", 2, &org, &source, rows).await?;
        let table = store.table("m", 2).await?;
        table
            .create_index(&["org_id"], Index::BTree(BTreeIndexBuilder::default()))
            .execute()
            .await?;

        store.optimize().await?;
        store.optimize().await?;

        let on_org: Vec<IndexType> = table
            .list_indices()
            .await?
            .into_iter()
            .filter(|i| i.columns == ["org_id"])
            .map(|i| i.index_type)
            .collect();
        assert_eq!(on_org, [IndexType::Bitmap]);
        assert_eq!(store.count_source("m", 2, &org, &source).await?, 200);
        Ok(())
    }
}
