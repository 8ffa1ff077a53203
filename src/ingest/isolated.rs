//! Extraction in a child process. `companin extract` reads one file from stdin and writes its
//! text as JSON on stdout, under limits on its memory and CPU time that it sets on itself
//! before it reads anything; the server waits for it with a deadline and reads back at most
//! what the text of one source may take. A parser that aborts (a PDF form that draws itself
//! overflows the stack, which no `catch_unwind` stops), runs away or inflates a stream to
//! gigabytes ends that one child: the source fails with the limit it hit, and the server and
//! every other organization's ingestion go on.

use std::{
    io::{Read, Write},
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{ExitCode, ExitStatus, Stdio},
    time::Duration,
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{
    Document, ExtractError,
    extract::{self, Hints},
    sniff,
};
use crate::config::IngestionSettings;

/// What the child knows of the file besides its bytes: the first line of its input.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// The uploaded name or the URL, for telling text formats apart.
    pub file_name: Option<String>,
    /// The declared or served content type.
    pub content_type: Option<String>,
    /// The source's title.
    pub title: String,
    /// The caller's description (images).
    pub description: Option<String>,
    /// Where a page came from (its links).
    pub url: Option<String>,
}

/// The child's answer on stdout.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// The text.
    Document(Document),
    /// Why there is none.
    Refused(ExtractError),
}

/// The limits one extraction runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address space, in MiB.
    pub memory_mib: u64,
    /// CPU time, in seconds (also the parent's wall-clock deadline).
    pub seconds: u64,
    /// Characters of text one source may give.
    pub max_chars: usize,
}

impl Limits {
    /// The limits from configuration.
    pub fn from_settings(settings: &IngestionSettings) -> Self {
        Self {
            memory_mib: settings.extract_memory_mib.max(64),
            seconds: settings.extract_timeout_seconds.max(1),
            max_chars: settings.max_extracted_chars.max(1),
        }
    }

    /// Bytes of stdout the parent reads at most: the text as JSON (a character is at most six
    /// bytes escaped) and room for the structure.
    fn max_output_bytes(&self) -> usize {
        self.max_chars.saturating_mul(6).saturating_add(1 << 20)
    }

    /// A file that gives more text than one source may: `chars` when counted.
    fn too_large(&self, chars: Option<usize>) -> ExtractError {
        let max = self.max_chars;
        ExtractError::TooComplex(match chars {
            Some(chars) => format!(
                "the file holds {chars} characters of text, more than the {max} one source may \
                 hold; split it into smaller files"
            ),
            None => format!(
                "the file holds more than the {max} characters of text one source may hold; \
                 split it into smaller files"
            ),
        })
    }
}

/// Runs extractions in child processes of `program`.
#[derive(Debug, Clone)]
pub struct Isolation {
    program: PathBuf,
    limits: Limits,
}

/// Bytes of the child's stderr kept to tell why it died.
const STDERR_TAIL: usize = 16 * 1024;

impl Isolation {
    /// Children of the configured program, or of this executable.
    pub fn from_settings(settings: &IngestionSettings) -> anyhow::Result<Self> {
        let program = match &settings.extract_program {
            Some(program) => program.clone(),
            None => std::env::current_exe().context("finding this executable to extract with")?,
        };
        Ok(Self {
            program,
            limits: Limits::from_settings(settings),
        })
    }

    /// The text of `bytes`, extracted by a child process. The outer error is the server's
    /// (the program could not be started): worth retrying. The inner one is the file's.
    pub async fn extract(
        &self,
        request: &Request,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Result<Document, ExtractError>> {
        let limits = self.limits;
        let mut child = tokio::process::Command::new(&self.program)
            .arg("extract")
            .args(["--memory-mib", &limits.memory_mib.to_string()])
            .args(["--seconds", &limits.seconds.to_string()])
            .args(["--max-chars", &limits.max_chars.to_string()])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} extract", self.program.display()))?;
        let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            anyhow::bail!("the extraction process has no pipes");
        };
        let mut input = serde_json::to_vec(request)?;
        input.push(b'\n');
        // The child may die before it has read everything: a broken pipe is its outcome to
        // report, not an error of its own.
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.write_all(&bytes).await;
        });
        let errors = tokio::spawn(read_tail(stderr, STDERR_TAIL));
        let deadline = Duration::from_secs(limits.seconds);
        let run = async {
            let output = read_capped(&mut stdout, limits.max_output_bytes()).await;
            if output.is_none() {
                let _ = child.start_kill();
            }
            (output, child.wait().await)
        };
        let outcome = tokio::time::timeout(deadline, run).await;
        writer.abort();
        let Ok((output, status)) = outcome else {
            let _ = child.kill().await;
            return Ok(Err(too_slow(limits)));
        };
        let status = status.context("waiting for the extraction process")?;
        let stderr = errors.await.unwrap_or_default();
        let Some(output) = output else {
            return Ok(Err(limits.too_large(None)));
        };
        if status.success()
            && let Ok(reply) = serde_json::from_slice::<Reply>(&output)
        {
            return Ok(match reply {
                Reply::Document(document) => Ok(document),
                Reply::Refused(e) => Err(e),
            });
        }
        let reason = died(status, &stderr, limits);
        tracing::info!(
            status = %status,
            stderr = %String::from_utf8_lossy(&stderr),
            reason = ?reason,
            "an extraction process stopped without an answer"
        );
        Ok(Err(reason))
    }
}

