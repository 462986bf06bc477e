//! The CA as a service: the CA key and certificate, the profiles and the registry, and the
//! operations on them (issue, revoke, publish the CRL, enrollment tokens), shared by the CLI
//! and the HTTP API.
//!
//! [`Authority::issue`] is deliberately dumb about *whether* to issue: the caller has already
//! authenticated the requester and, for policy-gated profiles, obtained an allow (whose
//! decision id it passes). It enforces what the profile says, signs, and commits the registry
//! row before returning the certificate.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ring::rand::SecureRandom;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::config::CaConfig;
use super::profiles::{Profile, ProfileKind, Profiles};
use super::registry::{CertRecord, CertStatus, IssueEffect, Registry, TokenRecord};
use super::SubjectAltName;
use super::{files, pkcs7, CaError, CertificateAuthority, LeafSpec, RevocationReason, Revoked};
use crate::identity::Caller;

/// What a certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A caller identity: one URI SAN `urn:medpdp:<kind>:<id>`.
    Caller(Caller),
    /// A TLS server: DNS names and IP addresses (at least one).
    Server(Vec<SubjectAltName>),
}

impl Subject {
    /// The registry's identity column: the URN, or `dns:<first name>` for servers.
    pub fn identity(&self) -> String {
        match self {
            Subject::Caller(c) => c.urn(),
            Subject::Server(names) => match names.first() {
                Some(SubjectAltName::Dns(d)) => format!("dns:{d}"),
                Some(SubjectAltName::Ip(ip)) => format!("ip:{ip}"),
                Some(SubjectAltName::Uri(u)) => u.clone(),
                None => String::new(),
            },
        }
    }
}

/// One issuance, fully decided.
#[derive(Debug)]
pub struct IssueRequest<'a, K: rcgen::PublicKeyData> {
    /// Who the certificate names.
    pub subject: Subject,
    /// The profile (must fit the subject).
    pub profile: &'a Profile,
    /// The public key (from a checked CSR, or generated).
    pub public_key: &'a K,
    /// Its algorithm name, e.g. `ECDSA-P256` (checked against the profile).
    pub key_alg: String,
    /// Validity; `None`: the profile's lifetime. At most the profile's `max_lifetime`.
    pub validity: Option<Duration>,
    /// How the request was authenticated (`est-idevid`, `est-token`, `admin-api`, …).
    pub via: &'a str,
    /// The allow decision for policy-gated profiles.
    pub decision_id: Option<String>,
    /// Token to consume or certificate to supersede, in the same transaction.
    pub effect: IssueEffect<'a>,
}

/// Counters for `/v1/status` (and metrics).
#[derive(Debug, Default, Serialize)]
pub struct CaCounters {
    /// Certificates issued (first enrollments and administrator issuance).
    pub issued: AtomicU64,
    /// Certificates renewed (re-enrollment).
    pub renewed: AtomicU64,
    /// Certificates revoked.
    pub revoked: AtomicU64,
    /// Issuance or renewal denied by policy.
    pub denied: AtomicU64,
    /// Requests refused before a decision: bad CSR, disallowed key, bad credentials.
    pub rejected: AtomicU64,
    /// CRLs signed.
    pub crls_signed: AtomicU64,
}

/// A published CRL.
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    /// Its number.
    pub number: u64,
    /// Certificates listed.
    pub revoked: usize,
    /// When the next one is due.
    pub next_update: OffsetDateTime,
    /// The file it was written to.
    pub path: PathBuf,
}

/// A new one-time enrollment token; the secret is shown once and stored only hashed.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The HTTP Basic user name.
    pub id: String,
    /// The HTTP Basic password. Never logged or stored.
    pub secret: String,
    /// The identity it enrolls.
    pub identity: String,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

/// The certificate authority with its profiles and registry.
#[derive(Debug)]
pub struct Authority {
    ca: CertificateAuthority,
    /// The CA certificate then the certificates above it (DER), for EST `cacerts`.
    chain: Vec<Vec<u8>>,
    profiles: Profiles,
    registry: Registry,
    config: CaConfig,
    counters: CaCounters,
}

/// Where the registry lives under the data directory.
pub fn registry_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ca").join("registry.sqlite3")
}

impl Authority {
    /// Opens the CA configured in `config` with its registry under `data_dir`; `Ok(None)` when
    /// the CA certificate or key does not exist (no CA configured).
    pub fn open(config: &CaConfig, data_dir: &Path) -> Result<Option<Self>, CaError> {
        if !config.cert.exists() || !config.key.exists() {
            return Ok(None);
        }
        let ca = CertificateAuthority::load(&config.cert, &config.key)?;
        Self::with_ca(ca, config, data_dir).map(Some)
    }

