//! `companin doctor`: checks what a server needs — the settings and data dir, the database,
//! Redis, the models, the vector and blob stores, and outbound access — and says what to fix.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::{config::Settings, db, models::Models, storage::BlobStore, vector::VectorStore};

/// How long one outbound or Redis check may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    /// Works, but not as well as it could (a fallback model, unreachable internet).
    Warn,
    /// The server would not start, or would fail at this.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
    /// What to do about it, when it is not ok.
    fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check and prints them; an error when one failed.
pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<()> {
    crate::tls::install_crypto_provider();
    let mut checks = vec![data_dir(settings)];
    checks.push(database(settings).await);
    checks.push(redis(settings).await);
    checks.extend(models(settings).await);
    checks.push(vectors(settings).await);
    checks.push(blobs(settings).await);
    checks.push(outbound(settings).await);
    if json {
        println!("{}", serde_json::to_string(&checks)?);
    } else {
        for check in &checks {
            let status = match check.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{status:<5} {:<9} {}", check.check, check.detail);
            if let Some(fix) = &check.fix {
                println!("{:<15} fix: {fix}", "");
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", checks.len());
    }
    Ok(())
}

/// The data dir exists (or can be made) and takes files.
fn data_dir(settings: &Settings) -> Check {
    let dir = &settings.data_dir;
    let probe = dir.join(".doctor-probe");
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    match written {
        Ok(()) => Check::ok("data dir", format!("{} is writable", dir.display())),
        Err(e) => Check::fail(
            "data dir",
            format!("{} cannot be written: {e}", dir.display()),
            "point COMPANIN_DATA_DIR at a directory this user may write",
        ),
    }
}

/// The database answers and its migrations are applied.
async fn database(settings: &Settings) -> Check {
    let url = crate::config::redact_url(&settings.database_url());
    if let Some(file) = super::backup::sqlite_file(settings)
        .ok()
        .filter(|f| !f.exists())
    {
        return Check::ok(
            "database",
            format!("no database yet at {}: serve creates it", file.display()),
        );
    }
    let connected = match db::connect(settings).await {
        Ok(db) => db,
        Err(e) => {
            return Check::fail(
                "database",
                format!("{url}: {e:#}"),
                "check DATABASE_URL (and that the database server runs and accepts this user)",
            );
        }
    };
    match db::migration_status(&connected).await {
        Ok(migrations) => {
            let pending = migrations.iter().filter(|(_, applied)| !applied).count();
            if pending == 0 {
                Check::ok(
                    "database",
                    format!("{url}: {} migrations applied", migrations.len()),
                )
            } else {
                Check::warn(
                    "database",
                    format!(
                        "{url}: {pending} of {} migrations pending",
                        migrations.len()
                    ),
                    "run `companin migrate` (serve applies them at start)",
                )
            }
        }
        Err(e) => Check::fail(
            "database",
            format!("{url}: {e:#}"),
            "the database answers but its migrations do not read: it was migrated by a newer Companin (run that version), or this user may not read it",
        ),
    }
}

/// Redis answers `PING`, when configured.
async fn redis(settings: &Settings) -> Check {
    let client = match crate::startup::redis_client(settings) {
        Ok(Some(client)) => client,
        Ok(None) => {
            return Check::ok(
                "redis",
                "not configured: rate limits and reply events stay in this process (fine for one replica)",
            );
        }
        Err(e) => return Check::fail("redis", format!("{e:#}"), "fix REDIS_URL"),
    };
    let url = settings
        .redis
        .redis_url
        .as_ref()
        .map(|u| crate::config::redact_url(u.expose_secret()))
        .unwrap_or_default();
    let pinged = tokio::time::timeout(TIMEOUT, async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    })
    .await;
    match pinged {
        Ok(Ok(_)) => Check::ok("redis", format!("{url} answers")),
        Ok(Err(e)) => Check::fail(
            "redis",
            format!("{url}: {e}"),
            "check REDIS_URL, that Redis runs, and COMPANIN_REDIS_CA_FILE for a private CA",
        ),
        Err(_) => Check::fail(
            "redis",
            format!("{url}: no answer within {}s", TIMEOUT.as_secs()),
            "check that Redis runs and that this host may reach it",
        ),
    }
}

/// The models load; a fallback in use is a warning naming how to get the real one.
async fn models(settings: &Settings) -> Vec<Check> {
    match Models::from_settings(&settings.models).await {
        Ok(models) => {
            let mut checks = vec![Check::ok(
                "models",
                format!(
                    "embedder {} ({} dimensions), chat {}, summarizer {}",
                    models.embedder.id(),
                    models.embedder.dimension(),
                    models.chat.id(),
                    models.summarizer.id()
                ),
            )];
            checks.extend(models.notes.iter().map(|note| {
                Check::warn(
                    "models",
                    note.clone(),
                    format!(
                        "run {} (or set COMPANIN_MODELS_DIR to where the files are)",
                        crate::models::FETCH_COMMAND
                    ),
                )
            }));
            checks
        }
        Err(e) => vec![Check::fail(
            "models",
            e.to_string(),
            format!(
                "run {}, or configure a provider (OPENAI_API_KEY, OPENAI_BASE_URL)",
                crate::models::FETCH_COMMAND
            ),
        )],
    }
}

/// The vector store opens.
async fn vectors(settings: &Settings) -> Check {
    let uri = settings.lancedb_uri();
    let opened = async {
        let store = VectorStore::open(&uri, settings.vectors.vector_index_threshold).await?;
        store.table_count().await
    };
    match opened.await {
        Ok(tables) => Check::ok("vectors", format!("{uri}: {tables} tables read")),
        Err(e) => Check::fail(
            "vectors",
            format!("{uri}: {e:#}"),
            "check COMPANIN_LANCEDB_URI and, for s3://, the AWS_* credentials and AWS_ENDPOINT_URL",
        ),
    }
}

/// The blob store takes, gives back and deletes a file.
async fn blobs(settings: &Settings) -> Check {
    let location = settings.blob_location();
    let probed = async {
        let store = match &settings.ingestion.blob_uri {
            Some(uri) => BlobStore::open(uri)?,
            None => BlobStore::in_dir(&settings.data_dir.join("uploads"))?,
        };
        let key = "doctor/probe";
        store.put(key, b"probe").await?;
        let read = store.get(key).await?;
        store.delete(key).await?;
        anyhow::ensure!(read == b"probe", "a file written read back differently");
        anyhow::Ok(())
    };
    match probed.await {
        Ok(()) => Check::ok("uploads", format!("{location} takes files")),
        Err(e) => Check::fail(
            "uploads",
            format!("{location}: {e:#}"),
            "check COMPANIN_BLOB_URI and, for s3://, the AWS_* credentials",
        ),
    }
}

/// The model provider answers when one is configured; otherwise whether the internet is
/// reachable (URL sources and webhooks need it).
async fn outbound(settings: &Settings) -> Check {
    let client = match crate::tls::client_builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => return Check::fail("outbound", e.to_string(), "check COMPANIN_EGRESS_PROXY"),
    };
    let models = &settings.models;
    if let Some(key) = &models.openai_api_key {
        let base = models
            .openai_base_url
            .clone()
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        let answered = client
            .get(format!("{}/models", base.trim_end_matches('/')))
            .bearer_auth(key.expose_secret())
            .send()
            .await;
        return match answered {
            Ok(r) if r.status().is_success() => {
                Check::ok("outbound", format!("the model provider at {base} answers"))
            }
            // Reached, and the key accepted; not every compatible server lists its models.
            Ok(r) if matches!(r.status().as_u16(), 404 | 405) => Check::ok(
                "outbound",
                format!("the model provider at {base} answers (it lists no models)"),
            ),
            Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Check::fail(
                "outbound",
                format!(
                    "the model provider at {base} refused the key ({})",
                    r.status()
                ),
                "check OPENAI_API_KEY",
            ),
            Ok(r) => Check::warn(
                "outbound",
                format!("the model provider at {base} answered {}", r.status()),
                "check OPENAI_API_KEY and OPENAI_BASE_URL",
            ),
            Err(e) => Check::fail(
                "outbound",
                format!("cannot reach the model provider at {base}: {e}"),
                "check OPENAI_BASE_URL, the network, and COMPANIN_EGRESS_PROXY",
            ),
        };
    }
    match client.head("https://example.com/").send().await {
        Ok(_) => Check::ok(
            "outbound",
            "the internet is reachable (https://example.com)",
        ),
        Err(e) => Check::warn(
            "outbound",
            format!(
                "https://example.com is not reachable: {}",
                crate::egress::describe(&e)
            ),
            "URL sources and webhooks to the internet need outbound HTTPS: open it, or set COMPANIN_EGRESS_PROXY",
        ),
    }
}
