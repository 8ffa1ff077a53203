//! The `companin` command line: serve, migrate, organizations, keys, import, backup and
//! restore, doctor, completions, schema, chat, and the `extract` child the server runs for
//! each file.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

mod admin;
mod backup;
mod doctor;
mod import;
mod serve;

use crate::{config::Settings, error::AppError, graphql, http, ingest::isolated, telemetry};

/// Companin: customer-facing AI assistants behind one GraphQL API.
#[derive(Debug, Parser)]
#[command(name = "companin", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./companin.toml when present).
    #[arg(long, global = true, env = "COMPANIN_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print JSON instead of lines (org list, key list, migrate status, import, doctor).
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
    /// Upload files and directories (recursively, by type) to a running server and wait
    /// until each is indexed; exits non-zero when any failed.
    Import {
        /// The server, such as http://localhost:8080.
        #[arg(long, env = "COMPANIN_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An API key with the write scope (cmp_…).
        #[arg(long, env = "COMPANIN_API_KEY", hide_env_values = true)]
        key: String,
        /// The key's secret, for keys issued with one.
        #[arg(long, env = "COMPANIN_API_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The assistant to link the imported sources to (asst_…), with --link.
        #[arg(long, requires = "link")]
        assistant: Option<String>,
        /// Link every imported source to --assistant: once any source is linked to an
        /// assistant, it answers from its linked sources only.
        #[arg(long, requires = "assistant")]
        link: bool,
        /// Stop waiting for a file after this long, such as 10m.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
        wait: Duration,
        /// Files and directories to import.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Copy the database (a consistent snapshot, taken while serving), the vectors, the
    /// uploads and the signing keys into a new directory.
    Backup {
        /// Where the backup goes (new or empty).
        dir: PathBuf,
    },
    /// Put a backup into the data dir (stop the server first).
    Restore {
        /// A directory `companin backup` wrote.
        dir: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Check the settings, database, Redis, models, vector and blob stores and outbound
    /// access, and say what to fix; exits non-zero when a check fails.
    Doctor,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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
    if let Command::Completions { shell } = cli.command {
        // Printed without reading the configuration, so a shell's set-up never fails on it.
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "companin", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
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
    // Only the server exports traces; the other commands log.
    let exporting = matches!(cli.command, Command::Serve { .. });
    let telemetry = telemetry::init(settings.log_format, exporting)?;
    crate::tls::configure_egress(settings.egress_proxy.as_deref())?;
    let outcome = command(cli.command, settings, cli.json).await;
    telemetry.shutdown().await;
    outcome
}

async fn command(command: Command, settings: Settings, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => serve::serve(settings, demo).await,
        Command::Sandbox(SandboxCommand::Seed) => serve::seed_sandbox(settings).await,
        Command::Migrate { action } => admin::migrate_command(&settings, action, json).await,
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
        Command::Import {
            url,
            key,
            secret,
            assistant,
            link: _,
            wait,
            paths,
        } => {
            import::run(import::ImportOptions {
                url,
                key,
                secret,
                assistant,
                paths,
                wait,
                json,
            })
            .await
        }
        Command::Backup { dir } => backup::backup(&settings, &dir).await,
        Command::Restore { dir, force } => backup::restore(&settings, &dir, force).await,
        Command::Doctor => doctor::run(&settings, json).await,
        // Handled in `run`, before any configuration is read.
        Command::Completions { .. } => {
            anyhow::bail!("completions are printed before the configuration is read")
        }
        Command::Org(command) => admin::org_command(&settings, command, json).await,
        Command::Key(command) => admin::key_command(&settings, command, json).await,
        // Handled in `run`, before any runtime or configuration.
        Command::Extract { .. } => anyhow::bail!("extract runs on its own, without a server"),
    }
}

/// Client errors print their message; internal ones their cause chain.
pub(crate) fn cli_error(err: AppError) -> anyhow::Error {
    match err {
        AppError::Internal(e) => e,
        AppError::BadInput {
            field: Some(field),
            message,
        } => anyhow::anyhow!("{field}: {message}"),
        other => anyhow::anyhow!(other.message()),
    }
}
