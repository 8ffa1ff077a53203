//! Knowledge benchmarks, each against a baseline measured in the same run:
//!
//! 1. Ingestion: chunks/s end to end through the running server (upload → READY) against
//!    embedding the same chunks alone.
//! 2. Retrieval at `BENCH_CHUNKS` chunks (default 100,000): hybrid top-5 latency p50/p99, and
//!    recall@10 of the indexed vector search against exact (brute-force) search.
//!
//! Run: `cargo bench --profile dev --bench knowledge` (`BENCH_CORPUS_DIR=<dir>` keeps the
//! indexed retrieval corpus there and reuses it on the next run).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use companin::{
    config::{
        HttpSettings, IngestionSettings, LlmChoice, ModelSettings, RateLimitSettings, Settings,
    },
    domain::ids::{OrgId, SourceId},
    ingest::chunk::{ChunkSettings, chunk},
    ingest::extract::text,
    models::{Embedder, HashEmbedder, Models},
    startup::Application,
    vector::{ChunkRow, SearchMode, SearchRequest, VectorStore},
};
use serde_json::Value;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        ingestion().await?;
        retrieval().await
    })
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic pseudo-random stream (xorshift), so every run sees the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn vocabulary(size: usize, rng: &mut Rng) -> Vec<String> {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "do", "fa", "gu", "be", "zo", "xi",
        "ha",
    ];
    (0..size)
        .map(|_| {
            (0..2 + rng.below(3))
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect()
        })
        .collect()
}

/// A sentence of words drawn with a skew towards frequent words, as in real text.
fn sentence(words: &[String], len: usize, rng: &mut Rng) -> String {
    let picks: Vec<&str> = (0..len)
        .map(|_| {
            let r = rng.below(words.len()) as f64 / words.len() as f64;
            words[((r * r * r) * words.len() as f64) as usize].as_str()
        })
        .collect();
    format!("{}.", picks.join(" "))
}

