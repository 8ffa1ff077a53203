use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("url_refresh")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("source_id"))
                    .col(timestamp_with_time_zone("fetched_at"))
                    .col(string_len("outcome", 12))
                    .col(integer_null("http_status"))
                    .col(text_null("error"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-url_refresh-source_id")
                            .from("url_refresh", "source_id")
                            .to("knowledge_source", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx-url_refresh-source_id-id")
                    .table("url_refresh")
                    .col("source_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("url_refresh").to_owned())
            .await
    }
}
