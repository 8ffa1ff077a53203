use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// How a reply's text relates to its passages (`QUOTED`, `SUPPORTED`, `TRIMMED`, `REPLACED`,
/// `UNCHECKED`); null for visitors' messages and replies that did not complete.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("message")
                    .add_column(string_null("grounding"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("message")
                    .drop_column("grounding")
                    .to_owned(),
            )
            .await
    }
}
