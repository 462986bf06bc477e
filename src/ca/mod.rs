//! The certificate authority.
//!
//! This file holds the cryptographic core: create (ECDSA P-256 or Ed25519, signed with ring
//! through rcgen) or load a CA, issue leaf certificates, sign CRLs. Issuance never copies
//! anything from a requester: the caller states the subject, SANs, key usage and validity in a
//! [`LeafSpec`], and the CA adds a random serial, the authority key identifier and `CA:FALSE`.
//!
//! Around it, by concern: [`csr`] parses and checks certificate signing requests (proof of
//! possession, key algorithm); [`profiles`] reads `certs/profiles.toml` (what each kind of
//! certificate may say); [`registry`] is the SQLite registry of everything issued, revoked and
//! of enrollment tokens; [`authority`] ties CA, profiles and registry into the operations
//! (issue, revoke, CRL, tokens) used by the CLI and the HTTP API; [`pkcs7`] encodes EST's
//! certs-only answers; [`setup`] creates (`ca init`) or imports a CA; [`dev`] builds the
//! first-run development PKI with the same code.
//!
//! This module does not decide *who* may get a certificate: that is a Cedar decision taken by
//! the caller of [`authority::Authority::issue`] (the HTTP layer, through `http::evaluate`).

pub mod authority;
mod config;
pub mod csr;
pub mod dev;
mod files;
pub mod pkcs7;
pub mod profiles;
pub mod registry;
pub mod setup;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use time::{Duration, OffsetDateTime};

pub use authority::Authority;
pub use config::{CaConfig, EstConfig};
pub use files::{write_new_private, write_new_public, write_replace};

/// Why a CA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A certificate or key could not be parsed, built or signed.
    #[error("{context}: {source}")]
    Cert {
        /// What was being done.
        context: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// A value is not acceptable for a certificate.
    #[error("{0}")]
    Invalid(String),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// The registry failed or refused.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
}

fn cert_err(context: impl Into<String>) -> impl FnOnce(rcgen::Error) -> CaError {
    let context = context.into();
    move |source| CaError::Cert { context, source }
}

/// What a leaf certificate is for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS client authentication (`clientAuth`): API callers, terminals.
    ClientAuth,
    /// TLS server authentication (`serverAuth`): the service itself.
    ServerAuth,
    /// IEEE 11073-20701 participant key purpose: SDC service provider (`1.2.840.10004.20701.1.1`).
    SdcProvider,
    /// IEEE 11073-20701 participant key purpose: SDC service consumer (`1.2.840.10004.20701.1.2`).
    SdcConsumer,
}

/// The key algorithm of a CA's own key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum CaKeyAlg {
    /// ECDSA on P-256 with SHA-256 (the default: understood by every TLS stack).
    P256,
    /// Ed25519 (smaller and faster; some older clients cannot verify it).
    Ed25519,
}

/// Why a certificate was revoked (RFC 5280 §5.3.1 reason codes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationReason {
    /// No reason given.
    Unspecified,
    /// The private key is (suspected to be) compromised.
    KeyCompromise,
    /// The CA's key is compromised.
    CaCompromise,
    /// The subject's name or affiliation changed.
    AffiliationChanged,
    /// Replaced by another certificate.
    Superseded,
    /// The device or service was taken out of operation.
    CessationOfOperation,
    /// The subject lost the privilege the certificate stood for.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// The name used in the registry, the CLI and the API (`key-compromise`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key-compromise",
            RevocationReason::CaCompromise => "ca-compromise",
            RevocationReason::AffiliationChanged => "affiliation-changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation-of-operation",
            RevocationReason::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    /// The reason named `s` (as [`RevocationReason::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        <Self as clap::ValueEnum>::value_variants().iter().copied().find(|r| r.as_str() == s)
    }

    fn rcgen(self) -> rcgen::RevocationReason {
        match self {
            RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
            RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            RevocationReason::CaCompromise => rcgen::RevocationReason::CaCompromise,
            RevocationReason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
            RevocationReason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn => rcgen::RevocationReason::PrivilegeWithdrawn,
        }
    }
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// A DNS name such as `localhost`.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
    /// A URI such as `urn:medpdp:gateway:gw-ward3` (the caller identity).
    Uri(String),
}

