//! `companin import`: uploads files and directories to a running server over the REST layer,
//! waits until each is indexed, and says what failed.
//!
//! Directories are walked recursively; hidden entries and files of other types are skipped.
//! Each upload carries an `Idempotency-Key` made of the file's path and content, so running
//! the same import again within a day (after a dropped connection, say) uploads nothing twice.

use std::{
    collections::BTreeSet,
    io::IsTerminal,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{StatusCode, multipart};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ingest::sniff;

/// Uploads in flight at once.
const CONCURRENCY: usize = 4;
/// The first and the longest wait between two looks at a pending source (or two tries of a
/// refused call).
const POLL: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(10));

/// What to import, and where.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The server's base URL (`http://localhost:8080`).
    pub url: String,
    /// An API key with the write scope.
    pub key: String,
    /// The key's secret, for keys issued with one.
    pub secret: Option<String>,
    /// Link every imported source to this assistant.
    pub assistant: Option<String>,
    /// Files and directories.
    pub paths: Vec<PathBuf>,
    /// Give up on a file after this long.
    pub wait: Duration,
    /// Print the outcome as JSON on stdout.
    pub json: bool,
}

/// How one file ended.
#[derive(Debug, Clone, Serialize)]
struct Outcome {
    path: String,
    /// The knowledge source, when the upload was accepted.
    id: Option<String>,
    /// `READY`, `FAILED`, or `PENDING`/`PROCESSING` when the wait ran out.
    status: String,
    error: Option<String>,
    chunk_count: Option<i64>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.status == "READY"
    }

    fn refused(path: String, id: Option<String>, error: String) -> Self {
        Self {
            path,
            id,
            status: "FAILED".into(),
            error: Some(error),
            chunk_count: None,
        }
    }
}

