//! The one writer of the decision log: a dedicated thread with group commit.
//!
//! Request handlers serialize their record's payload themselves (in parallel) and queue it;
//! the writer drains everything queued, assigns sequence numbers, chains the hashes, writes
//! the whole batch with one `write`, makes it durable with one `fdatasync`, and only then
//! acknowledges every waiter. One sync thus covers every record that arrived while the
//! previous one ran, which is what keeps `sync` durability cheap under load.
//!
//! INVARIANT: only this thread writes segment files, so sequence numbers and `prev` links are
//! assigned in file order without locks.
//!
//! Failure policy (fail closed, never silent): a failed `write` is rolled back by truncating
//! the segment to its last durable length and the batch is refused (its waiters get an error,
//! answered 503); records whose callers did not wait (`async`) are counted as lost. A failed
//! `fdatasync` leaves the file's state unknown, so the log stops accepting records (every
//! decision answers 503) until a restart recovers it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::SigningKey;
use super::record::{encode_line, now_rfc3339, payload_of, RecordKind, GENESIS};
use super::segment::{recover, segment_name, sync_dir, Truncation};
use super::AuditError;

/// What a waiter gets back: the record's sequence number, or why it was not written.
pub(crate) type Ack = Result<u64, Arc<str>>;

/// Messages to the writer.
pub(crate) enum Msg {
    /// A record payload; `ack` is `None` when nobody waits for durability (`async`).
    Append { payload: Vec<u8>, ack: Option<oneshot::Sender<Ack>> },
    /// Wake up to write a time-based checkpoint or rotate an idle segment.
    Tick,
    /// Write a final checkpoint and stop.
    Close(oneshot::Sender<()>),
}

/// Tunables of the writer.
#[derive(Debug, Clone)]
pub(crate) struct WriterOptions {
    pub(crate) segment_max_bytes: u64,
    pub(crate) segment_max_age: Duration,
    pub(crate) checkpoint_every: u64,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) max_batch: usize,
}

/// Counters of the log, exported by `/v1/status` (and later as metrics). Never reset.
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Records durably written (decisions, events, checkpoints).
    pub records: AtomicU64,
    /// Group commits (one `fdatasync` each).
    pub commits: AtomicU64,
    /// Signed checkpoints written.
    pub checkpoints: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
    /// Records refused before they were queued (queue full past the timeout, or log down);
    /// each one was answered 503.
    pub rejected: AtomicU64,
    /// Records whose write failed while their caller waited (answered 503).
    pub write_failures: AtomicU64,
    /// Records acknowledged to an `async` caller that then failed to be written.
    pub lost: AtomicU64,
    /// Largest group commit so far.
    pub max_batch: AtomicU64,
    /// Set once the log stopped accepting records (until a restart).
    pub halted: std::sync::atomic::AtomicBool,
}

/// A point-in-time copy of [`AuditCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuditStats {
    /// Records durably written.
    pub records: u64,
    /// Group commits.
    pub commits: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Refused before queueing (503).
    pub rejected: u64,
    /// Failed writes with a waiting caller (503).
    pub write_failures: u64,
    /// Acknowledged `async` records that failed to be written.
    pub lost: u64,
    /// Largest group commit.
    pub max_batch: u64,
}

impl AuditCounters {
    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> AuditStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AuditStats {
            records: get(&self.records),
            commits: get(&self.commits),
            checkpoints: get(&self.checkpoints),
            bytes: get(&self.bytes),
            rejected: get(&self.rejected),
            write_failures: get(&self.write_failures),
            lost: get(&self.lost),
            max_batch: get(&self.max_batch),
        }
    }
}

/// Where the writer stands, for status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriterState {
    /// The segment being appended to.
    pub segment: String,
    /// Sequence number the next record gets.
    pub next_seq: u64,
    /// The most recent checkpoint: auditors can keep it as an external anchor
    /// (`audit verify --anchor SEQ:HASH`).
    pub last_checkpoint: Option<Anchor>,
    /// Set when the log stopped accepting records.
    pub failed: Option<String>,
    /// Torn tails truncated at start-up.
    pub recovered: Vec<Truncation>,
}