/// Everything a leaf certificate says, chosen by the issuer (never copied from a request).
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// The subject common name.
    pub common_name: String,
    /// Subject alternative names, in order.
    pub sans: Vec<SubjectAltName>,
    /// Extended key usages; empty means no EKU extension (test use only: real leaves need one).
    pub usages: Vec<Usage>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// A client certificate for a caller identity URN, valid from a minute ago (clock skew)
    /// for `validity`.
    pub fn client(common_name: &str, identity_urn: &str, validity: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            common_name: common_name.to_owned(),
            sans: vec![SubjectAltName::Uri(identity_urn.to_owned())],
            usages: vec![Usage::ClientAuth],
            not_before: now - Duration::minutes(1),
            not_after: now + validity,
        }
    }

    /// A server certificate for DNS names and IP addresses.
    pub fn server(common_name: &str, sans: Vec<SubjectAltName>, validity: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            common_name: common_name.to_owned(),
            sans,
            usages: vec![Usage::ServerAuth],
            not_before: now - Duration::minutes(1),
            not_after: now + validity,
        }
    }
}

/// A certificate and its new private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM). Never log it.
    pub key_pem: String,
    /// The serial number, lower-case hex without separators.
    pub serial: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// One entry of a CRL.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// Serial number, hex (as in [`Issued::serial`]).
    pub serial: String,
    /// When the CA processed the revocation.
    pub at: OffsetDateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// A signed leaf certificate.
#[derive(Debug, Clone)]
pub struct SignedLeaf {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// The serial number, lower-case hex without separators.
    pub serial: String,
}

