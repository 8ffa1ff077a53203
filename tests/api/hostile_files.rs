//! Files built to hurt the server: each fails (or is read within bounds) with the limit it
//! hit, the server stays up, and another organization's file is not kept waiting behind them.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use companin::services::sandbox::samples::pdf_of;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut object = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    object.extend_from_slice(data);
    object.extend_from_slice(b"\nendstream");
    object
}

/// A one-page PDF whose page draws `content` with `resources`, and `more` objects from 5 on.
fn page_pdf(resources: &str, content: Vec<u8>, more: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources {resources} >>"
        )
        .into_bytes(),
        content,
    ];
    objects.extend(more);
    pdf_of(&objects)
}

/// A page that draws a form, and the form draws itself (700 bytes that recurse forever).
fn self_drawing_pdf() -> Vec<u8> {
    let resources = "<< /XObject << /X1 5 0 R >> >>";
    page_pdf(
        resources,
        stream("", b"/X1 Do"),
        vec![stream(
            &format!("/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources {resources}"),
            b"/X1 Do",
        )],
    )
}

/// A page whose content stream is 2 MB that inflate to 2 GiB.
fn inflating_pdf() -> Vec<u8> {
    let mut deflated = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..2048 {
        deflated.write_all(&zeros).expect("deflate");
    }
    let data = deflated.finish().expect("deflate");
    page_pdf("<< >>", stream("/Filter /FlateDecode", &data), Vec::new())
}

/// A PNG header that declares 2³¹−1 × 2³¹−1 pixels.
fn absurd_png() -> Vec<u8> {
    let mut png = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    png.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    png.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png
}

/// A CSV whose header is 1 MB of column names, over rows that fill every column.
fn wide_csv() -> Vec<u8> {
    let columns = 125_000;
    let header: Vec<String> = (0..columns).map(|i| format!("c{i:06}")).collect();
    let row = vec!["1"; columns].join(",");
    format!("{}\n{}\n", header.join(","), vec![row; 5].join("\n")).into_bytes()
}

/// Waits (longer than `settled`) until the source leaves PENDING/PROCESSING.
async fn settled_within(app: &TestApp, key: &str, id: &str, limit: Duration) -> Value {
    let query =
        "query($id: ID!) { knowledgeSource(id: $id) { status error errorCode chunkCount } }";
    let started = Instant::now();
    while started.elapsed() < limit {
        let source = app.gql_ok(key, query, json!({ "id": id })).await["knowledgeSource"].clone();
        if source["status"] == "READY" || source["status"] == "FAILED" {
            return source;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("source {id} did not settle within {limit:?}");
}

fn id(created: &Value) -> String {
    created["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn each_hostile_file_ends_with_the_limit_it_hit_and_the_server_keeps_indexing() {
    let app = TestApp::spawn().await;
    let expanding_json = format!(
        "{{\"{}\": [{}]}}",
        "k".repeat(20_000),
        (0..10_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "form.pdf",
            self_drawing_pdf(),
            "FILE_TOO_COMPLEX",
            "refers to itself",
        ),
        (
            "bomb.pdf",
            inflating_pdf(),
            "FILE_TOO_COMPLEX",
            "MiB of memory",
        ),
        (
            "wide.csv",
            wide_csv(),
            "FILE_TOO_COMPLEX",
            "characters of text",
        ),
        (
            "deep.json",
            format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            "FILE_TOO_COMPLEX",
            "128 levels",
        ),
        (
            "line.txt",
            "lorem ipsum ".repeat(2 << 20).into_bytes(),
            "FILE_TOO_COMPLEX",
            "characters of text",
        ),
        ("huge.png", absurd_png(), "FILE_TOO_COMPLEX", "megapixels"),
        // Read, within bounds: the 20 KB key is written short before each of its values.
        ("expanding.json", expanding_json.into_bytes(), "", ""),
    ];
    let mut uploaded = Vec::new();
    for (name, bytes, code, says) in cases {
        let (status, created) = app.upload(&app.key, name, bytes, None).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {created}");
        uploaded.push((name, id(&created), code, says, Instant::now()));
    }
    for (name, id, code, says, at) in uploaded {
        let source = settled_within(&app, &app.key, &id, Duration::from_secs(120)).await;
        eprintln!(
            "{name}: {} {} in {:?}",
            source["status"],
            source["errorCode"],
            at.elapsed()
        );
        if code.is_empty() {
            assert_eq!(source["status"], "READY", "{name}: {source}");
            let chunks = source["chunkCount"].as_i64().unwrap_or_default();
            assert!((1..3_000).contains(&chunks), "{name}: {source}");
            continue;
        }
        assert_eq!(
            (&source["status"], &source["errorCode"]),
            (&json!("FAILED"), &json!(code)),
            "{name}: {source}"
        );
        assert!(
            source["error"].as_str().is_some_and(|e| e.contains(says)),
            "{name}: {source}"
        );
    }
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    app.uploaded(
        &app.key,
        "after.txt",
        "Our shop opens at nine on Saturdays.",
    )
    .await;
}

#[tokio::test]
async fn another_organizations_file_is_indexed_before_a_long_queue_of_one_organization_drains() {
    let app = TestApp::spawn().await;
    let text = "The warranty covers parts and labour for two years. ".repeat(400);
    let mut queued = Vec::new();
    for i in 0..30 {
        let (status, created) = app
            .upload(
                &app.key,
                &format!("manual-{i}.txt"),
                text.clone().into_bytes(),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        queued.push(id(&created));
    }
    let (_, other_key) = app.create_org("Other").await;
    let other = app
        .uploaded(&other_key, "hours.txt", "We open at nine on weekdays.")
        .await;
    assert_eq!(other["status"], "READY");
    let (_, listed) =
        TestApp::send(app.rest(Method::GET, "/api/v1/knowledge/files?limit=100", &app.key)).await;
    let waiting = listed["data"]
        .as_array()
        .map(|sources| {
            sources
                .iter()
                .filter(|s| s["status"] == "PENDING" || s["status"] == "PROCESSING")
                .count()
        })
        .unwrap_or_default();
    assert!(
        waiting >= 15,
        "the other organization's one file went ahead of the queue: {waiting} of 30 still waiting"
    );
    for id in queued {
        assert_eq!(app.settled(&app.key, &id).await["status"], "READY");
    }
}