/// A record position and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    /// Sequence number.
    pub seq: u64,
    /// Hash of that record.
    pub hash: String,
}

pub(crate) struct Writer {
    dir: PathBuf,
    opts: WriterOptions,
    key: SigningKey,
    counters: Arc<AuditCounters>,
    state: Arc<Mutex<WriterState>>,
    file: File,
    segment: String,
    seg_len: u64,
    seg_records: u64,
    seg_started: Instant,
    next_seq: u64,
    prev: String,
    since_checkpoint: u64,
    last_checkpoint_at: Instant,
    failed: Option<Arc<str>>,
    rotate: bool,
    buf: Vec<u8>,
}

#[derive(Serialize)]
struct EventPayload<'a> {
    kind: RecordKind,
    ts: String,
    event: &'a str,
    details: serde_json::Value,
}

#[derive(Serialize)]
struct CheckpointPayload<'a> {
    kind: RecordKind,
    ts: &'a str,
    key_id: &'a str,
    signature: String,
}

impl Writer {
    /// Recovers the log in `dir`, opens a new segment and durably records `log_opened`.
    pub(crate) fn open(
        dir: &Path,
        opts: WriterOptions,
        key: SigningKey,
        counters: Arc<AuditCounters>,
        state: Arc<Mutex<WriterState>>,
    ) -> Result<Self, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        let recovery = recover(dir)?;
        let (next_seq, prev) = match &recovery.end {
            Some(end) => (end.seq + 1, end.hash.clone()),
            None => (1, GENESIS.to_owned()),
        };
        let segment = segment_name(next_seq);
        let file = open_segment(dir, &segment)?;
        let mut writer = Self {
            dir: dir.to_owned(),
            opts,
            key,
            counters,
            state,
            file,
            segment,
            seg_len: 0,
            seg_records: 0,
            seg_started: Instant::now(),
            next_seq,
            prev,
            since_checkpoint: 0,
            last_checkpoint_at: Instant::now(),
            failed: None,
            rotate: false,
            buf: Vec::with_capacity(1 << 16),
        };
        let details = serde_json::json!({
            "previous_seq": recovery.end.as_ref().map(|e| e.seq),
            "clean_stop": recovery.end.as_ref().is_none_or(|e| e.kind == RecordKind::Checkpoint),
            "truncated": &recovery.truncated,
            "key_id": writer.key.key_id(),
        });
        let opened = payload_of(&EventPayload {
            kind: RecordKind::Event,
            ts: now_rfc3339(),
            event: "log_opened",
            details,
        })
        .map_err(|e| AuditError::Encode(e.to_string()))?;
        if let Err(message) = writer.commit(vec![(opened, None)], false) {
            return Err(AuditError::Write { message: message.to_string() });
        }
        writer.publish(|s| s.recovered = recovery.truncated.clone());
        Ok(writer)
    }

    /// The writer loop; returns when closed or when every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            let Some(first) = rx.blocking_recv() else {
                self.close();
                return;
            };
            let mut close = None;
            let mut appends = Vec::new();
            let mut take =
                |m: Msg, appends: &mut Vec<(Vec<u8>, Option<oneshot::Sender<Ack>>)>| match m {
                    Msg::Append { payload, ack } => appends.push((payload, ack)),
                    Msg::Tick => {}
                    Msg::Close(tx) => close = Some(tx),
                };
            take(first, &mut appends);
            while appends.len() < self.opts.max_batch {
                match rx.try_recv() {
                    Ok(m) => take(m, &mut appends),
                    Err(_) => break,
                }
            }
            if !appends.is_empty() {
                let due =
                    self.since_checkpoint + appends.len() as u64 >= self.opts.checkpoint_every;
                let _ = self.commit(appends, due);
            }
            if self.since_checkpoint > 0
                && self.last_checkpoint_at.elapsed() >= self.opts.checkpoint_interval
            {
                let _ = self.commit(Vec::new(), true);
            }
            self.maybe_rotate();
            if let Some(tx) = close {
                self.close();
                let _ = tx.send(());
                return;
            }
        }
    }

    /// Writes `appends` (and a checkpoint after them when `checkpoint`) with one write and one
    /// sync, then acknowledges every waiter.
    fn commit(
        &mut self,
        appends: Vec<(Vec<u8>, Option<oneshot::Sender<Ack>>)>,
        checkpoint: bool,
    ) -> Result<(), Arc<str>> {
        if let Some(reason) = self.failed.clone() {
            self.refuse(appends, &reason, false);
            return Err(reason);
        }
        if self.rotate {
            self.open_next_segment();
        }
        let (seq0, prev0) = (self.next_seq, self.prev.clone());
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut seqs = Vec::with_capacity(appends.len());
        for (payload, _) in &appends {
            seqs.push(self.next_seq);
            self.prev = encode_line(&mut buf, self.next_seq, &self.prev, payload);
            self.next_seq += 1;
        }
        let mut anchor = None;
        if checkpoint && (self.since_checkpoint > 0 || !appends.is_empty()) {
            let ts = now_rfc3339();
            let signature = self.key.sign_checkpoint(self.next_seq, &self.prev, &ts);
            let payload = payload_of(&CheckpointPayload {
                kind: RecordKind::Checkpoint,
                ts: &ts,
                key_id: self.key.key_id(),
                signature,
            })
            .map_err(|e| Arc::<str>::from(e.to_string()))?;
            let hash = encode_line(&mut buf, self.next_seq, &self.prev, &payload);
            anchor = Some(Anchor { seq: self.next_seq, hash: hash.clone() });
            self.prev = hash;
            self.next_seq += 1;
        }
        let written = self.file.write_all(&buf);
        let result = match written {
            Err(e) => {
                // Roll back to the last durable length so the segment never holds a partial
                // batch that was answered as failed.
                if let Err(t) = self.file.set_len(self.seg_len) {
                    self.fail(format!("cannot roll back a failed write: {t}"));
                }
                Err(Arc::<str>::from(format!("cannot write the decision log: {e}")))
            }
            Ok(()) => self.file.sync_data().map_err(|e| {
                let reason = format!("cannot sync the decision log: {e}");
                self.fail(reason.clone());
                Arc::<str>::from(reason)
            }),
        };
        let lines = self.next_seq - seq0;
        match result {
            Ok(()) => {
                self.seg_len += buf.len() as u64;
                self.seg_records += lines;
                self.counters.records.fetch_add(lines, Ordering::Relaxed);
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                self.counters.max_batch.fetch_max(lines, Ordering::Relaxed);
                self.since_checkpoint += appends.len() as u64;
                if let Some(a) = anchor {
                    self.since_checkpoint = 0;
                    self.last_checkpoint_at = Instant::now();
                    self.counters.checkpoints.fetch_add(1, Ordering::Relaxed);
                    self.publish(|s| s.last_checkpoint = Some(a));
                }
                let next = self.next_seq;
                self.publish(|s| s.next_seq = next);
                for ((_, ack), seq) in appends.into_iter().zip(seqs) {
                    if let Some(ack) = ack {
                        let _ = ack.send(Ok(seq));
                    }
                }
                self.buf = buf;
                Ok(())
            }
            Err(reason) => {
                self.next_seq = seq0;
                self.prev = prev0;
                tracing::error!(records = appends.len(), "{reason}");
                self.refuse(appends, &reason, true);
                self.buf = buf;
                Err(reason)
            }
        }
    }

    fn refuse(
        &self,
        appends: Vec<(Vec<u8>, Option<oneshot::Sender<Ack>>)>,
        reason: &Arc<str>,
        after_queueing: bool,
    ) {
        for (_, ack) in appends {
            match ack {
                Some(ack) => {
                    let counter = if after_queueing {
                        &self.counters.write_failures
                    } else {
                        &self.counters.rejected
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let _ = ack.send(Err(Arc::clone(reason)));
                }
                None => {
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "decision log: an async record was acknowledged but not written: {reason}"
                    );
                }
            }
        }
    }

    fn fail(&mut self, reason: String) {
        tracing::error!("decision log stopped accepting records (restart to recover): {reason}");
        self.counters.halted.store(true, Ordering::Relaxed);
        self.failed = Some(reason.clone().into());
        self.publish(|s| s.failed = Some(reason));
    }

    fn maybe_rotate(&mut self) {
        let full = self.seg_len >= self.opts.segment_max_bytes;
        let old = self.seg_started.elapsed() >= self.opts.segment_max_age;
        if self.failed.is_some() || self.rotate || self.seg_records == 0 || !(full || old) {
            return;
        }
        // Seal the segment with a checkpoint so every closed segment ends signed; the next
        // segment is created with the next write (never an empty file).
        if self.since_checkpoint > 0 && self.commit(Vec::new(), true).is_err() {
            return;
        }
        self.rotate = true;
    }

    fn open_next_segment(&mut self) {
        let name = segment_name(self.next_seq);
        match open_segment(&self.dir, &name) {
            Ok(file) => {
                self.file = file;
                self.segment = name.clone();
                self.seg_len = 0;
                self.seg_records = 0;
                self.seg_started = Instant::now();
                self.rotate = false;
                self.publish(|s| s.segment = name);
            }
            Err(e) => tracing::error!("cannot start a new log segment, still appending: {e}"),
        }
    }

    fn close(&mut self) {
        if self.since_checkpoint > 0 {
            let _ = self.commit(Vec::new(), true);
        }
    }

    fn publish(&self, f: impl FnOnce(&mut WriterState)) {
        let mut s = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if s.segment != self.segment {
            s.segment = self.segment.clone();
        }
        f(&mut s);
    }
}

