//! The chat widget and the playground pages in headless Chromium, driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`): real clicks and typing, a streamed reply,
//! a dropped connection the widget recovers from mid-reply, a rating, and the analytics
//! charts. Screenshots are written to the test's output directory.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use companin::models::Models;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{helpers::TestApp, scripted_chat::ScriptedChat};

const CHROMIUM: &str = "/usr/bin/chromium";
const PATIENCE: Duration = Duration::from_secs(30);
/// The text of the newest assistant bubble (the first one is the greeting).
const LAST_REPLY: &str =
    "Array.from(document.querySelectorAll('.cmpw-bot .cmpw-text')).pop().textContent";

/// chromedriver on a free port, killed with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session, or `None` (with a note) where the browser is not installed.
async fn browser() -> Option<(Client, Driver, tempfile::TempDir)> {
    if !std::path::Path::new(CHROMIUM).exists()
        || Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver (see .ci/run)"
        );
        eprintln!("chromium or chromedriver is not installed: the browser tests are skipped");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut last = None;
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return Some((client, driver, profile)),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver did not accept a session: {last:?}");
}

/// Saves a screenshot in the test output directory and prints where.
async fn screenshot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let path = dir.join(format!("{name}.png"));
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(&path, png).expect("screenshot written");
    println!("screenshot: {}", path.display());
}

/// Waits until `script` (a JS expression) is truthy.
async fn until(client: &Client, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let value = client
            .execute(&format!("return !!({script});"), Vec::new())
            .await
            .expect("script runs");
        if value == Value::Bool(true) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let page = client
                .execute("return document.body.innerText;", Vec::new())
                .await
                .unwrap_or_default();
            screenshot(client, "timed-out").await;
            panic!("timed out waiting for {what}; the page says: {page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types `question` into the widget and sends it.
async fn ask(client: &Client, question: &str) {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#cmpw-input"))
        .await
        .expect("input")
        .send_keys(question)
        .await
        .expect("typed");
    client
        .find(Locator::Css(".cmpw-form button"))
        .await
        .expect("send button")
        .click()
        .await
        .expect("clicked");
}

/// A reply of 40 pieces, one every 60 ms: slow enough to drop the connection mid-reply.
fn slow_models() -> Models {
    Models {
        chat: Arc::new(ScriptedChat::numbered(40, Duration::from_millis(60))),
        ..Models::local_defaults()
    }
}

#[tokio::test]
async fn the_widget_streams_a_reply_survives_a_dropped_connection_and_takes_a_rating() {
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    let app = TestApp::spawn_with_models(|_| {}, slow_models()).await;
    let assistant = app
        .assistant(&app.key, json!({ "name": "Shop helper" }))
        .await;
    open_chat(&client, &chat_page(&app, &assistant).await).await;
    ask(&client, "Hello, are you there?").await;

    // Streaming: part of the reply shows while it is still being written…
    until(
        &client,
        "the first streamed pieces",
        &format!("{LAST_REPLY}.startsWith('t0 t1')"),
    )
    .await;
    screenshot(&client, "widget-streaming").await;
    // …then the network drops; the widget reconnects and re-attaches to the same reply.
    client
        .execute("window.companinWidget.socket.close();", Vec::new())
        .await
        .expect("socket closed");
    until(
        &client,
        "the whole reply after reconnecting",
        &format!("{LAST_REPLY}.trim().endsWith('t39')"),
    )
    .await;
    let text: String = client
        .execute(&format!("return {LAST_REPLY};"), Vec::new())
        .await
        .expect("script")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let expected: String = (0..40).map(|i| format!("t{i} ")).collect();
    assert_eq!(text, expected, "every piece once, in order");

    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(".cmpw-rate button[data-rating='5']"))
        .await
        .expect("rating buttons")
        .click()
        .await
        .expect("rated");
    until(&client, "the rating to be saved", "document.querySelector(\".cmpw-rate button[data-rating='5']\").getAttribute('aria-pressed') === 'true'").await;
    screenshot(&client, "widget-rated").await;

    let (_, conversations) =
        TestApp::send(app.rest(Method::GET, "/api/v1/conversations", &app.key)).await;
    let conversation = conversations["data"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_owned();
    let (_, feedback) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/conversations/{conversation}/feedback"),
        &app.key,
    ))
    .await;
    assert_eq!(feedback["data"][0]["rating"], 5, "{feedback}");
    assert_eq!(feedback["data"][0]["actor"]["type"], "VISITOR");

    // The analytics page draws its charts from the analytics API.
    client
        .goto(&format!(
            "{}/playground/analytics.html?key={}",
            app.address, app.key
        ))
        .await
        .expect("analytics page loads");
    until(
        &client,
        "the charts",
        "document.body.getAttribute('data-loaded') === 'true'",
    )
    .await;
    let charts = client
        .find_all(Locator::Css("figure svg"))
        .await
        .expect("charts");
    assert_eq!(charts.len(), 7);
    let ratings = client
        .find(Locator::Css("#ratings .summary"))
        .await
        .expect("summary")
        .text()
        .await
        .expect("text");
    assert!(
        ratings.contains("1 conversations") && ratings.contains("average rating 5.00"),
        "{ratings}"
    );
    screenshot(&client, "analytics").await;
    client.close().await.expect("browser closed");
}

