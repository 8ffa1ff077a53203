//! Keeping the chunk tables fast: a vector index once a table is large, compaction and index
//! updates so many small appends do not degrade queries, and pruning of old versions.

use anyhow::Context;
use lancedb::{
    DistanceType,
    index::{Index, scalar::BTreeIndexBuilder, vector::IvfHnswFlatIndexBuilder},
    table::{Duration, OptimizeAction},
};

use super::VectorStore;

/// Rows per IVF partition of the vector index.
const ROWS_PER_PARTITION: usize = 20_000;

impl VectorStore {
    /// One maintenance pass over every chunk table.
    pub async fn optimize(&self) -> anyhow::Result<()> {
        for table in self.all_tables().await? {
            let rows = table.count_rows(None).await?;
            let indices = table.list_indices().await?;
            let indexed = |column: &str| {
                indices
                    .iter()
                    .any(|i| i.columns.iter().any(|c| c == column))
            };
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
                for column in ["org_id", "source_id"] {
                    if !indexed(column) {
                        table
                            .create_index(&[column], Index::BTree(BTreeIndexBuilder::default()))
                            .execute()
                            .await?;
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
