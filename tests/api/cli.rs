//! The command line, run as a user would, against the test server's database.

use std::process::{Command, Output};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

fn companin(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_companin"))
        .args(args)
        .env_clear()
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .env("DATABASE_URL", app.database_url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("companin runs")
}

/// The value of the `name: …` line a command printed.
pub fn field(output: &Output, name: &str) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
        .unwrap_or_else(|| {
            panic!(
                "no `{name}:` in {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
}

#[tokio::test]
async fn the_cli_creates_organizations_and_issues_lists_and_revokes_their_keys() {
    let app = TestApp::spawn().await;
    let org = companin(&app, &["org", "create", "--name", "Initech"]);
    assert!(
        org.status.success(),
        "{}",
        String::from_utf8_lossy(&org.stderr)
    );
    let (org_id, admin_key) = (field(&org, "org_id"), field(&org, "api_key"));
    let (status, viewer) = TestApp::send(app.rest(Method::GET, "/api/v1/viewer", &admin_key)).await;
    assert_eq!(
        (status, viewer["organization"]["name"].as_str()),
        (StatusCode::OK, Some("Initech"))
    );
    assert_eq!(
        viewer["scopes"],
        serde_json::json!(["read", "write", "admin"])
    );

    let key = companin(
        &app,
        &[
            "key",
            "create",
            "--org",
            &org_id,
            "--with-secret",
            "--scopes",
            "read",
            "--expires-in",
            "1h",
        ],
    );
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let (key_id, plaintext, secret) = (
        field(&key, "key_id"),
        field(&key, "api_key"),
        field(&key, "api_secret"),
    );
    let (status, _) = TestApp::send(
        app.rest(Method::GET, "/api/v1/assistants", &plaintext)
            .header("X-API-Secret", &secret),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let list = companin(&app, &["key", "list", "--org", &org_id]);
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains(&key_id) && !listing.contains(&plaintext),
        "{listing}"
    );

    let revoke = companin(&app, &["key", "revoke", &key_id]);
    assert!(revoke.status.success());
    let (status, _) = TestApp::send(
        app.rest(Method::GET, "/api/v1/assistants", &plaintext)
            .header("X-API-Secret", &secret),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked from the shell, refused at once"
    );
}

#[tokio::test]
async fn cli_errors_are_one_clear_line_and_a_failing_exit() {
    let app = TestApp::spawn().await;
    for (args, expected) in [
        (
            vec!["key", "create", "--org", "org_nope"],
            "organization not found",
        ),
        (
            vec![
                "key",
                "create",
                "--org",
                app.org_id.as_str(),
                "--scopes",
                "read,owner",
            ],
            "unknown scope",
        ),
        (vec!["key", "revoke", "key_nope"], "API key not found"),
        (vec!["org", "create", "--name", " "], "name"),
    ] {
        let output = companin(&app, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} fails");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    let schema = companin(&app, &["schema"]);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&schema.stdout),
        committed,
        "`companin schema` prints the committed SDL"
    );
}

#[tokio::test]
async fn settings_come_from_the_file_and_the_environment_overrides_it() {
    let app = TestApp::spawn().await;
    let cwd = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        cwd.path().join("companin.toml"),
        "data_dir = \"from-file\"\n",
    )
    .expect("config written");
    let migrate = |env: Option<(&str, &str)>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_companin"));
        command
            .arg("migrate")
            .current_dir(cwd.path())
            .env_clear()
            .env("RUST_LOG", "warn");
        if std::env::var("TEST_DATABASE_URL").is_ok() {
            command.env("DATABASE_URL", app.database_url());
        }
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        command.output().expect("companin runs")
    };
    let output = migrate(None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        cwd.path().join("from-file").is_dir(),
        "the file's data_dir is used"
    );
    let output = migrate(Some(("COMPANIN_DATA_DIR", "from-env")));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        cwd.path().join("from-env").is_dir(),
        "the environment wins over the file"
    );
    let output = migrate(Some(("COMPANIN_BIND", "not an address")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("BIND"),
        "a bad setting is named: {stderr}"
    );
}

#[tokio::test]
async fn cli_chat_prints_the_streamed_reply_and_its_sources() {
    let app = TestApp::spawn().await;
    let qa = app
        .create_qa(
            &app.key,
            "Do you deliver on Sundays?",
            "No, we deliver Monday to Saturday.",
        )
        .await;
    app.settled(&app.key, &qa).await;
    let assistant = app.assistant(&app.key, serde_json::json!({})).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_companin"))
        .args(["chat", "--url", &app.ws_url(), "--assistant", &assistant])
        .args(["--message", "Do you deliver on Sundays?"])
        .env_clear()
        .env("COMPANIN_API_KEY", &app.key)
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .output()
        .await
        .expect("companin chat runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("No, we deliver Monday to Saturday."),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("source: Do you deliver on Sundays? ({qa})")),
        "{stdout}"
    );

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_companin"))
        .args([
            "chat",
            "--url",
            &app.ws_url(),
            "--assistant",
            &assistant,
            "-m",
            "hi",
        ])
        .env_clear()
        .env("COMPANIN_API_KEY", "cmp_live_wrong")
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .output()
        .await
        .expect("companin chat runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("4403"), "{stderr}");
}

#[tokio::test]
async fn sandbox_seed_creates_a_living_sandbox_organization_and_prints_its_credentials() {
    let app = TestApp::spawn().await;
    let output = Command::new(env!("CARGO_BIN_EXE_companin"))
        .args(["sandbox", "seed"])
        .env_clear()
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .env("DATABASE_URL", app.database_url())
        .env("COMPANIN_EMBEDDER", "hash")
        .env("COMPANIN_LLM", "extractive")
        .env("RUST_LOG", "warn")
        .output()
        .expect("companin runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = field(&output, "api_key");
    assert!(key.starts_with("cmp_test_"), "{key}");
    assert!(field(&output, "chat").contains("/playground/chat.html?client_id=cmp_client_"));

    let (_, viewer) = TestApp::send(app.rest(Method::GET, "/api/v1/viewer", &key)).await;
    assert_eq!(viewer["organization"]["sandbox"], true);
    let (_, assistants) =
        TestApp::send(app.rest(Method::GET, "/api/v1/assistants?limit=10", &key)).await;
    assert_eq!(assistants["data"].as_array().map(Vec::len), Some(3));
    let (_, sources) =
        TestApp::send(app.rest(Method::GET, "/api/v1/knowledge/files?limit=20", &key)).await;
    let files = sources["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 5, "{sources}");
    assert!(
        files.iter().all(|f| f["status"] == "READY"),
        "every format indexed: {sources}"
    );
    let (_, qas) =
        TestApp::send(app.rest(Method::GET, "/api/v1/knowledge/qas?limit=20", &key)).await;
    assert_eq!(qas["data"].as_array().map(Vec::len), Some(3));
    let (_, talk) = TestApp::send(app.rest(Method::GET, "/analytics/conversations", &key)).await;
    assert_eq!(
        (talk["conversations"].as_i64(), talk["answers"].as_i64()),
        (Some(5), Some(5)),
        "{talk}"
    );
    assert!(talk["average_rating"].as_f64().is_some());
    // The shop helper's rules handed the visitors who rated 1–2 to a person, and their
    // questions wait in the knowledge-gap inbox.
    let (_, conversations) =
        TestApp::send(app.rest(Method::GET, "/api/v1/conversations?limit=10", &key)).await;
    let handed_off: Vec<&Value> = conversations["data"]
        .as_array()
        .map(|all| all.iter().filter(|c| c["status"] == "HANDED_OFF").collect())
        .unwrap_or_default();
    assert_eq!(handed_off.len(), 3, "{conversations}");
    assert!(
        handed_off
            .iter()
            .all(|c| c["handoff"]["trigger"] == "RATING")
    );
    let (_, gaps) = TestApp::send(app.rest(Method::GET, "/api/v1/knowledge-gaps", &key)).await;
    let gaps = gaps["data"].as_array().cloned().unwrap_or_default();
    let questions: i64 = gaps.iter().filter_map(|g| g["count"].as_i64()).sum();
    assert!(!gaps.is_empty() && questions == 3, "{gaps:?}");

    let (status, token) = TestApp::send(app.client.post(format!("{}/api/v1/widget/token", app.address)).json(
        &serde_json::json!({ "client_id": field(&output, "client_id"), "client_secret": field(&output, "client_secret") }),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    // The sandbox stays apart from live organizations.
    let (_, live) = TestApp::send(app.rest(Method::GET, "/api/v1/assistants", &app.key)).await;
    assert_eq!(live["data"], serde_json::json!([]));
}

#[tokio::test]
async fn the_cli_lists_organizations_and_migrations_as_json_and_reverts_and_reapplies_a_migration()
{
    let app = TestApp::spawn().await;
    let created = companin(&app, &["org", "create", "--name", "Globex"]);
    assert!(created.status.success());
    let org_id = field(&created, "org_id");

    let listed = companin(&app, &["org", "list", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let orgs: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let names: Vec<&str> = orgs
        .as_array()
        .expect("an array")
        .iter()
        .filter(|o| o["id"] == org_id.as_str())
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["Globex"]);

    let status = |app: &TestApp| {
        let out = companin(app, &["migrate", "status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON")
    };
    let before = status(&app);
    let migrations = before.as_array().expect("an array");
    assert!(migrations.len() > 20);
    assert!(migrations.iter().all(|m| m["applied"] == true), "{before}");

    let down = companin(&app, &["migrate", "down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let after = status(&app);
    let pending: Vec<&Value> = after
        .as_array()
        .expect("an array")
        .iter()
        .filter(|m| m["applied"] == false)
        .collect();
    assert_eq!(pending.len(), 1, "{after}");
    assert_eq!(pending[0]["name"], migrations.last().expect("one")["name"]);

    let up = companin(&app, &["migrate"]);
    assert!(up.status.success());
    assert_eq!(status(&app), before);
}
