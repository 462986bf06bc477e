//! Tamper classification on hand-built chains: each kind of damage is reported as what it is,
//! at the right position, with the right decision id.

use super::*;
use crate::audit::checkpoint::SigningKey;
use crate::audit::record::{encode_line, payload_of};
use crate::audit::segment::segment_name;
use serde_json::json;

struct Log {
    lines: Vec<String>,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

/// `n` decision records with a checkpoint after every `every`-th, as the writer lays them out.
fn build(n: u64, every: u64) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::load_or_create(&dir.path().join("k")).unwrap();
    let mut lines = Vec::new();
    let mut prev = GENESIS.to_owned();
    let mut seq = 1;
    for i in 1..=n {
        let p = payload_of(&json!({"kind": "decision", "ts": "t", "decision_id": format!("d{i}")}))
            .unwrap();
        let mut out = Vec::new();
        prev = encode_line(&mut out, seq, &prev, &p);
        lines.push(String::from_utf8(out).unwrap());
        seq += 1;
        if i % every == 0 {
            let sig = key.sign_checkpoint(seq, &prev, "t");
            let p = payload_of(
                &json!({"kind": "checkpoint", "ts": "t", "key_id": key.key_id(), "signature": sig}),
            )
            .unwrap();
            let mut out = Vec::new();
            prev = encode_line(&mut out, seq, &prev, &p);
            lines.push(String::from_utf8(out).unwrap());
            seq += 1;
        }
    }
    Log { lines, key, _dir: dir }
}

fn check(log: &Log, lines: &[String], anchor: Option<&Anchor>) -> VerifyReport {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(segment_name(1)), lines.concat()).unwrap();
    verify_log(d.path(), &log.key.public_key(), anchor).unwrap()
}

fn summary(r: &VerifyReport) -> Vec<(Problem, u64, Option<String>)> {
    r.findings.iter().map(|f| (f.problem, f.position, f.decision_id.clone())).collect()
}

#[test]
fn an_untouched_log_is_intact() {
    let log = build(20, 5);
    let r = check(&log, &log.lines, None);
    assert!(r.is_intact(), "{:?}", r.findings);
    assert_eq!((r.records, r.decisions, r.checkpoints, r.unsigned_tail), (24, 20, 4, 0));
    assert_eq!(r.last.as_ref().unwrap().seq, 24);
}

#[test]
fn a_flipped_byte_is_a_changed_record() {
    let log = build(10, 5);
    let mut lines = log.lines.clone();
    lines[3] = lines[3].replacen("\"d4\"", "\"d5\"", 1);
    assert_eq!(summary(&check(&log, &lines, None)), vec![(Problem::Changed, 4, Some("d5".into()))]);
    // A flip that breaks the JSON still names the position (and the id, when readable).
    let mut lines = log.lines.clone();
    lines[2] = lines[2].replacen("{\"seq\"", "{\"seX\"", 1);
    let r = check(&log, &lines, None);
    assert_eq!(summary(&r), vec![(Problem::Changed, 3, Some("d3".into()))]);
}

#[test]
fn a_deleted_record_is_reported_as_removed_before_its_successor() {
    let log = build(10, 5);
    let mut lines = log.lines.clone();
    lines.remove(2);
    let r = check(&log, &lines, None);
    assert_eq!(summary(&r), vec![(Problem::Removed, 3, Some("d4".into()))]);
    assert!(r.findings[0].detail.contains("seq 3 is missing"), "{}", r.findings[0].detail);
}

#[test]
fn an_inserted_record_is_reported_whether_forged_or_copied() {
    let log = build(10, 5);
    // A copy of an earlier record.
    let mut lines = log.lines.clone();
    lines.insert(4, log.lines[1].clone());
    assert_eq!(
        summary(&check(&log, &lines, None)),
        vec![(Problem::Inserted, 5, Some("d2".into()))]
    );
    // A forged record that links correctly to its predecessor (a fork in the chain).
    let mut forged = Vec::new();
    let prev = serde_json::from_str::<serde_json::Value>(&log.lines[2]).unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = payload_of(&json!({"kind": "decision", "ts": "t", "decision_id": "forged"})).unwrap();
    encode_line(&mut forged, 4, &prev, &p);
    let mut lines = log.lines.clone();
    lines.insert(3, String::from_utf8(forged).unwrap());
    assert_eq!(
        summary(&check(&log, &lines, None)),
        vec![(Problem::Inserted, 4, Some("forged".into()))]
    );
}

#[test]
fn swapped_records_are_reported_as_reordered() {
    let log = build(10, 5);
    let mut lines = log.lines.clone();
    lines.swap(1, 2);
    let r = check(&log, &lines, None);
    assert_eq!(summary(&r), vec![(Problem::Reordered, 2, Some("d3".into()))]);
    assert!(
        r.findings[0].detail.contains("seq 3 appears before seq 2"),
        "{}",
        r.findings[0].detail
    );
}

#[test]
fn truncation_is_reported_inside_a_record_and_against_an_anchor() {
    let log = build(10, 5);
    let mut lines = log.lines.clone();
    let last = lines.len() - 1;
    lines[last].truncate(40);
    let r = check(&log, &lines, None);
    assert_eq!(summary(&r), vec![(Problem::Truncated, 12, None)]);
    // Whole records cut from the end: only an anchor can tell.
    let anchor =
        Anchor { seq: 12, hash: r.last.clone().map(|_| String::new()).unwrap_or_default() };
    let full = check(&log, &log.lines, None);
    let anchor = Anchor { hash: full.last.unwrap().hash, ..anchor };
    let cut = &log.lines[..9];
    let r = check(&log, cut, Some(&anchor));
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].problem, Problem::Truncated);
    assert!(r.findings[0].detail.contains("ends at seq 9"), "{}", r.findings[0].detail);
    assert!(check(&log, &log.lines, Some(&anchor)).is_intact());
}

#[test]
fn rewriting_the_chain_after_a_change_breaks_the_next_signature() {
    let log = build(10, 5);
    // Change record 2 and recompute every hash after it, as a careful forger would.
    let mut lines = Vec::new();
    let mut prev = GENESIS.to_owned();
    for (i, l) in log.lines.iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        if i == 1 {
            v["decision_id"] = json!("rewritten");
        }
        let seq = v["seq"].as_u64().unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("seq");
        obj.remove("prev");
        obj.remove("hash");
        let mut out = Vec::new();
        prev = encode_line(&mut out, seq, &prev, &payload_of(&v).unwrap());
        lines.push(String::from_utf8(out).unwrap());
    }
    let r = check(&log, &lines, None);
    assert_eq!(
        summary(&r),
        vec![(Problem::BadSignature, 6, None), (Problem::BadSignature, 12, None)]
    );
    // A checkpoint signed by another key is reported as such.
    let other = build(10, 5);
    let r = check(&other, &log.lines, None);
    assert!(r
        .findings
        .iter()
        .all(|f| f.problem == Problem::BadSignature && f.detail.contains("not by the pinned key")));
}
