use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Why a reply failed, as a code clients branch on (`MODEL_BUSY`…) beside the sentence in
/// `error`; null for replies that did not fail.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("message")
                    .add_column(string_len_null("error_code", 24))
                    .to_owned(),
            )
            .await?;
        // Replies that failed before codes were stored: the server's stop by its sentence,
        // anything else as an internal failure.
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE message SET error_code = 'INTERRUPTED' WHERE status = 'FAILED' \
             AND error_code IS NULL \
             AND error = 'the server stopped while this reply was being generated'",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE message SET error_code = 'INTERNAL_SERVER_ERROR' \
             WHERE status = 'FAILED' AND error_code IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("message")
                    .drop_column("error_code")
                    .to_owned(),
            )
            .await
    }
}
