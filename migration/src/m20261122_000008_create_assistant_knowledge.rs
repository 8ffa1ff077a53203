use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("assistant_knowledge")
                    .col(string("assistant_id"))
                    .col(string("source_id"))
                    .col(string("org_id"))
                    .col(string_len("mode", 8))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("assistant_id").col("source_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-assistant_knowledge-assistant_id")
                            .from("assistant_knowledge", "assistant_id")
                            .to("assistant", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-assistant_knowledge-source_id")
                            .from("assistant_knowledge", "source_id")
                            .to("knowledge_source", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("assistant_knowledge").to_owned())
            .await
    }
}
