use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("assistant_version")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("assistant_id"))
                    .col(integer("version"))
                    .col(string("name"))
                    .col(text("description"))
                    .col(string("tone"))
                    .col(string("language"))
                    .col(text("instructions"))
                    .col(json("task_templates"))
                    .col(double("temperature"))
                    .col(integer("max_tokens"))
                    .col(integer("top_k"))
                    .col(double("min_score"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk-assistant_version-assistant_id")
                            .from("assistant_version", "assistant_id")
                            .to("assistant", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx-assistant_version-assistant_id-version")
                    .table("assistant_version")
                    .col("assistant_id")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("assistant_version").to_owned())
            .await
    }
}
