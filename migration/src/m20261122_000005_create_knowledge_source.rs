use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("knowledge_source")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string_len("kind", 8))
                    .col(text("title"))
                    .col(string_len("status", 12))
                    .col(text_null("error"))
                    .col(text_null("file_name"))
                    .col(string_null("content_type"))
                    .col(big_integer_null("byte_size"))
                    .col(string_null("storage_key"))
                    .col(text_null("description"))
                    .col(text_null("question"))
                    .col(text_null("answer"))
                    .col(json("tags"))
                    .col(text_null("url"))
                    .col(integer_null("refresh_interval_minutes"))
                    .col(text_null("etag"))
                    .col(text_null("last_modified"))
                    .col(timestamp_with_time_zone_null("last_fetched_at"))
                    .col(timestamp_with_time_zone_null("next_refresh_at"))
                    .col(string_null("content_hash"))
                    .col(text_null("summary"))
                    .col(json("keywords"))
                    .col(integer("chunk_count").default(0))
                    .col(string_null("embedding_model"))
                    .col(timestamp_with_time_zone_null("indexed_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-knowledge_source-org_id")
                            .from("knowledge_source", "org_id")
                            .to("organization", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx-knowledge_source-org_id-id")
                    .table("knowledge_source")
                    .col("org_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx-knowledge_source-next_refresh_at")
                    .table("knowledge_source")
                    .col("next_refresh_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("knowledge_source").to_owned())
            .await
    }
}