/// Runs the import; an error when a file failed (after printing what happened to each).
pub async fn run(options: ImportOptions) -> anyhow::Result<()> {
    let (files, skipped) = collect(&options.paths)?;
    if files.is_empty() {
        bail!(
            "nothing to import: no files of a supported type ({}) under the paths given",
            types()
        );
    }
    crate::tls::install_crypto_provider();
    let api = Api::new(&options)?;
    api.check(options.assistant.as_deref()).await?;
    let progress = Progress::new(files.len(), options.json);
    if skipped > 0 {
        progress.line(format!(
            "skipping {skipped} files of other types, links to directories and broken links"
        ));
    }
    let mut outcomes: Vec<Outcome> = stream::iter(files)
        .map(|file| {
            let (api, progress) = (&api, &progress);
            let assistant = options.assistant.as_deref();
            async move {
                let outcome = import_one(api, &file, assistant, options.wait).await;
                progress.done(&outcome);
                outcome
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    progress.finish();
    outcomes.sort_by(|a, b| a.path.cmp(&b.path));
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    if options.json {
        println!("{}", serde_json::to_string(&outcomes)?);
    } else {
        let ready = outcomes.len() - failed;
        println!(
            "imported {} files: {ready} ready, {failed} failed",
            outcomes.len()
        );
    }
    if failed > 0 {
        bail!("{failed} of {} files did not become READY", outcomes.len());
    }
    Ok(())
}

/// The files under `paths` of a supported type, sorted, and how many entries were skipped.
/// A path given is followed wherever it links; inside a directory, a link to a directory is
/// not (it could lead back up), and a broken link is skipped.
fn collect(paths: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, usize)> {
    let mut files = BTreeSet::new();
    let mut skipped = 0;
    let mut pending: Vec<(PathBuf, bool)> = paths.iter().map(|p| (p.clone(), true)).collect();
    while let Some((path, given)) = pending.pop() {
        let meta = if given {
            std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?
        } else {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(&path) {
                    Ok(target) if target.is_file() => target,
                    _ => {
                        skipped += 1;
                        continue;
                    }
                },
                Ok(m) => m,
                Err(_) => {
                    skipped += 1;
                    continue;
                }
            }
        };
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path)
                .with_context(|| format!("cannot list {}", path.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden {
                    pending.push((entry.path(), false));
                }
            }
        } else if supported(&path) {
            files.insert(path);
        } else if given {
            bail!("{}: not a supported type ({})", path.display(), types());
        } else {
            skipped += 1;
        }
    }
    Ok((files.into_iter().collect(), skipped))
}

/// Whether `path` names a format the server extracts.
fn supported(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(sniff::format_of_name)
        .is_some()
}

/// The extensions an import takes, for messages.
fn types() -> String {
    sniff::EXTENSIONS.map(|(extension, _)| extension).join(", ")
}

/// Uploads one file, links it, and waits until it settles, within `wait` (calls refused
/// for a while — rate limit, a restart — are tried again until then).
async fn import_one(api: &Api, path: &Path, assistant: Option<&str>, wait: Duration) -> Outcome {
    let shown = path.display().to_string();
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) => return Outcome::refused(shown, None, format!("cannot read the file: {e}")),
    };
    let deadline = Instant::now() + wait;
    let id = match persist(deadline, || api.upload(path, &shown, bytes.clone())).await {
        Ok(id) => id,
        Err(e) => return Outcome::refused(shown, None, e.to_string()),
    };
    if let Some(assistant) = assistant
        && let Err(e) = persist(deadline, || api.link(assistant, &id)).await
    {
        let error = format!("linking to the assistant: {e}");
        return Outcome::refused(shown, Some(id), error);
    }
    let mut pause = POLL.0;
    loop {
        let source = match persist(deadline, || api.source(&id)).await {
            Ok(source) => source,
            Err(e) => {
                let error = format!("reading the source: {e}");
                return Outcome::refused(shown, Some(id), error);
            }
        };
        let status = source["status"].as_str().unwrap_or_default().to_owned();
        let settled = status == "READY" || status == "FAILED";
        if settled || Instant::now() >= deadline {
            return Outcome {
                path: shown,
                id: Some(id),
                error: source["error"].as_str().map(str::to_owned).or_else(|| {
                    (!settled).then(|| format!("still {status} after {}s", wait.as_secs()))
                }),
                chunk_count: source["chunk_count"].as_i64(),
                status,
            };
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL.1);
    }
}

/// Runs `call` until it succeeds, fails for good, or `deadline` passes; a transient failure
/// waits as long as the server asks (`Retry-After`), else a little longer each time.
async fn persist<T, F, Fut>(deadline: Instant, mut call: F) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let mut pause = POLL.0;
    loop {
        match call().await {
            Err(e) if e.transient && Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(e.retry_after.unwrap_or(pause).min(left)).await;
                pause = (pause * 2).min(POLL.1);
            }
            other => return other,
        }
    }
}

/// A call the server refused, or that did not reach it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct CallError {
    /// Worth trying again: the server was not reached, or it was rate limiting, busy (409:
    /// another run of the same upload holds its key) or failing on its side.
    transient: bool,
    /// How long the server asked to wait.
    retry_after: Option<Duration>,
    message: String,
}

/// The REST calls an import makes.
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
    secret: Option<String>,
}

