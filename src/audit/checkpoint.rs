//! The log signing key and checkpoint signatures (Ed25519, ring).
//!
//! The key is generated on first start and kept as PKCS#8 under the data directory with mode
//! 0600; `medpdp audit pubkey` exports the public half (PEM SubjectPublicKeyInfo) for auditors,
//! who should pin it (`audit verify --pubkey`) rather than trust the key next to the log.
//!
//! A checkpoint signs `medpdp-audit-checkpoint-v1\n<seq>\n<prev>\n<ts>\n<key_id>`: its own
//! position and the hash of the record before it, which commits to the whole chain so far.
//! This module does not decide when checkpoints are written (the writer does).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use super::AuditError;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The log signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key at `path`, generating it (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_pkcs8(&bytes)
                .map_err(|message| AuditError::Key { path: path.display().to_string(), message }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = ring::rand::SystemRandom::new();
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| AuditError::Key {
                    path: path.display().to_string(),
                    message: "cannot generate an Ed25519 key".into(),
                })?;
                write_secret(path, pkcs8.as_ref())?;
                Self::from_pkcs8(pkcs8.as_ref()).map_err(|message| AuditError::Key {
                    path: path.display().to_string(),
                    message,
                })
            }
            Err(source) => Err(AuditError::io(path, source)),
        }
    }

    /// Loads an existing key (never creates one).
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let bytes = std::fs::read(path).map_err(|e| AuditError::io(path, e))?;
        Self::from_pkcs8(&bytes)
            .map_err(|message| AuditError::Key { path: path.display().to_string(), message })
    }

    fn from_pkcs8(bytes: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    /// Short id of the public key (first 16 hex digits of its SHA-256).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_raw(self.pair.public_key().as_ref())
    }

    /// Signs a checkpoint; returns the signature in hex.
    pub fn sign_checkpoint(&self, seq: u64, prev: &str, ts: &str) -> String {
        let msg = checkpoint_message(seq, prev, ts, &self.key_id);
        hex::encode(self.pair.sign(msg.as_bytes()).as_ref())
    }
}

/// An Ed25519 public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    raw: Vec<u8>,
    key_id: String,
}

impl PublicKey {
    fn from_raw(raw: &[u8]) -> Self {
        Self { raw: raw.to_vec(), key_id: key_id(raw) }
    }

    /// Parses the PEM (`PUBLIC KEY`) that `medpdp audit pubkey` writes.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let b64: String = text
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PUBLIC KEY-----")
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("not a PEM public key: {e}"))?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(raw) if raw.len() == 32 => Ok(Self::from_raw(raw)),
            _ => {
                Err("not an Ed25519 public key (expected a PEM `PUBLIC KEY` with OID 1.3.101.112)"
                    .into())
            }
        }
    }

    /// PEM SubjectPublicKeyInfo.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    /// Short id of the key, as checkpoints name it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks a checkpoint signature.
    pub fn verify_checkpoint(
        &self,
        seq: u64,
        prev: &str,
        ts: &str,
        key_id: &str,
        signature_hex: &str,
    ) -> bool {
        let Ok(sig) = hex::decode(signature_hex) else {
            return false;
        };
        let msg = checkpoint_message(seq, prev, ts, key_id);
        UnparsedPublicKey::new(&ED25519, &self.raw).verify(msg.as_bytes(), &sig).is_ok()
    }
}

fn checkpoint_message(seq: u64, prev: &str, ts: &str, key_id: &str) -> String {
    format!("medpdp-audit-checkpoint-v1\n{seq}\n{prev}\n{ts}\n{key_id}")
}

fn key_id(raw: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, raw);
    hex::encode(&digest.as_ref()[..8])
}

/// Writes a secret file readable only by its owner, durably, without ever exposing a partial
/// file under the final name.
pub(crate) fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(|e| AuditError::io(&tmp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| AuditError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| AuditError::io(path, e))?;
    if let Some(dir) = path.parent() {
        super::segment::sync_dir(dir)?;
    }
    Ok(())
}

/// Creates a directory (and parents) that only its owner may enter.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| AuditError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_with_owner_only_mode_and_sign_verifiably() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("keys/audit-signing.pk8");
        let k1 = SigningKey::load_or_create(&path).unwrap();
        let k2 = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(k1.key_id(), k2.key_id(), "the second start loads the same key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sig = k1.sign_checkpoint(7, "ab", "t");
        let pem = k1.public_key().to_pem();
        let pk = PublicKey::from_pem(&pem).unwrap();
        assert_eq!(pk.key_id(), k1.key_id());
        assert!(pk.verify_checkpoint(7, "ab", "t", k1.key_id(), &sig));
        assert!(!pk.verify_checkpoint(8, "ab", "t", k1.key_id(), &sig));
        assert!(!pk.verify_checkpoint(7, "ac", "t", k1.key_id(), &sig));
        assert!(!pk.verify_checkpoint(7, "ab", "t", k1.key_id(), "zz"));
    }

    #[test]
    fn garbage_keys_and_pems_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("k");
        std::fs::write(&path, b"nope").unwrap();
        let e = SigningKey::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("Ed25519"), "{e}");
        assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
            .is_err());
    }
}
