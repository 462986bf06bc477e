//! TLS for the API listener: the server's rustls configuration built from files (server
//! certificate and key, client CA bundle, CRLs), kept in a [`TlsStore`] that swaps it
//! atomically when the files change, and the caller identity read from a verified client
//! certificate.
//!
//! Crypto is ring only: every rustls builder gets the ring provider explicitly
//! (`builder_with_provider`), never the process default. Client certificates are required and
//! verified by webpki against the CA bundle and the CRLs (chain, validity period, `clientAuth`
//! EKU, revocation); TLS resumption is off so a revocation applies to the very next
//! connection. Accepting connections and HTTP are `crate::server`'s business.

mod material;
mod peer;
mod store;
mod verifier;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use material::{provider, Active, CertInfo, CrlInfo, MaterialInfo, ALLOWED_CIPHER_SUITES};
pub use peer::{
    bootstrap_from_certificate, caller_from_certificate, Anonymous, BootstrapPeer, EstListener,
    PeerCertificate, PeerIdentityError,
};
pub use store::{TlsReloadOutcome, TlsStatus, TlsStore};
pub use verifier::{Classifier, PeerClass};
pub use watch::{watch, TlsWatchHandle};

/// `[tls]`: the API listener's certificate material and handshake settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The server private key (PEM: PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The CA certificates that client certificates must chain to (PEM bundle).
    pub client_ca: PathBuf,
    /// CRLs (PEM) checked on every handshake. Empty: no revocation checking.
    pub crls: Vec<PathBuf>,
    /// Manufacturer CA certificates (PEM): devices with a certificate from one of them (an
    /// IEEE 802.1AR IDevID) may enroll over EST, and do nothing else.
    pub bootstrap_cas: Vec<PathBuf>,
    /// Lowest protocol version accepted.
    pub min_version: TlsVersion,
    /// How long a client has to complete the TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// Reload when the files change.
    pub watch: bool,
    /// How long file changes must settle before a reload, in milliseconds.
    pub debounce_ms: u64,
    /// Create a development PKI on start when `client_ca` does not exist.
    pub dev_pki: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: PathBuf::from("certs/server.pem"),
            key: PathBuf::from("certs/server.key"),
            client_ca: PathBuf::from("certs/ca.pem"),
            crls: vec![PathBuf::from("certs/ca.crl.pem")],
            bootstrap_cas: Vec::new(),
            min_version: TlsVersion::Tls12,
            handshake_timeout_ms: 10_000,
            watch: true,
            debounce_ms: 250,
            dev_pki: true,
        }
    }
}

impl TlsConfig {
    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// Checks the values (not the files: those are read when the material loads).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(100..=120_000).contains(&self.handshake_timeout_ms) {
            return Err(("tls.handshake_timeout_ms", "must be between 100 and 120000".into()));
        }
        if !(10..=60_000).contains(&self.debounce_ms) {
            return Err(("tls.debounce_ms", "must be between 10 and 60000".into()));
        }
        Ok(())
    }
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 (ECDHE with AEAD suites only) and TLS 1.3.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// Why the TLS material cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// A file does not hold what it should.
    #[error("`{path}`: {message}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the combination (e.g. the key does not match the certificate).
    #[error("{0}")]
    Config(String),
}
