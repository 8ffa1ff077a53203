use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The knowledge-gap inbox: visitor questions an assistant could not answer well (no
/// passage above its minimum score, a low rating, a handoff), grouped by meaning.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("knowledge_gap")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("assistant_id"))
                    .col(string_len("status", 12))
                    .col(text("question"))
                    .col(integer("count"))
                    .col(json("reasons"))
                    .col(json("examples"))
                    .col(json("embedding"))
                    .col(string_len("embedder", 100))
                    .col(string_null("source_id"))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .col(timestamp_with_time_zone_null("resolved_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_knowledge_gap_assistant_status")
                    .table("knowledge_gap")
                    .col("org_id")
                    .col("assistant_id")
                    .col("status")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("knowledge_gap").to_owned())
            .await
    }
}
