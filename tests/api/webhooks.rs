//! Webhooks: every event type signed, retries with the same event id, the outbox surviving a
//! crash and honouring rollbacks, and isolation between organizations.

use std::time::Duration;

use companin::{
    auth::{Tenant, Work},
    config::{Settings, WebhookSettings},
    db,
    domain::ids::{AssistantId, OrgId},
    models::Models,
    repo,
    services::webhooks::{self, Event, Outbox},
};
use reqwest::{Method, StatusCode};
use sea_orm::TransactionTrait;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, code, start},
    ingestion::{Page, article, serve},
    knowledge_support::pdf,
    webhook_support::Receiver,
};

/// A server that may call loopback receivers and retries quickly.
async fn app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    TestApp::spawn_with(|s| {
        s.ingestion.allow_private_urls = true;
        s.webhooks.webhook_retry_base_ms = 20;
        s.webhooks.webhook_retry_max_ms = 100;
        adjust(s);
    })
    .await
}

/// A receiver subscribed to `assistant.version_promoted`, its endpoint id and secret, and an
/// assistant to promote.
async fn watching_promotions(app: &TestApp) -> (Receiver, String, String, String) {
    let receiver = Receiver::start(0).await;
    let (webhook, secret) = app
        .webhook(
            &app.key,
            &receiver.url,
            json!(["assistant.version_promoted"]),
        )
        .await;
    let assistant = app.assistant(&app.key, json!({})).await;
    (receiver, webhook, secret, assistant)
}

async fn promote_new_version(app: &TestApp, key: &str, assistant: &str, instructions: &str) {
    app.gql_ok(
        key,
        "mutation($id: ID!, $input: UpdateAssistantInput!) { updateAssistant(id: $id, input: $input) { version } }",
        json!({ "id": assistant, "input": { "instructions": instructions } }),
    )
    .await;
}

