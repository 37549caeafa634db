//! The process-wide TLS crypto provider. reqwest is built without a default provider (to use
//! ring rather than aws-lc-rs), so every HTTP client, cloud or host, installs this one first.

use std::sync::Once;

/// Installs ring as the TLS crypto provider; idempotent.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Another component may have installed one first; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
