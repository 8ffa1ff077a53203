//! Fetching URL sources: timeouts, a size cap, conditional requests, redirects followed by
//! hand so that every hop passes the SSRF guard, and the connection pinned to the address
//! that was checked (no DNS rebinding between check and connect).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use futures::StreamExt;
use reqwest::{
    StatusCode,
    header::{
        CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION, USER_AGENT,
    },
    redirect::Policy,
};
use url::{Host, Url};

use crate::config::Settings;

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
    pub fn from_settings(settings: &Settings) -> Self {
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
    let url = Url::parse(raw.trim())
        .map_err(|e| FetchError::permanent(format!("invalid URL: {e}"), None))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::permanent(
            "only http and https URLs can be fetched",
            None,
        ));
    }
    if url.host().is_none() {
        return Err(FetchError::permanent("the URL has no host", None));
    }
    Ok(url)
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
        let addresses = resolve(&current, options.allow_private).await?;
        let mut builder = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(options.timeout);
        if let Some(Host::Domain(domain)) = current.host() {
            builder = builder.resolve_to_addrs(domain, &addresses);
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::transient(format!("HTTP client: {e}"), None))?;
        let mut request = client
            .get(current.clone())
            .header(USER_AGENT, "Companin/0.1 (knowledge fetcher)");
        if let Some((etag, last_modified)) = &validators {
            if let Some(etag) = etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = last_modified {
                request = request.header(IF_MODIFIED_SINCE, last_modified);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| FetchError::transient(describe(&e), None))?;
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
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, last_modified, content_type) =
            (header(ETAG), header(LAST_MODIFIED), header(CONTENT_TYPE));
        if response
            .content_length()
            .is_some_and(|len| len > options.max_bytes as u64)
        {
            return Err(FetchError::permanent(
                format!("the page is larger than {} bytes", options.max_bytes),
                code,
            ));
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| FetchError::transient(describe(&e), code))?;
            if bytes.len() + piece.len() > options.max_bytes {
                return Err(FetchError::permanent(
                    format!("the page is larger than {} bytes", options.max_bytes),
                    code,
                ));
            }
            bytes.extend_from_slice(&piece);
        }
        return Ok(Fetched::Content(Page {
            bytes,
            status: i32::from(status.as_u16()),
            etag,
            last_modified,
            content_type,
        }));
    }
    Err(FetchError::permanent(
        format!("more than {} redirects", options.max_redirects),
        None,
    ))
}

/// Checks now that the URL's host resolves to addresses a fetch may reach.
pub async fn check_target(url: &Url, allow_private: bool) -> Result<(), FetchError> {
    resolve(url, allow_private).await.map(|_| ())
}

/// The addresses of the URL's host, every one of which must be public unless allowed.
async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, FetchError> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(domain)) => tokio::net::lookup_host((domain, port))
            .await
            .map_err(|e| FetchError::transient(format!("could not resolve {domain}: {e}"), None))?
            .collect(),
        None => return Err(FetchError::permanent("the URL has no host", None)),
    };
    if addresses.is_empty() {
        return Err(FetchError::transient("the host has no address", None));
    }
    if !allow_private && let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(FetchError::permanent(
            format!(
                "refused: {} is a private, loopback or link-local address (set COMPANIN_ALLOW_PRIVATE_URLS=true to allow)",
                private.ip()
            ),
            None,
        ));
    }
    Ok(addresses)
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || ip.to_ipv4().is_some_and(|v4| !is_public_v4(v4)))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        format!("the request failed: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

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
