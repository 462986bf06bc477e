//! Certificate signing requests (PKCS#10): decoding EST bodies, checking the proof of
//! possession, and naming the key algorithm.
//!
//! What the CA takes from a CSR is the public key and nothing else: the subject, requested
//! SANs and extensions are read only so that they can be shown and logged, never written into a
//! certificate (the profile decides those). The public key is taken from the request's own
//! SubjectPublicKeyInfo with x509-parser: rcgen's CSR parser derives the key algorithm from the
//! *signature* algorithm, which re-encodes a P-384 key signed with SHA-256 as a P-256 key
//! (rustls/rcgen#448).
//!
//! [`parse_csr`] is the entry point for anything that handles untrusted CSR bytes (the EST and
//! admin endpoints, the CLI, fuzz targets); it never panics.

use base64::Engine as _;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// The largest CSR accepted by default, in bytes of DER (an RSA-4096 request is about 1.2 KB).
pub const DEFAULT_MAX_CSR_BYTES: usize = 8 * 1024;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Why a CSR is refused. Every variant is the client's fault (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// The body is not base64 (EST) or PEM.
    #[error("the body is not base64-encoded DER: {0}")]
    Encoding(String),
    /// Larger than the configured maximum.
    #[error("the CSR is {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a DER PKCS#10 request.
    #[error("not a PKCS#10 certification request: {0}")]
    Malformed(String),
    /// The signature does not verify with the request's own key: no proof of possession.
    #[error("the CSR signature does not verify with its public key (no proof of possession)")]
    BadSignature,
    /// The key (or the signature algorithm) is not one medpdp can certify.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
}

/// A public key algorithm, named as the Med5G policy pack names them (`key_alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA with a modulus of this many bits.
    Rsa(u32),
}

impl KeyAlg {
    /// `ECDSA-P256`, `ECDSA-P384`, `Ed25519`, `RSA-<bits>`.
    pub fn name(self) -> String {
        match self {
            KeyAlg::EcdsaP256 => "ECDSA-P256".to_owned(),
            KeyAlg::EcdsaP384 => "ECDSA-P384".to_owned(),
            KeyAlg::Ed25519 => "Ed25519".to_owned(),
            KeyAlg::Rsa(bits) => format!("RSA-{bits}"),
        }
    }
}

impl std::fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// A checked certification request.
#[derive(Debug, Clone)]
pub struct Csr {
    /// The public key as the request states it (algorithm and curve included).
    pub public_key: rcgen::SubjectPublicKeyInfo,
    /// The key algorithm.
    pub key_alg: KeyAlg,
    /// The requested subject, for display only.
    pub subject: String,
    /// Requested URI SANs, for display only.
    pub requested_uris: Vec<String>,
}

/// Decodes an EST body: base64 of DER, with or without line breaks (RFC 8951 §3.2). A PEM
/// request (`-----BEGIN CERTIFICATE REQUEST-----`) is accepted too, for people pasting one.
pub fn decode_base64(body: &[u8]) -> Result<Vec<u8>, CsrError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| CsrError::Encoding("the body is not ASCII text".into()))?;
    let inner = match text.find("-----BEGIN") {
        Some(start) => {
            let after = &text[start..];
            let body_start = after.find('\n').map_or(after.len(), |i| i + 1);
            let end = after.find("-----END").unwrap_or(after.len());
            &after[body_start.min(end)..end]
        }
        None => text,
    };
    let compact: String = inner.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(CsrError::Encoding("the body is empty".into()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| CsrError::Encoding(e.to_string()))
}

/// Parses a DER PKCS#10 request of at most `max_bytes`, verifies its signature with its own
/// key (proof of possession) and names its key algorithm. Unsupported keys (RSA under 2048
/// bits, P-521, DSA, SM2, …) are refused here, whatever a profile says.
pub fn parse_csr(der: &[u8], max_bytes: usize) -> Result<Csr, CsrError> {
    if der.len() > max_bytes {
        return Err(CsrError::TooLarge { size: der.len(), max: max_bytes });
    }
    let (rest, req) =
        X509CertificationRequest::from_der(der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed(format!("{} bytes after the request", rest.len())));
    }
    let info = &req.certification_request_info;
    let spki = &info.subject_pki;
    let key_alg = key_alg(spki)?;
    req.verify_signature().map_err(|e| match e {
        x509_parser::error::X509Error::SignatureUnsupportedAlgorithm => CsrError::UnsupportedKey(
            format!("signature algorithm `{}` is not supported", req.signature_algorithm.algorithm),
        ),
        _ => CsrError::BadSignature,
    })?;
    let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki.raw)
        .map_err(|e| CsrError::UnsupportedKey(format!("{key_alg}: {e}")))?;
    let requested_uris = req
        .requested_extensions()
        .into_iter()
        .flatten()
        .filter_map(|ext| match ext {
            ParsedExtension::SubjectAlternativeName(san) => Some(&san.general_names),
            _ => None,
        })
        .flatten()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect();
    Ok(Csr { public_key, key_alg, subject: info.subject.to_string(), requested_uris })
}

