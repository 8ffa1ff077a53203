use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("ingest_job")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("source_id"))
                    .col(string_len("kind", 16))
                    .col(string_len("status", 8))
                    .col(integer("attempts").default(0))
                    .col(timestamp_with_time_zone("run_after"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-ingest_job-source_id")
                            .from("ingest_job", "source_id")
                            .to("knowledge_source", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx-ingest_job-status-run_after")
                    .table("ingest_job")
                    .col("status")
                    .col("run_after")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("ingest_job").to_owned())
            .await
    }
}
