//! The decision log through the real write path: a generated log of more than 10,000 mixed
//! decisions (single, batch, failed batch items, request entities, break-glass with an `audit`
//! obligation, two policy versions) replays 100%, and a what-if reports exactly the decisions
//! a policy change affects, checked here by evaluating both policy sets directly.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use medpdp::audit::archive::VersionArchive;
use medpdp::audit::query::Filter;
use medpdp::audit::record::{LoggedRecord, RecordKind};
use medpdp::audit::replay::{Replay, Target, Verdict};
use medpdp::audit::segment::LogReader;
use medpdp::decide::{decide, Decision, DecisionRequest, Outcome};
use medpdp::http::{decide_batch_item, evaluate, DecisionSource};
use medpdp::policy::{load_workspace, ReloadOutcome, ReloadTrigger, Snapshot};
use serde_json::{json, Value};

use crate::cli::medpdp;
use crate::common::{copy_dir, repo, TestServer};

/// A deterministic pseudo-random generator (no dependency, reproducible logs).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        &items[((self.0 >> 33) as usize) % items.len()]
    }
}

fn env(rng: &mut Lcg) -> Value {
    json!({
        "now": "2026-11-24T10:00:00Z",
        "risk_score": *rng.pick(&[5, 10, 40, 90]),
        "inside_geofence": *rng.pick(&[true, true, false]),
        "audit_available": *rng.pick(&[true, true, true, false]),
    })
}

/// One of many kinds of request against the Med5G mini fixture.
pub(crate) fn mixed_request(rng: &mut Lcg) -> Value {
    let terminals = ["t-ecg1", "t-ecg-old", "t-mon1", "t-quar", "t-uncert", "t-ghost"];
    match *rng.pick(&[0, 0, 1, 1, 2, 2, 3]) {
        0 => json!({
            "principal": {"type": "Med5G::Terminal", "id": rng.pick(&terminals)},
            "action": "Med5G::Action::\"attach\"",
            "resource": format!("Med5G::NetworkSlice::\"{}\"", rng.pick(&["plmn-miot-health", "plmn-embb-public", "npn-urllc-hospA"])),
            "context": {"env": env(rng), "attested": *rng.pick(&[true, true, false])}
        }),
        1 => json!({
            "principal": {"type": "Med5G::Terminal", "id": rng.pick(&terminals)},
            "action": "Med5G::Action::\"transmit\"",
            "resource": "Med5G::Destination::\"hospA-monitoring\"",
            "context": {
                "env": env(rng),
                "slice": {"sst": *rng.pick(&[1, 3]), "sd": "000003", "npn": false, "dedicated": true},
                "tls": {"protocol": rng.pick(&["TLS1.3", "TLS1.2", "TLS1.0"]), "mutual": *rng.pick(&[true, false]), "client_cert_valid": true},
                "data": {"type": "Med5G::DataCategory", "id": rng.pick(&["ecg-stream", "vitals", "hiv-status"])},
                "patient": {"type": "Med5G::Patient", "id": rng.pick(&["P1", "P2"])},
                "purpose": rng.pick(&["remote_monitoring", "research"]),
                "deidentified": false, "payload_encrypted": true,
                "emergency": *rng.pick(&[false, false, true]),
                "cross_border_approval": false
            }
        }),
        2 => json!({
            "principal": {"type": "Med5G::Clinician", "id": rng.pick(&["dr-li", "nurse-zhao"])},
            "action": "Med5G::Action::\"read_record\"",
            "resource": {"type": "Med5G::HealthRecord", "id": rng.pick(&["r-P1-vitals", "r-P1-hiv"])},
            "context": {
                "env": env(rng),
                "purpose": rng.pick(&["TREAT", "ETREAT"]),
                "break_glass": *rng.pick(&[false, true]),
                "treating_relationship": *rng.pick(&[true, false]),
                "justification": rng.pick(&["", "cardiac arrest in ward 3"])
            }
        }),
        // The request brings its own version of a terminal.
        _ => json!({
            "principal": "Med5G::Terminal::\"t-ecg1\"",
            "action": "Med5G::Action::\"attach\"",
            "resource": "Med5G::NetworkSlice::\"plmn-miot-health\"",
            "context": {"env": env(rng), "attested": true},
            "entities": [{
                "uid": {"type": "Med5G::Terminal", "id": "t-ecg1"},
                "attrs": {
                    "model": {"type": "Med5G::DeviceModel", "id": "ecg-e2"},
                    "kind": "wearable_ecg", "owner": {"type": "Med5G::Facility", "id": "hospA"},
                    "certified": true,
                    "lifecycle": rng.pick(&["active", "quarantined"]),
                    "firmware_version": *rng.pick(&[1005000, 1000000]),
                    "security_level": 1, "allowed_sst": [1, 3]
                },
                "parents": [{"type": "Med5G::Facility", "id": "hospA"}]
            }]
        }),
    }
}

