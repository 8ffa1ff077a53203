//! The operator's commands that work on a running deployment: `import` into a running
//! server, `backup` while it serves and `restore` into a new data dir, `doctor`, and shell
//! completions. Each runs the real binary.

use std::{path::Path, process::Output};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, serve_binary},
    knowledge_support::pdf,
};

/// Runs `companin args…` on the test server's database and data dir, with `env` on top,
/// without blocking the server running in this test's runtime.
async fn companin(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_companin"));
    command
        .args(args)
        .env_clear()
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .env("DATABASE_URL", app.database_url())
        .env("COMPANIN_EMBEDDER", "hash")
        .env("COMPANIN_LLM", "extractive")
        .env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().await.expect("companin runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("directory");
    }
    std::fs::write(path, bytes).expect("file written");
}

async fn sources(app: &TestApp) -> Vec<Value> {
    let (status, listed) =
        TestApp::send(app.rest(Method::GET, "/api/v1/knowledge/files?limit=100", &app.key)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    listed["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn import_uploads_a_directory_by_type_links_it_and_fails_loudly_on_a_broken_file() {
    let app = TestApp::spawn().await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let docs = dir.path().join("docs");
    write(
        &docs.join("returns.md"),
        b"# Returns\n\nA kettle may be returned within forty days if the lid is undamaged.\n",
    );
    write(
        &docs.join("shipping/iceland.txt"),
        b"Parcels to Iceland travel by ferry and arrive within nine working days.",
    );
    write(
        &docs.join("warranty.pdf"),
        &pdf("The grinder warranty lasts three years"),
    );
    write(
        &docs.join("broken.pdf"),
        b"%PDF-1.4\nthis is not a PDF at all",
    );
    write(&docs.join(".drafts/secret.md"), b"# Not for customers");
    write(&docs.join("logo.svg"), b"<svg/>");
    let docs = docs.display().to_string();

    let run = |args: Vec<String>| {
        let app = &app;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            companin(app, &args, &[("COMPANIN_API_KEY", app.key.as_str())]).await
        }
    };
    let import = |json: bool| {
        let mut args = vec![];
        if json {
            args.push("--json".to_owned());
        }
        args.extend(
            [
                "import",
                "--url",
                &app.address,
                "--assistant",
                &assistant,
                "--link",
                &docs,
            ]
            .map(str::to_owned),
        );
        run(args)
    };

    let first = import(true).await;
    assert!(!first.status.success(), "a failed file fails the import");
    assert!(
        stderr(&first).contains("1 of 4 files did not become READY"),
        "{}",
        stderr(&first)
    );
    let outcomes: Vec<Value> = serde_json::from_str(&stdout(&first)).expect("JSON outcomes");
    let by_name = |name: &str| {
        outcomes
            .iter()
            .find(|o| o["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {outcomes:?}"))
    };
    assert_eq!(
        outcomes.len(),
        4,
        "hidden entries and other types are skipped: {outcomes:?}"
    );
    for name in ["returns.md", "iceland.txt", "warranty.pdf"] {
        assert_eq!(by_name(name)["status"], "READY", "{outcomes:?}");
    }
    let broken = by_name("broken.pdf");
    assert_eq!(broken["status"], "FAILED");
    assert!(
        broken["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the reason is given: {broken}"
    );
    let hits = app.search(&app.key, "kettle returned lid", json!({})).await;
    assert_eq!(hits[0]["source"]["id"], by_name("returns.md")["id"]);
    let (status, rules) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/assistants/{assistant}/knowledge"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    for name in ["returns.md", "iceland.txt", "warranty.pdf", "broken.pdf"] {
        assert!(
            rules["linked"]
                .as_array()
                .is_some_and(|l| l.contains(&by_name(name)["id"])),
            "{name} linked: {rules}"
        );
    }

    // Again, as lines: nothing is uploaded twice.
    let again = import(false).await;
    assert!(!again.status.success());
    assert!(
        stdout(&again).contains("imported 4 files: 3 ready, 1 failed"),
        "{}",
        stdout(&again)
    );
    assert!(
        stderr(&again).contains("skipping 1 files of other types")
            && stderr(&again).contains("READY")
            && stderr(&again).contains("broken.pdf"),
        "a line per file: {}",
        stderr(&again)
    );
    assert_eq!(
        sources(&app).await.len(),
        4,
        "the re-run replayed its uploads"
    );

    // A key that does not work stops the import before any upload.
    let refused = companin(
        &app,
        &["import", "--url", &app.address, &docs],
        &[("COMPANIN_API_KEY", "cmp_live_nope")],
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("UNAUTHENTICATED"),
        "{}",
        stderr(&refused)
    );
    let missing = run(vec![
        "import".into(),
        "--url".into(),
        app.address.clone(),
        dir.path().join("nowhere").display().to_string(),
    ])
    .await;
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("nowhere"), "{}", stderr(&missing));
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_into_a_new_data_dir_that_answers_the_same() {
    let app = TestApp::spawn().await;
    let backup = tempfile::tempdir().expect("temp dir");
    let into = backup.path().join("nightly");
    let into_arg = into.display().to_string();
    if app.database_url().starts_with("postgres") {
        let refused = companin(&app, &["backup", &into_arg], &[]).await;
        assert!(!refused.status.success());
        assert!(stderr(&refused).contains("pg_dump"), "{}", stderr(&refused));
        return;
    }
    let source = app
        .uploaded(
            &app.key,
            "returns.md",
            "# Returns\n\nA kettle may be returned within forty days if the lid is undamaged.",
        )
        .await;

    // Taken while the server writes: messages are sent until the backup is done.
    let session = app
        .session(
            &app.key,
            json!({ "assistant_id": app.assistant(&app.key, json!({})).await }),
        )
        .await;
    let args = ["backup", into_arg.as_str()];
    let taking = companin(&app, &args, &[]);
    tokio::pin!(taking);
    let mut sent = 0;
    let taken = loop {
        let send = TestApp::send(
            app.rest(Method::POST, "/api/v1/conversations/send-message", &app.key)
                .json(&json!({ "session_id": session["id"], "message": "Can I return a kettle?" })),
        );
        tokio::select! {
            taken = &mut taking => break taken,
            (status, body) = send => {
                assert_eq!(status, StatusCode::OK, "{body}");
                sent += 1;
            }
        }
    };
    assert!(taken.status.success(), "{}", stderr(&taken));
    assert!(sent > 0, "the server wrote while the backup was taken");
    for part in [
        "backup.json",
        "companin.db",
        "lancedb",
        "uploads",
        "jwt-keys.json",
    ] {
        assert!(into.join(part).exists(), "{part} in the backup");
    }
    let twice = companin(&app, &["backup", &into_arg], &[]).await;
    assert!(!twice.status.success());
    assert!(stderr(&twice).contains("not empty"), "{}", stderr(&twice));

    let restored = tempfile::tempdir().expect("temp dir");
    let data_dir = restored.path().display().to_string();
    let database = format!("sqlite://{data_dir}/companin.db?mode=rwc");
    let fresh = [
        ("COMPANIN_DATA_DIR", data_dir.as_str()),
        ("DATABASE_URL", database.as_str()),
    ];
    let put_back = companin(&app, &["restore", &into_arg], &fresh).await;
    assert!(put_back.status.success(), "{}", stderr(&put_back));
    assert!(
        stdout(&put_back).contains("1 organizations"),
        "{}",
        stdout(&put_back)
    );
    let again = companin(&app, &["restore", &into_arg], &fresh).await;
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));

    let (_server, served) = serve_binary(&app, &fresh).await;
    let hits = served
        .search(&app.key, "kettle returned lid", json!({}))
        .await;
    assert_eq!(
        hits[0]["source"]["id"], source["id"],
        "the vectors came back"
    );
    let (status, restored_session) = TestApp::send(served.rest(
        Method::GET,
        &format!(
            "/api/v1/sessions/{}",
            session["id"].as_str().unwrap_or_default()
        ),
        &app.key,
    ))
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the session came back: {restored_session}"
    );
}

