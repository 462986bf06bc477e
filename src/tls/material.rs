//! Building a rustls `ServerConfig` from the configured files, and describing what was loaded
//! (for `/v1/status` and the log).
//!
//! Policy, fixed here rather than configurable so that no deployment can weaken it:
//! - ring provider; TLS 1.3, plus TLS 1.2 unless `min_version = "1.3"`;
//! - only ECDHE key exchange with AEAD ciphers ([`ALLOWED_CIPHER_SUITES`]);
//! - client certificates required and verified by webpki: chain to the CA bundle, validity
//!   period, `clientAuth` EKU, and every CRL (a chain whose issuer has no CRL while CRLs are
//!   configured is refused: unknown status is not "good");
//! - no session resumption (no session cache, no tickets): every connection is fully
//!   verified, so a CRL update applies to the next connection;
//! - manufacturer (bootstrap) CAs, when configured, are a second, separate trust: see
//!   `verifier`. Two configurations are built from the same material: the API listener's
//!   (certificate required) and the EST listener's (certificate optional).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{ring as ring_provider, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use serde::Serialize;
use time::OffsetDateTime;

use super::verifier::{Classifier, SplitVerifier};
use super::{TlsConfig, TlsError, TlsVersion};

/// The cipher suites offered: TLS 1.3 AEADs, and TLS 1.2 ECDHE with AEAD ciphers. No CBC, no
/// static RSA key exchange, no DHE.
pub static ALLOWED_CIPHER_SUITES: &[SupportedCipherSuite] = &[
    ring_provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ring_provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ring_provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ring_provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ring_provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ring_provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ring_provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ring_provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ring_provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The ring crypto provider restricted to [`ALLOWED_CIPHER_SUITES`].
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = ring_provider::default_provider();
    p.cipher_suites.retain(|s| ALLOWED_CIPHER_SUITES.iter().any(|a| a.suite() == s.suite()));
    Arc::new(p)
}

/// Facts about one certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name.
    pub subject: String,
    /// Serial number (hex).
    pub serial: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// Facts about one CRL.
#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    /// The file.
    pub file: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    /// When the next one is due (an overdue CRL is still used, and logged).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update: Option<OffsetDateTime>,
    /// Number of revoked certificates listed.
    pub revoked: usize,
}

/// What a loaded TLS configuration consists of.
#[derive(Debug, Clone, Serialize)]
pub struct MaterialInfo {
    /// The server certificate (leaf).
    pub server_cert: CertInfo,
    /// The client CA certificates.
    pub client_cas: Vec<CertInfo>,
    /// The CRLs.
    pub crls: Vec<CrlInfo>,
    /// Manufacturer CA certificates: bootstrap (IDevID) certificates may enroll, nothing else.
    pub bootstrap_cas: Vec<CertInfo>,
    /// Lowest protocol version accepted.
    pub min_version: TlsVersion,
    /// `sha256:` over the contents of every file, to tell a real change from a touch.
    pub fingerprint: String,
}

/// A built server configuration and its description.
pub(super) struct Material {
    pub(super) active: Arc<Active>,
    pub(super) info: MaterialInfo,
}

/// The configurations built from one set of files, swapped together.
#[derive(Debug)]
pub struct Active {
    /// The API listener: client certificate required.
    pub config: Arc<ServerConfig>,
    /// The EST listener: client certificate optional (token enrollment).
    pub est_config: Arc<ServerConfig>,
    /// Tells operational from bootstrap certificates with the same material.
    pub classifier: Classifier,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|e| TlsError::Read { path: path.to_owned(), message: e.to_string() })
}

fn content(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::Content { path: path.to_owned(), message: message.into() }
}

fn pem_all<T: PemObject>(path: &Path, bytes: &[u8], what: &str) -> Result<Vec<T>, TlsError> {
    let items = T::pem_slice_iter(bytes)
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| content(path, format!("invalid PEM: {e}")))?;
    if items.is_empty() {
        return Err(content(path, format!("no {what} found (expected PEM)")));
    }
    Ok(items)
}

