//! The caller identity in a verified client certificate.
//!
//! The leaf must carry exactly one URI SAN, and it must be a medpdp identity
//! (`urn:medpdp:<kind>:<id>`). Several URI SANs are refused outright (as X.509-SVID does)
//! rather than picking one: a certificate naming two identities is ambiguous, and an issuer
//! that produced it is not following our profile. Other SAN types (DNS, IP) are ignored.
//!
//! This runs only after rustls verified the chain, validity, EKU and revocation; it adds the
//! identity rule on top.
//!
//! A *bootstrap* certificate (one that chains only to a manufacturer CA) never names a
//! [`Caller`]: it gives a [`BootstrapPeer`], identified by the subject `serialNumber` that
//! IEEE 802.1AR IDevIDs carry, which the access policies let enroll and nothing else. A client
//! without a certificate (possible on the EST listener only) is [`Anonymous`].

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::identity::{Caller, IdentityError};

/// A device that presented a manufacturer (IDevID) certificate. It may only enroll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapPeer {
    /// The subject `serialNumber`: the device's factory identity, and the id it enrolls as.
    pub serial_number: String,
    /// The subject, for logs.
    pub subject: String,
}

/// Marks requests that arrived on the EST listener (only EST routes answer there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EstListener;

/// A client without a certificate (EST listener only): it may enroll with a one-time token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anonymous;

/// The verified leaf certificate of the connection (operational or bootstrap).
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// DER.
    pub der: std::sync::Arc<Vec<u8>>,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// End of validity.
    pub not_after: time::OffsetDateTime,
}

impl PeerCertificate {
    /// Facts about a verified leaf; `None` if it cannot be parsed (webpki accepted it, so
    /// this should not happen).
    pub fn from_der(leaf: &CertificateDer<'_>) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
        Some(Self {
            der: std::sync::Arc::new(leaf.to_vec()),
            serial: hex::encode(cert.raw_serial()),
            not_after: cert.validity().not_after.to_datetime(),
        })
    }
}

/// The device named by a bootstrap certificate: its subject `serialNumber` attribute, which
/// must be a valid medpdp id (letters, digits, `.`, `_`, `-`).
pub fn bootstrap_from_certificate(
    leaf: &CertificateDer<'_>,
) -> Result<BootstrapPeer, PeerIdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| PeerIdentityError::Unparsable(e.to_string()))?;
    let subject = cert.subject().to_string();
    let serial = cert
        .subject()
        .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or(PeerIdentityError::NoSerialNumber)?;
    // The same rules as a caller id, so the enrolled identity is always valid.
    Caller::new(crate::identity::CallerKind::Terminal, serial)?;
    Ok(BootstrapPeer { serial_number: serial.to_owned(), subject })
}

/// Why a verified certificate does not name a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdentityError {
    /// No client certificate (only on listeners that do not require one).
    #[error("no client certificate")]
    NoCertificate,
    /// The certificate could not be parsed (webpki accepted it, so this should not happen).
    #[error("client certificate cannot be parsed: {0}")]
    Unparsable(String),
    /// No URI SAN.
    #[error("client certificate has no URI subject alternative name (expected one `urn:medpdp:<kind>:<id>`)")]
    NoUri,
    /// More than one URI SAN.
    #[error("client certificate has {0} URI subject alternative names; exactly one is allowed")]
    SeveralUris(usize),
    /// The URI is not a medpdp identity.
    #[error("client certificate identity: {0}")]
    NotAnIdentity(#[from] IdentityError),
    /// A manufacturer certificate without a subject `serialNumber`.
    #[error(
        "manufacturer certificate has no subject serialNumber (the IEEE 802.1AR device identity)"
    )]
    NoSerialNumber,
}

/// The caller named by a (verified) client certificate.
pub fn caller_from_certificate(leaf: &CertificateDer<'_>) -> Result<Caller, PeerIdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| PeerIdentityError::Unparsable(e.to_string()))?;
    let san = cert.subject_alternative_name().map_err(|e| {
        PeerIdentityError::Unparsable(format!("subject alternative name extension: {e}"))
    })?;
    let uris: Vec<&str> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match uris.as_slice() {
        [] => Err(PeerIdentityError::NoUri),
        [uri] => Ok(Caller::from_urn(uri)?),
        more => Err(PeerIdentityError::SeveralUris(more.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CertificateAuthority, LeafSpec, SubjectAltName};
    use crate::identity::CallerKind;

    fn leaf(sans: Vec<SubjectAltName>) -> CertificateDer<'static> {
        let ca = CertificateAuthority::create("t", time::Duration::days(1)).unwrap();
        let mut spec = LeafSpec::client("x", "urn:medpdp:gateway:x", time::Duration::days(1));
        spec.sans = sans;
        let pem = ca.issue(&spec).unwrap().cert_pem;
        rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn exactly_one_medpdp_uri_names_the_caller() {
        let c = caller_from_certificate(&leaf(vec![
            SubjectAltName::Dns("gw.example".into()),
            SubjectAltName::Uri("urn:medpdp:gateway:gw-ward3".into()),
        ]))
        .unwrap();
        assert_eq!((c.kind, c.id.as_str()), (CallerKind::Gateway, "gw-ward3"));
    }

    #[test]
    fn zero_several_or_foreign_uris_are_refused() {
        assert_eq!(
            caller_from_certificate(&leaf(vec![SubjectAltName::Dns("a".into())])),
            Err(PeerIdentityError::NoUri)
        );
        assert_eq!(
            caller_from_certificate(&leaf(vec![
                SubjectAltName::Uri("urn:medpdp:gateway:a".into()),
                SubjectAltName::Uri("urn:medpdp:admin:b".into()),
            ])),
            Err(PeerIdentityError::SeveralUris(2))
        );
        assert!(matches!(
            caller_from_certificate(&leaf(vec![SubjectAltName::Uri("spiffe://h/x".into())])),
            Err(PeerIdentityError::NotAnIdentity(IdentityError::NotMedpdpUrn(_)))
        ));
        assert!(matches!(
            caller_from_certificate(&leaf(vec![SubjectAltName::Uri("urn:medpdp:root:x".into())])),
            Err(PeerIdentityError::NotAnIdentity(IdentityError::UnknownKind(_)))
        ));
    }
}
