//! The first-run development PKI: when the configured client CA file does not exist, create a
//! development CA, a server certificate for `localhost`/`127.0.0.1`/`::1`, an empty CRL and
//! demo client certificates, so `medpdp serve` on a fresh clone works without manual steps.
//!
//! It only ever creates files. If the CA is missing but another target file exists (for
//! example a server certificate from an earlier CA), it refuses rather than overwrite it.
//! A production deployment sets `tls.dev_pki = false` and brings its own PKI.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use super::SubjectAltName;
use super::{write_new_private, write_new_public, CaError, CertificateAuthority, LeafSpec};
use crate::tls::TlsConfig;

/// The demo client identities created on first run: `(file stem, identity URN)`.
pub const DEMO_CLIENTS: &[(&str, &str)] = &[
    ("demo-gateway", "urn:medpdp:gateway:demo-gateway"),
    ("demo-admin", "urn:medpdp:admin:demo-admin"),
    ("demo-auditor", "urn:medpdp:auditor:demo-auditor"),
];

const CA_VALIDITY_DAYS: i64 = 5 * 365;
const LEAF_VALIDITY_DAYS: i64 = 397;
const CRL_VALIDITY_DAYS: i64 = 30;

/// A demo client certificate that was written.
#[derive(Debug, Clone)]
pub struct DemoClient {
    /// The identity URN in its URI SAN.
    pub identity: String,
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file (mode 0600).
    pub key: PathBuf,
}

/// What the first run created.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// The CA certificate (the trust anchor for clients and the server).
    pub ca_cert: PathBuf,
    /// The CA key (mode 0600).
    pub ca_key: PathBuf,
    /// The server certificate and key.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// The (empty) CRL, if one is configured.
    pub crl: Option<PathBuf>,
    /// Demo client certificates.
    pub clients: Vec<DemoClient>,
}

/// The CA key lives next to the CA certificate: `ca.pem` -> `ca.key`.
pub fn ca_key_path(ca_cert: &Path) -> PathBuf {
    ca_cert.with_extension("key")
}

/// Creates the development PKI when `tls.client_ca` does not exist; `Ok(None)` when it does.
pub fn ensure(tls: &TlsConfig) -> Result<Option<DevPki>, CaError> {
    if tls.client_ca.exists() {
        return Ok(None);
    }
    let dir = tls.client_ca.parent().unwrap_or(Path::new(".")).to_owned();
    let plan = DevPki {
        ca_cert: tls.client_ca.clone(),
        ca_key: ca_key_path(&tls.client_ca),
        server_cert: tls.cert.clone(),
        server_key: tls.key.clone(),
        crl: tls.crls.first().cloned(),
        clients: DEMO_CLIENTS
            .iter()
            .map(|(stem, urn)| DemoClient {
                identity: (*urn).to_owned(),
                cert: dir.join(format!("{stem}.pem")),
                key: dir.join(format!("{stem}.key")),
            })
            .collect(),
    };
    let mut targets = vec![&plan.ca_key, &plan.server_cert, &plan.server_key];
    targets.extend(&plan.crl);
    targets.extend(plan.clients.iter().flat_map(|c| [&c.cert, &c.key]));
    if let Some(existing) = targets.iter().find(|p| p.exists()) {
        return Err(CaError::Invalid(format!(
            "`{}` exists but its CA `{}` does not: remove the stale files, or provide the CA \
             (set `tls.dev_pki = false` to never create a development PKI)",
            existing.display(),
            tls.client_ca.display()
        )));
    }

    let ca =
        CertificateAuthority::create("medpdp development CA", Duration::days(CA_VALIDITY_DAYS))?;
    let leaf_validity = Duration::days(LEAF_VALIDITY_DAYS);
    let server = ca.issue(&LeafSpec::server(
        "localhost",
        vec![
            SubjectAltName::Dns("localhost".into()),
            SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ],
        leaf_validity,
    ))?;
    // Keys first: if anything fails half-way, the missing CA certificate makes the next run
    // refuse (rather than silently trust a half-made PKI).
    write_new_private(&plan.server_key, &server.key_pem)?;
    write_new_public(&plan.server_cert, &server.cert_pem)?;
    for client in &plan.clients {
        let id = client.identity.rsplit(':').next().unwrap_or(&client.identity);
        let issued = ca.issue(&LeafSpec::client(id, &client.identity, leaf_validity))?;
        write_new_private(&client.key, &issued.key_pem)?;
        write_new_public(&client.cert, &issued.cert_pem)?;
    }
    if let Some(crl) = &plan.crl {
        let next = OffsetDateTime::now_utc() + Duration::days(CRL_VALIDITY_DAYS);
        write_new_public(crl, &ca.sign_crl(1, &[], next)?)?;
    }
    ca.save_new(&plan.ca_cert, &plan.ca_key)?;
    Ok(Some(plan))
}