#[tokio::test]
async fn doctor_reports_each_check_and_what_to_fix_and_completions_cover_every_command() {
    let app = TestApp::spawn().await;
    let healthy = companin(&app, &["--json", "doctor"], &[]).await;
    assert!(
        healthy.status.success(),
        "{}{}",
        stdout(&healthy),
        stderr(&healthy)
    );
    let checks: Vec<Value> = serde_json::from_str(&stdout(&healthy)).expect("JSON checks");
    let check = |checks: &[Value], name: &str| {
        checks
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {checks:?}"))
    };
    for name in ["data dir", "database", "models", "vectors", "uploads"] {
        assert_eq!(check(&checks, name)["status"], "ok", "{checks:?}");
    }
    assert!(check(&checks, "outbound")["status"] != "fail", "{checks:?}");

    let broken = companin(
        &app,
        &["doctor"],
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("COMPANIN_LLM", "local"),
            ("COMPANIN_MODELS_DIR", "/nonexistent"),
        ],
    )
    .await;
    assert!(!broken.status.success(), "a failed check fails the command");
    let report = stdout(&broken);
    assert!(
        report.contains("FAIL  redis")
            && report.contains("fix: check REDIS_URL")
            && report.contains("FAIL  models")
            && report.contains("fetch-models.sh"),
        "{report}"
    );
    assert!(
        stderr(&broken).contains("checks failed"),
        "{}",
        stderr(&broken)
    );

    let completions = companin(&app, &["completions", "bash"], &[]).await;
    assert!(completions.status.success(), "{}", stderr(&completions));
    let script = stdout(&completions);
    for command in ["import", "backup", "restore", "doctor", "migrate"] {
        assert!(script.contains(command), "{command} completes");
    }
}
