//! Client certificate verification with two kinds of trust: *operational* certificates (the
//! CA bundle `tls.client_ca`, with CRLs) and *bootstrap* certificates (the manufacturers' CAs
//! in `tls.bootstrap_cas`: IEEE 802.1AR IDevIDs, good only for enrolling).
//!
//! [`SplitVerifier`] accepts a chain that verifies against either. It tries the operational
//! verifier first and falls back to the bootstrap one only when the operational verifier does
//! not know the issuer: a revoked, expired or otherwise bad operational certificate is never
//! re-tried as a bootstrap certificate. Which of the two a connection's certificate verified
//! against is told afterwards by [`Classifier::classify`], which re-runs the operational
//! verifier on the same material (a bootstrap certificate must never be mistaken for an
//! operational one, whatever names it carries).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// Operational verifier first, bootstrap verifier for unknown issuers.
#[derive(Debug)]
pub(super) struct SplitVerifier {
    pub(super) operational: Arc<dyn ClientCertVerifier>,
    pub(super) bootstrap: Option<Arc<dyn ClientCertVerifier>>,
    /// Whether a client may connect without a certificate (the EST listener).
    pub(super) optional: bool,
    pub(super) hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for SplitVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        !self.optional
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self.operational.verify_client_cert(end_entity, intermediates, now) {
            Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
                match &self.bootstrap {
                    Some(b) => b.verify_client_cert(end_entity, intermediates, now),
                    None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
                }
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.operational.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.operational.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.operational.supported_verify_schemes()
    }
}

/// What a verified client certificate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerClass {
    /// It chains to the operational CA bundle: its URI SAN names a caller.
    Operational,
    /// It chains only to a manufacturer CA: it may enroll, nothing else.
    Bootstrap,
}

/// Tells operational from bootstrap certificates after a handshake, with the same material
/// (CA bundle, CRLs) the handshake used.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub(super) operational: Arc<dyn ClientCertVerifier>,
    pub(super) has_bootstrap: bool,
}

impl Classifier {
    /// The class of a chain that passed the handshake. Without bootstrap CAs every accepted
    /// certificate is operational, and nothing is re-verified.
    pub fn classify(&self, chain: &[CertificateDer<'static>]) -> PeerClass {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return PeerClass::Bootstrap;
        };
        if !self.has_bootstrap {
            return PeerClass::Operational;
        }
        match self.operational.verify_client_cert(leaf, intermediates, UnixTime::now()) {
            Ok(_) => PeerClass::Operational,
            // INVARIANT: anything that does not verify as operational right now is at most a
            // bootstrap certificate (the handshake verified it against the union).
            Err(_) => PeerClass::Bootstrap,
        }
    }
}
