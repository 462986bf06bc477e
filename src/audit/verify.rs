//! `audit verify`: checks every hash, every link and every checkpoint signature, and says
//! precisely what is wrong: which record changed, which were removed, inserted or reordered,
//! where the log was truncated; each with its position and decision id.
//!
//! Streaming with a bounded look-ahead window, so memory stays constant on any log size.
//! Classification, for a record `r` that does not link to the last accepted record `L`:
//! - its bytes do not hash to its `hash`: **changed** (the chain continues by sequence number);
//! - another record in the window links to `L`, and `r` belongs later: **reordered**;
//! - another record in the window links to `L`, and `r` does not belong: **inserted**;
//! - two records both link to `L`: the one nothing builds on is **inserted**;
//! - nothing links to `L` and `r.seq` skips numbers: **removed** (those numbers);
//! - nothing links to `L` and `r.seq` follows `L`: `L` was **changed** and re-hashed (or the
//!   link forged);
//! - a last line without a newline: **truncated**.
//!
//! Rewriting the whole chain after a change re-links it, but cannot re-sign the checkpoints
//! after it: that is a **bad signature**. Records after the last checkpoint are covered only by
//! the chain; `--anchor SEQ:HASH` (a checkpoint an auditor noted earlier, e.g. from
//! `/v1/status`) proves that the log was not cut back behind it.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::checkpoint::PublicKey;
use super::counters::Anchor;
use super::record::{canonical_hash, split_line, RecordKind, GENESIS};
use super::segment::{LogReader, RawLine};
use super::AuditError;

const WINDOW: usize = 256;
const MAX_FINDINGS: usize = 10_000;

/// What is wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Its content differs from what its hash (or its successor) commits to.
    Changed,
    /// Records are missing.
    Removed,
    /// A record that is not part of the chain.
    Inserted,
    /// A record out of its place in the chain.
    Reordered,
    /// The log ends inside a record, or before a given anchor.
    Truncated,
    /// A checkpoint signature does not verify.
    BadSignature,
}

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What is wrong.
    pub problem: Problem,
    /// Position of the record in the log (n-th line over all segments, from 1).
    pub position: u64,
    /// Segment file.
    pub segment: String,
    /// Line in the segment.
    pub line: u64,
    /// The record's sequence number, when readable.
    pub seq: Option<u64>,
    /// The record's decision id, when it has one.
    pub decision_id: Option<String>,
    /// Explanation.
    pub detail: String,
}

/// The result of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Lines read.
    pub records: u64,
    /// Decision records.
    pub decisions: u64,
    /// Event records.
    pub events: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// The last record of the chain.
    pub last: Option<Anchor>,
    /// The last verified checkpoint.
    pub last_checkpoint: Option<Anchor>,
    /// Records after the last checkpoint (covered by the chain, not yet by a signature).
    pub unsigned_tail: u64,
    /// Key id the signatures were checked with.
    pub key_id: String,
    /// Every problem (the first 10,000).
    pub findings: Vec<Finding>,
    /// Problems beyond the first 10,000.
    pub more_findings: u64,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug, Deserialize)]
struct Head {
    seq: u64,
    prev: String,
    kind: RecordKind,
    ts: String,
    #[serde(default)]
    decision_id: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

#[derive(Debug)]
struct Rec {
    segment: Arc<str>,
    position: u64,
    line: u64,
    complete: bool,
    head: Option<Head>,
    hash: Option<String>,
    content_ok: bool,
    bytes_len: usize,
    fallback_id: Option<String>,
    flagged: bool,
}

struct Link {
    seq: u64,
    hash: Option<String>,
}

/// Verifies the log in `dir` against `key`, optionally checking an external anchor.
pub fn verify_log(
    dir: &Path,
    key: &PublicKey,
    anchor: Option<&Anchor>,
) -> Result<VerifyReport, AuditError> {
    let mut reader = LogReader::open(dir)?;
    let mut v = Verifier {
        key,
        report: VerifyReport { key_id: key.key_id().to_owned(), ..VerifyReport::default() },
        last: Link { seq: 0, hash: Some(GENESIS.to_owned()) },
        anchor,
        anchor_seen: false,
    };
    let mut pending: VecDeque<Rec> = VecDeque::with_capacity(WINDOW);
    let mut eof = false;
    loop {
        while !eof && pending.len() < WINDOW {
            match reader.next() {
                Some(line) => pending.push_back(parse(line?)),
                None => eof = true,
            }
        }
        let Some(r) = pending.pop_front() else {
            break;
        };
        v.report.records += 1;
        v.step(r, &mut pending);
    }
    v.finish();
    Ok(v.report)
}

struct Verifier<'a> {
    key: &'a PublicKey,
    report: VerifyReport,
    last: Link,
    anchor: Option<&'a Anchor>,
    anchor_seen: bool,
}

