//! Connecting to the relational store and migrating it.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::{Settings, redact_url};

/// Connects to the configured database, creating the SQLite file and the data dir if needed.
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
    let url = settings.database_url();
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(settings.database.database_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&url)))
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("running migrations")
}

/// Every migration by name, and whether it is applied.
pub async fn migration_status(db: &DatabaseConnection) -> anyhow::Result<Vec<(String, bool)>> {
    let migrations = Migrator::get_migration_with_status(db)
        .await
        .context("reading the applied migrations")?;
    Ok(migrations
        .iter()
        .map(|m| {
            (
                m.name().to_owned(),
                // `Applied` or `Pending` (the status type is not re-exported).
                m.status().to_string() == "Applied",
            )
        })
        .collect())
}

/// Reverts the latest `steps` applied migrations.
pub async fn revert(db: &DatabaseConnection, steps: u32) -> anyhow::Result<()> {
    Migrator::down(db, Some(steps))
        .await
        .context("reverting migrations")
}