/// A certificate authority: its certificate and its signing key.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of debug output.
        f.debug_struct("CertificateAuthority").finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed root CA (P-256) named `common_name`, valid from now for `validity`.
    /// It may sign leaves only (path length 0), and CRLs.
    pub fn create(common_name: &str, validity: Duration) -> Result<Self, CaError> {
        Self::create_with(common_name, validity, CaKeyAlg::P256)
    }

    /// A new self-signed root CA with a key of `alg`; otherwise as [`CertificateAuthority::create`].
    pub fn create_with(
        common_name: &str,
        validity: Duration,
        alg: CaKeyAlg,
    ) -> Result<Self, CaError> {
        let now = OffsetDateTime::now_utc();
        let sig_alg = match alg {
            CaKeyAlg::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            CaKeyAlg::Ed25519 => &rcgen::PKCS_ED25519,
        };
        let key = KeyPair::generate_for(sig_alg).map_err(cert_err("cannot generate the CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial()?);
        params.not_before = now - Duration::minutes(1);
        params.not_after = now + validity;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key).map_err(cert_err("cannot sign the CA certificate"))?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its certificate and key PEM text (the first certificate of `cert_pem`).
    ///
    /// The certificate must be a CA (`cA` true) that may sign certificates and CRLs, and the
    /// key must be its key: an imported CA (e.g. an intermediate under a hospital root) is
    /// checked here rather than producing unverifiable certificates later.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        use rustls::pki_types::pem::PemObject;
        let key = KeyPair::from_pem(key_pem).map_err(cert_err("cannot parse the CA key"))?;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| CaError::Invalid(format!("cannot parse the CA certificate: {e}")))?;
        check_ca_certificate(&der, &key)?;
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(cert_err("cannot parse the CA certificate"))?;
        let cert_pem = pem_of("CERTIFICATE", &der);
        Ok(Self { cert_pem, cert_der: der.to_vec(), key_pem: key_pem.to_owned(), issuer })
    }

    /// Loads a CA from a certificate file and a key file.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, CaError> {
        Self::from_pem(&files::read(cert)?, &files::read(key)?)
    }

    /// Writes the certificate (mode 0644) and key (mode 0600); refuses to overwrite either.
    pub fn save_new(&self, cert: &Path, key: &Path) -> Result<(), CaError> {
        write_new_private(key, &self.key_pem)?;
        write_new_public(cert, &self.cert_pem)
    }

    /// The CA certificate (PEM), to give to clients as their trust anchor.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PKCS#8 PEM). Write it only with mode 0600; never log it.
    pub(crate) fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a leaf certificate for a freshly generated P-256 key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(cert_err("cannot generate a key"))?;
        let (cert_pem, serial) = self.sign_leaf(spec, &key)?;
        Ok(Issued { cert_pem, key_pem: key.serialize_pem(), serial, not_after: spec.not_after })
    }

    /// Signs a leaf for a public key the CA did not generate (e.g. from a CSR); returns the
    /// certificate PEM and its serial.
    pub fn sign_leaf(
        &self,
        spec: &LeafSpec,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Result<(String, String), CaError> {
        let signed = self.sign(spec, public_key)?;
        Ok((signed.pem, signed.serial))
    }

    /// Signs a leaf for a public key (e.g. from a CSR: pass the SPKI that
    /// [`csr::parse_csr`] took from the request, never rcgen's CSR parameters).
    pub fn sign(
        &self,
        spec: &LeafSpec,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Result<SignedLeaf, CaError> {
        if spec.not_after <= spec.not_before {
            return Err(CaError::Invalid("`not_after` must be later than `not_before`".into()));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&spec.common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = spec
            .usages
            .iter()
            .map(|u| match u {
                Usage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
                Usage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                Usage::SdcProvider => {
                    ExtendedKeyUsagePurpose::Other(vec![1, 2, 840, 10004, 20701, 1, 1])
                }
                Usage::SdcConsumer => {
                    ExtendedKeyUsagePurpose::Other(vec![1, 2, 840, 10004, 20701, 1, 2])
                }
            })
            .collect();
        params.subject_alt_names =
            spec.sans.iter().map(san).collect::<Result<Vec<_>, CaError>>()?;
        let serial = random_serial()?;
        let serial_hex = hex::encode(serial.to_bytes());
        params.serial_number = Some(serial);
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(cert_err(format!("cannot sign a certificate for `{}`", spec.common_name)))?;
        Ok(SignedLeaf { der: cert.der().to_vec(), pem: cert.pem(), serial: serial_hex })
    }

    /// Signs a CRL listing `revoked`, numbered `number`, valid until `next_update`.
    pub fn sign_crl(
        &self,
        number: u64,
        revoked: &[Revoked],
        next_update: OffsetDateTime,
    ) -> Result<String, CaError> {
        let (_, pem) = self.sign_crl_der(number, revoked, next_update)?;
        Ok(pem)
    }

    /// [`CertificateAuthority::sign_crl`], giving the DER and the PEM.
    pub fn sign_crl_der(
        &self,
        number: u64,
        revoked: &[Revoked],
        next_update: OffsetDateTime,
    ) -> Result<(Vec<u8>, String), CaError> {
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                let bytes = hex::decode(&r.serial)
                    .map_err(|_| CaError::Invalid(format!("serial `{}` is not hex", r.serial)))?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: r.at,
                    reason_code: Some(r.reason.rcgen()),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let params = CertificateRevocationListParams {
            this_update: OffsetDateTime::now_utc() - Duration::minutes(1),
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).map_err(cert_err("cannot sign the CRL"))?;
        let pem = crl.pem().map_err(cert_err("cannot encode the CRL"))?;
        Ok((crl.der().to_vec(), pem))
    }
}

/// PEM text of one DER object.
pub fn pem_of(tag: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

/// Checks that `der` is a CA certificate that may sign certificates and CRLs, whose public key
/// is `key`'s.
fn check_ca_certificate(der: &[u8], key: &KeyPair) -> Result<(), CaError> {
    let invalid = |m: String| Err(CaError::Invalid(m));
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CaError::Invalid(format!("cannot parse the CA certificate: {e}")))?;
    let subject = cert.subject().to_string();
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        _ => return invalid(format!("`{subject}` is not a CA certificate (basicConstraints cA)")),
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        if !ku.value.key_cert_sign() || !ku.value.crl_sign() {
            return invalid(format!(
                "`{subject}` may not sign certificates and CRLs (keyUsage keyCertSign, cRLSign)"
            ));
        }
    }
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return invalid(format!("the key is not the key of the CA certificate `{subject}`"));
    }
    Ok(())
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "medpdp");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn san(s: &SubjectAltName) -> Result<SanType, CaError> {
    let ia5 = |v: &str| {
        v.to_owned()
            .try_into()
            .map_err(|_| CaError::Invalid(format!("`{v}` is not an ASCII (IA5) string")))
    };
    Ok(match s {
        SubjectAltName::Dns(d) => SanType::DnsName(ia5(d)?),
        SubjectAltName::Ip(ip) => SanType::IpAddress(*ip),
        SubjectAltName::Uri(u) => SanType::URI(ia5(u)?),
    })
}

/// A random positive 16-byte serial. rcgen's default (a hash of the public key) would give
/// every certificate for the same key the same serial, so revoking one would revoke all.
fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| CaError::Random)?;
    // Top bit clear: positive as a DER INTEGER. Second bit set: always exactly 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests;
