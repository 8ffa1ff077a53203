use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Why a source failed, as a code clients branch on (`FILE_TOO_COMPLEX`…) beside the
/// sentence in `error`; null while nothing went wrong.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("knowledge_source")
                    .add_column(string_len_null("error_code", 24))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("knowledge_source")
                    .drop_column("error_code")
                    .to_owned(),
            )
            .await
    }
}
