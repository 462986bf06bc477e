//! The decision-log record: what one line holds, how it is encoded and how it is hashed.
//!
//! A record is one JSON object on one line:
//!
//! ```text
//! {"seq":N,"prev":"<64 hex>",<payload fields>,"hash":"<64 hex>"}\n
//! ```
//!
//! The canonical encoding of a record is exactly the bytes of its line without the trailing
//! `,"hash":"…"` member and newline, i.e. `{"seq":N,"prev":"…",<payload fields>}`; `hash` is
//! the SHA-256 of those bytes. Because `prev` is the previous record's `hash`, every record
//! commits to everything before it. Verification never re-serializes JSON: it hashes the bytes
//! as written, so an auditor can check a line with standard tools
//! (`sed -E 's/,"hash":"[0-9a-f]{64}"}$/}/' | sha256sum`).
//!
//! This module only encodes and decodes; the writer assigns `seq` and `prev`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decide::{Decision, EvaluationError};

/// `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Bytes after the canonical body in a line: `,"hash":"` + 64 hex + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A decision (or a batch item that failed, which the caller received as a deny).
    Decision,
    /// Something other than a decision: a policy activation, a credential issued, an admin
    /// action, the log being opened.
    Event,
    /// A signed checkpoint over the chain so far.
    Checkpoint,
}

/// A record as read back from the log. Fields that a kind does not use are absent.
#[derive(Debug, Clone, Deserialize)]
pub struct LoggedRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// `hash` of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// What the record is.
    pub kind: RecordKind,
    /// When it was recorded (RFC 3339, UTC).
    pub ts: String,
    /// The decision id the caller received (decisions).
    #[serde(default)]
    pub decision_id: Option<String>,
    /// `urn:medpdp:<kind>:<id>` of the authenticated caller, if any.
    #[serde(default)]
    pub caller: Option<String>,
    /// The endpoint that asked (decisions), e.g. `{"endpoint": "batch", "index": 3}`.
    #[serde(default)]
    pub source: Option<Value>,
    /// Workspace version that decided (decisions).
    #[serde(default)]
    pub policy_version: Option<String>,
    /// Entity-data version that decided (decisions).
    #[serde(default)]
    pub entities_version: Option<String>,
    /// The full request as received, with masked fields replaced (decisions).
    #[serde(default)]
    pub request: Option<Value>,
    /// Allow or deny (decisions).
    #[serde(default)]
    pub decision: Option<Decision>,
    /// Determining policies (decisions).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Policies that raised errors (decisions).
    #[serde(default)]
    pub errors: Vec<EvaluationError>,
    /// Obligations returned (decisions).
    #[serde(default)]
    pub obligations: Vec<String>,
    /// The error answer of a batch item that could not be evaluated (decisions).
    #[serde(default)]
    pub request_error: Option<Value>,
    /// Evaluation time in microseconds (decisions).
    #[serde(default)]
    pub eval_us: Option<u64>,
    /// JSON pointers (into `request`) whose values were replaced by a salted hash.
    #[serde(default)]
    pub masked: Vec<String>,
    /// The event name (events).
    #[serde(default)]
    pub event: Option<String>,
    /// Event details (events).
    #[serde(default)]
    pub details: Option<Value>,
    /// Id of the signing key (checkpoints).
    #[serde(default)]
    pub key_id: Option<String>,
    /// Ed25519 signature, hex (checkpoints).
    #[serde(default)]
    pub signature: Option<String>,
    /// SHA-256 of the canonical encoding.
    pub hash: String,
}

/// A line split into its canonical body and its stated hash.
#[derive(Debug, Clone, Copy)]
pub struct SplitLine<'a> {
    /// The canonical body without its closing brace: `{"seq":…,"prev":…,…` (the `}` that
    /// closes the canonical encoding is implied).
    pub body_open: &'a [u8],
    /// The stated hash (64 hex characters).
    pub hash: &'a str,
}

