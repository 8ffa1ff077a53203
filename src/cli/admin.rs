//! The operator's commands on the database: migrations, organizations and API keys.

use super::{KeyCommand, MigrateCommand, OrgCommand, cli_error};
use crate::{
    auth::{Scope, Scopes, Tenant, Work},
    config::Settings,
    db,
    services::{self, api_keys::NewApiKey, rate_limits::RateLimitInput},
    views::api_keys::ApiKey,
};

/// `migrate [up|status|down]`.
pub(super) async fn migrate_command(
    settings: &Settings,
    action: Option<MigrateCommand>,
    json: bool,
) -> anyhow::Result<()> {
    let db = db::connect(settings).await?;
    match action.unwrap_or(MigrateCommand::Up) {
        MigrateCommand::Up => {
            db::migrate(&db).await?;
            println!("database is up to date");
        }
        MigrateCommand::Status => {
            let migrations = db::migration_status(&db).await?;
            if json {
                let rows: Vec<_> = migrations
                    .iter()
                    .map(|(name, applied)| serde_json::json!({ "name": name, "applied": applied }))
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for (name, applied) in &migrations {
                    println!("{name}: {}", if *applied { "applied" } else { "pending" });
                }
            }
        }
        MigrateCommand::Down { steps } => {
            db::revert(&db, steps).await?;
            println!("reverted: {steps}");
        }
    }
    Ok(())
}

pub(super) async fn org_command(
    settings: &Settings,
    command: OrgCommand,
    json: bool,
) -> anyhow::Result<()> {
    let db = connected(settings).await?;
    match command {
        OrgCommand::List => {
            let orgs = crate::repo::organizations::all(&db).await?;
            if json {
                let rows: Vec<_> = orgs
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "id": o.id, "name": o.name, "sandbox": o.sandbox,
                            "rate_limit": o.rate_limit,
                            "rate_limit_window_seconds": o.rate_limit_window_seconds,
                            "created_at": o.created_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!("{:<37} {:<7} name", "id", "sandbox");
                for org in orgs {
                    println!("{:<37} {:<7} {}", org.id, org.sandbox, org.name);
                }
            }
        }
        OrgCommand::Create { name, sandbox } => {
            let (org, key) = services::organizations::create(&db, &name, sandbox)
                .await
                .map_err(cli_error)?;
            println!("org_id: {}", org.id);
            println!("name: {}", org.name);
            println!("key_id: {}", key.record.id);
            println!("api_key: {}", key.key);
            eprintln!(
                "The API key is shown only once: store it now. Send it as the X-API-Key header."
            );
        }
        OrgCommand::SetLimit {
            org_id,
            limit,
            window,
            default,
        } => {
            let org = operator_handle(&org_id)?;
            let change = match (default, limit) {
                (false, Some(limit)) => Some(RateLimitInput {
                    limit: i64::from(limit),
                    window_seconds: Some(i64::try_from(window.as_secs()).unwrap_or(i64::MAX)),
                }),
                _ => None,
            };
            let stored = services::rate_limits::set_for(&db, &org, change)
                .await
                .map_err(cli_error)?;
            println!("org_id: {}", stored.id);
            match (stored.rate_limit, stored.rate_limit_window_seconds) {
                (Some(limit), Some(window)) => {
                    println!("rate_limit: {limit}");
                    println!("window_seconds: {window}");
                }
                _ => println!(
                    "rate_limit: default ({} per hour)",
                    settings.rate_limits.rate_limit_per_hour
                ),
            }
        }
    }
    Ok(())
}

pub(super) async fn key_command(
    settings: &Settings,
    command: KeyCommand,
    json: bool,
) -> anyhow::Result<()> {
    let db = connected(settings).await?;
    match command {
        KeyCommand::Create {
            org,
            name,
            with_secret,
            scopes,
            expires_in,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Scopes, _>>()
                .map_err(cli_error)?;
            let org = operator_handle(&org)?;
            let input = NewApiKey {
                name,
                scopes,
                with_secret,
                expires_in,
            };
            let key = services::api_keys::issue(&db, &org, input)
                .await
                .map_err(cli_error)?;
            println!("key_id: {}", key.record.id);
            println!("api_key: {}", key.key);
            if let Some(secret) = &key.secret {
                println!("api_secret: {secret}");
            }
            println!("scopes: {}", key.record.scopes);
            if let Some(at) = key.record.expires_at {
                println!("expires_at: {}", at.to_rfc3339());
            }
            eprintln!("The key is shown only once: store it now.");
        }
        KeyCommand::List { org } => {
            let org = operator_handle(&org)?;
            let keys = services::api_keys::list_for(&db, &org)
                .await
                .map_err(cli_error)?;
            if json {
                let views: Vec<ApiKey> = keys.into_iter().map(ApiKey::from).collect();
                println!("{}", serde_json::to_string(&views)?);
            } else {
                print_keys(keys);
            }
        }
        KeyCommand::Revoke { key_id } => {
            let key_id = crate::domain::ids::KeyId::parse(&key_id).map_err(cli_error)?;
            let key = services::api_keys::revoke_by_id(&db, &key_id)
                .await
                .map_err(cli_error)?;
            println!("revoked: {}", key.id);
        }
    }
    Ok(())
}

/// The keys as a table: id, prefix, scopes, status, last use, name.
fn print_keys(keys: Vec<entity::api_key::Model>) {
    println!(
        "{:<37} {:<17} {:<17} {:<8} {:<16} name",
        "id", "prefix", "scopes", "status", "last used"
    );
    for key in keys {
        let view = ApiKey::from(key);
        let last_used = view.last_used_at.map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        );
        let status = format!("{:?}", view.status).to_lowercase();
        let scopes = view
            .scopes
            .iter()
            .map(|s| format!("{s:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(",");
        println!(
            "{:<37} {:<17} {:<17} {:<8} {:<16} {}",
            view.id.as_str(),
            view.prefix,
            scopes,
            status,
            last_used,
            view.name
        );
    }
}

/// The operator's handle on the organization `raw` names.
fn operator_handle(raw: &str) -> anyhow::Result<Tenant> {
    let org = crate::domain::ids::OrgId::parse(raw).map_err(cli_error)?;
    Ok(Tenant::for_work(org, Work::Operator))
}

async fn connected(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let db = db::connect(settings).await?;
    db::migrate(&db).await?;
    Ok(db)
}