/// Reads every file and builds the server configuration, or says which file is wrong.
pub(super) fn load(settings: &TlsConfig) -> Result<Material, TlsError> {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut read_hashed = |path: &Path| -> Result<Vec<u8>, TlsError> {
        let bytes = read(path)?;
        hash.update(path.as_os_str().as_encoded_bytes());
        hash.update(&(bytes.len() as u64).to_be_bytes());
        hash.update(&bytes);
        Ok(bytes)
    };

    let cert_bytes = read_hashed(&settings.cert)?;
    let chain: Vec<CertificateDer<'static>> = pem_all(&settings.cert, &cert_bytes, "certificate")?;
    let key_bytes = read_hashed(&settings.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| content(&settings.key, format!("no usable private key: {e}")))?;
    let ca_bytes = read_hashed(&settings.client_ca)?;
    let cas: Vec<CertificateDer<'static>> =
        pem_all(&settings.client_ca, &ca_bytes, "CA certificate")?;
    let mut crls: Vec<CertificateRevocationListDer<'static>> = Vec::new();
    let mut crl_infos = Vec::new();
    for path in &settings.crls {
        let bytes = read_hashed(path)?;
        for crl in pem_all::<CertificateRevocationListDer<'static>>(path, &bytes, "CRL")? {
            crl_infos.push(crl_info(path, &crl)?);
            crls.push(crl);
        }
    }

    let mut roots = RootCertStore::empty();
    let mut client_cas = Vec::new();
    for ca in cas {
        client_cas.push(cert_info(&settings.client_ca, &ca)?);
        roots
            .add(ca)
            .map_err(|e| content(&settings.client_ca, format!("unusable CA certificate: {e}")))?;
    }
    let mut bootstrap_roots = RootCertStore::empty();
    let mut bootstrap_cas = Vec::new();
    for path in &settings.bootstrap_cas {
        let bytes = read_hashed(path)?;
        for ca in pem_all::<CertificateDer<'static>>(path, &bytes, "CA certificate")? {
            bootstrap_cas.push(cert_info(path, &ca)?);
            bootstrap_roots
                .add(ca)
                .map_err(|e| content(path, format!("unusable CA certificate: {e}")))?;
        }
    }
    let server_cert = match chain.first() {
        Some(leaf) => cert_info(&settings.cert, leaf)?,
        None => return Err(content(&settings.cert, "no certificate found")),
    };

    let provider = provider();
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| content(&settings.key, format!("unusable private key: {e}")))?;
    let mut hints: Vec<rustls::DistinguishedName> = roots.subjects();
    hints.extend(bootstrap_roots.subjects());
    let operational: Arc<dyn ClientCertVerifier> =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .with_crls(crls)
            .build()
            .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?;
    // Manufacturer CAs publish no CRL medpdp could load: revocation is not checked for
    // bootstrap certificates (they can only ask for an enrollment, which policy decides).
    let bootstrap: Option<Arc<dyn ClientCertVerifier>> = if bootstrap_roots.is_empty() {
        None
    } else {
        Some(
            WebPkiClientVerifier::builder_with_provider(
                Arc::new(bootstrap_roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::Config(format!("bootstrap certificate verifier: {e}")))?,
        )
    };
    let split = |optional: bool| -> Arc<dyn ClientCertVerifier> {
        Arc::new(SplitVerifier {
            operational: operational.clone(),
            bootstrap: bootstrap.clone(),
            optional,
            hints: hints.clone(),
        })
    };
    let main_verifier = match bootstrap {
        None => operational.clone(),
        Some(_) => split(false),
    };
    let build = |verifier: Arc<dyn ClientCertVerifier>| {
        server_config(settings, provider.clone(), verifier, chain.clone(), key.clone_key())
    };
    let config = build(main_verifier)?;
    let est_config = build(split(true))?;
    let classifier = Classifier { operational, has_bootstrap: !bootstrap_cas.is_empty() };

    let fingerprint = format!("sha256:{}", hex::encode(hash.finish().as_ref()));
    let info = MaterialInfo {
        server_cert,
        client_cas,
        crls: crl_infos,
        bootstrap_cas,
        min_version: settings.min_version,
        fingerprint,
    };
    Ok(Material { active: Arc::new(Active { config, est_config, classifier }), info })
}

fn server_config(
    settings: &TlsConfig,
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ClientCertVerifier>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            TlsError::Config(format!(
                "server certificate `{}` and key `{}`: {e}",
                settings.cert.display(),
                settings.key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    // INVARIANT: no resumption. A resumed session skips certificate verification, so a
    // revoked client could keep reconnecting on an old session.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Only the fingerprint, for telling whether anything changed (cheap: no parsing).
pub(super) fn fingerprint(settings: &TlsConfig) -> Result<String, TlsError> {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let paths = [&settings.cert, &settings.key, &settings.client_ca].into_iter();
    for path in paths.chain(settings.crls.iter()).chain(settings.bootstrap_cas.iter()) {
        let bytes = read(path)?;
        hash.update(path.as_os_str().as_encoded_bytes());
        hash.update(&(bytes.len() as u64).to_be_bytes());
        hash.update(&bytes);
    }
    Ok(format!("sha256:{}", hex::encode(hash.finish().as_ref())))
}

fn cert_info(path: &Path, der: &CertificateDer<'_>) -> Result<CertInfo, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| content(path, format!("unparsable certificate: {e}")))?;
    let validity = cert.validity();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        serial: cert.raw_serial_as_string().replace(':', ""),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
    })
}

fn crl_info(path: &Path, der: &CertificateRevocationListDer<'_>) -> Result<CrlInfo, TlsError> {
    let (_, crl) = x509_parser::parse_x509_crl(der)
        .map_err(|e| content(path, format!("unparsable CRL: {e}")))?;
    Ok(CrlInfo {
        file: path.display().to_string(),
        issuer: crl.issuer().to_string(),
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        revoked: crl.iter_revoked_certificates().count(),
    })
}