fn too_slow(limits: Limits) -> ExtractError {
    ExtractError::TooComplex(format!(
        "reading the file takes longer than {} seconds",
        limits.seconds
    ))
}

/// Why a child stopped without an answer, from how it ended and what it last said.
fn died(status: ExitStatus, stderr: &[u8], limits: Limits) -> ExtractError {
    let said = String::from_utf8_lossy(stderr);
    if said.contains("has overflowed its stack") {
        ExtractError::TooComplex(
            "the file's structure refers to itself or nests too deeply to be read".into(),
        )
    } else if said.contains("memory allocation of") {
        ExtractError::TooComplex(format!(
            "reading the file needs more than {} MiB of memory",
            limits.memory_mib
        ))
    } else if matches!(status.signal(), Some(SIGXCPU | SIGKILL)) {
        too_slow(limits)
    } else {
        ExtractError::Corrupt("the file is damaged: its parser could not read it".into())
    }
}

/// CPU time limit exceeded (soft limit), then killed (hard limit).
const SIGXCPU: i32 = 24;
const SIGKILL: i32 = 9;

/// All of `reader`, or `None` once it passes `cap` bytes.
async fn read_capped(reader: &mut (impl AsyncRead + Unpin), cap: usize) -> Option<Vec<u8>> {
    let mut output = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => return Some(output),
            Ok(n) if output.len() + n > cap => return None,
            Ok(n) => output.extend_from_slice(&buffer[..n]),
        }
    }
}

/// The last `keep` bytes of `reader`.
async fn read_tail(mut reader: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buffer = vec![0; 8 * 1024];
    while let Ok(n) = reader.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buffer[..n]);
        if tail.len() > keep * 2 {
            tail.drain(..tail.len() - keep);
        }
    }
    if tail.len() > keep {
        tail.drain(..tail.len() - keep);
    }
    tail
}

/// `companin extract`: limits itself, reads the request line and the file from stdin, writes
/// the reply on stdout. Nothing else may write to stdout.
pub fn child(limits: Limits) -> ExitCode {
    if let Err(e) = limit_self(limits) {
        eprintln!("error: could not set the extraction limits: {e}");
        return ExitCode::FAILURE;
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("error: reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let reply = match input.iter().position(|b| *b == b'\n') {
        Some(end) => match serde_json::from_slice::<Request>(&input[..end]) {
            Ok(request) => answer(&request, &input[end + 1..], limits),
            Err(e) => {
                eprintln!("error: the request line is not valid: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => {
            eprintln!("error: the input has no request line");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut stdout, &reply)
        .map_err(std::io::Error::from)
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the reply: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Address space, CPU time (SIGXCPU at the limit, SIGKILL a second later) and no core files.
fn limit_self(limits: Limits) -> std::io::Result<()> {
    use rlimit::{Resource, setrlimit};
    let memory = limits.memory_mib.saturating_mul(1 << 20);
    setrlimit(Resource::AS, memory, memory)?;
    setrlimit(Resource::CPU, limits.seconds, limits.seconds + 1)?;
    setrlimit(Resource::CORE, 0, 0)
}

/// The reply for one file: its text, or why there is none.
fn answer(request: &Request, bytes: &[u8], limits: Limits) -> Reply {
    let extracted = sniff::sniff(
        bytes,
        request.file_name.as_deref(),
        request.content_type.as_deref(),
    )
    .and_then(|format| {
        let hints = Hints {
            title: Some(&request.title),
            description: request.description.as_deref(),
            url: request.url.as_deref(),
        };
        extract::extract(format, bytes, &hints)
    });
    match extracted {
        Ok(document) if document.chars() > limits.max_chars => {
            Reply::Refused(limits.too_large(Some(document.chars())))
        }
        Ok(document) => Reply::Document(document),
        Err(e) => Reply::Refused(e),
    }
}
