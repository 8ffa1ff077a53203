use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Answers kept for `Idempotency-Key`: a retried write with the same key and request gets the
/// first answer again instead of doing the work twice, on whichever replica it lands.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("idempotency_key")
                    .col(ColumnDef::new("org_id").string_len(64).not_null())
                    .col(ColumnDef::new("key").string_len(64).not_null())
                    .col(ColumnDef::new("fingerprint").string_len(64).not_null())
                    .col(ColumnDef::new("state").string_len(16).not_null())
                    .col(
                        ColumnDef::new("locked_until")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("status").integer().null())
                    .col(ColumnDef::new("headers").json().not_null())
                    .col(ColumnDef::new("body").blob().null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("expires_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("org_id").col("key"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx-idempotency_key-expires_at")
                    .table("idempotency_key")
                    .col("expires_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("idempotency_key").to_owned())
            .await
    }
}