#[tokio::test]
async fn a_subscribed_endpoint_receives_every_event_type_signed_with_its_secret() {
    let app = app_with(|_| {}).await;
    let receiver = Receiver::start(0).await;
    let (status, created) = TestApp::send(
        app.rest(Method::POST, "/api/v1/webhooks/", &app.key)
            .json(&json!({ "url": receiver.url, "events": ["*"], "description": "Ops" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let webhook = created["webhook"]["id"].as_str().expect("id").to_owned();
    assert!(secret.starts_with("whsec_"));
    let (status, listed) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/webhooks/{webhook}"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["events"], json!(["*"]));
    assert!(
        listed.get("secret").is_none(),
        "never shown again: {listed}"
    );

    let check = |received: &crate::webhook_support::Received, kind: &str| {
        assert!(
            received.signed_with(&secret),
            "{kind} is signed: {:?}",
            received.headers
        );
        assert_eq!(received.json["organization_id"], app.org_id.as_str());
        assert_eq!(
            received.headers["companin-event-id"]
                .to_str()
                .expect("text"),
            received.event_id()
        );
        assert!(received.event_id().starts_with("evt_"));
        assert!(received.json["created_at"].is_string());
    };

    // assistant.version_promoted
    let assistant = app.assistant(&app.key, json!({})).await;
    promote_new_version(&app, &app.key, &assistant, "Answer briefly.").await;
    let promoted = receiver.next_of("assistant.version_promoted").await;
    check(&promoted, "assistant.version_promoted");
    assert_eq!(promoted.json["data"]["assistant_id"], assistant.as_str());
    assert_eq!(promoted.json["data"]["version"], 2);

    // knowledge.ready
    let qa = app
        .create_qa(
            &app.key,
            "Do you ship abroad?",
            "We ship to every EU country.",
        )
        .await;
    let ready = receiver.next_of("knowledge.ready").await;
    check(&ready, "knowledge.ready");
    assert_eq!(ready.json["data"]["source"]["id"], qa.as_str());
    assert_eq!(ready.json["data"]["source"]["status"], "READY");

    // knowledge.failed
    let mut broken = pdf("Warranty terms");
    broken.truncate(40);
    let (status, upload) = app.upload(&app.key, "warranty.pdf", broken, None).await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    let failed = receiver.next_of("knowledge.failed").await;
    check(&failed, "knowledge.failed");
    assert_eq!(failed.json["data"]["source"]["id"], upload["id"]);
    assert!(
        failed.json["data"]["source"]["error"].is_string(),
        "{}",
        failed.json
    );

    // url.changed (the first fetch is knowledge.ready; a refresh with new content changes)
    let page = Page::default();
    *page.body.lock().expect("lock") = article("Our depot opens at seven. ");
    let url = serve(page.clone()).await;
    let (_, source) = TestApp::send(
        app.rest(Method::POST, "/api/v1/knowledge/urls", &app.key)
            .json(&json!({ "url": url })),
    )
    .await;
    let source_id = source["id"].as_str().expect("id").to_owned();
    let first = receiver.next_of("knowledge.ready").await;
    assert_eq!(first.json["data"]["source"]["id"], source_id.as_str());
    *page.body.lock().expect("lock") = article("From June the depot opens at six. ");
    TestApp::send(app.rest(
        Method::POST,
        &format!("/api/v1/knowledge/urls/{source_id}/refresh"),
        &app.key,
    ))
    .await;
    let changed = receiver.next_of("url.changed").await;
    check(&changed, "url.changed");
    assert_eq!(changed.json["data"]["source"]["id"], source_id.as_str());
    assert_ne!(
        changed.json["data"]["content_hash"], changed.json["data"]["previous_content_hash"],
        "{}",
        changed.json
    );

    // feedback.negative (a thumbs up raises nothing)
    let session = app
        .session(&app.key, json!({ "assistant_id": assistant }))
        .await;
    let sent = app
        .say(
            &app.key,
            json!({ "sessionId": session["id"], "message": "Do you ship abroad?" }),
        )
        .await;
    let conversation = sent["reply"]["conversationId"].clone();
    let rate = "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id } }";
    app.gql_ok(
        &app.key,
        rate,
        json!({ "input": { "conversationId": conversation, "rating": 5 } }),
    )
    .await;
    let negative = app
        .gql_ok(
            &app.key,
            rate,
            json!({ "input": { "conversationId": conversation, "rating": 1, "comment": "Wrong country list" } }),
        )
        .await;
    let feedback = receiver.next_of("feedback.negative").await;
    check(&feedback, "feedback.negative");
    assert_eq!(
        feedback.json["data"]["feedback"]["id"],
        negative["submitFeedback"]["id"]
    );
    assert_eq!(
        feedback.json["data"]["feedback"]["comment"],
        "Wrong country list"
    );
    assert_eq!(feedback.json["data"]["assistant_id"], assistant.as_str());

    // testWebhook answers after its attempt; a rotation keeps the old secret signing for a while
    let rotated = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { rotateWebhookSecret(id: $id, keepPreviousSeconds: 3600) { secret webhook { previousSecretExpiresAt } } }",
            json!({ "id": webhook }),
        )
        .await["rotateWebhookSecret"]
        .clone();
    let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["webhook"]["previousSecretExpiresAt"].is_string());
    let tested = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { testWebhook(id: $id) { status attemptCount attempts { statusCode } event { type } } }",
            json!({ "id": webhook }),
        )
        .await["testWebhook"]
        .clone();
    assert_eq!(tested["status"], "SUCCEEDED", "{tested}");
    assert_eq!(tested["attempts"][0]["statusCode"], 200);
    let ping = receiver.next_of("webhook.test").await;
    assert_eq!(ping.signature_count(), 2, "new and previous secret");
    assert!(ping.signed_with(&new_secret) && ping.signed_with(&secret));

    let deliveries = app.deliveries(&app.key, &webhook).await;
    let kinds: Vec<&str> = deliveries
        .iter()
        .map(|d| d["event"]["type"].as_str().unwrap_or_default())
        .collect();
    for kind in [
        "assistant.version_promoted",
        "knowledge.ready",
        "knowledge.failed",
        "url.changed",
        "feedback.negative",
        "webhook.test",
    ] {
        assert!(kinds.contains(&kind), "{kind} listed: {kinds:?}");
    }
    assert_eq!(
        kinds.iter().filter(|k| **k == "feedback.negative").count(),
        1,
        "only the rating of 1 is negative"
    );
}

#[tokio::test]
async fn the_rate_limit_events_are_sent_once_per_window() {
    let app = app_with(|s| s.webhooks.webhook_workers = 1).await;
    let receiver = Receiver::start(0).await;
    let (webhook, secret) = app
        .webhook(
            &app.key,
            &receiver.url,
            json!(["rate_limit.approaching", "rate_limit.exceeded"]),
        )
        .await;
    let viewer = || app.rest(Method::GET, "/api/v1/viewer", &app.key);
    // A window other than the default hour starts a count of its own; pick one with at
    // least a minute left so the test does not straddle two windows.
    let now = chrono::Utc::now().timestamp();
    let window = [3000, 2700, 2400]
        .into_iter()
        .find(|w| now % w < w - 60)
        .expect("one of the windows has a minute left");
    app.gql_ok(
        &app.key,
        "mutation($input: SetRateLimitInput!) { setRateLimit(input: $input) { limit } }",
        json!({ "input": { "limit": 10, "windowSeconds": window } }),
    )
    .await;
    let mut refused = 0;
    for _ in 0..15 {
        if viewer().send().await.expect("sent").status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 5, "the limit holds");

    let approaching = receiver.next().await;
    assert_eq!(approaching.event_type(), "rate_limit.approaching");
    assert!(approaching.signed_with(&secret));
    assert_eq!(approaching.json["data"]["limit"], 10);
    assert_eq!(approaching.json["data"]["used"], 8, "80 % of 10");
    assert_eq!(approaching.json["data"]["threshold"], 0.8);
    let exceeded = receiver.next().await;
    assert_eq!(exceeded.event_type(), "rate_limit.exceeded");
    assert!(exceeded.json["data"]["retry_after_seconds"].as_u64() > Some(0));

    // Every further request is refused, so a sentinel is written straight to the outbox:
    // one dispatcher sends in order, so a second alert would arrive before it.
    let db = db::connect(&app.settings).await.expect("db");
    companin::runtime::outbox::emit_now(
        &db,
        Outbox::from_settings(&app.settings.webhooks),
        &Tenant::for_work(OrgId::from_db(app.org_id.clone()), Work::Governance),
        Event::rate_limit_exceeded(&companin::limiter::Decision {
            allowed: false,
            policy: companin::limiter::Policy {
                limit: 0,
                window_seconds: 1,
            },
            remaining: 0,
            count: 0,
            reset_at: 0,
            reset_after: 1,
        }),
    )
    .await
    .expect("sentinel written");
    let sentinel = receiver.next().await;
    assert_eq!(
        sentinel.json["data"]["limit"], 0,
        "no second alert in the same window: {}",
        sentinel.json
    );
    let _ = webhook;
}

#[tokio::test]
async fn a_receiver_that_fails_three_times_gets_the_same_event_again_and_retries_end() {
    let app = app_with(|s| s.webhooks.webhook_retry_window_seconds = 2).await;
    let flaky = Receiver::start(3).await;
    let (webhook, secret) = app
        .webhook(&app.key, &flaky.url, json!(["assistant.version_promoted"]))
        .await;
    let down = Receiver::start(usize::MAX).await;
    let (dead_end, _) = app
        .webhook(&app.key, &down.url, json!(["assistant.version_promoted"]))
        .await;
    let assistant = app.assistant(&app.key, json!({})).await;
    promote_new_version(&app, &app.key, &assistant, "Be kind.").await;

    let attempts: Vec<_> = {
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(flaky.next().await);
        }
        seen
    };
    let answered: Vec<u16> = attempts.iter().map(|r| r.answered).collect();
    assert_eq!(answered, vec![500, 500, 500, 200]);
    assert!(
        attempts
            .iter()
            .all(|r| r.event_id() == attempts[0].event_id())
    );
    assert!(
        attempts.iter().all(|r| r.body == attempts[0].body),
        "the same body"
    );
    assert!(attempts.iter().all(|r| r.signed_with(&secret)));

    let delivery = wait_for(&app, &webhook, |d| d["status"] == "SUCCEEDED").await;
    assert_eq!(delivery["attemptCount"], 4);
    let codes: Vec<&Value> = delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(
        codes,
        vec![&json!(500), &json!(500), &json!(500), &json!(200)]
    );

    // Re-sent by hand: once more, same event id.
    let id = delivery["id"].as_str().expect("id");
    let (status, resent) = TestApp::send(app.rest(
        Method::POST,
        &format!("/api/v1/webhook-deliveries/{id}/resend"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{resent}");
    assert_eq!(flaky.next().await.event_id(), attempts[0].event_id());

    // An endpoint that never answers 2xx is given up once the retry window closes.
    let given_up = wait_for(&app, &dead_end, |d| d["status"] == "FAILED").await;
    assert!(given_up["attemptCount"].as_i64() > Some(1), "{given_up}");
    assert_eq!(given_up["lastStatusCode"], 500);
    assert!(given_up["nextAttemptAt"].is_null());
}

/// Polls an endpoint's first delivery until `done`.
async fn wait_for(app: &TestApp, webhook: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        if let Some(delivery) = app.deliveries(&app.key, webhook).await.first()
            && done(delivery)
        {
            return delivery.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the delivery of {webhook} did not settle: {:?}",
        app.deliveries(&app.key, webhook).await
    );
}

#[tokio::test]
async fn an_event_committed_before_a_crash_is_delivered_after_the_restart() {
    let app = app_with(|s| s.webhooks.webhook_workers = 0).await;
    let (receiver, webhook, secret, assistant) = watching_promotions(&app).await;

    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let crashing = start(
        app.settings.clone(),
        Models::local_defaults(),
        Some(doomed.handle().clone()),
    )
    .await;
    promote_new_version(&app.at(crashing), &app.key, &assistant, "Say hello.").await;
    doomed.shutdown_background();
    let pending = app.deliveries(&app.key, &webhook).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["status"], "PENDING", "nobody sent it yet");

    let restarted = Settings {
        webhooks: WebhookSettings {
            webhook_workers: 1,
            ..app.settings.clone().webhooks
        },
        ..app.settings.clone()
    };
    start(restarted, Models::local_defaults(), None).await;
    let received = receiver.next().await;
    assert_eq!(received.event_type(), "assistant.version_promoted");
    assert_eq!(
        received.event_id(),
        pending[0]["event"]["id"].as_str().expect("id")
    );
    assert!(received.signed_with(&secret));
}

#[tokio::test]
async fn a_change_that_rolls_back_sends_nothing() {
    let app = app_with(|s| s.webhooks.webhook_workers = 1).await;
    let (receiver, webhook, _, assistant) = watching_promotions(&app).await;
    let draft = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { updateAssistant(id: $id, input: { instructions: \"Draft\" }, promote: false) { id version } }",
            json!({ "id": assistant }),
        )
        .await["updateAssistant"]
        .clone();

    // The promotion and its event are written in one transaction, which rolls back.
    let db = db::connect(&app.settings).await.expect("db");
    let org = Tenant::for_work(OrgId::from_db(app.org_id.clone()), Work::Operator);
    let id = AssistantId::from_db(assistant.clone());
    let txn = db.begin().await.expect("transaction");
    repo::assistants::set_live(&txn, &org, &id, draft["id"].as_str().expect("id"))
        .await
        .expect("promoted in the transaction");
    let event = Event::version_promoted(&assistant, draft["id"].as_str().expect("id"), 2, None);
    let written = webhooks::emit(
        &txn,
        Outbox::from_settings(&app.settings.webhooks),
        &org,
        event,
    )
    .await
    .expect("event written in the transaction");
    assert!(written.is_some(), "an endpoint subscribes");
    txn.rollback().await.expect("rolled back");

    let live = app
        .gql_ok(
            &app.key,
            "query($id: ID!) { assistant(id: $id) { version } }",
            json!({ "id": assistant }),
        )
        .await;
    assert_eq!(live["assistant"]["version"], 1, "{live}");
    promote_new_version(&app, &app.key, &assistant, "Committed").await;
    let received = receiver.next().await;
    assert_eq!(
        received.json["data"]["version"], 3,
        "the first event sent is the committed one: {}",
        received.json
    );
    assert_eq!(app.deliveries(&app.key, &webhook).await.len(), 1);
}

#[tokio::test]
async fn webhooks_and_their_deliveries_are_invisible_to_other_organizations() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(0).await;

    // Without the flag, a loopback endpoint is refused like a URL source.
    let (code_, error) = app
        .gql_err(
            &app.key,
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }",
            json!({ "input": { "url": receiver.url, "events": ["knowledge.ready"] } }),
        )
        .await;
    assert_eq!(code_, "BAD_USER_INPUT", "{error}");
    assert_eq!(error["extensions"]["field"], "url");

    let app = app_with(|_| {}).await;
    let (webhook, _) = app.webhook(&app.key, &receiver.url, json!(["*"])).await;
    let (_, unknown) = app
        .gql_err(
            &app.key,
            "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret } }",
            json!({ "input": { "url": receiver.url, "events": ["knowledge.deleted"] } }),
        )
        .await;
    assert!(
        unknown["message"]
            .as_str()
            .unwrap_or_default()
            .contains("knowledge.deleted")
    );
    let tested = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { testWebhook(id: $id) { id } }",
            json!({ "id": webhook }),
        )
        .await;
    let delivery = tested["testWebhook"]["id"].as_str().expect("id").to_owned();

    let (_, other) = app.create_org("Globex").await;
    let listed = app.gql_ok(&other, "{ webhooks { id } }", json!({})).await;
    assert_eq!(listed["webhooks"], json!([]));
    for id in [&webhook, &delivery] {
        let node = app
            .gql_ok(
                &other,
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert!(node["node"].is_null(), "{id} is not visible: {node}");
    }
    for (method, path) in [
        (Method::GET, format!("/api/v1/webhooks/{webhook}")),
        (Method::PATCH, format!("/api/v1/webhooks/{webhook}")),
        (Method::DELETE, format!("/api/v1/webhooks/{webhook}")),
        (Method::POST, format!("/api/v1/webhooks/{webhook}/test")),
        (
            Method::POST,
            format!("/api/v1/webhooks/{webhook}/rotate-secret"),
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/{webhook}/deliveries"),
        ),
        (
            Method::GET,
            format!("/api/v1/webhook-deliveries/{delivery}"),
        ),
        (
            Method::POST,
            format!("/api/v1/webhook-deliveries/{delivery}/resend"),
        ),
    ] {
        let mut request = app.rest(method.clone(), &path, &other);
        if method == Method::PATCH {
            request = request.json(&json!({ "enabled": false }));
        }
        let (status, body) = TestApp::send(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(code(&body), "NOT_FOUND");
    }

    // Events of the other organization never reach this one's endpoint.
    let theirs = app.assistant(&other, json!({})).await;
    promote_new_version(&app, &other, &theirs, "Elsewhere").await;
    let ours = app.assistant(&app.key, json!({})).await;
    promote_new_version(&app, &app.key, &ours, "Here").await;
    assert_eq!(
        receiver.next_of("webhook.test").await.json["data"]["webhook_id"],
        webhook.as_str()
    );
    let promoted = receiver.next_of("assistant.version_promoted").await;
    assert_eq!(promoted.json["data"]["assistant_id"], ours.as_str());
    assert_eq!(promoted.json["organization_id"], app.org_id.as_str());

    // Managing webhooks needs the admin scope.
    let reader = app
        .issue_key(json!({ "name": "reader", "scopes": ["READ", "WRITE"] }))
        .await;
    let (code_, _) = app
        .gql_err(
            reader["key"].as_str().expect("key"),
            "{ webhooks { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code_, "FORBIDDEN");
}
