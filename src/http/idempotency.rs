//! `Idempotency-Key` on the governed `POST` routes (REST, `/v1`, `/graphql`): the request is
//! fingerprinted (method, path and query, and its body — a multipart body by its fields, so a
//! client that picks a new boundary for its retry is still retrying), the key claimed, and
//! the answer recorded as it streams to the client and kept once it has ended (2xx and 4xx
//! other than 409 and 429; a failure or a client gone mid-stream frees the key instead). A
//! replay answers the kept status, headers and body with `Idempotent-Replayed: true`.

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header::CONTENT_TYPE,
        request::Parts,
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::{
    auth::Principal,
    error::AppError,
    services::idempotency::{self, Answer, Outcome, Run},
    state::AppState,
};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The answer header of a replay.
pub const REPLAYED: &str = "idempotent-replayed";
/// Largest answer kept; a larger one is not replayed (the key is freed).
const KEPT_BODY_MAX: usize = 4 << 20;

/// Whether the request asks for idempotency.
pub fn asked(request: &Request) -> bool {
    request.method() == Method::POST && request.headers().contains_key(HEADER)
}

/// Runs `request` under its key, or replays the key's answer. An error (a bad or reused key,
/// the key's first request still running) is for the caller to answer in its transport's
/// shape.
pub async fn run(
    state: &AppState,
    principal: &Principal,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let raw = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let limit = state
        .settings
        .http
        .max_upload_bytes
        .max(state.settings.http.max_request_bytes);
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        AppError::PayloadTooLarge(format!("the request body is over {limit} bytes"))
    })?;
    let fingerprint = fingerprint(&parts, &bytes).await;
    match idempotency::begin(state, principal, &raw, &fingerprint).await? {
        Outcome::Replay(answer) => Ok(replay(answer)),
        Outcome::Run(run) => {
            // In a task of its own: a client that leaves before the answer does not take the
            // request with it, and the key still gets its answer (or is freed).
            let request = Request::from_parts(parts, Body::from(bytes));
            tokio::spawn(
                async move { record(run, next.run(request).await).await }.in_current_span(),
            )
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("an idempotent request: {e}")))
        }
    }
}

/// SHA-256 (hex) of the method, the path and query, and the body (a multipart body's fields:
/// names, file names, types and contents).
async fn fingerprint(parts: &Parts, bytes: &Bytes) -> String {
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str());
    hash.update(b"\n");
    hash.update(parts.uri.path_and_query().map_or("", |p| p.as_str()));
    hash.update(b"\n");
    if let Some(fields) = multipart_fields(&parts.headers, bytes).await {
        for field in fields {
            hash.update((field.len() as u64).to_le_bytes());
            hash.update(&field);
        }
    } else {
        hash.update(bytes);
    }
    hex::encode(hash.finalize())
}

/// A `multipart/form-data` body's fields, each as its name, file name, type and content;
/// `None` for any other body (or one that does not parse, hashed as it is).
async fn multipart_fields(headers: &HeaderMap, bytes: &Bytes) -> Option<Vec<Vec<u8>>> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return None;
    }
    // multer itself: axum's extractor would apply its default body limit to the copy.
    let boundary = multer::parse_boundary(content_type).ok()?;
    let body = bytes.clone();
    let mut multipart = multer::Multipart::new(
        futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) }),
        boundary,
    );
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let mut described = Vec::new();
        let kind = field.content_type().map(ToString::to_string);
        for part in [field.name(), field.file_name(), kind.as_deref()] {
            described.extend_from_slice(part.unwrap_or_default().as_bytes());
            described.push(0);
        }
        described.extend_from_slice(&field.bytes().await.ok()?);
        fields.push(described);
    }
    Some(fields)
}

/// The kept answer, marked as a replay.
fn replay(answer: Answer) -> Response {
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    (status, headers, Body::from(answer.body)).into_response()
}

/// `response`, kept for the key: a body of known size before it goes out (a retry that
/// follows the answer finds it kept), a stream as it goes out, once it has ended.
async fn record(run: Run, response: Response) -> Response {
    let status = response.status();
    let keeps = status.is_success()
        || (status.is_client_error()
            && status != StatusCode::CONFLICT
            && status != StatusCode::TOO_MANY_REQUESTS);
    if !keeps {
        tokio::spawn(run.release());
        return response;
    }
    let (parts, body) = response.into_parts();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let sized = HttpBody::size_hint(&body)
        .exact()
        .is_some_and(|n| n <= KEPT_BODY_MAX as u64);
    if sized {
        return match axum::body::to_bytes(body, KEPT_BODY_MAX).await {
            Ok(bytes) => {
                let answer = Answer {
                    status: status.as_u16(),
                    headers,
                    body: bytes.to_vec(),
                };
                run.finish(answer).await;
                Response::from_parts(parts, Body::from(bytes))
            }
            Err(e) => {
                run.release().await;
                AppError::Internal(anyhow::anyhow!("reading an answer to keep: {e}"))
                    .into_response()
            }
        };
    }
    let mut recording = Recording {
        run: Some(run),
        status: status.as_u16(),
        headers,
        body: Vec::new(),
        whole: false,
    };
    let mut data = body.into_data_stream();
    let teed = async_stream::stream! {
        while let Some(chunk) = data.next().await {
            match chunk {
                Ok(bytes) => {
                    recording.keep(&bytes);
                    yield Ok::<_, axum::Error>(bytes);
                }
                Err(e) => {
                    yield Err(e);
                    return;
                }
            }
        }
        recording.ended();
    };
    Response::from_parts(parts, Body::from_stream(teed))
}

/// An answer on its way to the client: kept when it went out whole, else the key is freed.
struct Recording {
    run: Option<Run>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body went out to its end.
    whole: bool,
}

impl Recording {
    /// The body went out to its end.
    fn ended(&mut self) {
        self.whole = true;
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.run.is_none() {
            return;
        }
        if self.body.len() + bytes.len() > KEPT_BODY_MAX {
            // Too large to keep: the key is freed now.
            if let Some(run) = self.run.take() {
                tokio::spawn(run.release());
            }
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(bytes);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let Some(run) = self.run.take() else {
            return;
        };
        if self.whole {
            let answer = Answer {
                status: self.status,
                headers: std::mem::take(&mut self.headers),
                body: std::mem::take(&mut self.body),
            };
            tokio::spawn(run.finish(answer));
        } else {
            tokio::spawn(run.release());
        }
    }
}