fn open_segment(dir: &Path, name: &str) -> Result<File, AuditError> {
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| AuditError::io(&path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn payload(n: u64) -> Vec<u8> {
        payload_of(&serde_json::json!({"kind": "event", "ts": "t", "event": "e", "n": n})).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_is_refused_counted_and_stops_the_log() {
        let d = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_create(&d.path().join("k")).unwrap();
        let counters = Arc::new(AuditCounters::default());
        let opts = WriterOptions {
            segment_max_bytes: 1 << 20,
            segment_max_age: Duration::from_secs(3600),
            checkpoint_every: 100,
            checkpoint_interval: Duration::from_secs(3600),
            max_batch: 16,
        };
        let state = Arc::new(Mutex::new(WriterState::default()));
        let mut w =
            Writer::open(&d.path().join("log"), opts, key, Arc::clone(&counters), state).unwrap();
        assert_eq!(w.next_seq, 2, "log_opened is record 1");
        // The disk fills up (writes fail with ENOSPC; the roll-back cannot truncate either).
        w.file = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let (tx, rx) = oneshot::channel();
        assert!(w.commit(vec![(payload(1), Some(tx)), (payload(2), None)], false).is_err());
        let answer = rx.blocking_recv().unwrap().unwrap_err();
        assert!(answer.contains("cannot write the decision log"), "{answer}");
        assert_eq!(w.next_seq, 2, "the failed batch took no sequence numbers");
        let s = counters.snapshot();
        assert_eq!((s.write_failures, s.lost, s.records), (1, 1, 1));
        assert!(counters.halted.load(Ordering::Relaxed), "a failed roll-back stops the log");
        // Later records are refused at once: 503 for waiters, counted.
        let (tx, rx) = oneshot::channel();
        assert!(w.commit(vec![(payload(3), Some(tx))], false).is_err());
        assert!(rx.blocking_recv().unwrap().is_err());
        assert_eq!(counters.snapshot().rejected, 1);
    }
}
