//! Local model benchmarks, each against an anchor run in the same process tree:
//!
//! 1. all-MiniLM-L6-v2: sentences/s embedding the same 1,000 sentences at batch 32, against
//!    sentence-transformers (PyTorch) on the same files.
//! 2. SmolLM2-135M-Instruct: time to first token, prefill and decode tokens/s for a 512-token
//!    prompt, against llama.cpp (llama-cpp-python) on the same GGUF and prompt.
//!
//! Run: `cargo bench --profile dev --bench models`. The anchors run with `BENCH_PYTHON`
//! (default `.venv/bin/python`) when it has `sentence-transformers` / `llama-cpp-python`
//! installed; otherwise they are skipped with a note.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use companin::models::{
    BlockingPool, ChatChunk, ChatMessage, ChatModel, ChatRequest, Embedder, GenerationOptions,
    LocalChat, MiniLmEmbedder, Role,
};
use futures::StreamExt;
use serde_json::Value;

const SENTENCES: usize = 1_000;
const PROMPT_TOKENS: usize = 512;
const NEW_TOKENS: u32 = 128;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    runtime.block_on(async {
        minilm(&models).await?;
        smollm(&models).await
    })
}

fn python() -> PathBuf {
    std::env::var_os("BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// Runs an anchor script; its last stdout line is JSON.
fn anchor(script: &str, args: &[&str]) -> Option<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/anchors")
        .join(script);
    let output = Command::new(python())
        .arg(script)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            stdout
                .lines()
                .last()
                .and_then(|l| serde_json::from_str(l).ok())
        }
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            println!(
                "  anchor skipped: {}",
                stderr.lines().last().unwrap_or("failed")
            );
            None
        }
        Err(e) => {
            println!("  anchor skipped: {} ({e})", python().display());
            None
        }
    }
}

/// Deterministic sentences of 5 to 40 words from a small FAQ-like vocabulary.
fn sentences() -> Vec<String> {
    const WORDS: [&str; 48] = [
        "order",
        "shipping",
        "returns",
        "the",
        "package",
        "arrives",
        "within",
        "three",
        "days",
        "refund",
        "is",
        "processed",
        "after",
        "we",
        "receive",
        "your",
        "item",
        "customer",
        "service",
        "open",
        "monday",
        "to",
        "friday",
        "invoice",
        "payment",
        "card",
        "accepted",
        "account",
        "password",
        "reset",
        "email",
        "delivery",
        "address",
        "change",
        "before",
        "dispatch",
        "warranty",
        "covers",
        "defects",
        "for",
        "two",
        "years",
        "store",
        "opening",
        "hours",
        "weekend",
        "discount",
        "code",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..SENTENCES)
        .map(|_| {
            let len = 5 + (next() % 36) as usize;
            let words: Vec<&str> = (0..len).map(|_| WORDS[(next() % 48) as usize]).collect();
            let mut s = words.join(" ");
            s.push('.');
            s
        })
        .collect()
}

async fn minilm(models: &Path) -> anyhow::Result<()> {
    let embedder = MiniLmEmbedder::load(models, BlockingPool::new(1))?;
    let sentences = sentences();
    embedder.embed(&sentences[..64]).await?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        embedder.embed(&sentences).await?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    let ours = sentences.len() as f64 / best;
    println!("all-MiniLM-L6-v2 · {SENTENCES} sentences · batch 32 · best of 3");
    println!("  companin (candle)           {ours:>8.1} sentences/s");
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), sentences.join("\n"))?;
    let path = file.path().display().to_string();
    let dir = models.display().to_string();
    if let Some(result) = anchor("minilm.py", &[&path, &dir]) {
        let theirs = result["sentences_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "  sentence-transformers       {theirs:>8.1} sentences/s (torch {}, {} threads)",
            result["torch"].as_str().unwrap_or("?"),
            result["threads"]
        );
        println!("  ratio: {:.2}× (goal ≥ 1.0×)", ours / theirs);
    }
    Ok(())
}

