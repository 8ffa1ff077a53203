//! Fetching URL sources: timeouts, a size cap, conditional requests, and redirects followed
//! by hand so that every hop passes the SSRF guard of [`crate::egress`].

use std::time::Duration;

use futures::StreamExt;
use reqwest::{
    StatusCode,
    header::{
        CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION, USER_AGENT,
    },
};
use url::Url;

use crate::{config::IngestionSettings, egress};

/// Limits of one fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Largest body read.
    pub max_bytes: usize,
    /// Allow private, loopback and link-local targets (tests, intranets).
    pub allow_private: bool,
    /// Redirects followed at most.
    pub max_redirects: usize,
}

impl FetchOptions {
    /// The limits from configuration.
    pub fn from_settings(settings: &IngestionSettings) -> Self {
        Self {
            timeout: Duration::from_secs(settings.url_fetch_timeout_seconds),
            max_bytes: settings.url_max_bytes,
            allow_private: settings.allow_private_urls,
            max_redirects: 5,
        }
    }
}

/// What a fetch brought back.
#[derive(Debug)]
pub enum Fetched {
    /// The validators matched: the content is unchanged.
    NotModified {
        /// HTTP status (304).
        status: i32,
    },
    /// New content.
    Content(Page),
}

/// A fetched body with its validators.
#[derive(Debug)]
pub struct Page {
    /// The body.
    pub bytes: Vec<u8>,
    /// HTTP status.
    pub status: i32,
    /// `ETag`, to send back as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified`, to send back as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// Declared content type.
    pub content_type: Option<String>,
}

/// Why a fetch failed.
#[derive(Debug, Clone)]
pub struct FetchError {
    message: String,
    status: Option<i32>,
    permanent: bool,
}

impl From<egress::Refused> for FetchError {
    fn from(e: egress::Refused) -> Self {
        Self {
            permanent: e.is_permanent(),
            message: e.message().to_owned(),
            status: None,
        }
    }
}

impl FetchError {
    fn permanent(message: impl Into<String>, status: Option<i32>) -> Self {
        Self {
            message: message.into(),
            status,
            permanent: true,
        }
    }

    fn transient(message: impl Into<String>, status: Option<i32>) -> Self {
        Self {
            message: message.into(),
            status,
            permanent: false,
        }
    }

    /// For the refresh log and the source's error.
    pub fn message(&self) -> String {
        self.message.clone()
    }

    /// The HTTP status, when one came back.
    pub fn status(&self) -> Option<i32> {
        self.status
    }

    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

/// Checks that `raw` is an absolute http(s) URL.
pub fn parse(raw: &str) -> Result<Url, FetchError> {
    egress::parse(raw).map_err(FetchError::from)
}

/// Checks now that the URL's host resolves to addresses a fetch may reach.
pub async fn check_target(url: &Url, allow_private: bool) -> Result<(), FetchError> {
    egress::resolve(url, allow_private)
        .await
        .map(|_| ())
        .map_err(FetchError::from)
}

/// Fetches `url`; with `validators` (ETag, Last-Modified) the request is conditional.
pub async fn fetch(
    url: &str,
    validators: Option<(Option<String>, Option<String>)>,
    options: &FetchOptions,
) -> Result<Fetched, FetchError> {
    crate::tls::install_crypto_provider();
    let mut current = parse(url)?;
    for _ in 0..=options.max_redirects {
        let response = request(&current, validators.as_ref(), options).await?;
        let status = response.status();
        let code = Some(i32::from(status.as_u16()));
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    FetchError::permanent(format!("redirect {status} without a Location"), code)
                })?;
            current = current.join(location).map_err(|e| {
                FetchError::permanent(format!("invalid redirect target: {e}"), code)
            })?;
            parse(current.as_str())?;
            continue;
        }
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified { status: 304 });
        }
        refuse_failure(status)?;
        return read_page(response, options.max_bytes)
            .await
            .map(Fetched::Content);
    }
    Err(FetchError::permanent(
        format!("more than {} redirects", options.max_redirects),
        None,
    ))
}

/// One GET of `url` through a client pinned to its checked addresses.
async fn request(
    url: &Url,
    validators: Option<&(Option<String>, Option<String>)>,
    options: &FetchOptions,
) -> Result<reqwest::Response, FetchError> {
    let client = egress::pinned_client(url, options.allow_private, options.timeout).await?;
    let mut request = client
        .get(url.clone())
        .header(USER_AGENT, "Companin/0.1 (knowledge fetcher)");
    if let Some((etag, last_modified)) = validators {
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified);
        }
    }
    request
        .send()
        .await
        .map_err(|e| FetchError::transient(egress::describe(&e), None))
}

/// A failed answer: worth retrying (429, 408, 5xx) or not (any other non-success).
fn refuse_failure(status: StatusCode) -> Result<(), FetchError> {
    let code = Some(i32::from(status.as_u16()));
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        return Err(FetchError::transient(
            format!("the server answered {status}"),
            code,
        ));
    }
    if !status.is_success() {
        return Err(FetchError::permanent(
            format!("the server answered {status}"),
            code,
        ));
    }
    Ok(())
}

/// The body of a successful answer, refused past `max_bytes` whatever the server declares.
async fn read_page(response: reqwest::Response, max_bytes: usize) -> Result<Page, FetchError> {
    let status = response.status();
    let code = Some(i32::from(status.as_u16()));
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let (etag, last_modified, content_type) =
        (header(ETAG), header(LAST_MODIFIED), header(CONTENT_TYPE));
    let too_large =
        || FetchError::permanent(format!("the page is larger than {max_bytes} bytes"), code);
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| FetchError::transient(egress::describe(&e), code))?;
        if bytes.len() + piece.len() > max_bytes {
            return Err(too_large());
        }
        bytes.extend_from_slice(&piece);
    }
    Ok(Page {
        bytes,
        status: i32::from(status.as_u16()),
        etag,
        last_modified,
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_targets_are_refused_without_the_flag() {
        let options = FetchOptions {
            timeout: Duration::from_secs(1),
            max_bytes: 1024,
            allow_private: false,
            max_redirects: 1,
        };
        for url in [
            "http://127.0.0.1:9/",
            "http://localhost:9/",
            "http://[::1]:9/",
        ] {
            let error = fetch(url, None, &options).await.expect_err(url);
            assert!(
                error.is_permanent() && error.message().contains("refused"),
                "{url}: {error:?}"
            );
        }
        assert!(parse("file:///etc/passwd").is_err());
    }
}