    /// An authority around a CA already in memory (e.g. one just created).
    pub fn with_ca(
        ca: CertificateAuthority,
        config: &CaConfig,
        data_dir: &Path,
    ) -> Result<Self, CaError> {
        let profiles = Profiles::load_or_builtin(&config.profiles)?;
        let registry = Registry::open(&registry_path(data_dir))?;
        registry.bind_ca(&hex::encode(sha256(ca.cert_der())))?;
        let mut chain = vec![ca.cert_der().to_vec()];
        if config.chain.exists() {
            let text = files::read(&config.chain)?;
            chain.extend(pem_certs(&text, &config.chain)?);
        }
        Ok(Self {
            ca,
            chain,
            profiles,
            registry,
            config: config.clone(),
            counters: CaCounters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CaConfig {
        &self.config
    }

    /// The profiles.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The counters.
    pub fn counters(&self) -> &CaCounters {
        &self.counters
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The CA certificate and its chain (DER), issuing CA first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// What a leaf should be sent with (PEM): the chain without self-signed roots, so an
    /// intermediate CA's leaves verify against the root alone.
    pub fn chain_pem_for_leaf(&self) -> String {
        self.chain
            .iter()
            .filter(|der| !is_self_signed(der))
            .map(|der| super::pem_of("CERTIFICATE", der))
            .collect()
    }

    /// EST `cacerts`: the chain as certs-only PKCS#7 (DER).
    pub fn cacerts_pkcs7(&self) -> Vec<u8> {
        let certs: Vec<&[u8]> = self.chain.iter().map(Vec::as_slice).collect();
        pkcs7::certs_only(&certs)
    }

    /// Signs and records a certificate; the row is committed before this returns.
    pub fn issue<K: rcgen::PublicKeyData>(
        &self,
        req: &IssueRequest<'_, K>,
    ) -> Result<CertRecord, CaError> {
        let profile = req.profile;
        let invalid = |m: String| Err(CaError::Invalid(m));
        let (common_name, sans) = match (&req.subject, profile.kind.caller_kind()) {
            (Subject::Caller(c), Some(kind)) if c.kind == kind => {
                (c.id.clone(), vec![SubjectAltName::Uri(c.urn())])
            }
            (Subject::Server(names), None) if !names.is_empty() => {
                let cn = match &names[0] {
                    SubjectAltName::Dns(d) => d.clone(),
                    SubjectAltName::Ip(ip) => ip.to_string(),
                    SubjectAltName::Uri(u) => u.clone(),
                };
                (cn, names.clone())
            }
            _ => {
                return invalid(format!(
                    "profile `{}` ({:?}) cannot name `{}`",
                    profile.name,
                    profile.kind,
                    req.subject.identity()
                ))
            }
        };
        if !profile.key_algs.contains(&req.key_alg) {
            return invalid(format!(
                "profile `{}` does not allow {} keys (allowed: {})",
                profile.name,
                req.key_alg,
                profile.key_algs.join(", ")
            ));
        }
        let validity = req.validity.unwrap_or(profile.lifetime);
        if validity <= Duration::ZERO || validity > profile.max_lifetime {
            return invalid(format!(
                "validity {validity} exceeds profile `{}`'s maximum {}",
                profile.name, profile.max_lifetime
            ));
        }
        let now =
            OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(OffsetDateTime::now_utc());
        let spec = LeafSpec {
            common_name,
            sans,
            usages: profile.usages(),
            // A minute back for clock skew between the CA and verifiers.
            not_before: now - Duration::minutes(1),
            not_after: now + validity,
        };
        let signed = self.ca.sign(&spec, req.public_key)?;
        let record = CertRecord {
            serial: signed.serial,
            identity: req.subject.identity(),
            profile: profile.name.clone(),
            key_alg: req.key_alg.clone(),
            not_before: spec.not_before,
            not_after: spec.not_after,
            status: CertStatus::Valid,
            superseded_by: None,
            revoked_at: None,
            revocation_reason: None,
            issued_at: now,
            issued_via: req.via.to_owned(),
            decision_id: req.decision_id.clone(),
            der: signed.der,
        };
        self.registry.record_issued(&record, req.effect)?;
        let counter = match req.effect {
            IssueEffect::Supersede(_) => &self.counters.renewed,
            _ => &self.counters.issued,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(record)
    }

    /// Revokes a certificate and publishes a new CRL.
    pub fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
    ) -> Result<(CertRecord, PublishedCrl), CaError> {
        let record = self.registry.revoke(serial, reason, OffsetDateTime::now_utc())?;
        self.counters.revoked.fetch_add(1, Ordering::Relaxed);
        let crl = self.publish_crl()?;
        Ok((record, crl))
    }

    /// Signs a CRL of every revoked, unexpired certificate and writes it (atomically) to
    /// `ca.crl`.
    pub fn publish_crl(&self) -> Result<PublishedCrl, CaError> {
        let now = OffsetDateTime::now_utc();
        let revoked: Vec<Revoked> = self
            .registry
            .revoked_unexpired(now)?
            .into_iter()
            .map(|r| Revoked {
                serial: r.serial,
                at: r.revoked_at.unwrap_or(now),
                reason: r.revocation_reason.unwrap_or(RevocationReason::Unspecified),
            })
            .collect();
        let number = self.registry.next_crl_number()?;
        let next_update = now + self.config.crl_validity();
        let (_, pem) = self.ca.sign_crl_der(number, &revoked, next_update)?;
        files::write_replace(&self.config.crl, &pem, 0o644)?;
        self.counters.crls_signed.fetch_add(1, Ordering::Relaxed);
        Ok(PublishedCrl {
            number,
            revoked: revoked.len(),
            next_update,
            path: self.config.crl.clone(),
        })
    }

    /// The published CRL (DER), read from its file (the CLI may have replaced it).
    pub fn crl_der(&self) -> Result<Vec<u8>, CaError> {
        use rustls::pki_types::pem::PemObject;
        let text = files::read(&self.config.crl)?;
        rustls::pki_types::CertificateRevocationListDer::from_pem_slice(text.as_bytes())
            .map(|d| d.to_vec())
            .map_err(|e| CaError::Invalid(format!("`{}`: {e}", self.config.crl.display())))
    }

    /// Whether the CRL must be re-signed: missing, unreadable, not ours, or less than a third
    /// of its validity left.
    pub fn crl_due(&self, now: OffsetDateTime) -> bool {
        let Ok(der) = self.crl_der() else { return true };
        let Ok((_, crl)) = x509_parser::parse_x509_crl(&der) else { return true };
        let ours = self.ca_public_key().is_some_and(|k| crl.verify_signature(&k).is_ok());
        match crl.next_update() {
            Some(next) => !ours || next.to_datetime() - now < self.config.crl_validity() / 3,
            None => true,
        }
    }

    fn ca_public_key(&self) -> Option<x509_parser::x509::SubjectPublicKeyInfo<'_>> {
        let (_, cert) = x509_parser::parse_x509_certificate(self.ca.cert_der()).ok()?;
        Some(cert.tbs_certificate.subject_pki)
    }

    /// Creates a one-time token that enrolls `identity` (optionally only with `profile`).
    pub fn create_token(
        &self,
        identity: &Caller,
        profile: Option<&str>,
        ttl: Duration,
    ) -> Result<NewToken, CaError> {
        if let Some(p) = profile {
            let known =
                self.profiles.get(p).is_some_and(|p| p.kind.caller_kind() == Some(identity.kind));
            if !known {
                return Err(CaError::Invalid(format!(
                    "no `{}` profile named `{p}`",
                    identity.kind.as_str()
                )));
            }
        }
        if !self
            .profiles
            .iter()
            .any(|p| p.kind.policy_gated() && p.kind.caller_kind() == Some(identity.kind))
        {
            return Err(CaError::Invalid(format!(
                "tokens enroll terminals and gateways, not `{}`",
                identity.kind.as_str()
            )));
        }
        let rng = ring::rand::SystemRandom::new();
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rng.fill(&mut id).map_err(|_| CaError::Random)?;
        rng.fill(&mut secret).map_err(|_| CaError::Random)?;
        use base64::Engine as _;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let now = OffsetDateTime::now_utc();
        let record = TokenRecord {
            id: hex::encode(id),
            identity: identity.urn(),
            profile: profile.map(str::to_owned),
            expires_at: now + ttl,
            used_at: None,
            secret_sha256: sha256(secret.as_bytes()),
        };
        self.registry.add_token(&record, now)?;
        Ok(NewToken {
            id: record.id,
            secret,
            identity: record.identity,
            expires_at: record.expires_at,
        })
    }

    /// The token `id` if `secret` is its secret and it is unused and unexpired. Consuming it
    /// happens in [`Authority::issue`] ([`IssueEffect::ConsumeToken`]).
    pub fn check_token(&self, id: &str, secret: &str) -> Result<TokenRecord, CaError> {
        let unusable = || CaError::Registry(super::registry::RegistryError::TokenUnusable);
        let token = self.registry.token(id)?.ok_or_else(unusable)?;
        // Comparing hashes of a 256-bit secret: timing reveals nothing usable about the secret.
        let matches = token.secret_sha256 == sha256(secret.as_bytes());
        if !matches || token.used_at.is_some() || token.expires_at <= OffsetDateTime::now_utc() {
            return Err(unusable());
        }
        Ok(token)
    }

    /// Which profile of `kind` a request uses: the one named (must be of that kind), else the
    /// only one, else the first whose `fits` says so.
    pub fn choose_profile(
        &self,
        kind: ProfileKind,
        named: Option<&str>,
        fits: impl Fn(&Profile) -> bool,
    ) -> Result<&Profile, String> {
        if let Some(name) = named {
            return match self.profiles.get(name) {
                Some(p) if p.kind == kind => Ok(p),
                Some(p) => Err(format!("profile `{name}` is for {:?}, not {kind:?}", p.kind)),
                None => Err(format!("no profile named `{name}`")),
            };
        }
        let candidates = self.profiles.of_kind(kind);
        match candidates.as_slice() {
            [] => Err(format!("no profile for {kind:?} in the profiles file")),
            [only] => Ok(only),
            several => Ok(several.iter().find(|p| fits(p)).unwrap_or(&several[0])),
        }
    }
}

fn is_self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()
}

/// Every certificate of a PEM text (DER).
fn pem_certs(text: &str, path: &Path) -> Result<Vec<Vec<u8>>, CaError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(text.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError::Invalid(format!("`{}`: {e}", path.display())))
}
