//! TLS set-up shared by every outbound HTTPS client.

/// Makes ring the process-wide rustls crypto provider (the HTTP clients are built without a
/// provider of their own). Idempotent.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