/// A widget visitor's OAuth app on `app`, for its chat page: the page's address.
async fn chat_page(app: &TestApp, assistant: &str) -> String {
    let created = app
        .gql_ok(
            &app.key,
            "mutation($input: CreateOAuthAppInput!) { createOAuthApp(input: $input) { clientSecret app { clientId } } }",
            json!({ "input": { "name": "Playground", "allowedOrigins": [app.address], "defaultAssistantId": assistant } }),
        )
        .await;
    let client_id = created["createOAuthApp"]["app"]["clientId"]
        .as_str()
        .expect("client id");
    let secret = created["createOAuthApp"]["clientSecret"]
        .as_str()
        .expect("secret");
    format!(
        "{}/playground/chat.html?client_id={client_id}&client_secret={secret}",
        app.address
    )
}

/// Opens the chat page at `url` and waits until its widget's websocket is acknowledged.
async fn open_chat(client: &Client, url: &str) {
    client.goto(url).await.expect("chat page loads");
    until(
        client,
        "the widget's websocket",
        "window.companinWidget && window.companinWidget.acked",
    )
    .await;
}

/// A person's message in `conversation`, sent with the organization's key.
async fn agent_says(app: &TestApp, conversation: &str, content: &str) {
    app.gql_ok(
        &app.key,
        "mutation($id: ID!, $content: String!) { sendAgentMessage(conversationId: $id, content: $content, agent: { id: \"ana-7\", name: \"Ana\" }) { id } }",
        json!({ "id": conversation, "content": content }),
    )
    .await;
}