/// A user message that renders to about `PROMPT_TOKENS` tokens.
fn long_request(chat: &LocalChat) -> anyhow::Result<ChatRequest> {
    let paragraph = "Our store ships parcels across Europe. Orders placed before noon leave the \
        warehouse the same day, and most arrive within three working days. Returns are free \
        within thirty days; refunds are processed after the item is received and checked. ";
    let mut text = String::new();
    let mut request;
    loop {
        text.push_str(paragraph);
        request = ChatRequest {
            messages: vec![ChatMessage::new(
                Role::User,
                format!("{text}\nSummarise the policy above in detail."),
            )],
            context: Vec::new(),
            language: None,
            options: GenerationOptions {
                max_tokens: NEW_TOKENS,
                temperature: 0.0,
                ..GenerationOptions::default()
            },
        };
        if chat.prompt_tokens(&request)?.len() >= PROMPT_TOKENS {
            break;
        }
    }
    // Trim words until the prompt is PROMPT_TOKENS long or just under.
    while chat.prompt_tokens(&request)?.len() > PROMPT_TOKENS {
        let content = &mut request.messages[0].content;
        let cut = content.find(' ').map_or(content.len(), |i| i + 1);
        content.drain(..cut);
    }
    Ok(request)
}

async fn smollm(models: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let chat = LocalChat::load(models, BlockingPool::new(1))?;
    let load = started.elapsed();
    let request = long_request(&chat)?;
    let prompt_tokens = chat.prompt_tokens(&request)?.len();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut stream = chat.stream(request.clone()).await?;
        let mut first = None;
        let mut pieces = 0;
        let mut generated = 0;
        while let Some(chunk) = stream.next().await {
            match chunk? {
                ChatChunk::Delta(_) => {
                    pieces += 1;
                    first.get_or_insert_with(Instant::now);
                }
                ChatChunk::Done(done) => generated = done.completion_tokens,
            }
        }
        let end = Instant::now();
        let first = first.unwrap_or(end);
        let ttft = (first - started).as_secs_f64();
        let decode = f64::from(generated.saturating_sub(1)) / (end - first).as_secs_f64();
        runs.push((ttft, decode, generated, pieces));
    }
    let ttft = runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let decode = runs.iter().map(|r| r.1).fold(0.0, f64::max);
    let prefill = prompt_tokens as f64 / ttft;
    println!(
        "SmolLM2-135M-Instruct · {prompt_tokens}-token prompt · up to {NEW_TOKENS} new tokens · greedy · best of 3 (load {:.2} s, {} tokens generated)",
        load.as_secs_f64(),
        runs[0].2
    );
    println!(
        "  companin (candle)   first token {:>6.3} s · prefill {prefill:>7.1} tok/s · decode {decode:>6.1} tok/s",
        ttft
    );
    println!("  goals: first token ≤ 2 s · prefill ≥ 300 tok/s · decode ≥ 30 tok/s");
    let prompt = tempfile::NamedTempFile::new()?;
    std::fs::write(prompt.path(), chat.prompt_text(&request)?)?;
    let gguf = models
        .join("SmolLM2-135M-Instruct.Q4_1.gguf")
        .display()
        .to_string();
    let path = prompt.path().display().to_string();
    if let Some(r) = anchor(
        "llama_cpp_anchor.py",
        &[&gguf, &path, &NEW_TOKENS.to_string()],
    ) {
        let theirs = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  llama.cpp           first token {:>6.3} s · prefill {:>7.1} tok/s · decode {:>6.1} tok/s ({} prompt tokens)",
            theirs("ttft_s"),
            theirs("prefill_tok_s"),
            theirs("decode_tok_s"),
            r["prompt_tokens"]
        );
        println!(
            "  ratio to llama.cpp: prefill {:.2}× · decode {:.2}×",
            prefill / theirs("prefill_tok_s"),
            decode / theirs("decode_tok_s")
        );
    }
    Ok(())
}
