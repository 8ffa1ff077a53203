use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One row per authenticated request (refused ones included), for audit and analytics.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("request_log")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string_null("key_id"))
                    .col(string_null("app_id"))
                    .col(string_len("transport", 8))
                    .col(string_len("method", 8))
                    .col(string("endpoint"))
                    .col(string_len_null("operation_type", 12))
                    .col(integer("status"))
                    .col(double("latency_ms"))
                    .col(boolean("rate_limited"))
                    .col(string_null("request_id"))
                    .col(big_integer("hour"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx-request_log-org_id-id", &["org_id", "id"][..]),
            ("idx-request_log-org_id-hour", &["org_id", "hour"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table("request_log");
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("request_log").to_owned())
            .await
    }
}
