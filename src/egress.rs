//! Outbound HTTP to addresses that users give (URL sources, webhook endpoints), guarded
//! against server-side request forgery: the host must resolve to public addresses only
//! (unless `COMPANIN_ALLOW_PRIVATE_URLS=true`), the connection is pinned to the addresses
//! that were checked (no DNS rebinding between check and connect), and redirects are not
//! followed automatically, so every hop a caller chooses to follow is checked again.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use reqwest::redirect::Policy;
use url::{Host, Url};

/// Why a target may not be reached (or could not be checked).
#[derive(Debug, Clone)]
pub struct Refused {
    message: String,
    permanent: bool,
}

impl Refused {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    /// For a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again cannot help (a refused address, a malformed URL), as opposed to a
    /// DNS failure.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks that `raw` is an absolute http(s) URL with a host.
pub fn parse(raw: &str) -> Result<Url, Refused> {
    let url =
        Url::parse(raw.trim()).map_err(|e| Refused::permanent(format!("invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::permanent(
            "only http and https URLs can be reached",
        ));
    }
    if url.host().is_none() {
        return Err(Refused::permanent("the URL has no host"));
    }
    Ok(url)
}

/// An HTTP client for `url` alone: its host pinned to addresses checked now, no automatic
/// redirects, and `timeout` on the whole request.
pub async fn pinned_client(
    url: &Url,
    allow_private: bool,
    timeout: Duration,
) -> Result<reqwest::Client, Refused> {
    let addresses = resolve(url, allow_private).await?;
    build_pinned(url, &addresses, timeout)
}

fn build_pinned(
    url: &Url,
    addresses: &[SocketAddr],
    timeout: Duration,
) -> Result<reqwest::Client, Refused> {
    let mut builder = crate::tls::client_builder()
        .redirect(Policy::none())
        .timeout(timeout);
    if let Some(Host::Domain(domain)) = url.host() {
        builder = builder.resolve_to_addrs(domain, addresses);
    }
    builder
        .build()
        .map_err(|e| Refused::transient(format!("HTTP client: {e}")))
}

/// Most clients [`PinnedClients`] keeps.
const MAX_PINNED_CLIENTS: usize = 256;

/// Pinned clients kept for reuse, so that repeated requests to one host keep their
/// connections (and skip building a client). The host is resolved and checked on every
/// request as before; a client is reused only for the same host, port and checked
/// addresses, so a changed DNS answer gets a new client pinned to the new addresses.
#[derive(Debug, Default)]
pub struct PinnedClients {
    clients: std::sync::Mutex<std::collections::HashMap<ClientKey, reqwest::Client>>,
}

type ClientKey = (String, String, u16, Vec<SocketAddr>, Duration);

impl PinnedClients {
    /// A client for `url`, as [`pinned_client`] would build it.
    pub async fn get(
        &self,
        url: &Url,
        allow_private: bool,
        timeout: Duration,
    ) -> Result<reqwest::Client, Refused> {
        let mut addresses = resolve(url, allow_private).await?;
        addresses.sort();
        let key = (
            url.scheme().to_owned(),
            url.host_str().unwrap_or_default().to_owned(),
            url.port_or_known_default().unwrap_or(80),
            addresses,
            timeout,
        );
        if let Some(client) = self.clients.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(client);
        }
        let client = build_pinned(url, &key.3, timeout)?;
        if let Ok(mut clients) = self.clients.lock() {
            if clients.len() >= MAX_PINNED_CLIENTS {
                clients.clear();
            }
            clients.insert(key, client.clone());
        }
        Ok(client)
    }
}

/// The addresses of the URL's host, every one of which must be public unless allowed.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, Refused> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(domain)) => tokio::net::lookup_host((domain, port))
            .await
            .map_err(|e| Refused::transient(format!("could not resolve {domain}: {e}")))?
            .collect(),
        None => return Err(Refused::permanent("the URL has no host")),
    };
    if addresses.is_empty() {
        return Err(Refused::transient("the host has no address"));
    }
    if !allow_private && let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(Refused::permanent(format!(
            "refused: {} is a private, loopback or link-local address (set COMPANIN_ALLOW_PRIVATE_URLS=true to allow)",
            private.ip()
        )));
    }
    Ok(addresses)
}

/// A request error, for a person.
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        format!("the request failed: {e}")
    }
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
    let [first, second, ..] = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Site-local (deprecated, still routed inside some networks).
        || (first & 0xffc0) == 0xfec0
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48, both in 64:ff9b::/32) and
        // 6to4 (2002::/16) reach IPv4 addresses, private ones included, through a gateway.
        || (first == 0x0064 && second == 0xff9b)
        || first == 0x2002
        || (first == 0x2001 && second == 0x0db8)
        || ip.to_ipv4().is_some_and(|v4| !is_public_v4(v4)))
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
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "fec0::1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_pinned_client_is_refused_for_loopback_without_the_flag() {
        for raw in [
            "http://127.0.0.1:9/",
            "http://localhost:9/",
            "http://[::1]:9/",
        ] {
            let url = parse(raw).expect("valid URL");
            let refused = pinned_client(&url, false, Duration::from_secs(1))
                .await
                .expect_err(raw);
            assert!(
                refused.is_permanent() && refused.message().contains("refused"),
                "{raw}: {refused}"
            );
            assert!(
                pinned_client(&url, true, Duration::from_secs(1))
                    .await
                    .is_ok()
            );
        }
        assert!(parse("file:///etc/passwd").is_err());
    }
}
