//! Schema migrations of Companin's relational store, one change per file.
//! Run by `companin migrate` and at the start of `companin serve`.

pub use sea_orm_migration::{migrator::MigrationStatus, prelude::*};

mod m20261121_000001_create_organization;
mod m20261121_000002_create_api_key;
mod m20261121_000003_create_assistant;
mod m20261121_000004_create_assistant_version;
mod m20261122_000005_create_knowledge_source;
mod m20261122_000006_create_ingest_job;
mod m20261122_000007_create_url_refresh;
mod m20261122_000008_create_assistant_knowledge;
mod m20261122_000009_create_conversations;
mod m20261122_000010_add_organization_rate_limit;
mod m20261122_000011_create_request_log;
mod m20261122_000012_create_oauth_app;
mod m20261122_000013_create_webhooks;
mod m20261206_000014_add_message_grounding;
mod m20261207_000015_add_source_error_code;
mod m20261207_000016_index_ingest_job_org;
mod m20261207_000017_add_message_error_code;
mod m20261207_000018_create_lease;
mod m20261208_000019_add_handoff;
mod m20261208_000020_create_knowledge_gap;
mod m20261209_000021_create_idempotency_key;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_organization::Migration),
            Box::new(m20261121_000002_create_api_key::Migration),
            Box::new(m20261121_000003_create_assistant::Migration),
            Box::new(m20261121_000004_create_assistant_version::Migration),
            Box::new(m20261122_000005_create_knowledge_source::Migration),
            Box::new(m20261122_000006_create_ingest_job::Migration),
            Box::new(m20261122_000007_create_url_refresh::Migration),
            Box::new(m20261122_000008_create_assistant_knowledge::Migration),
            Box::new(m20261122_000009_create_conversations::Migration),
            Box::new(m20261122_000010_add_organization_rate_limit::Migration),
            Box::new(m20261122_000011_create_request_log::Migration),
            Box::new(m20261122_000012_create_oauth_app::Migration),
            Box::new(m20261122_000013_create_webhooks::Migration),
            Box::new(m20261206_000014_add_message_grounding::Migration),
            Box::new(m20261207_000015_add_source_error_code::Migration),
            Box::new(m20261207_000016_index_ingest_job_org::Migration),
            Box::new(m20261207_000017_add_message_error_code::Migration),
            Box::new(m20261207_000018_create_lease::Migration),
            Box::new(m20261208_000019_add_handoff::Migration),
            Box::new(m20261208_000020_create_knowledge_gap::Migration),
            Box::new(m20261209_000021_create_idempotency_key::Migration),
        ]
    }
}