fn document(words: &[String], paragraphs: usize, rng: &mut Rng) -> String {
    (0..paragraphs)
        .map(|p| {
            format!(
                "## Part {p}\n{}",
                (0..6)
                    .map(|_| sentence(words, 12, rng))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

async fn ingestion() -> anyhow::Result<()> {
    let documents = env_or("BENCH_DOCUMENTS", 120);
    let mut rng = Rng(42);
    let words = vocabulary(5_000, &mut rng);
    let docs: Vec<String> = (0..documents)
        .map(|_| document(&words, 20, &mut rng))
        .collect();
    let settings_chunks = ChunkSettings {
        target_chars: 1000,
        overlap_chars: 150,
        window: None,
    };
    let chunk_texts: Vec<String> = docs
        .iter()
        .flat_map(|d| {
            chunk(&text::markdown(d), &settings_chunks)
                .into_iter()
                .map(|c| c.embedding_text())
        })
        .collect();

    // The embedder the server would pick: all-MiniLM-L6-v2 when scripts/fetch-models.sh has
    // fetched it, the hash embedder otherwise.
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        http: HttpSettings {
            bind: "127.0.0.1:0".parse()?,
            ..Settings::default().http
        },
        // The benchmark measures serving, not the per-organization budget.
        rate_limits: RateLimitSettings {
            rate_limit_per_hour: u32::MAX,
            ..Settings::default().rate_limits
        },
        models: ModelSettings {
            models_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
            llm: LlmChoice::Extractive,
            ..Settings::default().models
        },
        // Files are extracted by the server's own binary, not this benchmark's.
        ingestion: IngestionSettings {
            extract_program: Some(env!("CARGO_BIN_EXE_companin").into()),
            ..Settings::default().ingestion
        },
        ..Settings::default()
    };
    let models = Models::from_settings(&settings.models).await?;
    let embedder = models.embedder.clone();
    let started = Instant::now();
    for batch in chunk_texts.chunks(64) {
        embedder.embed(batch).await?;
    }
    let embed_only = chunk_texts.len() as f64 / started.elapsed().as_secs_f64();

    let app = Application::build_with_models(settings.clone(), models).await?;
    let base = format!("http://{}", app.address());
    tokio::spawn(app.run_until_stopped());
    let db = companin::db::connect(&settings).await?;
    let (_, key) = companin::services::organizations::create(&db, "Bench", false)
        .await
        .map_err(|e| anyhow::anyhow!(e.message()))?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut ids = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(doc.clone().into_bytes())
                .file_name(format!("doc{i}.md")),
        );
        let created: Value = client
            .post(format!("{base}/api/v1/knowledge/files"))
            .header("x-api-key", &key.key)
            .multipart(form)
            .send()
            .await?
            .json()
            .await?;
        ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    let mut chunks = 0;
    for id in &ids {
        loop {
            let source: Value = client
                .get(format!("{base}/api/v1/knowledge/files/{id}"))
                .header("x-api-key", &key.key)
                .send()
                .await?
                .json()
                .await?;
            match source["status"].as_str() {
                Some("READY") => {
                    chunks += source["chunk_count"].as_i64().unwrap_or_default();
                    break;
                }
                Some("FAILED") => anyhow::bail!("{source}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    let end_to_end = chunks as f64 / started.elapsed().as_secs_f64();
    println!(
        "ingestion · {documents} Markdown documents · {chunks} chunks · {} embedder",
        embedder.id()
    );
    println!("  embedding alone        {embed_only:>10.0} chunks/s");
    println!("  end to end (server)    {end_to_end:>10.0} chunks/s");
    println!(
        "  ratio end-to-end / embed-only: {:.3} (goal ≥ 0.8)",
        end_to_end / embed_only
    );
    Ok(())
}

async fn retrieval() -> anyhow::Result<()> {
    let total = env_or("BENCH_CHUNKS", 100_000);
    let per_source = 1_000;
    let queries = env_or("BENCH_QUERIES", 200);
    let mut rng = Rng(7);
    let words = vocabulary(20_000, &mut rng);
    // BENCH_CORPUS_DIR keeps the indexed corpus between runs (building it takes minutes), for
    // tuning the query side; the corpus is the same every run, so a kept one is reused as is.
    let scratch = tempfile::tempdir()?;
    let kept = std::env::var_os("BENCH_CORPUS_DIR").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| scratch.path().to_path_buf());
    let complete = dir.join(format!("complete-{total}"));
    let reuse = complete.exists();
    if !reuse {
        // A half-built or differently sized corpus is not added to.
        let _ = std::fs::remove_dir_all(dir.join("lancedb"));
    }
    let store = VectorStore::open(&dir.join("lancedb").display().to_string(), 50_000).await?;
    let embedder = Arc::new(HashEmbedder::default());
    let org = match std::fs::read_to_string(dir.join("org")) {
        Ok(kept) if reuse => OrgId::from_db(kept),
        _ => OrgId::generate(),
    };
    let mut texts = Vec::with_capacity(total);
    let started = Instant::now();
    for s in 0..total.div_ceil(per_source) {
        let source = SourceId::generate();
        let batch: Vec<String> = (0..per_source.min(total - s * per_source))
            .map(|_| sentence(&words, 40, &mut rng))
            .collect();
        if !reuse {
            let vectors = embedder.embed(&batch).await?;
            let rows = batch
                .iter()
                .zip(vectors)
                .enumerate()
                .map(|(i, (text, vector))| ChunkRow {
                    org_id: org.to_string(),
                    source_id: source.to_string(),
                    chunk_index: i as i32,
                    text: text.clone(),
                    heading: String::new(),
                    vector,
                })
                .collect();
            store
                .replace_source(embedder.id(), embedder.dimension(), &org, &source, rows)
                .await?;
        }
        texts.extend(batch);
    }
    let loaded = started.elapsed();
    let started = Instant::now();
    if !reuse {
        store.optimize().await?;
        if kept.is_some() {
            std::fs::write(dir.join("org"), org.to_string())?;
            std::fs::write(&complete, "")?;
        }
    }
    let optimised = started.elapsed();
    println!(
        "retrieval · {total} chunks ({}loaded in {:.1} s, indexed and optimised in {:.1} s)",
        if reuse { "kept corpus reused: " } else { "" },
        loaded.as_secs_f64(),
        optimised.as_secs_f64()
    );
    let mut latencies = Vec::new();
    let (mut vector_times, mut exact_times, mut text_times) = (Vec::new(), Vec::new(), Vec::new());
    let (mut recall_sum, mut tie_recall_sum) = (0.0, 0.0);
    for _ in 0..queries {
        let source_text = &texts[rng.below(texts.len())];
        let query: String = source_text
            .split_whitespace()
            .skip(rng.below(30))
            .take(5)
            .collect::<Vec<_>>()
            .join(" ");
        let vector = embedder
            .embed(std::slice::from_ref(&query))
            .await?
            .remove(0);
        let request = |mode, limit, exact| SearchRequest {
            org: org.clone(),
            text: query.clone(),
            mode,
            allowed: None,
            excluded: Vec::new(),
            limit,
            exact,
            embedder_languages: None,
        };
        let started = Instant::now();
        store
            .search(
                embedder.id(),
                embedder.dimension(),
                &request(SearchMode::Hybrid, 5, false),
                async { Ok(vector.clone()) },
            )
            .await?;
        latencies.push(started.elapsed());
        let started = Instant::now();
        let approximate = store
            .search(
                embedder.id(),
                embedder.dimension(),
                &request(SearchMode::Vector, 10, false),
                async { Ok(vector.clone()) },
            )
            .await?;
        vector_times.push(started.elapsed());
        let started = Instant::now();
        let exact = store
            .search(
                embedder.id(),
                embedder.dimension(),
                &request(SearchMode::Vector, 10, true),
                async { Ok(vector.clone()) },
            )
            .await?;
        exact_times.push(started.elapsed());
        let started = Instant::now();
        store
            .search(
                embedder.id(),
                embedder.dimension(),
                &request(SearchMode::Text, 10, false),
                async { Ok(vector.clone()) },
            )
            .await?;
        text_times.push(started.elapsed());
        let key = |h: &companin::vector::VectorHit| (h.source_id.clone(), h.chunk_index);
        let truth: Vec<_> = exact.iter().map(key).collect();
        let found = approximate
            .iter()
            .filter(|h| truth.contains(&key(h)))
            .count();
        recall_sum += found as f64 / truth.len().max(1) as f64;
        // Many chunks tie with the query (same shared words, same length), and which of the
        // tied ones fills the last places is arbitrary: a hit as close as the exact search's
        // last one is as good a 10th neighbour.
        let last = exact.last().map_or(f32::MAX, |h| h.similarity);
        let as_close = approximate
            .iter()
            .filter(|h| h.similarity >= last - 1e-6)
            .count()
            .min(truth.len());
        tie_recall_sum += as_close as f64 / truth.len().max(1) as f64;
    }
    let report = |name: &str, mut times: Vec<Duration>| {
        times.sort();
        let at = |q: f64| {
            times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e3
        };
        println!(
            "  {name:<22} p50 {:>6.2} ms   p99 {:>6.2} ms   ({queries} queries)",
            at(0.5),
            at(0.99)
        );
    };
    report("hybrid top-5", latencies);
    report("vector top-10 (index)", vector_times);
    report("vector top-10 (exact)", exact_times);
    report("text top-10", text_times);
    println!(
        "  recall@10 (indexed vs exact vector search): {:.3} (goal ≥ 0.95); counting ties with the 10th exact hit: {:.3}",
        recall_sum / queries as f64,
        tie_recall_sum / queries as f64
    );
    Ok(())
}