/// Splits a line (without its newline) into body and stated hash, or `None` when the line
/// does not end with a well-formed `,"hash":"<64 hex>"}`.
pub fn split_line(line: &[u8]) -> Option<SplitLine<'_>> {
    if line.len() < HASH_SUFFIX_LEN + 2 || !line.starts_with(b"{") {
        return None;
    }
    let (body_open, suffix) = line.split_at(line.len() - HASH_SUFFIX_LEN);
    let hex = suffix.strip_prefix(b",\"hash\":\"")?.strip_suffix(b"\"}")?;
    if hex.len() != 64 || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let hash = std::str::from_utf8(hex).ok()?;
    Some(SplitLine { body_open, hash })
}

/// SHA-256 (hex) of the canonical encoding `body_open` + `}`.
pub fn canonical_hash(body_open: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(body_open);
    ctx.update(b"}");
    hex::encode(ctx.finish().as_ref())
}

/// Appends one complete line (with newline) for a record to `out` and returns its hash.
///
/// `payload` is the record's fields after `seq` and `prev`, serialized as JSON object members
/// without braces (`"kind":"decision",…`).
pub fn encode_line(out: &mut Vec<u8>, seq: u64, prev: &str, payload: &[u8]) -> String {
    let start = out.len();
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"prev\":\"");
    out.extend_from_slice(prev.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(payload);
    let hash = canonical_hash(&out[start..]);
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\"}\n");
    hash
}

/// Serializes a struct as JSON object members without the surrounding braces, the form
/// [`encode_line`] takes.
pub fn payload_of<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = serde_json::to_vec(value)?;
    if v.len() < 2 || v.first() != Some(&b'{') || v.last() != Some(&b'}') {
        return Err(serde::ser::Error::custom("a record payload must be a non-empty JSON object"));
    }
    v.pop();
    v.remove(0);
    if v.is_empty() {
        return Err(serde::ser::Error::custom("a record payload must be a non-empty JSON object"));
    }
    Ok(v)
}

/// The current time as the log writes it (RFC 3339, UTC, microseconds).
pub fn now_rfc3339() -> String {
    format_ts(time::OffsetDateTime::now_utc())
}

/// Formats a time as the log writes it.
pub fn format_ts(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let micros = t.microsecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_hash_the_bytes_as_written() {
        let mut out = Vec::new();
        let payload =
            payload_of(&serde_json::json!({"kind": "event", "ts": "t", "event": "x"})).unwrap();
        let h1 = encode_line(&mut out, 1, GENESIS, &payload);
        let h2 = encode_line(&mut out, 2, &h1, &payload);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let rec: LoggedRecord = serde_json::from_str(lines[1]).unwrap();
        assert_eq!((rec.seq, rec.prev.as_str(), rec.hash.as_str()), (2, h1.as_str(), h2.as_str()));
        let split = split_line(lines[0].as_bytes()).unwrap();
        assert_eq!(split.hash, h1);
        assert_eq!(canonical_hash(split.body_open), h1);
        // Any change of the body changes the hash.
        let tampered = lines[0].replace("\"x\"", "\"y\"");
        let split = split_line(tampered.as_bytes()).unwrap();
        assert_ne!(canonical_hash(split.body_open), split.hash);
    }

    #[test]
    fn malformed_hash_suffixes_are_rejected() {
        assert!(split_line(b"{}").is_none());
        let bad = format!("{{\"seq\":1,\"hash\":\"{}\"}}", "G".repeat(64));
        assert!(split_line(bad.as_bytes()).is_none());
        let short = format!("{{\"seq\":1,\"hash\":\"{}\"}}", "a".repeat(63));
        assert!(split_line(short.as_bytes()).is_none());
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let t = time::macros::datetime!(2026-11-24 10:00:00.123456 +02:00);
        assert_eq!(format_ts(t), "2026-11-24T08:00:00.123456Z");
    }
}
