//! Masking: request fields named by JSON pointers are replaced by a salted hash before a
//! record is written, and the record lists the pointers it masked.
//!
//! Pointers follow RFC 6901 and are relative to the request object (`/context/patient/id`,
//! `/entities/0/attrs/mrn`); as an extension, a segment `*` matches every key of an object or
//! every element of an array (`/entities/*/attrs/mrn`). A masked value becomes the string
//! `masked:<hex>` where `<hex>` is HMAC-SHA256 keyed with a secret salt over the value's JSON
//! text: equal values mask equally (records of one patient can still be correlated), but the
//! value cannot be read back or guessed without the salt. The salt lives under the data
//! directory (mode 0600) and never leaves it.
//!
//! A masked record cannot be replayed exactly (its inputs are gone); replay reports such
//! records separately and never counts them as reproduced.

use std::path::Path;

use ring::hmac;
use serde_json::Value;

use super::checkpoint::write_secret;
use super::AuditError;

/// Prefix of a masked value.
pub const MASKED_PREFIX: &str = "masked:";

/// Applies the configured masks.
pub struct Masker {
    pointers: Vec<Vec<String>>,
    key: hmac::Key,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker").field("pointers", &self.pointers).finish_non_exhaustive()
    }
}

impl Masker {
    /// A masker for `pointers` with the salt at `salt_path` (generated when missing).
    pub fn new(pointers: &[String], salt_path: &Path) -> Result<Self, AuditError> {
        let parsed = pointers
            .iter()
            .map(|p| parse_pointer(p).map_err(|message| AuditError::Config { message }))
            .collect::<Result<Vec<_>, _>>()?;
        let salt = match std::fs::read(salt_path) {
            Ok(s) if s.len() >= 16 => s,
            Ok(_) => {
                return Err(AuditError::Key {
                    path: salt_path.display().to_string(),
                    message: "the masking salt is shorter than 16 bytes".into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut salt = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
                    .map_err(|_| AuditError::Key {
                        path: salt_path.display().to_string(),
                        message: "cannot draw random bytes for the masking salt".into(),
                    })?;
                write_secret(salt_path, &salt)?;
                salt.to_vec()
            }
            Err(e) => return Err(AuditError::io(salt_path, e)),
        };
        Ok(Self { pointers: parsed, key: hmac::Key::new(hmac::HMAC_SHA256, &salt) })
    }

    /// Whether any pointer is configured.
    pub fn is_active(&self) -> bool {
        !self.pointers.is_empty()
    }

    /// Masks `request` in place; returns the concrete pointers that were masked, sorted.
    pub fn apply(&self, request: &mut Value) -> Vec<String> {
        let mut masked = Vec::new();
        for pointer in &self.pointers {
            let mut path = String::new();
            self.walk(request, pointer, &mut path, &mut masked);
        }
        masked.sort();
        masked.dedup();
        masked
    }

    fn walk(&self, v: &mut Value, rest: &[String], path: &mut String, out: &mut Vec<String>) {
        let Some((head, tail)) = rest.split_first() else {
            if !v.as_str().is_some_and(|s| s.starts_with(MASKED_PREFIX)) {
                *v = Value::String(self.masked_value(v));
            }
            out.push(path.clone());
            return;
        };
        let len = path.len();
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if head == "*" || head == k {
                        push_segment(path, k);
                        self.walk(child, tail, path, out);
                        path.truncate(len);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    if head == "*" || *head == i.to_string() {
                        push_segment(path, &i.to_string());
                        self.walk(child, tail, path, out);
                        path.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }

    fn masked_value(&self, v: &Value) -> String {
        let text = v.to_string();
        let tag = hmac::sign(&self.key, text.as_bytes());
        format!("{MASKED_PREFIX}{}", hex::encode(tag.as_ref()))
    }
}

/// Parses and checks a mask pointer.
pub fn parse_pointer(p: &str) -> Result<Vec<String>, String> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!("mask pointer `{p}` must start with `/` (RFC 6901)"));
    };
    let segments: Vec<String> =
        rest.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!("mask pointer `{p}` has an empty segment"));
    }
    if !matches!(segments.first().map(String::as_str), Some("context" | "entities" | "*")) {
        return Err(format!(
            "mask pointer `{p}` must point into `/context` or `/entities`: principal, action \
             and resource identify the decision and are never masked"
        ));
    }
    Ok(segments)
}

fn push_segment(path: &mut String, seg: &str) {
    path.push('/');
    path.push_str(&seg.replace('~', "~0").replace('/', "~1"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masker(pointers: &[&str]) -> (Masker, tempfile::TempDir) {
        let d = tempfile::tempdir().unwrap();
        let p: Vec<String> = pointers.iter().map(|s| (*s).to_owned()).collect();
        (Masker::new(&p, &d.path().join("salt")).unwrap(), d)
    }

    #[test]
    fn masks_named_fields_and_wildcards_and_lists_them() {
        let (m, _d) = masker(&["/context/patient/id", "/entities/*/attrs/mrn"]);
        let mut req = json!({
            "principal": "A::\"p\"",
            "context": {"patient": {"id": "P1", "age": 3}},
            "entities": [{"attrs": {"mrn": "123"}}, {"attrs": {}}, {"attrs": {"mrn": 7}}]
        });
        let masked = m.apply(&mut req);
        assert_eq!(
            masked,
            vec!["/context/patient/id", "/entities/0/attrs/mrn", "/entities/2/attrs/mrn"]
        );
        let id = req["context"]["patient"]["id"].as_str().unwrap();
        assert!(id.starts_with(MASKED_PREFIX) && id.len() == MASKED_PREFIX.len() + 64);
        assert_eq!(req["context"]["patient"]["age"], 3, "unnamed fields stay");
        // Equal values mask equally; masking twice changes nothing.
        let mut again = json!({"context": {"patient": {"id": "P1"}}});
        m.apply(&mut again);
        assert_eq!(again["context"]["patient"]["id"], req["context"]["patient"]["id"]);
        let before = req.clone();
        m.apply(&mut req);
        assert_eq!(req, before);
    }

    #[test]
    fn the_salt_is_kept_so_masks_are_stable_across_restarts() {
        let d = tempfile::tempdir().unwrap();
        let p = vec!["/context/x".to_owned()];
        let a = Masker::new(&p, &d.path().join("salt")).unwrap();
        let b = Masker::new(&p, &d.path().join("salt")).unwrap();
        let (mut x, mut y) = (json!({"context": {"x": 1}}), json!({"context": {"x": 1}}));
        a.apply(&mut x);
        b.apply(&mut y);
        assert_eq!(x, y);
        let other = tempfile::tempdir().unwrap();
        let c = Masker::new(&p, &other.path().join("salt")).unwrap();
        let mut z = json!({"context": {"x": 1}});
        c.apply(&mut z);
        assert_ne!(x, z, "another salt gives other masks");
    }

    #[test]
    fn bad_pointers_are_rejected_with_a_reason() {
        assert!(parse_pointer("context/x").unwrap_err().contains("must start with"));
        assert!(parse_pointer("/principal").unwrap_err().contains("never masked"));
        assert!(parse_pointer("/context//x").unwrap_err().contains("empty segment"));
        assert_eq!(parse_pointer("/context/a~1b").unwrap(), vec!["context", "a/b"]);
    }
}
