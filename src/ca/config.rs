//! The `[ca]` and `[est]` configuration sections.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::profiles::{parse_duration, ProfileKind};

/// `[ca]`: the certificate authority's files and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaConfig {
    /// The issuing CA certificate (PEM). The CA is enabled when this and `key` exist.
    pub cert: PathBuf,
    /// The CA private key (PEM, mode 0600).
    pub key: PathBuf,
    /// Optional: the certificates above an imported intermediate CA, up to the root (PEM);
    /// sent in EST `cacerts` after the CA certificate.
    pub chain: PathBuf,
    /// Where the CRL is published (PEM); list it in `tls.crls` so the listener enforces it.
    pub crl: PathBuf,
    /// The certificate profiles (built-in copy of the committed file when it does not exist).
    pub profiles: PathBuf,
    /// The Cedar namespace of the issuance decisions' entities (`<ns>::Terminal`,
    /// `<ns>::CertificateProfile`, `<ns>::Action::"request_credential"`).
    pub namespace: String,
    /// Validity of each CRL; it is re-signed when less than a third is left.
    pub crl_validity: String,
    /// Largest CSR accepted, in bytes (DER).
    pub max_csr_bytes: usize,
    /// Default lifetime of `medpdp ca token` tokens.
    pub token_ttl: String,
}

impl Default for CaConfig {
    fn default() -> Self {
        Self {
            cert: PathBuf::from("certs/ca.pem"),
            key: PathBuf::from("certs/ca.key"),
            chain: PathBuf::from("certs/ca-chain.pem"),
            crl: PathBuf::from("certs/ca.crl.pem"),
            profiles: PathBuf::from("certs/profiles.toml"),
            namespace: "Med5G".to_owned(),
            crl_validity: "24h".to_owned(),
            max_csr_bytes: super::csr::DEFAULT_MAX_CSR_BYTES,
            token_ttl: "24h".to_owned(),
        }
    }
}

impl CaConfig {
    /// The CRL validity.
    pub fn crl_validity(&self) -> time::Duration {
        parse_duration(&self.crl_validity).unwrap_or(time::Duration::hours(24))
    }

    /// The default token lifetime.
    pub fn token_ttl(&self) -> time::Duration {
        parse_duration(&self.token_ttl).unwrap_or(time::Duration::hours(24))
    }

    /// Checks the values; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let crl = parse_duration(&self.crl_validity).map_err(|m| ("ca.crl_validity", m))?;
        if crl < time::Duration::minutes(10) {
            return Err(("ca.crl_validity", "must be at least 10m".into()));
        }
        parse_duration(&self.token_ttl).map_err(|m| ("ca.token_ttl", m))?;
        if !(256..=65_536).contains(&self.max_csr_bytes) {
            return Err(("ca.max_csr_bytes", "must be between 256 and 65536".into()));
        }
        let probe = format!("{}::Probe", self.namespace);
        if self.namespace.is_empty() || probe.parse::<cedar_policy::EntityTypeName>().is_err() {
            return Err(("ca.namespace", format!("`{}` is not a Cedar namespace", self.namespace)));
        }
        Ok(())
    }
}

/// `[est]`: enrollment over EST (RFC 7030).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EstConfig {
    /// A dedicated EST listener (TLS, client certificate *optional*, only the EST routes), for
    /// devices that enroll with a one-time token and have no certificate yet. Unset: none (the
    /// API listener serves EST to clients with a certificate).
    pub listen: Option<SocketAddr>,
    /// The kind of identity a manufacturer (IDevID) certificate enrolls: `terminal` or
    /// `gateway`. Its id is the certificate's subject `serialNumber`.
    pub bootstrap_kind: ProfileKind,
}

impl Default for EstConfig {
    fn default() -> Self {
        Self { listen: None, bootstrap_kind: ProfileKind::Terminal }
    }
}

impl EstConfig {
    /// Checks the values; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.bootstrap_kind.policy_gated() {
            return Err(("est.bootstrap_kind", "must be `terminal` or `gateway`".into()));
        }
        Ok(())
    }
}
