//! The caller identity in a verified client certificate.
//!
//! The leaf must carry exactly one URI SAN, and it must be a medpdp identity
//! (`urn:medpdp:<kind>:<id>`). Several URI SANs are refused outright (as X.509-SVID does)
//! rather than picking one: a certificate naming two identities is ambiguous, and an issuer
//! that produced it is not following our profile. Other SAN types (DNS, IP) are ignored.
//!
//! This runs only after rustls verified the chain, validity, EKU and revocation; it adds the
//! identity rule on top.

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::identity::{Caller, IdentityError};

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