/// Items a batch can fail on (logged as denies with their error).
fn bad_item(rng: &mut Lcg) -> Value {
    rng.pick(&[
        json!({"principal": 42}),
        json!({"principal": "Med5G::Terminal::\"t-ecg1\"", "action": "Med5G::Action::\"fly\"", "resource": "Med5G::NetworkSlice::\"x\""}),
        json!({"principal": "Med5G::Terminal::\"t-ecg1\"", "action": "Med5G::Action::\"attach\"", "resource": "Med5G::NetworkSlice::\"x\"", "context": {"attested": "yes"}}),
    ])
    .clone()
}

/// Decides `n` requests through `http::evaluate` on `tasks` concurrent tasks.
async fn decide_concurrently(server: &TestServer, n: usize, seed: u64, tasks: usize) -> usize {
    let state = server.server.as_ref().unwrap().state().clone();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let state = state.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = Lcg(seed + t as u64);
            let snapshot = state.store.current().unwrap();
            let mut done = 0;
            for i in (t..n).step_by(tasks) {
                let req: DecisionRequest = serde_json::from_value(mixed_request(&mut rng)).unwrap();
                let source = if i % 2 == 0 {
                    DecisionSource::Decide
                } else {
                    DecisionSource::Batch { index: 0 }
                };
                if evaluate(&state, &snapshot, None, &source, &req).await.is_ok() {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    total
}

async fn decide_batches(server: &TestServer, batches: usize, seed: u64) -> usize {
    let mut rng = Lcg(seed);
    let mut n = 0;
    for _ in 0..batches {
        let items: Vec<Value> = (0..50)
            .map(|i| if i % 10 == 3 { bad_item(&mut rng) } else { mixed_request(&mut rng) })
            .collect();
        let (status, body) = server.post("/v1/decide/batch", &json!({"requests": items})).await;
        assert_eq!(status, 200, "{body}");
        n += body["results"].as_array().unwrap().len();
    }
    n
}

/// Builds a log of more than 10,000 decisions under two policy versions; returns the data
/// directory, the workspace copy and the two versions' snapshots.
async fn generate_log() -> (TestServer, usize) {
    let server = TestServer::start_fixture("tests/fixtures/med5g-mini", |c| {
        c.audit.checkpoint_every = 1000;
    })
    .await;
    let mut n = decide_concurrently(&server, 5000, 1, 32).await;
    n += decide_batches(&server, 10, 7).await;
    // A second policy version mid-way: replay must pick the right one for each record.
    server.write("extra.cedar", "@id(\"X1-no-old-firmware-transmit\")\nforbid (principal is Med5G::Terminal, action == Med5G::Action::\"transmit\", resource)\nwhen { principal.firmware_version < 1004000 };\n");
    let state = server.server.as_ref().unwrap().state();
    assert!(matches!(
        state.store.reload(ReloadTrigger::Admin).await,
        ReloadOutcome::Activated { .. }
    ));
    n += decide_concurrently(&server, 5000, 1000, 32).await;
    n += decide_batches(&server, 10, 99).await;
    (server, n)
}

fn read_records(dir: &Path) -> Vec<LoggedRecord> {
    LogReader::open(dir)
        .unwrap()
        .map(|l| serde_json::from_slice(&l.unwrap().bytes).unwrap())
        .collect()
}

/// What a record's request gives against a snapshot, evaluated directly.
fn direct(snapshot: &Snapshot, r: &LoggedRecord) -> Result<Outcome, String> {
    let req = r.request.clone().unwrap();
    let source = r.source.as_ref().unwrap();
    if source["endpoint"] == "batch" {
        let index = source["index"].as_u64().unwrap() as usize;
        decide_batch_item(snapshot, req, index).map(|(_, o)| o).map_err(|e| e.code().to_owned())
    } else {
        decide(snapshot, &serde_json::from_value(req).unwrap()).map_err(|e| e.to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reproduces_every_decision_and_what_if_reports_exactly_the_changes() {
    let (server, n) = generate_log().await;
    assert!(n >= 10_000, "{n}");
    let workspace = tempfile::tempdir().unwrap();
    copy_dir(server.workspace.path(), workspace.path());
    let data_dir = server.stop().await;
    let data = data_dir.path().to_owned();
    let log_dir = data.join("audit");
    let records: Vec<LoggedRecord> =
        read_records(&log_dir).into_iter().filter(|r| r.kind == RecordKind::Decision).collect();
    assert_eq!(records.len(), n, "every answered decision is in the log");
    let versions: BTreeSet<_> = records.iter().map(|r| r.policy_version.clone().unwrap()).collect();
    assert_eq!(versions.len(), 2);
    let kinds = |f: &dyn Fn(&LoggedRecord) -> bool| records.iter().filter(|r| f(r)).count();
    assert!(kinds(&|r| r.decision == Some(Decision::Allow)) > 500, "mixed decisions");
    assert!(kinds(&|r| r.request_error.is_some()) >= 100, "failed batch items are logged");
    assert!(kinds(&|r| r.obligations.iter().any(|o| o == "audit")) > 100, "break-glass reads");
    assert!(kinds(&|r| r.request.as_ref().unwrap().get("entities").is_some()) > 500);

    // Exact replay, through the library, with the archived versions.
    let replay = Replay {
        log_dir: log_dir.clone(),
        target: Target::Archived(VersionArchive::new(data.join("versions"))),
        filter: Filter::default(),
        threads: 0,
    };
    let mut items = Vec::new();
    let summary = replay.run(|i| items.push(i.clone()), &|_| {}).unwrap();
    assert_eq!(items.len(), 0, "{:?}", items.first());
    assert_eq!(
        (summary.decisions, summary.reproduced, summary.mismatched),
        (n as u64, n as u64, 0)
    );

    // What-if: P01 now also requires security level 2. Expected changes, computed directly.
    let original = load_workspace(workspace.path()).unwrap().snapshot;
    let base = load_workspace(&repo("tests/fixtures/med5g-mini")).unwrap().snapshot;
    let by_version: HashMap<String, &Snapshot> =
        [(original.version().to_owned(), &original), (base.version().to_owned(), &base)]
            .into_iter()
            .collect();
    let candidate_dir = tempfile::tempdir().unwrap();
    copy_dir(workspace.path(), candidate_dir.path());
    let admission = std::fs::read_to_string(candidate_dir.path().join("admission.cedar")).unwrap();
    let changed = admission.replace(
        "principal.security_level >= resource.min_security_level",
        "principal.security_level >= 2",
    );
    assert_ne!(admission, changed);
    std::fs::write(candidate_dir.path().join("admission.cedar"), changed).unwrap();
    let candidate = Arc::new(load_workspace(candidate_dir.path()).unwrap().snapshot);
    let mut expected = BTreeSet::new();
    for r in &records {
        let before = direct(by_version[r.policy_version.as_deref().unwrap()], r);
        let after = direct(&candidate, r);
        let d = |o: &Result<Outcome, String>| o.as_ref().map_or(Decision::Deny, |o| o.decision);
        if d(&before) != d(&after) {
            expected.insert(r.decision_id.clone().unwrap());
        }
    }
    assert!(expected.len() > 100, "the change matters: {}", expected.len());
    let what_if = Replay { target: Target::Candidate(candidate), ..replay };
    let mut reported = BTreeSet::new();
    let summary = what_if
        .run(
            |i| {
                assert!(matches!(i.verdict, Verdict::AllowToDeny), "{i:?}");
                reported.insert(i.decision_id.clone());
            },
            &|_| {},
        )
        .unwrap();
    assert_eq!(reported, expected);
    assert_eq!(summary.allow_to_deny as usize, expected.len());
    assert_eq!(summary.unchanged as usize, n - expected.len());

    // The same through the command line: JSON lines, then the summary; filters apply.
    let out = medpdp()
        .args([
            "audit",
            "replay",
            "--format",
            "json",
            "--action",
            "attach",
            "--decision",
            "allow",
            "--data",
        ])
        .arg(&data)
        .arg("--against")
        .arg(candidate_dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary_line, rows) = lines.split_last().unwrap();
    let got: BTreeSet<String> =
        rows.iter().map(|r| r["decision_id"].as_str().unwrap().to_owned()).collect();
    // The candidate also holds the second version's transmit rule, so transmits decided by the
    // first version change too; the filter keeps the allowed attaches only.
    let attach_allowed: BTreeSet<String> = records
        .iter()
        .filter(|r| r.decision == Some(Decision::Allow))
        .filter(|r| r.request.as_ref().unwrap()["action"] == "Med5G::Action::\"attach\"")
        .filter_map(|r| r.decision_id.clone())
        .filter(|id| expected.contains(id))
        .collect();
    assert!(!attach_allowed.is_empty() && attach_allowed.len() < expected.len());
    assert_eq!(got, attach_allowed);
    assert_eq!(summary_line["summary"]["allow_to_deny"], attach_allowed.len());
    let out = medpdp().args(["audit", "replay", "--data"]).arg(&data).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("{n} of {n} replayable reproduced exactly, 0 mismatched")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_decision_that_differs_from_its_replay_is_reported() {
    let server = TestServer::start().await;
    for t in ["t-ecg1", "t-quar"] {
        let (status, _) =
            server.post("/v1/decide", &crate::common::attach(t, "plmn-miot-health")).await;
        assert_eq!(status, 200);
    }
    let data_dir = server.stop().await;
    let data = data_dir.path().to_owned();
    // Forge the logged decision of t-quar (verify would catch the hash; replay catches the lie).
    let seg = medpdp::audit::segment::list_segments(&data.join("audit")).unwrap().pop().unwrap();
    let text = std::fs::read_to_string(&seg).unwrap();
    let forged = text.replace(
        "\"decision\":\"deny\",\"reasons\":[\"P06-revoked-or-quarantined-terminal\"]",
        "\"decision\":\"allow\",\"reasons\":[\"P01-attach-certified-terminal\"]",
    );
    assert_ne!(text, forged);
    std::fs::write(&seg, forged).unwrap();
    let out = medpdp()
        .args(["audit", "replay", "--format", "csv", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("verdict,seq,decision_id"), "{stdout}");
    assert!(stdout.contains("mismatch") && stdout.contains("t-quar"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 mismatched"));
}

#[tokio::test]
async fn masked_fields_are_hashed_listed_and_never_claimed_as_replayed() {
    let server = TestServer::start_fixture("tests/fixtures/med5g-mini", |c| {
        c.audit.mask = vec!["/context/justification".into()];
    })
    .await;
    let mut rng = Lcg(5);
    let mut sent = 0;
    while sent < 20 {
        let req = mixed_request(&mut rng);
        if req["action"] == "Med5G::Action::\"read_record\"" {
            assert_eq!(server.post("/v1/decide", &req).await.0, 200);
            sent += 1;
        }
    }
    assert_eq!(
        server.post("/v1/decide", &crate::common::attach("t-ecg1", "plmn-miot-health")).await.0,
        200
    );
    let data_dir = server.stop().await;
    let data = data_dir.path().to_owned();
    let log = std::fs::read_to_string(
        medpdp::audit::segment::list_segments(&data.join("audit")).unwrap().pop().unwrap(),
    )
    .unwrap();
    assert!(!log.contains("cardiac arrest"), "masked values never reach the disk");
    assert!(log.contains("\"masked\":[\"/context/justification\"]"));
    let out = medpdp().args(["audit", "replay", "--data"]).arg(&data).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("replayed 21 decisions: 1 of 1 replayable reproduced exactly"),
        "{stdout}"
    );
    assert!(stdout.contains("20 not replayable (20 because of masked inputs)"), "{stdout}");
}

/// Reads every line of every segment of a data directory's decision log.
fn log_text(data: &std::path::Path) -> String {
    let dir = medpdp::audit::DataLayout::new(data).log_dir();
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    text
}

#[tokio::test]
async fn an_audit_obligation_is_on_disk_before_the_answer_even_in_async_mode() {
    let t = TestServer::start_fixture("tests/fixtures/med5g-mini", |c| {
        c.audit.durability = medpdp::audit::Durability::Async;
    })
    .await;
    // Break-glass read (P29 carries `@obligation("audit")`).
    let req = serde_json::json!({
        "principal": "Med5G::Clinician::\"dr-li\"",
        "action": "Med5G::Action::\"read_record\"",
        "resource": "Med5G::HealthRecord::\"r-P1-hiv\"",
        "context": {
            "env": {"now": "2026-11-24T03:00:00Z", "risk_score": 10, "inside_geofence": true, "audit_available": true},
            "purpose": "ETREAT", "break_glass": true, "treating_relationship": false,
            "justification": "unconscious patient in the emergency room"
        }
    });
    for _ in 0..20 {
        let (status, d) = t.post("/v1/decide", &req).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{d}");
        assert_eq!(d["decision"], "allow");
        assert_eq!(d["obligations"], serde_json::json!(["audit"]));
        let id = d["decision_id"].as_str().unwrap();
        // The answer is in hand: the record must already be in the file, with no close/flush.
        assert!(
            log_text(t.data.path()).contains(id),
            "decision {id} answered before it was written"
        );
    }
    t.stop().await;
}
