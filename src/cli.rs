//! The `companin` command line: serve, migrate, organizations, keys, schema, chat, and the
//! `extract` child the server runs for each file.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    auth::{Scope, Scopes, Tenant, Work},
    config::Settings,
    db,
    error::AppError,
    graphql, http,
    ingest::isolated,
    services::{self, api_keys::NewApiKey, rate_limits::RateLimitInput},
    startup::Application,
    telemetry,
    views::api_keys::ApiKey,
};

/// Companin: customer-facing AI assistants behind one GraphQL API.
#[derive(Debug, Parser)]
#[command(name = "companin", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./companin.toml when present).
    #[arg(long, global = true, env = "COMPANIN_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print JSON instead of lines (org list, key list, migrate status).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database, then serve the API (GraphQL, REST, playground).
    Serve {
        /// Also seed a sandbox organization with sample data (once per data dir) and print
        /// its key and playground links.
        #[arg(long)]
        demo: bool,
    },
    /// The sandbox organization.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Apply pending database migrations and exit (or: status, down).
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateCommand>,
    },
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the GraphQL schema (SDL) as committed in schema.graphql.
    Schema,
    /// Print the REST layer's OpenAPI document as committed in openapi.json.
    Openapi,
    /// Chat with an assistant of a running server over websocket, printing tokens as they
    /// arrive.
    Chat {
        /// The server's GraphQL websocket, such as ws://localhost:8080/graphql.
        #[arg(long, default_value = "ws://127.0.0.1:8080/graphql")]
        url: String,
        /// An API key with the write scope (cmp_…).
        #[arg(long, env = "COMPANIN_API_KEY", hide_env_values = true)]
        key: String,
        /// The key's secret, for keys issued with one.
        #[arg(long, env = "COMPANIN_API_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The assistant to talk to (asst_…).
        #[arg(long)]
        assistant: String,
        /// Your id in the customer's system (an anonymous visitor without it).
        #[arg(long)]
        external_user_id: Option<String>,
        /// Send this message, print the reply and exit (default: read lines from stdin).
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Extract one file's text: the request line and the file on stdin, the text as JSON on
    /// stdout. The server runs this in a child process for each file, under these limits.
    Extract {
        /// Address space the process may use, in MiB.
        #[arg(long, default_value_t = 1024)]
        memory_mib: u64,
        /// CPU time the process may use, in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Most characters of text the file may give.
        #[arg(long, default_value_t = 5_000_000)]
        max_chars: usize,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Apply pending migrations (what `migrate` alone does).
    Up,
    /// List every migration, applied or pending.
    Status,
    /// Revert the latest applied migrations.
    Down {
        /// How many.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// List the organizations.
    List,
    /// Create an organization and print its id and first admin key.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// A sandbox organization: its keys start with cmp_test_.
        #[arg(long)]
        sandbox: bool,
    },
    /// Override an organization's rate limit (takes effect within seconds on running
    /// servers).
    SetLimit {
        /// The organization (org_…).
        org_id: String,
        /// Requests per window.
        #[arg(long, required_unless_present = "default")]
        limit: Option<u32>,
        /// Window length, such as 1h, 15m or 30s.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
        window: Duration,
        /// Return to the server's default limit instead.
        #[arg(long, conflicts_with = "limit")]
        default: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Create a sandbox organization (cmp_test_ key) with sample assistants, knowledge in
    /// every format, sessions, conversations, feedback and a widget app; print its key and
    /// playground links.
    Seed,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Issue an API key and print it (shown once).
    Create {
        /// The organization (org_…).
        #[arg(long, value_name = "ORG_ID")]
        org: String,
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
        /// Also issue a secret, required as X-API-Secret with the key.
        #[arg(long)]
        with_secret: bool,
        /// Comma-separated scopes: read, write, admin.
        #[arg(long, value_delimiter = ',', default_value = "read,write")]
        scopes: Vec<String>,
        /// Lifetime, such as 30d, 12h or 90m; the key never expires when absent.
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
        expires_in: Option<Duration>,
    },
    /// List an organization's keys.
    List {
        /// The organization (org_…).
        #[arg(long, value_name = "ORG_ID")]
        org: String,
    },
    /// Revoke a key; it stops authenticating at once.
    Revoke {
        /// The key (key_…).
        key_id: String,
    },
}

/// Runs the command line; errors are printed as one line with a non-zero exit.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Extract {
        memory_mib,
        seconds,
        max_chars,
    } = cli.command
    {
        // One file, synchronously, without a runtime or configuration: the child's whole
        // address space is for the file.
        return isolated::child(isolated::Limits {
            memory_mib,
            seconds,
            max_chars,
        });
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log_format);
    crate::tls::configure_egress(settings.egress_proxy.as_deref())?;
    match cli.command {
        Command::Serve { demo } => serve(settings, demo).await,
        Command::Sandbox(SandboxCommand::Seed) => seed_sandbox(settings).await,
        Command::Migrate { action } => migrate_command(&settings, action, cli.json).await,
        Command::Chat {
            url,
            key,
            secret,
            assistant,
            external_user_id,
            message,
        } => {
            crate::chat_client::run(crate::chat_client::ChatOptions {
                url,
                key,
                secret,
                assistant,
                external_user_id,
                message,
            })
            .await
        }
        Command::Openapi => {
            println!("{}", http::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Schema => {
            print!("{}", graphql::sdl(&graphql::build(&settings.http, None)));
            Ok(())
        }
        Command::Org(command) => org_command(&settings, command, cli.json).await,
        Command::Key(command) => key_command(&settings, command, cli.json).await,
        // Handled in `run`, before any runtime or configuration.
        Command::Extract { .. } => anyhow::bail!("extract runs on its own, without a server"),
    }
}

/// `sandbox seed`: a sandbox organization with sample data, answered by the local models.
async fn seed_sandbox(settings: Settings) -> anyhow::Result<()> {
    let models = crate::models::Models::from_settings(&settings.models)
        .await
        .map_err(|e| anyhow::anyhow!("loading the models: {e}"))?;
    let state = crate::startup::state(settings, models).await?;
    crate::ingest::worker::spawn(&state);
    eprintln!("seeding the sandbox: indexing sample knowledge and answering sample conversations…");
    let seeded = services::sandbox::seed(&state, playground_origins(&state.settings))
        .await
        .map_err(cli_error)?;
    print_sandbox(&state.settings, &seeded);
    state.request_log.flush().await;
    Ok(())
}

/// `migrate [up|status|down]`.
async fn migrate_command(
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

async fn org_command(settings: &Settings, command: OrgCommand, json: bool) -> anyhow::Result<()> {
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

async fn key_command(settings: &Settings, command: KeyCommand, json: bool) -> anyhow::Result<()> {
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

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    tracing::info!(settings = %settings.summary(), "starting Companin");
    let app = Application::build(settings).await?;
    if demo {
        demo_sandbox(app.state().clone(), app.address());
    }
    let base = format!("http://{}", app.address());
    tracing::info!("listening on {base}");
    tracing::info!(
        "GraphQL: {base}/graphql · playground: {base}/playground · REST docs: {base}/api/v1/docs"
    );
    tracing::info!(
        "no API key yet? run `companin org create --name \"My org\"` (or `cargo run -- org create --name \"My org\"`)"
    );
    app.run_until_stopped().await
}

/// Seeds the sandbox in the background of a serving server, unless this data already has
/// one; prints its credentials when ready.
fn demo_sandbox(state: crate::state::AppState, address: std::net::SocketAddr) {
    tokio::spawn(async move {
        match services::sandbox::existing(&state.db).await {
            Ok(Some(org)) => {
                tracing::info!(org_id = %org.id, "the sandbox organization exists: issue a key with `companin key create --org {}`", org.id);
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %cli_error(e), "could not look for the sandbox");
                return;
            }
        }
        tracing::info!(
            "seeding the sandbox organization (sample knowledge, conversations, widget app)…"
        );
        let mut origins = playground_origins(&state.settings);
        let actual = format!("http://{address}");
        if !origins.contains(&actual) {
            origins.push(actual);
        }
        match services::sandbox::seed(&state, origins).await {
            Ok(seeded) => print_sandbox(&state.settings, &seeded),
            Err(e) => tracing::error!(error = %cli_error(e), "seeding the sandbox failed"),
        }
    });
}

/// The origins the playground's chat page is served from.
fn playground_origins(settings: &Settings) -> Vec<String> {
    let port = settings.http.bind.port();
    match &settings.http.public_url {
        Some(url) => vec![url.trim_end_matches('/').to_owned()],
        None if settings.http.bind.ip().is_unspecified()
            || settings.http.bind.ip().is_loopback() =>
        {
            vec![
                format!("http://127.0.0.1:{port}"),
                format!("http://localhost:{port}"),
            ]
        }
        None => vec![format!("http://{}", settings.http.bind)],
    }
}

fn print_sandbox(settings: &Settings, seeded: &services::sandbox::Seeded) {
    let base = playground_origins(settings)
        .into_iter()
        .next()
        .unwrap_or_default();
    println!("sandbox_org_id: {}", seeded.org_id);
    println!("api_key: {}", seeded.api_key);
    println!("client_id: {}", seeded.client_id);
    println!("client_secret: {}", seeded.client_secret);
    for (name, id) in &seeded.assistants {
        println!("assistant: {id} ({name})");
    }
    println!(
        "chat: {base}/playground/chat.html?client_id={}&client_secret={}",
        seeded.client_id, seeded.client_secret
    );
    println!(
        "analytics: {base}/playground/analytics.html?key={}",
        seeded.api_key
    );
    println!("graphiql: {base}/playground?key={}", seeded.api_key);
    eprintln!("The key and the client secret are shown only once: store them now.");
}

/// Client errors print their message; internal ones their cause chain.
fn cli_error(err: AppError) -> anyhow::Error {
    match err {
        AppError::Internal(e) => e,
        AppError::BadInput {
            field: Some(field),
            message,
        } => anyhow::anyhow!("{field}: {message}"),
        other => anyhow::anyhow!(other.message()),
    }
}
