//! The writer's failure handling: refused and counted records, a halted log that heals, a
//! degraded log that resumes with a `log_resumed` event, and an intact chain throughout.

use super::*;
use crate::audit::segment::LogReader;
use crate::audit::verify::verify_log;

fn payload(n: u64) -> Vec<u8> {
    payload_of(&serde_json::json!({"kind": "event", "ts": "t", "event": "e", "n": n})).unwrap()
}

fn writer(dir: &Path) -> (Writer, Arc<AuditCounters>, Arc<Mutex<WriterState>>, SigningKey) {
    let key = SigningKey::load_or_create(&dir.join("k")).unwrap();
    let public = SigningKey::load_or_create(&dir.join("k")).unwrap();
    let counters = Arc::new(AuditCounters::default());
    let opts = WriterOptions {
        segment_max_bytes: 1 << 20,
        segment_max_age: Duration::from_secs(3600),
        checkpoint_every: 100,
        checkpoint_interval: Duration::from_secs(3600),
        max_batch: 16,
    };
    let state = Arc::new(Mutex::new(WriterState::default()));
    let w = Writer::open(&dir.join("log"), opts, key, Arc::clone(&counters), Arc::clone(&state))
        .unwrap();
    (w, counters, state, public)
}

fn events(dir: &Path) -> Vec<String> {
    LogReader::open(dir)
        .unwrap()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_slice(&l.unwrap().bytes).unwrap();
            v["event"].as_str().map(str::to_owned)
        })
        .collect()
}

fn wait(w: &mut Writer, n: u64) -> oneshot::Receiver<Ack> {
    let (tx, rx) = oneshot::channel();
    let _ = w.commit(vec![(payload(n), Reply::Wait(tx))], false);
    rx
}

#[cfg(target_os = "linux")]
#[test]
fn a_log_that_cannot_roll_back_halts_until_its_segment_is_restored() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, counters, state, key) = writer(d.path());
    assert_eq!(w.next_seq, 2, "log_opened is record 1");
    // The disk fails: writes fail with ENOSPC, and the roll-back can neither truncate this
    // handle nor reopen the segment (it is out of reach for now).
    let segment = d.path().join("log").join(&w.segment);
    let aside = d.path().join("aside");
    std::fs::rename(&segment, &aside).unwrap();
    w.file = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let (tx, rx) = oneshot::channel();
    assert!(w
        .commit(vec![(payload(1), Reply::Wait(tx)), (payload(2), Reply::Async)], false)
        .is_err());
    let answer = rx.blocking_recv().unwrap().unwrap_err();
    assert!(answer.contains("cannot write the decision log"), "{answer}");
    assert_eq!(w.next_seq, 2, "the failed batch took no sequence numbers");
    let s = counters.snapshot();
    assert_eq!((s.write_failures, s.lost, s.records), (1, 1, 1));
    assert!(counters.halted.load(Ordering::Relaxed), "a failed roll-back halts the log");
    assert!(state.lock().unwrap().failed.is_some());
    // Later records are refused at once: 503 for waiters, counted.
    assert!(wait(&mut w, 3).blocking_recv().unwrap().is_err());
    assert_eq!(counters.snapshot().rejected, 1);
    // Recovery is not attempted more than once a second, and fails while the segment is
    // out of reach...
    w.heal();
    assert!(counters.halted.load(Ordering::Relaxed));
    w.last_heal = Instant::now() - HEAL_INTERVAL;
    w.heal();
    assert!(counters.halted.load(Ordering::Relaxed));
    std::fs::rename(&aside, &segment).unwrap();
    // ... and succeeds once the segment can be truncated and synced through a new handle:
    // the log resumes in a new segment, and says so first.
    w.last_heal = Instant::now() - HEAL_INTERVAL;
    w.heal();
    assert!(!counters.halted.load(Ordering::Relaxed));
    assert!(state.lock().unwrap().failed.is_none() && state.lock().unwrap().degraded.is_none());
    assert_eq!(wait(&mut w, 4).blocking_recv().unwrap(), Ok(3), "log_resumed took seq 2");
    assert_eq!(events(&d.path().join("log")), ["log_opened", "log_resumed", "e"]);
    assert_eq!(crate::audit::segment::list_segments(&d.path().join("log")).unwrap().len(), 2);
    let report = verify_log(&d.path().join("log"), &key.public_key(), None).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_degrades_the_log_and_the_first_good_write_records_the_gap() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, counters, state, key) = writer(d.path());
    assert_eq!(wait(&mut w, 1).blocking_recv().unwrap(), Ok(2));
    // A full disk: the write fails; the roll-back cannot truncate through this handle, so it
    // reopens the segment and truncates that. The log stays open, degraded.
    w.file = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    assert!(wait(&mut w, 2).blocking_recv().unwrap().is_err());
    let degraded = state.lock().unwrap().degraded.clone().expect("degraded");
    assert_eq!(degraded.failed_commits, 1);
    assert!(degraded.error.contains("cannot write"), "{degraded:?}");
    assert!(!counters.halted.load(Ordering::Relaxed), "a rolled-back write does not halt");
    assert!(state.lock().unwrap().failed.is_none());
    // Until a `log_resumed` event is written, nothing else is.
    assert!(wait(&mut w, 3).blocking_recv().unwrap().is_err());
    assert_eq!(counters.snapshot().write_failures, 2);
    // The next heal writes the event (the segment handle is good again), then records flow.
    w.heal();
    assert!(state.lock().unwrap().degraded.is_none());
    assert_eq!(wait(&mut w, 4).blocking_recv().unwrap(), Ok(4));
    assert_eq!(events(&d.path().join("log")), ["log_opened", "e", "log_resumed", "e"]);
    let report = verify_log(&d.path().join("log"), &key.public_key(), None).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(counters.snapshot().records, 4);
}
