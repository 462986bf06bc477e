//! Creating a CA (`medpdp ca init`) or importing one (`medpdp ca import`), and the files that go
//! with it: the key (mode 0600, never logged), the certificate, the chain above an imported
//! intermediate, the registry, and a first (empty) CRL.
//!
//! Nothing existing is overwritten. The CA certificate is written last: until it exists the
//! CA is not configured, so a run that failed half-way is never mistaken for a working CA.

use std::path::Path;

use time::Duration;

use super::authority::Authority;
use super::config::CaConfig;
use super::{files, CaError, CaKeyAlg, CertificateAuthority};

/// Refuses when any of the CA's files exists.
fn refuse_existing(config: &CaConfig, with_chain: bool) -> Result<(), CaError> {
    let mut files = vec![&config.cert, &config.key];
    if with_chain {
        files.push(&config.chain);
    }
    match files.into_iter().find(|p| p.exists()) {
        Some(p) => Err(CaError::Invalid(format!(
            "`{}` exists: refusing to replace a CA (move the old files away first)",
            p.display()
        ))),
        None => Ok(()),
    }
}

/// The first half of creating a CA: the key is written, the registry opened; the caller may
/// issue (the development PKI does) before [`finish`] publishes the CRL and writes the
/// certificate.
pub fn begin(
    config: &CaConfig,
    data_dir: &Path,
    alg: CaKeyAlg,
    common_name: &str,
    validity: Duration,
) -> Result<Authority, CaError> {
    refuse_existing(config, false)?;
    let ca = CertificateAuthority::create_with(common_name, validity, alg)?;
    files::write_new_private(&config.key, ca.key_pem())?;
    Authority::with_ca(ca, config, data_dir)
}

/// Publishes the first CRL and writes the CA certificate: the CA is now configured.
pub fn finish(authority: &Authority) -> Result<(), CaError> {
    authority.publish_crl()?;
    files::write_new_public(&authority.config().cert, authority.cert_pem())
}

/// `medpdp ca init`: a new self-signed CA.
pub fn init(
    config: &CaConfig,
    data_dir: &Path,
    alg: CaKeyAlg,
    common_name: &str,
    validity: Duration,
) -> Result<Authority, CaError> {
    let authority = begin(config, data_dir, alg, common_name, validity)?;
    finish(&authority)?;
    Ok(authority)
}

/// `medpdp ca import`: an existing CA certificate and key (e.g. an intermediate signed by a
/// hospital root), with the certificates above it (`chain_pem`, may be empty).
pub fn import(
    config: &CaConfig,
    data_dir: &Path,
    cert_pem: &str,
    key_pem: &str,
    chain_pem: &str,
) -> Result<Authority, CaError> {
    refuse_existing(config, !chain_pem.trim().is_empty())?;
    let ca = CertificateAuthority::from_pem(cert_pem, key_pem)?;
    check_chain(&ca, chain_pem)?;
    files::write_new_private(&config.key, key_pem)?;
    if !chain_pem.trim().is_empty() {
        files::write_new_public(&config.chain, chain_pem)?;
    }
    let authority = Authority::with_ca(ca, config, data_dir)?;
    finish(&authority)?;
    Ok(authority)
}

fn parse(der: &[u8]) -> Result<x509_parser::certificate::X509Certificate<'_>, CaError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| CaError::Invalid(format!("chain: unparsable certificate: {e}")))
}

/// The chain must start with the CA certificate's issuer, each certificate signed by the next.
fn check_chain(ca: &CertificateAuthority, chain_pem: &str) -> Result<(), CaError> {
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Invalid(format!("chain: {e}")))?;
    let mut child = ca.cert_der().to_vec();
    for parent in &chain {
        let (c, p) = (parse(&child)?, parse(parent)?);
        if c.verify_signature(Some(p.public_key())).is_err() {
            return Err(CaError::Invalid(format!(
                "chain: `{}` is not signed by `{}` (list the issuers in order, up to the root)",
                c.subject(),
                p.subject()
            )));
        }
        child = parent.to_vec();
    }
    Ok(())
}
