//! A throwaway PKI for TLS tests, made with medpdp's own `ca` module: a CA, a server
//! certificate for `localhost`/`127.0.0.1`, a CRL, client certificates on demand, and rustls
//! clients (ring provider) that present them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use medpdp::ca::{CertificateAuthority, Issued, LeafSpec, Revoked, SubjectAltName};
use medpdp::tls::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tempfile::TempDir;
use time::OffsetDateTime;

/// A CA with its files in a temporary directory.
pub struct TestPki {
    pub dir: TempDir,
    pub ca: CertificateAuthority,
    revoked: std::sync::Mutex<Vec<Revoked>>,
}

impl TestPki {
    /// A new CA, a server certificate and an empty CRL, written where [`TestPki::tls_config`]
    /// points.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::create("medpdp test CA", time::Duration::days(30)).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        let pki = Self { dir, ca, revoked: std::sync::Mutex::new(Vec::new()) };
        pki.rotate_server();
        pki.write_crl();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `[tls]` section for these files (watching on, fast debounce).
    pub fn tls_config(&self) -> TlsConfig {
        TlsConfig {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: self.path("ca.pem"),
            crls: vec![self.path("ca.crl.pem")],
            debounce_ms: 50,
            dev_pki: false,
            ..TlsConfig::default()
        }
    }

    /// Issues a new server certificate and writes it over the old one (key first, then the
    /// certificate, each replaced atomically). Returns its serial.
    pub fn rotate_server(&self) -> String {
        let issued = self
            .ca
            .issue(&LeafSpec::server(
                "localhost",
                vec![
                    SubjectAltName::Dns("localhost".into()),
                    SubjectAltName::Ip("127.0.0.1".parse().unwrap()),
                ],
                time::Duration::days(1),
            ))
            .unwrap();
        medpdp::ca::write_replace(&self.path("server.key"), &issued.key_pem, 0o600).unwrap();
        medpdp::ca::write_replace(&self.path("server.pem"), &issued.cert_pem, 0o644).unwrap();
        issued.serial
    }

    /// A client certificate for an identity, valid for a day.
    pub fn client(&self, urn: &str) -> Issued {
        self.issue(LeafSpec::client("test client", urn, time::Duration::days(1)))
    }

    pub fn issue(&self, spec: LeafSpec) -> Issued {
        self.ca.issue(&spec).unwrap()
    }

    /// Adds a serial to the CRL and rewrites it.
    pub fn revoke(&self, serial: &str) {
        self.revoked.lock().unwrap().push(Revoked {
            serial: serial.to_owned(),
            at: OffsetDateTime::now_utc(),
            reason: medpdp::ca::RevocationReason::KeyCompromise,
        });
        self.write_crl();
    }

    fn write_crl(&self) {
        let revoked = self.revoked.lock().unwrap().clone();
        let number = revoked.len() as u64 + 1;
        let next = OffsetDateTime::now_utc() + time::Duration::days(1);
        let crl = self.ca.sign_crl(number, &revoked, next).unwrap();
        medpdp::ca::write_replace(&self.path("ca.crl.pem"), &crl, 0o644).unwrap();
    }

    /// Writes a client's certificate and key as `<name>.pem` / `<name>.key` (for curl, openssl).
    pub fn write_client(&self, name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
        let (cert, key) = (self.path(&format!("{name}.pem")), self.path(&format!("{name}.key")));
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        std::fs::write(&key, &issued.key_pem).unwrap();
        (cert, key)
    }

    /// A rustls client config trusting this CA and presenting `identity` (if any).
    pub fn client_config(
        &self,
        identity: Option<&Issued>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        client_config(&self.path("ca.pem"), identity, versions)
    }

    /// A reqwest client over rustls (TLS 1.3 and 1.2) presenting `identity` (if any).
    pub fn http_client(&self, identity: Option<&Issued>) -> reqwest::Client {
        let config = self.client_config(identity, rustls::DEFAULT_VERSIONS);
        reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }
}

/// A rustls client config with the ring provider, trusting the CA bundle at `ca`.
pub fn client_config(
    ca: &Path,
    identity: Option<&Issued>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some(issued) => {
            let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    }
}
