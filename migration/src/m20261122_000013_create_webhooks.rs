use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Webhooks: endpoints, the outbox of events, one delivery per event and endpoint, and the
/// attempts of each delivery.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoint")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(text("url"))
                    .col(string_null("description"))
                    .col(json("event_types"))
                    .col(string("secret"))
                    .col(string_null("previous_secret"))
                    .col(timestamp_with_time_zone_null("previous_secret_expires_at"))
                    .col(boolean("enabled"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade("webhook_endpoint", "org_id", "organization"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_event")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string_len("event_type", 64))
                    .col(text("payload"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade("webhook_event", "org_id", "organization"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_delivery")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("event_id"))
                    .col(string("endpoint_id"))
                    .col(string_len("status", 10))
                    .col(integer("attempts").default(0))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(timestamp_with_time_zone("give_up_at"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(integer_null("last_status_code"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade(
                        "webhook_delivery",
                        "event_id",
                        "webhook_event",
                    ))
                    .foreign_key(&mut cascade(
                        "webhook_delivery",
                        "endpoint_id",
                        "webhook_endpoint",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_attempt")
                    .col(string("id").primary_key())
                    .col(string("org_id"))
                    .col(string("delivery_id"))
                    .col(timestamp_with_time_zone("attempted_at"))
                    .col(integer_null("status_code"))
                    .col(text_null("error"))
                    .col(integer("duration_ms"))
                    .col(text_null("response_excerpt"))
                    .foreign_key(&mut cascade(
                        "webhook_attempt",
                        "delivery_id",
                        "webhook_delivery",
                    ))
                    .to_owned(),
            )
            .await?;
        for (table, name, columns) in [
            (
                "webhook_endpoint",
                "idx-webhook_endpoint-org_id-id",
                &["org_id", "id"][..],
            ),
            (
                "webhook_delivery",
                "idx-webhook_delivery-status-next_attempt_at",
                &["status", "next_attempt_at"][..],
            ),
            (
                "webhook_delivery",
                "idx-webhook_delivery-org_id-endpoint_id-id",
                &["org_id", "endpoint_id", "id"][..],
            ),
            (
                "webhook_attempt",
                "idx-webhook_attempt-delivery_id-id",
                &["delivery_id", "id"][..],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "webhook_attempt",
            "webhook_delivery",
            "webhook_event",
            "webhook_endpoint",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// A foreign key from `table.column` to `target.id` that deletes with its target.
fn cascade(
    table: &'static str,
    column: &'static str,
    target: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk-{table}-{column}"))
        .from(table, column)
        .to(target, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}