impl Verifier<'_> {
    fn step(&mut self, mut r: Rec, pending: &mut VecDeque<Rec>) {
        if !r.complete {
            let n = r.bytes_len;
            self.find(
                &r,
                Problem::Truncated,
                format!("incomplete record ({n} bytes, no end of line): the log was cut inside it"),
            );
            return;
        }
        let (Some(head), Some(_)) = (&r.head, &r.hash) else {
            self.find(&r, Problem::Changed, "not a valid record (damaged JSON or hash)".into());
            self.last = Link { seq: self.last.seq + 1, hash: None };
            return;
        };
        if !r.content_ok {
            self.find(&r, Problem::Changed, "content does not match its hash".into());
            self.last = Link { seq: self.last.seq + 1, hash: None };
            return;
        }
        let seq = head.seq;
        if self.links(&r) {
            if let Some(i) = pending.iter().position(|x| self.links(x)) {
                // A fork: two records claim the same predecessor. The genuine one is the one
                // a later record builds on.
                let r_built_on = pending.iter().any(|x| prev_of(x) == r.hash.as_deref());
                let other_hash = pending[i].hash.clone();
                let other_built_on = pending
                    .iter()
                    .any(|x| prev_of(x).is_some() && prev_of(x) == other_hash.as_deref());
                if other_built_on && !r_built_on {
                    self.find(&r, Problem::Inserted, format!("not part of the chain: it claims to follow seq {} like the record at position {}, which the chain continues from", self.last.seq, pending[i].position));
                    return;
                }
            }
            self.accept(&r);
            return;
        }
        let expected = self.last.seq + 1;
        if let Some(j) = pending.iter().position(|x| self.links(x)) {
            if seq > self.last.seq
                && !pending.iter().any(|x| seq_of(x) == Some(seq) && x.content_ok)
            {
                if !r.flagged {
                    let detail = format!(
                        "out of order: seq {seq} appears before seq {expected} (position {})",
                        pending[j].position
                    );
                    self.find(&r, Problem::Reordered, detail);
                    r.flagged = true;
                }
                pending.insert(j + 1, r);
            } else {
                self.find(
                    &r,
                    Problem::Inserted,
                    format!(
                        "not part of the chain: seq {seq} does not follow seq {}",
                        self.last.seq
                    ),
                );
            }
            return;
        }
        if seq == expected {
            let detail = match &self.last.hash {
                Some(_) => format!("does not commit to record seq {}: that record was altered and re-hashed, or this link was forged", self.last.seq),
                None => "does not link to its predecessor".into(),
            };
            self.find(&r, Problem::Changed, detail);
            self.accept(&r);
        } else if seq > expected {
            let missing = if seq - 1 == expected {
                format!("seq {expected} is")
            } else {
                format!("seq {expected}..{} ({} records) are", seq - 1, seq - expected)
            };
            self.find(&r, Problem::Removed, format!("{missing} missing before this record"));
            self.accept(&r);
        } else {
            self.find(&r, Problem::Inserted, format!("not part of the chain: seq {seq} repeats an earlier position (last was seq {})", self.last.seq));
        }
    }

    fn links(&self, x: &Rec) -> bool {
        let (Some(h), true) = (&x.head, x.content_ok && x.complete) else {
            return false;
        };
        h.seq == self.last.seq + 1 && self.last.hash.as_ref().is_none_or(|last| *last == h.prev)
    }

    fn accept(&mut self, r: &Rec) {
        let (Some(head), Some(hash)) = (&r.head, &r.hash) else {
            return;
        };
        match head.kind {
            RecordKind::Decision => self.report.decisions += 1,
            RecordKind::Event => self.report.events += 1,
            RecordKind::Checkpoint => self.check_signature(r, head),
        }
        if head.kind != RecordKind::Checkpoint {
            self.report.unsigned_tail += 1;
        }
        if let Some(a) = self.anchor {
            if a.seq == head.seq {
                self.anchor_seen = true;
                if a.hash != *hash {
                    self.find(
                        r,
                        Problem::Changed,
                        format!(
                            "the anchor says seq {} has hash {}, the log has {hash}",
                            a.seq, a.hash
                        ),
                    );
                }
            }
        }
        self.last = Link { seq: head.seq, hash: Some(hash.clone()) };
        self.report.last = Some(Anchor { seq: head.seq, hash: hash.clone() });
    }

    fn check_signature(&mut self, r: &Rec, head: &Head) {
        let key_id = head.key_id.as_deref().unwrap_or_default();
        let sig = head.signature.as_deref().unwrap_or_default();
        if key_id != self.key.key_id() {
            self.find(
                r,
                Problem::BadSignature,
                format!("signed by key `{key_id}`, not by the pinned key `{}`", self.key.key_id()),
            );
        } else if !self.key.verify_checkpoint(head.seq, &head.prev, &head.ts, key_id, sig) {
            self.find(r, Problem::BadSignature, format!("signature does not verify: records up to seq {} were rewritten, or the checkpoint was forged", head.seq));
        } else {
            self.report.checkpoints += 1;
            self.report.unsigned_tail = 0;
            self.report.last_checkpoint = r.hash.clone().map(|hash| Anchor { seq: head.seq, hash });
        }
    }

    fn finish(&mut self) {
        if let Some(a) = self.anchor {
            if !self.anchor_seen {
                let end = self.report.last.as_ref().map_or(0, |l| l.seq);
                self.report.findings.push(Finding {
                    problem: Problem::Truncated,
                    position: self.report.records,
                    segment: String::new(),
                    line: 0,
                    seq: Some(a.seq),
                    decision_id: None,
                    detail: format!("the anchor names seq {} but the chain has no such record (it ends at seq {end}): records were removed", a.seq),
                });
            }
        }
    }

    fn find(&mut self, r: &Rec, problem: Problem, detail: String) {
        if self.report.findings.len() >= MAX_FINDINGS {
            self.report.more_findings += 1;
            return;
        }
        self.report.findings.push(Finding {
            problem,
            position: r.position,
            segment: r.segment.to_string(),
            line: r.line,
            seq: seq_of(r),
            decision_id: r
                .head
                .as_ref()
                .and_then(|h| h.decision_id.clone())
                .or_else(|| r.fallback_id.clone()),
            detail,
        });
    }
}

fn seq_of(r: &Rec) -> Option<u64> {
    r.head.as_ref().map(|h| h.seq)
}

fn prev_of(r: &Rec) -> Option<&str> {
    r.head.as_ref().filter(|_| r.content_ok).map(|h| h.prev.as_str())
}

fn parse(line: RawLine) -> Rec {
    let split = split_line(&line.bytes);
    let head: Option<Head> = serde_json::from_slice(&line.bytes).ok();
    let content_ok = split.is_some_and(|s| canonical_hash(s.body_open) == s.hash);
    let fallback_id = if head.is_none() { find_decision_id(&line.bytes) } else { None };
    Rec {
        segment: line.segment,
        position: line.position,
        line: line.line,
        complete: line.complete,
        hash: split.map(|s| s.hash.to_owned()),
        head,
        content_ok,
        bytes_len: line.bytes.len(),
        fallback_id,
        flagged: false,
    }
}

/// Best effort for a damaged line: the text of its `decision_id` member.
fn find_decision_id(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let start = text.find("\"decision_id\":\"")? + 15;
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_owned())
}

#[cfg(test)]
mod tests;
