//! The log writer end to end: group commit, rotation, checkpoints, restart and recovery.

use super::*;
use crate::audit::segment::{list_segments, LogReader};
use crate::audit::verify::verify_log;

fn small_config() -> AuditConfig {
    AuditConfig { segment_max_bytes: 4096, checkpoint_every: 7, ..AuditConfig::default() }
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(EventKind::AdminAction, None, serde_json::json!({"n": i}))
}

fn records(dir: &Path) -> Vec<record::LoggedRecord> {
    LogReader::open(dir)
        .unwrap()
        .map(|l| serde_json::from_slice(&l.unwrap().bytes).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_rotation_and_checkpoints_give_an_intact_chain() {
    let d = tempfile::tempdir().unwrap();
    let layout = DataLayout::new(d.path());
    let log = AuditLog::open(&layout, &small_config()).unwrap();
    // Queue a round first, then wait: one sync covers many records. Segments rotate between
    // group commits, so several rounds give several segments.
    for round in 0..10 {
        let mut receipts = Vec::new();
        for i in 0..20 {
            receipts
                .push(log.submit(event(round * 20 + i).payload().unwrap(), true).await.unwrap());
        }
        for r in receipts {
            r.durable().await.unwrap();
        }
    }
    let stats = log.counters().snapshot();
    assert!(stats.commits < 100, "records were group-committed: {stats:?}");
    assert!(stats.max_batch > 1);
    log.close().await;
    assert!(list_segments(&layout.log_dir()).unwrap().len() > 3, "segments rotate by size");
    let report = verify_log(&layout.log_dir(), log.public_key(), None).unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    // At least one checkpoint per `checkpoint_every` records, at a group-commit boundary.
    assert!(report.checkpoints >= 10, "{report:?}");
    assert_eq!(report.unsigned_tail, 0, "a clean close ends with a checkpoint");
    // Every sealed segment ends with a checkpoint.
    for seg in list_segments(&layout.log_dir()).unwrap() {
        let text = std::fs::read_to_string(&seg).unwrap();
        assert!(
            text.lines().last().unwrap().contains("\"kind\":\"checkpoint\""),
            "{}",
            seg.display()
        );
    }
}

#[tokio::test]
async fn a_restart_continues_the_chain_and_records_a_truncated_torn_tail() {
    let d = tempfile::tempdir().unwrap();
    let layout = DataLayout::new(d.path());
    let log = AuditLog::open(&layout, &AuditConfig::default()).unwrap();
    for i in 0..3 {
        log.record_event(&event(i)).await.unwrap();
    }
    let key = log.public_key().clone();
    // Dropped without close (the writer still signs what it wrote), then a torn write.
    drop(log);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seg = list_segments(&layout.log_dir()).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(b"{\"seq\":99,\"prev\":\"torn");
    std::fs::write(&seg, &bytes).unwrap();

    let log = AuditLog::open(&layout, &AuditConfig::default()).unwrap();
    let status = log.status();
    assert_eq!(status.state.recovered.len(), 1);
    assert_eq!(status.state.recovered[0].bytes, 22);
    log.record_event(&event(9)).await.unwrap();
    log.close().await;
    let report = verify_log(&layout.log_dir(), &key, None).unwrap();
    assert!(report.is_intact(), "{:?}", report.findings);
    let opened: Vec<_> = records(&layout.log_dir())
        .into_iter()
        .filter(|r| r.event.as_deref() == Some("log_opened"))
        .collect();
    assert_eq!(opened.len(), 2);
    let details = opened[1].details.as_ref().unwrap();
    assert_eq!(details["truncated"][0]["bytes"], 22);
    assert_eq!(details["previous_seq"], 5);
    assert_eq!(opened[1].seq, 6, "the chain continues after the last complete record");
}

#[tokio::test]
async fn async_records_are_answered_at_once_and_written_by_close() {
    let d = tempfile::tempdir().unwrap();
    let layout = DataLayout::new(d.path());
    let config = AuditConfig { durability: Durability::Async, ..AuditConfig::default() };
    let log = AuditLog::open(&layout, &config).unwrap();
    let receipt = log.submit(event(1).payload().unwrap(), false).await.unwrap();
    assert!(receipt.0.is_none(), "nobody waits in async mode");
    receipt.durable().await.unwrap();
    log.close().await;
    let n = records(&layout.log_dir())
        .iter()
        .filter(|r| r.details.as_ref().is_some_and(|d| d["n"] == 1))
        .count();
    assert_eq!(n, 1);
    // After close, nothing is accepted silently.
    assert!(matches!(log.record_event(&event(2)).await, Err(AuditError::Closed)));
    assert_eq!(log.counters().snapshot().rejected, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn keys_and_the_data_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let layout = DataLayout::new(d.path().join("data"));
    let log = AuditLog::open(&layout, &AuditConfig::default()).unwrap();
    log.close().await;
    for p in [layout.root().to_owned(), layout.signing_key(), layout.mask_salt()] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o077;
        assert_eq!(mode, 0, "{} is readable by others", p.display());
    }
}
