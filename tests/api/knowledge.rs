//! Knowledge: every file type to READY and found, failures, Q&A, scoping, isolation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, code},
    knowledge_support::{pdf, png_header},
};

fn id(source: &Value) -> String {
    source["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_file_type_becomes_ready_and_is_found_by_what_it_says() {
    let app = TestApp::spawn().await;
    let html = format!(
        "<!doctype html><html><head><title>Shipping</title><script>var tracker = 'zebra';</script></head><body><nav>Home Shop Contact</nav>\
         <article><h1>Shipping</h1><p>{}</p></article><footer>Copyright</footer></body></html>",
        "Parcels to Iceland travel by ferry and arrive within nine working days. ".repeat(5)
    );
    let files: Vec<(&str, Vec<u8>, Option<&str>, &str)> = vec![
        ("handbook.md", b"# Returns\n## Kettles\nA kettle may be returned within forty days if the lid is undamaged.\n".to_vec(), None, "kettle returned lid"),
        ("notes.txt", b"The warehouse cat is called Pixel and guards the loading bay.".to_vec(), None, "warehouse cat name"),
        ("prices.csv", b"sku,product,price\nA1,Copper teapot,79\nB2,Glass carafe,35\n".to_vec(), None, "copper teapot price"),
        ("plans.json", br#"{"plans": [{"name": "Starter", "seats": 3}, {"name": "Enterprise", "seats": 250}]}"#.to_vec(), None, "enterprise seats"),
        ("shipping.html", html.into_bytes(), None, "parcels Iceland ferry"),
        ("warranty.pdf", pdf("The espresso grinder warranty lasts thirty six months"), None, "espresso grinder warranty"),
        ("storefront.png", png_header(), Some("Photo of the Utrecht storefront with a green awning"), "Utrecht storefront awning"),
    ];
    let mut expected = Vec::new();
    for (name, bytes, description, query) in files {
        let (status, created) = app.upload(&app.key, name, bytes, description).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {created}");
        assert_eq!(created["status"], "PENDING", "{name} answers at once");
        expected.push((name, id(&created), query));
    }
    for (name, source_id, query) in &expected {
        let source = app.settled(&app.key, source_id).await;
        assert_eq!(source["status"], "READY", "{name}: {source}");
        assert!(
            source["chunkCount"].as_i64().unwrap_or_default() >= 1,
            "{name}: {source}"
        );
        assert!(
            source["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: {source}"
        );
        assert_eq!(source["embeddingModel"], "hash-v1");
        assert_eq!(source["contentHash"].as_str().map(str::len), Some(64));
        let hits = app.search(&app.key, query, json!({ "topK": 3 })).await;
        assert_eq!(
            hits.first().map(|h| h["source"]["id"].clone()),
            Some(json!(source_id)),
            "{name}: `{query}` finds it first: {hits:?}"
        );
    }
    let hits = app
        .search(&app.key, "zebra tracker", json!({ "mode": "TEXT" }))
        .await;
    assert!(
        hits.iter()
            .all(|h| !h["text"].as_str().unwrap_or_default().contains("zebra")),
        "scripts are not content"
    );
    let hits = app
        .search(&app.key, "copper teapot", json!({ "topK": 1 }))
        .await;
    assert!(
        hits[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("product: Copper teapot; price: 79"),
        "CSV rows carry their headers"
    );
}

#[tokio::test]
async fn a_file_uploaded_over_graphql_multipart_is_indexed() {
    let app = TestApp::spawn().await;
    let operations = json!({
        "query": "mutation($file: Upload!) { uploadKnowledgeFile(file: $file, title: \"Onboarding\") { id status title fileName } }",
        "variables": { "file": null }
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.file"] }).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(
                b"New staff receive a laptop and a badge on their first day.".to_vec(),
            )
            .file_name("onboarding.txt"),
        );
    let (status, body) = TestApp::send(
        app.client
            .post(format!("{}/graphql", app.address))
            .header("X-API-Key", &app.key)
            .multipart(form),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = &body["data"]["uploadKnowledgeFile"];
    assert_eq!(
        (created["title"].as_str(), created["fileName"].as_str()),
        (Some("Onboarding"), Some("onboarding.txt")),
        "{body}"
    );
    let source = app
        .settled(&app.key, created["id"].as_str().unwrap_or_default())
        .await;
    assert_eq!(source["status"], "READY");
    let hits = app
        .search(&app.key, "laptop badge first day", json!({}))
        .await;
    assert_eq!(hits[0]["source"]["title"], "Onboarding");
}

#[tokio::test]
async fn corrupt_unsupported_and_oversized_files_fail_with_a_reason() {
    let app = TestApp::spawn_with(|s| s.http.max_upload_bytes = 64 * 1024).await;
    let (_, corrupt) = app
        .upload(
            &app.key,
            "broken.pdf",
            b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ntruncated".to_vec(),
            None,
        )
        .await;
    let (_, zip) = app
        .upload(
            &app.key,
            "archive.pdf",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest-of-a-zip-file".to_vec(),
            None,
        )
        .await;
    let corrupt = app.settled(&app.key, &id(&corrupt)).await;
    assert_eq!(corrupt["status"], "FAILED");
    assert!(
        corrupt["error"]
            .as_str()
            .is_some_and(|e| e.contains("PDF") || e.contains("damaged")),
        "{corrupt}"
    );
    let zip = app.settled(&app.key, &id(&zip)).await;
    assert_eq!(zip["status"], "FAILED");
    assert!(
        zip["error"]
            .as_str()
            .is_some_and(|e| e.contains("unsupported file type application/zip")),
        "{zip}"
    );

    let (status, body) = app
        .upload(&app.key, "huge.txt", vec![b'a'; 65 * 1024], None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        "{body}"
    );
    let (status, body) = app.upload(&app.key, "empty.txt", Vec::new(), None).await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("file"))
    );
    let (_, listed) = TestApp::send(app.rest(
        Method::GET,
        "/api/v1/knowledge/files/?status=FAILED",
        &app.key,
    ))
    .await;
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(2),
        "only the two accepted files exist: {listed}"
    );
}

#[tokio::test]
async fn a_qa_pair_asked_again_is_flagged_for_a_verbatim_answer() {
    let app = TestApp::spawn().await;
    let qa = app
        .create_qa(
            &app.key,
            "What are your opening hours?",
            "We are open Monday to Friday, 9:00 to 17:00.",
        )
        .await;
    app.create_qa(
        &app.key,
        "Do you ship to Belgium?",
        "Yes, within three working days.",
    )
    .await;
    assert_eq!(app.settled(&app.key, &qa).await["status"], "READY");

    let hits = app
        .search(&app.key, "what are your opening hours", json!({}))
        .await;
    assert_eq!(hits[0]["source"]["id"], qa.as_str());
    assert_eq!(hits[0]["strongQaMatch"], true);
    assert_eq!(
        hits[0]["source"]["answer"],
        "We are open Monday to Friday, 9:00 to 17:00."
    );
    let hits = app
        .search(&app.key, "belgium delivery time", json!({}))
        .await;
    assert!(
        hits.iter().all(|h| h["strongQaMatch"] == false),
        "a loose match is not answered verbatim: {hits:?}"
    );

    let data = app
        .gql_ok(&app.key, "mutation($id: ID!, $input: KnowledgeQaInput!) { updateKnowledgeQa(id: $id, input: $input) { id } }", json!({ "id": qa, "input": { "question": "When is the shop open on Saturdays?", "answer": "Saturdays 10:00 to 14:00." } }))
        .await;
    assert_eq!(data["updateKnowledgeQa"]["id"], qa.as_str());
    let source = app.settled(&app.key, &qa).await;
    assert_eq!(source["answer"], "Saturdays 10:00 to 14:00.");
    let hits = app
        .search(&app.key, "When is the shop open on Saturdays?", json!({}))
        .await;
    assert_eq!(
        (
            hits[0]["source"]["id"].as_str(),
            hits[0]["strongQaMatch"].as_bool()
        ),
        (Some(qa.as_str()), Some(true))
    );
}

#[tokio::test]
async fn links_and_exclusions_decide_what_an_assistant_retrieves() {
    let app = TestApp::spawn().await;
    let public = app
        .create_qa(
            &app.key,
            "What is the refund policy for customers?",
            "Thirty days, no questions asked.",
        )
        .await;
    let internal = app
        .create_qa(
            &app.key,
            "What is the refund policy for staff purchases?",
            "Staff refunds need manager approval.",
        )
        .await;
    app.settled(&app.key, &public).await;
    app.settled(&app.key, &internal).await;
    let assistant = app
        .gql_ok(
            &app.key,
            "mutation { createAssistant(input: { name: \"Support\", topK: 10 }) { id } }",
            json!({}),
        )
        .await["createAssistant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let sources = |hits: Vec<Value>| {
        let mut ids: Vec<String> = hits
            .iter()
            .map(|h| h["source"]["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let mut both = vec![public.clone(), internal.clone()];
    both.sort();
    let scoped = json!({ "assistantId": assistant });
    assert_eq!(
        sources(app.search(&app.key, "refund policy", scoped.clone()).await),
        both
    );

    let rule = "mutation($a: ID!, $s: ID!) { excludeKnowledge(assistantId: $a, sourceId: $s) { excludedSourceIds linkedSourceIds } }";
    let data = app
        .gql_ok(&app.key, rule, json!({ "a": assistant, "s": internal }))
        .await;
    assert_eq!(
        data["excludeKnowledge"]["excludedSourceIds"],
        json!([internal])
    );
    assert_eq!(
        sources(app.search(&app.key, "refund policy", scoped.clone()).await),
        vec![public.clone()]
    );
    assert_eq!(
        sources(app.search(&app.key, "refund policy", json!({})).await),
        both,
        "without an assistant, everything"
    );

    let (status, _) = TestApp::send(app.rest(
        Method::POST,
        &format!("/api/v1/assistants/{assistant}/knowledge/{internal}/link"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sources(app.search(&app.key, "refund policy", scoped.clone()).await),
        vec![internal.clone()],
        "once linked, only linked sources"
    );
    let (_, rules) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/assistants/{assistant}/knowledge"),
        &app.key,
    ))
    .await;
    assert_eq!(rules, json!({ "linked": [internal], "excluded": [] }));

    let (status, _) = TestApp::send(app.rest(
        Method::DELETE,
        &format!("/api/v1/assistants/{assistant}/knowledge/{internal}"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sources(app.search(&app.key, "refund policy", scoped).await),
        both
    );
}

#[tokio::test]
async fn search_never_reaches_another_organizations_knowledge() {
    let app = TestApp::spawn().await;
    let (_, other_key) = app.create_org("Globex").await;
    let theirs = app
        .create_qa(
            &other_key,
            "What is the vault combination?",
            "It is 4-8-15-16.",
        )
        .await;
    app.settled(&other_key, &theirs).await;
    let mine = app
        .create_qa(&app.key, "Where is the vault?", "In the basement.")
        .await;
    app.settled(&app.key, &mine).await;

    for mode in ["HYBRID", "VECTOR", "TEXT"] {
        let hits = app
            .search(&app.key, "vault combination", json!({ "mode": mode }))
            .await;
        assert!(
            hits.iter().all(|h| h["source"]["id"] == mine.as_str()),
            "{mode}: {hits:?}"
        );
    }
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/knowledge/search", &app.key)
            .json(&json!({ "query": "vault combination", "mode": "text" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_array()
            .is_some_and(|h| h.iter().all(|h| h["source"]["id"] == mine.as_str())),
        "{body}"
    );
    let data = app
        .gql_ok(
            &app.key,
            "query($id: ID!) { knowledgeSource(id: $id) { id } node(id: $id) { id } }",
            json!({ "id": theirs }),
        )
        .await;
    assert_eq!(data, json!({ "knowledgeSource": null, "node": null }));
    for (method, path) in [
        (Method::GET, format!("/api/v1/knowledge/qas/{theirs}")),
        (Method::DELETE, format!("/api/v1/knowledge/qas/{theirs}")),
    ] {
        let (status, _) = TestApp::send(app.rest(method, &path, &app.key)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let hits = app.search(&other_key, "vault combination", json!({})).await;
    assert_eq!(
        hits[0]["source"]["id"],
        theirs.as_str(),
        "their source is intact"
    );
}

#[tokio::test]
async fn deleting_a_source_removes_it_from_search_and_reembed_keeps_answering() {
    let app = TestApp::spawn().await;
    let keep = app
        .create_qa(
            &app.key,
            "How do I reset my password?",
            "Use the link on the sign-in page.",
        )
        .await;
    let drop = app
        .create_qa(
            &app.key,
            "How do I delete my account?",
            "Write to privacy@example.com.",
        )
        .await;
    let first = app.settled(&app.key, &keep).await;
    app.settled(&app.key, &drop).await;

    let data = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { deleteKnowledgeSource(id: $id) { deleted } }",
            json!({ "id": drop }),
        )
        .await;
    assert_eq!(data["deleteKnowledgeSource"]["deleted"], true);
    let hits = app
        .search(&app.key, "delete my account", json!({ "mode": "TEXT" }))
        .await;
    assert!(
        hits.iter().all(|h| h["source"]["id"] != drop.as_str()),
        "{hits:?}"
    );

    let data = app
        .gql_ok(&app.key, "mutation { reembedKnowledge }", json!({}))
        .await;
    assert_eq!(data["reembedKnowledge"], 1);
    let hits = app.search(&app.key, "reset my password", json!({})).await;
    assert_eq!(
        hits[0]["source"]["id"],
        keep.as_str(),
        "answers keep working during the re-index"
    );
    let mut again = app.settled(&app.key, &keep).await;
    for _ in 0..100 {
        if again["indexedAt"] != first["indexedAt"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        again = app.settled(&app.key, &keep).await;
    }
    assert_ne!(again["indexedAt"], first["indexedAt"], "re-indexed");
    assert_eq!(again["chunkCount"], first["chunkCount"]);
    let hits = app.search(&app.key, "reset my password", json!({})).await;
    assert_eq!(
        hits.iter()
            .filter(|h| h["source"]["id"] == keep.as_str())
            .count(),
        1,
        "no duplicate chunks"
    );
    let (status, _) = TestApp::send(
        app.rest(Method::POST, "/api/v1/knowledge/reembed", &app.key)
            .json(&json!({ "ids": [drop] })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a deleted source cannot be re-indexed"
    );
}

/// SQLite has one writer at a time. A transaction that read before it wrote used to fail at
/// once ("database is locked", a 500) when another connection had committed in between:
/// writers now take the lock up front and wait for it.
#[tokio::test]
async fn concurrent_writes_of_one_organization_all_succeed_on_the_embedded_database() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        let qa = app
            .create_qa(&app.key, &format!("Question {i}?"), &format!("Answer {i}."))
            .await;
        app.settled(&app.key, &qa).await;
    }
    let writes = (0..24).map(|i| {
        let request = if i % 2 == 0 {
            app.rest(Method::POST, "/api/v1/knowledge/reembed", &app.key)
                .json(&json!({}))
        } else {
            app.rest(Method::POST, "/api/v1/knowledge/qas", &app.key)
                .json(&json!({ "question": format!("Extra {i}?"), "answer": "Yes." }))
        };
        TestApp::send(request)
    });
    for (i, (status, body)) in futures::future::join_all(writes)
        .await
        .into_iter()
        .enumerate()
    {
        let expected = if i % 2 == 0 {
            StatusCode::ACCEPTED
        } else {
            StatusCode::CREATED
        };
        assert_eq!(status, expected, "write {i}: {body}");
    }
    let (status, listed) =
        TestApp::send(app.rest(Method::GET, "/api/v1/knowledge?limit=100", &app.key)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(15),
        "every created source is there: {listed}"
    );
}

/// Below the index threshold every search is exact; this drives the store past it, so the
/// approximate vector index, the organization bitmap and the source B-tree are all built, and
/// checks that searches through them still find the right chunks and only the caller's.
#[tokio::test]
async fn searches_through_the_built_indexes_stay_exact_enough_and_confined_to_the_organization() {
    use companin::{
        domain::ids::{OrgId, SourceId},
        models::{Embedder, HashEmbedder},
        vector::{ChunkRow, SearchMode, SearchRequest, VectorStore},
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = VectorStore::open(&dir.path().join("lancedb").display().to_string(), 600)
        .await
        .expect("store opens");
    let embedder = HashEmbedder::default();
    let (ours, theirs) = (OrgId::generate(), OrgId::generate());
    let text = |org: usize, source: usize, chunk: usize| {
        format!(
            "organization{org} leaflet{source} paragraph{chunk} mentions kettle{chunk} and teapot{source}"
        )
    };
    let mut sources = Vec::new();
    for (o, org) in [&ours, &theirs].into_iter().enumerate() {
        for s in 0..4 {
            let source = SourceId::generate();
            let texts: Vec<String> = (0..100).map(|c| text(o, s, c)).collect();
            let vectors = embedder.embed(&texts).await.expect("embedded");
            let rows = texts
                .iter()
                .zip(vectors)
                .enumerate()
                .map(|(c, (text, vector))| ChunkRow {
                    org_id: org.to_string(),
                    source_id: source.to_string(),
                    chunk_index: c as i32,
                    text: text.clone(),
                    heading: String::new(),
                    vector,
                })
                .collect();
            store
                .replace_source(embedder.id(), embedder.dimension(), org, &source, rows)
                .await
                .expect("written");
            sources.push((o, source));
        }
    }
    store.optimize().await.expect("indexed");

    let ask = |org: &OrgId, query: &str, mode| SearchRequest {
        org: org.clone(),
        text: query.to_owned(),
        mode,
        allowed: None,
        excluded: Vec::new(),
        limit: 5,
        exact: false,
        embedder_languages: None,
    };
    let wanted = text(0, 2, 37);
    for mode in [SearchMode::Vector, SearchMode::Text, SearchMode::Hybrid] {
        let hits = store
            .search(
                embedder.id(),
                embedder.dimension(),
                &ask(&ours, &wanted, mode),
                async { Ok(embedder.vector(&wanted)) },
            )
            .await
            .expect("searched");
        assert_eq!(
            hits[0].text, wanted,
            "{mode:?}: the chunk itself comes first"
        );
        assert_eq!(hits[0].source_id, sources[2].1.to_string());
        assert!(
            hits[0].similarity > 0.999,
            "{mode:?}: {}",
            hits[0].similarity
        );
        // The other organization holds near-identical text; none of it may come back.
        let leaked = store
            .search(
                embedder.id(),
                embedder.dimension(),
                &ask(&theirs, &wanted, mode),
                async { Ok(embedder.vector(&wanted)) },
            )
            .await
            .expect("searched");
        assert!(
            !leaked.is_empty(),
            "{mode:?}: their own similar chunks are found"
        );
        assert!(
            leaked.iter().all(|h| h.text.starts_with("organization1 ")),
            "{mode:?}: {leaked:?}"
        );
    }
    // Allowed sources go through the source index.
    let mut only = ask(&ours, &wanted, SearchMode::Hybrid);
    only.allowed = Some(vec![sources[1].1.to_string()]);
    let hits = store
        .search(embedder.id(), embedder.dimension(), &only, async {
            Ok(embedder.vector(&wanted))
        })
        .await
        .expect("searched");
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.source_id == sources[1].1.to_string()));
}
