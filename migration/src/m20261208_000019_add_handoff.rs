use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Human handoff: a conversation's state (`BOT`, `HANDED_OFF`, `CLOSED`) and its latest
/// handoff (what triggered it, the reason and note, when); messages written by a person
/// (`AGENT`, with the agent's id and name); the handoff rules of an assistant version.
/// SQLite alters one column per statement.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (
                "conversation",
                string_len("status", 12).default("BOT").to_owned(),
            ),
            ("conversation", string_len_null("handoff_trigger", 12)),
            ("conversation", text_null("handoff_reason")),
            ("conversation", text_null("handoff_note")),
            (
                "conversation",
                timestamp_with_time_zone_null("handed_off_at"),
            ),
            ("conversation", timestamp_with_time_zone_null("closed_at")),
            ("message", string_len_null("agent_id", 200)),
            ("message", string_len_null("agent_name", 200)),
            ("assistant_version", json_null("handoff")),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ("conversation", "status"),
            ("conversation", "handoff_trigger"),
            ("conversation", "handoff_reason"),
            ("conversation", "handoff_note"),
            ("conversation", "handed_off_at"),
            ("conversation", "closed_at"),
            ("message", "agent_id"),
            ("message", "agent_name"),
            ("assistant_version", "handoff"),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
