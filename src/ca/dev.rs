//! The first-run development PKI: when the configured client CA file does not exist, create a
//! development CA, a server certificate for `localhost`/`127.0.0.1`/`::1`, an empty CRL and
//! demo client certificates, so `medpdp serve` on a fresh clone works without manual steps.
//!
//! It is an ordinary use of the CA: [`super::setup::begin`] creates the CA, the demo
//! certificates are issued along the profiles in `certs/profiles.toml` and recorded in the
//! registry (so they can be listed and revoked like any other), and [`super::setup::finish`]
//! publishes the CRL and writes the CA certificate last. They are issued by the operator's own
//! start-up, without a policy decision (the demo identities are not devices of the pack).
//!
//! It only ever creates files. If the CA is missing but another target file exists (for
//! example a server certificate from an earlier CA), it refuses rather than overwrite it.
//! A production deployment sets `tls.dev_pki = false` and brings its own PKI (or runs
//! `medpdp ca init` / `medpdp ca import`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use time::Duration;

use super::authority::{Authority, IssueRequest, Subject};
use super::registry::IssueEffect;
use super::{write_new_private, write_new_public, CaConfig, CaError, CaKeyAlg, SubjectAltName};
use crate::identity::Caller;
use crate::tls::TlsConfig;

/// The demo client identities created on first run: `(file stem, identity URN, profile)`.
pub const DEMO_CLIENTS: &[(&str, &str, &str)] = &[
    ("demo-gateway", "urn:medpdp:gateway:demo-gateway", "gateway-mtls"),
    ("demo-admin", "urn:medpdp:admin:demo-admin", "admin"),
    ("demo-auditor", "urn:medpdp:auditor:demo-auditor", "auditor"),
];

const CA_VALIDITY_DAYS: i64 = 5 * 365;
/// The profile of the development server certificate.
const SERVER_PROFILE: &str = "server";

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
/// The CA goes where `[ca]` says (by default the same `certs/ca.pem` as `tls.client_ca`), its
/// registry under `data_dir`.
pub fn ensure(
    tls: &TlsConfig,
    ca_config: &CaConfig,
    data_dir: &Path,
) -> Result<Option<DevPki>, CaError> {
    if tls.client_ca.exists() {
        return Ok(None);
    }
    let dir = tls.client_ca.parent().unwrap_or(Path::new(".")).to_owned();
    let plan = DevPki {
        ca_cert: ca_config.cert.clone(),
        ca_key: ca_config.key.clone(),
        server_cert: tls.cert.clone(),
        server_key: tls.key.clone(),
        crl: tls.crls.first().cloned(),
        clients: DEMO_CLIENTS
            .iter()
            .map(|(stem, urn, _)| DemoClient {
                identity: (*urn).to_owned(),
                cert: dir.join(format!("{stem}.pem")),
                key: dir.join(format!("{stem}.key")),
            })
            .collect(),
    };
    let mut targets = vec![&plan.ca_cert, &plan.ca_key, &plan.server_cert, &plan.server_key];
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

    let authority = super::setup::begin(
        ca_config,
        data_dir,
        CaKeyAlg::P256,
        "medpdp development CA",
        Duration::days(CA_VALIDITY_DAYS),
    )?;
    // Keys first: if anything fails half-way, the missing CA certificate makes the next run
    // refuse (rather than silently trust a half-made PKI).
    let server = issue(
        &authority,
        SERVER_PROFILE,
        Subject::Server(vec![
            SubjectAltName::Dns("localhost".into()),
            SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]),
    )?;
    write_new_private(&plan.server_key, &server.1)?;
    write_new_public(&plan.server_cert, &server.0)?;
    for (client, (_, urn, profile)) in plan.clients.iter().zip(DEMO_CLIENTS) {
        let caller = Caller::from_urn(urn).map_err(|e| CaError::Invalid(e.to_string()))?;
        let (cert, key) = issue(&authority, profile, Subject::Caller(caller))?;
        write_new_private(&client.key, &key)?;
        write_new_public(&client.cert, &cert)?;
    }
    super::setup::finish(&authority)?;
    if tls.client_ca != ca_config.cert {
        write_new_public(&tls.client_ca, authority.cert_pem())?;
    }
    if let Some(crl) = plan.crl.as_ref().filter(|c| **c != ca_config.crl) {
        let pem = std::fs::read_to_string(&ca_config.crl)
            .map_err(|source| CaError::Io { path: ca_config.crl.clone(), source })?;
        write_new_public(crl, &pem)?;
    }
    Ok(Some(plan))
}

/// Issues a development certificate of `profile` for a fresh P-256 key, valid for the
/// profile's `max_lifetime` (so the demo keeps working for a year); `(cert chain, key)` PEM.
fn issue(
    authority: &Authority,
    profile: &str,
    subject: Subject,
) -> Result<(String, String), CaError> {
    let profile = authority
        .profiles()
        .get(profile)
        .ok_or_else(|| CaError::Invalid(format!("the profiles file has no `{profile}` profile")))?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| CaError::Cert { context: "cannot generate a key".into(), source })?;
    let record = authority.issue(&IssueRequest {
        subject,
        profile,
        public_key: &key,
        key_alg: "ECDSA-P256".into(),
        validity: Some(profile.max_lifetime),
        via: "dev-pki",
        decision_id: None,
        effect: IssueEffect::None,
    })?;
    let cert = super::pem_of("CERTIFICATE", &record.der) + &authority.chain_pem_for_leaf();
    Ok((cert, key.serialize_pem()))
}