/// The key algorithm of a SubjectPublicKeyInfo, or why it is not supported.
fn key_alg(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<KeyAlg, CsrError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| CsrError::UnsupportedKey("EC key without a named curve".into()))?;
        return if curve == OID_EC_P256 {
            Ok(KeyAlg::EcdsaP256)
        } else if curve == OID_NIST_EC_P384 {
            Ok(KeyAlg::EcdsaP384)
        } else if curve == OID_NIST_EC_P521 {
            Err(CsrError::UnsupportedKey("ECDSA-P521 (ring cannot verify P-521)".into()))
        } else {
            Err(CsrError::UnsupportedKey(format!("EC curve `{curve}` (e.g. SM2 or brainpool)")))
        };
    }
    if *alg == OID_SIG_ED25519 {
        return Ok(KeyAlg::Ed25519);
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => rsa.key_size(),
            _ => return Err(CsrError::Malformed("unreadable RSA public key".into())),
        };
        if bits < MIN_RSA_BITS {
            return Err(CsrError::UnsupportedKey(format!(
                "RSA-{bits} is too weak (at least {MIN_RSA_BITS} bits)"
            )));
        }
        return Ok(KeyAlg::Rsa(u32::try_from(bits).unwrap_or(u32::MAX)));
    }
    Err(CsrError::UnsupportedKey(format!("key algorithm `{alg}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_for(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["x.example".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "pump-0042");
        params.serialize_request(&key).unwrap().der().to_vec()
    }

    #[test]
    fn good_requests_name_their_key() {
        let p256 = parse_csr(&csr_for(&rcgen::PKCS_ECDSA_P256_SHA256), 8192).unwrap();
        assert_eq!(p256.key_alg.name(), "ECDSA-P256");
        assert!(p256.subject.contains("pump-0042"), "{}", p256.subject);
        let p384 = parse_csr(&csr_for(&rcgen::PKCS_ECDSA_P384_SHA384), 8192).unwrap();
        assert_eq!(p384.key_alg, KeyAlg::EcdsaP384);
        let ed = parse_csr(&csr_for(&rcgen::PKCS_ED25519), 8192).unwrap();
        assert_eq!(ed.key_alg, KeyAlg::Ed25519);
    }

    #[test]
    fn tampering_size_and_garbage_are_refused() {
        let mut der = csr_for(&rcgen::PKCS_ECDSA_P256_SHA256);
        // The CN sits inside the signed info: flip one of its bytes.
        let pos = der.windows(9).position(|w| w == b"pump-0042").unwrap();
        der[pos] ^= 0x01;
        assert_eq!(parse_csr(&der, 8192).unwrap_err(), CsrError::BadSignature);
        assert!(matches!(parse_csr(&der, 10), Err(CsrError::TooLarge { max: 10, .. })));
        assert!(matches!(parse_csr(b"\x30\x03abc", 8192), Err(CsrError::Malformed(_))));
        assert!(matches!(parse_csr(&[], 8192), Err(CsrError::Malformed(_))));
    }

    #[test]
    fn base64_with_or_without_line_breaks_and_pem() {
        let der = csr_for(&rcgen::PKCS_ECDSA_P256_SHA256);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let wrapped: String = b64
            .as_bytes()
            .chunks(64)
            .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
            .collect();
        assert_eq!(decode_base64(b64.as_bytes()).unwrap(), der);
        assert_eq!(decode_base64(wrapped.as_bytes()).unwrap(), der);
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{wrapped}-----END CERTIFICATE REQUEST-----\n"
        );
        assert_eq!(decode_base64(pem.as_bytes()).unwrap(), der);
        assert!(matches!(decode_base64(b"not base64!"), Err(CsrError::Encoding(_))));
        assert!(matches!(decode_base64(b"  \n"), Err(CsrError::Encoding(_))));
        assert!(matches!(decode_base64(&[0xff, 0xfe]), Err(CsrError::Encoding(_))));
    }
}
