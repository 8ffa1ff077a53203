use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Leases of periodic work that must run once across replicas (vector maintenance, webhook
/// retention): a replica runs a pass only while it holds the pass's lease.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("lease")
                    .col(
                        ColumnDef::new("name")
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new("holder").string_len(64).not_null())
                    .col(
                        ColumnDef::new("expires_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("lease").to_owned())
            .await
    }
}
