//! TLS and proxy set-up shared by every outbound HTTP client.

use std::sync::OnceLock;

use anyhow::Context;

/// Makes ring the process-wide rustls crypto provider (the HTTP clients are built without a
/// provider of their own). Idempotent.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The proxy outbound clients use: `None` inside for none.
static EGRESS_PROXY: OnceLock<Option<reqwest::Proxy>> = OnceLock::new();

/// Sets the proxy every outbound client of this process uses (`egress_proxy`); without one,
/// clients connect directly. The first call decides; later ones change nothing.
pub fn configure_egress(proxy: Option<&str>) -> anyhow::Result<()> {
    let proxy = proxy
        .filter(|p| !p.trim().is_empty())
        .map(|url| {
            reqwest::Proxy::all(url.trim())
                .with_context(|| format!("egress_proxy `{url}` is not a proxy URL"))
        })
        .transpose()?;
    let _ = EGRESS_PROXY.set(proxy);
    Ok(())
}

/// A builder for an outbound HTTP client: the crypto provider installed, and the configured
/// proxy or none. Proxies named by the environment (`HTTP_PROXY`, `HTTPS_PROXY`,
/// `ALL_PROXY`) are never used: they would carry requests the SSRF checks resolved and
/// pinned to other addresses.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    let builder = reqwest::Client::builder();
    match EGRESS_PROXY.get() {
        Some(Some(proxy)) => builder.proxy(proxy.clone()),
        _ => builder.no_proxy(),
    }
}
