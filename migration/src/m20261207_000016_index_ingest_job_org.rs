use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Claiming serves the organization whose jobs ran least recently first: this index finds an
/// organization's latest job without reading its history.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx-ingest_job-org_id-updated_at")
                    .table("ingest_job")
                    .col("org_id")
                    .col("updated_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx-ingest_job-org_id-updated_at")
                    .table("ingest_job")
                    .to_owned(),
            )
            .await
    }
}
