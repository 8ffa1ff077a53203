//! `serve` and the sandbox organization.

use super::cli_error;
use crate::{config::Settings, services, startup::Application};

pub(super) async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
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

/// `sandbox seed`: a sandbox organization with sample data, answered by the local models.
pub(super) async fn seed_sandbox(settings: Settings) -> anyhow::Result<()> {
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
