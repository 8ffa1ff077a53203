//! Visitor sessions, their contexts, conversations, messages and feedback.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn cascade(
    table: &'static str,
    column: &'static str,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk-{table}-{column}"))
        .from(table, column)
        .to(to, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(format!("idx-{table}-{}", columns.join("-")))
        .table(table);
    for column in columns {
        index.col(*column);
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("visitor_session")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string_null("assistant_id"))
                    .col(string("visitor_id"))
                    .col(string_null("external_user_id"))
                    .col(string_len("channel", 32))
                    .col(json("metadata"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade("visitor_session", "org_id", "organization"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("visitor_session", &["org_id", "id"]))
            .await?;
        manager
            .create_index(index("visitor_session", &["org_id", "external_user_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("session_context")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("session_id"))
                    .col(json("traits"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade(
                        "session_context",
                        "session_id",
                        "visitor_session",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("session_context", &["session_id", "id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("conversation")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("session_id"))
                    .col(string("assistant_id"))
                    .col(integer_null("assistant_version"))
                    .col(text_null("title"))
                    .col(string_null("external_user_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade(
                        "conversation",
                        "session_id",
                        "visitor_session",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("conversation", &["org_id", "id"]))
            .await?;
        manager
            .create_index(index("conversation", &["session_id", "id"]))
            .await?;
        manager
            .create_index(index("conversation", &["org_id", "external_user_id"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("message")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("conversation_id"))
                    .col(string_len("role", 12))
                    .col(text("content"))
                    .col(string_len("status", 12))
                    .col(string_null("reply_to"))
                    .col(integer_null("assistant_version"))
                    .col(string_null("model"))
                    .col(integer_null("prompt_tokens"))
                    .col(integer_null("completion_tokens"))
                    .col(integer_null("first_token_ms"))
                    .col(integer_null("latency_ms"))
                    .col(json("citations"))
                    .col(text_null("error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .foreign_key(&mut cascade("message", "conversation_id", "conversation"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("message", &["conversation_id", "id"]))
            .await?;
        manager
            .create_index(index("message", &["status", "updated_at"]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("feedback")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("conversation_id"))
                    .col(string_null("message_id"))
                    .col(integer("rating"))
                    .col(text_null("comment"))
                    .col(string_len("actor_type", 12))
                    .col(string_null("actor_id"))
                    .col(string_null("actor_name"))
                    .col(json("actor_metadata"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade("feedback", "conversation_id", "conversation"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("feedback", &["conversation_id", "id"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "feedback",
            "message",
            "conversation",
            "session_context",
            "visitor_session",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