/// The role and text of each message of `conversation`, oldest first.
async fn roles_and_texts(app: &TestApp, conversation: &str) -> Vec<(String, String)> {
    let (_, messages) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/conversations/{conversation}/messages"),
        &app.key,
    ))
    .await;
    messages["data"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_widget_visitor_asks_for_a_person_and_sees_their_messages_live_and_after_a_drop() {
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let assistant = app
        .assistant(&app.key, json!({ "name": "Shop helper" }))
        .await;
    open_chat(&client, &chat_page(&app, &assistant).await).await;
    ask(&client, "Where is my parcel?").await;
    until(
        &client,
        "the reply, and the button to ask for a person",
        "!document.querySelector('.cmpw-person').hidden",
    )
    .await;
    let bot_bubbles = "document.querySelectorAll('.cmpw-bot').length";
    let bots_before: Value = client
        .execute(&format!("return {bot_bubbles};"), Vec::new())
        .await
        .expect("script");

    client
        .find(Locator::Css(".cmpw-person"))
        .await
        .expect("talk to a person")
        .click()
        .await
        .expect("clicked");
    until(
        &client,
        "the banner saying a person answers",
        "document.querySelector('.cmpw-banner').textContent === 'A person will answer here.' && document.querySelector('.cmpw-person').hidden",
    )
    .await;
    let (_, conversations) =
        TestApp::send(app.rest(Method::GET, "/api/v1/conversations", &app.key)).await;
    assert_eq!(conversations["data"][0]["status"], "HANDED_OFF");
    assert_eq!(conversations["data"][0]["handoff"]["trigger"], "VISITOR");
    let conversation = conversations["data"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_owned();

    agent_says(&app, &conversation, "Hi, I am looking it up for you.").await;
    let agent_texts =
        "Array.from(document.querySelectorAll('.cmpw-agent')).map(li => li.textContent)";
    until(
        &client,
        "the person's message, live",
        &format!("{agent_texts}.some(t => t.includes('Ana') && t.includes('I am looking it up'))"),
    )
    .await;

    // The visitor answers: stored for the person, no reply generated.
    ask(&client, "Thanks, it is order 1234").await;
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = roles_and_texts(&app, &conversation).await;
        if stored.iter().any(|(_, text)| text.contains("order 1234")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = stored
        .last()
        .map(|(role, text)| (role.as_str(), text.as_str()));
    assert_eq!(
        last,
        Some(("USER", "Thanks, it is order 1234")),
        "{stored:?}"
    );
    // The widget takes back the bubble it opened for a reply once the server says no reply
    // comes.
    until(
        &client,
        "no assistant bubble while a person answers",
        &format!("{bot_bubbles} === {bots_before}"),
    )
    .await;

    // The connection drops; what the person writes meanwhile still reaches the visitor.
    client
        .execute("window.companinWidget.socket.close();", Vec::new())
        .await
        .expect("socket closed");
    agent_says(&app, &conversation, "Found it: it arrives tomorrow.").await;
    until(
        &client,
        "the person's message written during the drop",
        &format!("{agent_texts}.some(t => t.includes('arrives tomorrow'))"),
    )
    .await;
    let shown: Value = client
        .execute(&format!("return {agent_texts}.length;"), Vec::new())
        .await
        .expect("script");
    assert_eq!(shown, json!(2), "each message once");
    screenshot(&client, "widget-handed-off").await;
    client.close().await.expect("browser closed");
}

#[tokio::test]
async fn the_widget_answers_from_the_sandbox_knowledge_and_shows_its_source() {
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    let app = TestApp::spawn().await;
    // `companin sandbox seed` against this server's database, for pages on this server.
    let seeded = std::process::Command::new(env!("CARGO_BIN_EXE_companin"))
        .args(["sandbox", "seed"])
        .env_clear()
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .env("DATABASE_URL", app.database_url())
        .env("COMPANIN_EMBEDDER", "hash")
        .env("COMPANIN_LLM", "extractive")
        .env("COMPANIN_PUBLIC_URL", &app.address)
        .env("RUST_LOG", "warn")
        .output()
        .expect("companin runs");
    let stdout = String::from_utf8_lossy(&seeded.stdout);
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let chat = stdout
        .lines()
        .find_map(|l| l.strip_prefix("chat: "))
        .expect("the chat page's link")
        .to_owned();
    assert!(chat.starts_with(&app.address), "{chat}");

    open_chat(&client, &chat).await;
    let (question, answer) = companin::services::sandbox::samples::QAS[0];
    ask(&client, question).await;
    until(
        &client,
        "the answer from the sandbox's Q&A",
        &format!("{LAST_REPLY}.trim() === {}", json!(answer)),
    )
    .await;
    until(
        &client,
        "the answer's source",
        "document.querySelector('.cmpw-sources li')",
    )
    .await;
    let sources: Value = client
        .execute(
            "return Array.from(document.querySelectorAll('.cmpw-sources li')).map(li => li.textContent);",
            Vec::new(),
        )
        .await
        .expect("script");
    assert_eq!(
        sources,
        json!([question]),
        "the Q&A pair is cited by its question"
    );
    screenshot(&client, "widget-sandbox-answer").await;
    client.close().await.expect("browser closed");
}