impl Api {
    fn new(options: &ImportOptions) -> anyhow::Result<Self> {
        let base = options.url.trim_end_matches('/').to_owned();
        url::Url::parse(&base).with_context(|| format!("--url {base} is not a URL"))?;
        let client = crate::tls::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base,
            key: options.key.clone(),
            secret: options.secret.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &self.key);
        match &self.secret {
            Some(secret) => request.header("x-api-secret", secret),
            None => request,
        }
    }

    /// The key works, may write, and the assistant (when named) exists.
    async fn check(&self, assistant: Option<&str>) -> anyhow::Result<()> {
        let viewer = answer(self.request(reqwest::Method::GET, "/api/v1/viewer"))
            .await
            .with_context(|| format!("cannot use the server at {}", self.base))?;
        let writes = viewer["scopes"].as_array().is_some_and(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case("write") || s.eq_ignore_ascii_case("admin"))
        });
        if !writes {
            bail!("the key may not write: issue one with the write scope");
        }
        if let Some(assistant) = assistant {
            let path = format!("/api/v1/assistants/{assistant}");
            answer(self.request(reqwest::Method::GET, &path))
                .await
                .with_context(|| format!("--assistant {assistant}"))?;
        }
        Ok(())
    }

    /// Uploads `bytes` as `path`'s file; the new source's id. The same file uploaded again
    /// (a retry, a re-run) carries the same `Idempotency-Key`, so it is stored once.
    async fn upload(&self, path: &Path, shown: &str, bytes: Vec<u8>) -> Result<String, CallError> {
        let name = path
            .file_name()
            .map_or_else(|| shown.to_owned(), |n| n.to_string_lossy().into_owned());
        let digest = Sha256::new()
            .chain_update(shown.as_bytes())
            .chain_update([0])
            .chain_update(&bytes);
        let idempotency_key = format!("import-{}", hex::encode(digest.finalize()));
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let part = multipart::Part::bytes(bytes).file_name(name);
        let part = part.mime_str(mime.as_ref()).map_err(|e| CallError {
            transient: false,
            retry_after: None,
            message: format!("the file's type {mime}: {e}"),
        })?;
        let form = multipart::Form::new()
            .part("file", part)
            .text("title", shown.to_owned());
        let request = self
            .request(reqwest::Method::POST, "/api/v1/knowledge/files")
            .header("idempotency-key", &idempotency_key)
            .multipart(form);
        let body = answer(request).await?;
        body["id"].as_str().map(str::to_owned).ok_or(CallError {
            transient: false,
            retry_after: None,
            message: "the server's answer names no source".into(),
        })
    }

    async fn link(&self, assistant: &str, source: &str) -> Result<(), CallError> {
        let path = format!("/api/v1/assistants/{assistant}/knowledge/{source}/link");
        answer(self.request(reqwest::Method::POST, &path))
            .await
            .map(drop)
    }

    async fn source(&self, id: &str) -> Result<Value, CallError> {
        let path = format!("/api/v1/knowledge/files/{id}");
        answer(self.request(reqwest::Method::GET, &path)).await
    }
}

/// Sends `request`; its JSON answer, or the server's refusal with its message.
async fn answer(request: reqwest::RequestBuilder) -> Result<Value, CallError> {
    let response = request.send().await.map_err(|e| CallError {
        transient: true,
        retry_after: None,
        message: format!("cannot reach the server: {}", crate::egress::describe(&e)),
    })?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.clamp(1, 300)));
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let detail = body["error"]["message"].as_str().unwrap_or("no message");
    let message = match body["error"]["code"].as_str() {
        Some(code) => format!("the server answered {status} {code}: {detail}"),
        None => format!("the server answered {status}: {detail}"),
    };
    let transient = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::CONFLICT
        || status.is_server_error();
    Err(CallError {
        transient,
        retry_after,
        message,
    })
}

/// A progress bar on a terminal; a line per file otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(files: usize, json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(files as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} files · {elapsed} · {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Self { bar }
    }

    fn line(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn done(&self, outcome: &Outcome) {
        let line = match (&outcome.error, outcome.chunk_count) {
            (Some(error), _) => format!("{:<8} {}: {error}", outcome.status, outcome.path),
            (None, Some(chunks)) => {
                format!("{:<8} {} ({chunks} chunks)", outcome.status, outcome.path)
            }
            (None, None) => format!("{:<8} {}", outcome.status, outcome.path),
        };
        match &self.bar {
            Some(bar) => {
                if !outcome.ok() {
                    bar.println(line);
                }
                bar.set_message(outcome.path.clone());
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
