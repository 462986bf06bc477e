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
//! Failure policy (fail closed, never silent): a failed `write` (disk full, file size limit,
//! I/O error) is rolled back by truncating the segment to its last durable length and the
//! batch is refused (its waiters get an error, answered 503); records whose callers did not
//! wait (`async`) are counted as lost. The log is then *degraded*: `/health/ready` fails and
//! every later batch first tries to write a `log_resumed` event; once that succeeds the log
//! is healthy again and the event records when and why writes had failed. A failed
//! `fdatasync` leaves the file's state unknown, so the log refuses records at once (*halted*)
//! until the writer has truncated the segment back to its last durable length and synced it
//! (retried every second); it then continues in a new segment. Nothing is ever answered
//! without its record, and no gap in the chain is possible: sequence numbers and `prev` are
//! assigned only to records that were written.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::SigningKey;
use super::counters::{Anchor, AuditCounters, Degraded, WriterState};
use super::record::{encode_line, now_rfc3339, payload_of, RecordKind, GENESIS};
use super::segment::{recover, segment_name, sync_dir};
use super::AuditError;

/// What a waiter gets back: the record's sequence number, or why it was not written.
pub(crate) type Ack = Result<u64, Arc<str>>;

/// Who hears about a record's fate.
pub(crate) enum Reply {
    /// A caller waits for durability.
    Wait(oneshot::Sender<Ack>),
    /// Nobody waits (`async`): a failure is counted as lost.
    Async,
    /// The writer's own event (`log_opened`, `log_resumed`): a failure is logged, not counted.
    Internal,
}

/// A record payload and who waits for it.
type Pending = (Vec<u8>, Reply);

/// Messages to the writer.
pub(crate) enum Msg {
    /// A record payload.
    Append { payload: Vec<u8>, reply: Reply },
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
    degraded: Option<Degraded>,
    last_heal: Instant,
    rotate: bool,
    buf: Vec<u8>,
}

/// How often a halted log retries recovering its segment.
const HEAL_INTERVAL: Duration = Duration::from_secs(1);

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
            degraded: None,
            last_heal: Instant::now(),
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
        if let Err(message) = writer.commit(vec![(opened, Reply::Internal)], false) {
            return Err(AuditError::Write { message: message.to_string() });
        }
        writer.publish(|s| s.recovered = recovery.truncated.clone());
        Ok(writer)
    }

    /// The writer loop; returns when closed or when every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut last_batch = 0;
        loop {
            let Some(first) = rx.blocking_recv() else {
                self.close();
                return;
            };
            let mut close = None;
            let mut appends = Vec::new();
            let mut take = |m: Msg, appends: &mut Vec<Pending>| match m {
                Msg::Append { payload, reply } => appends.push((payload, reply)),
                Msg::Tick => {}
                Msg::Close(tx) => close = Some(tx),
            };
            take(first, &mut appends);
            if last_batch > 1 {
                // Records arrive concurrently: let request threads that are about to queue one
                // run first (they may share this core), so that this commit covers them too.
                // With one record at a time there is nobody to wait for.
                std::thread::yield_now();
            }
            while appends.len() < self.opts.max_batch {
                match rx.try_recv() {
                    Ok(m) => take(m, &mut appends),
                    Err(_) => break,
                }
            }
            self.heal();
            last_batch = appends.len();
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

    /// Brings a failed log back: a halted one (failed sync) once its segment is truncated to
    /// the last durable length and synced, a degraded one (failed writes) once a `log_resumed`
    /// event is written. Called before every batch and on every tick.
    fn heal(&mut self) {
        if self.failed.is_some() {
            if self.last_heal.elapsed() < HEAL_INTERVAL {
                return;
            }
            self.last_heal = Instant::now();
            if let Err(e) = self.restore_segment() {
                tracing::debug!("decision log still cannot be recovered: {e}");
                return;
            }
            tracing::warn!(segment = %self.segment, "decision log segment restored after a failed sync");
            self.failed = None;
            self.counters.halted.store(false, Ordering::Relaxed);
            self.publish(|s| s.failed = None);
            // The restored file's state after a failed sync is trusted only up to its last
            // durable length, which it now has; later records go to a fresh segment.
            self.rotate = true;
        }
        let Some(degraded) = self.degraded.clone() else {
            return;
        };
        let payload = payload_of(&EventPayload {
            kind: RecordKind::Event,
            ts: now_rfc3339(),
            event: "log_resumed",
            details: serde_json::json!({
                "failed_since": degraded.since,
                "last_error": degraded.error,
                "failed_commits": degraded.failed_commits,
            }),
        });
        let Ok(payload) = payload else {
            return;
        };
        if self.commit(vec![(payload, Reply::Internal)], false).is_ok() {
            tracing::warn!(
                failed_since = %degraded.since,
                failed_commits = degraded.failed_commits,
                "decision log writes succeed again"
            );
            self.degraded = None;
            self.publish(|s| s.degraded = None);
        }
    }

    /// Truncates the current segment to its last durable length and syncs it, through a new
    /// file handle (the old one may carry the failed sync's error state).
    fn restore_segment(&mut self) -> std::io::Result<()> {
        let path = self.dir.join(&self.segment);
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        let len = file.metadata()?.len();
        if len < self.seg_len {
            // Durable records are gone: never paper over that by extending the file.
            return Err(std::io::Error::other(format!(
                "`{}` is {len} bytes, shorter than its {} durable bytes",
                path.display(),
                self.seg_len
            )));
        }
        file.set_len(self.seg_len)?;
        file.sync_all()?;
        self.file = file;
        Ok(())
    }

    /// Writes `appends` (and a checkpoint after them when `checkpoint`) with one write and one
    /// sync, then acknowledges every waiter.
    fn commit(&mut self, appends: Vec<Pending>, checkpoint: bool) -> Result<(), Arc<str>> {
        if let Some(reason) = self.failed.clone() {
            self.refuse(appends, &reason, false);
            return Err(reason);
        }
        if let Some(d) = &self.degraded {
            // Until the `log_resumed` event is written, nothing else is: the event must precede
            // the records it vouches for.
            if !appends.iter().all(|(_, r)| matches!(r, Reply::Internal)) {
                let reason: Arc<str> =
                    format!("the decision log cannot be written: {}", d.error).into();
                self.refuse(appends, &reason, true);
                return Err(reason);
            }
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
                // batch that was answered as failed (through a new handle if this one fails).
                if let Err(t) = self.file.set_len(self.seg_len) {
                    if let Err(r) = self.restore_segment() {
                        self.fail(format!("cannot roll back a failed write: {t}; {r}"));
                    }
                }
                Err(Arc::<str>::from(format!("cannot write the decision log: {e}")))
            }
            Ok(()) => {
                let started = Instant::now();
                let synced = self.file.sync_data();
                self.counters.fsync_seconds.observe(started.elapsed().as_secs_f64());
                synced.map_err(|e| {
                    let reason = format!("cannot sync the decision log: {e}");
                    self.fail(reason.clone());
                    Arc::<str>::from(reason)
                })
            }
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
                for ((_, reply), seq) in appends.into_iter().zip(seqs) {
                    if let Reply::Wait(ack) = reply {
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
                self.degrade(&reason);
                self.refuse(appends, &reason, true);
                self.buf = buf;
                Err(reason)
            }
        }
    }

    /// Marks the log degraded (or counts another failure while it is).
    fn degrade(&mut self, reason: &str) {
        let degraded = match self.degraded.take() {
            Some(mut d) => {
                d.error = reason.to_owned();
                d.failed_commits += 1;
                d
            }
            None => Degraded { since: now_rfc3339(), error: reason.to_owned(), failed_commits: 1 },
        };
        self.degraded = Some(degraded.clone());
        self.publish(|s| s.degraded = Some(degraded));
    }

    fn refuse(&self, appends: Vec<Pending>, reason: &Arc<str>, after_queueing: bool) {
        for (_, reply) in appends {
            match reply {
                Reply::Wait(ack) => {
                    let counter = if after_queueing {
                        &self.counters.write_failures
                    } else {
                        &self.counters.rejected
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let _ = ack.send(Err(Arc::clone(reason)));
                }
                Reply::Async => {
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "decision log: an async record was acknowledged but not written: {reason}"
                    );
                }
                Reply::Internal => {}
            }
        }
    }

    fn fail(&mut self, reason: String) {
        tracing::error!("decision log refuses records until its segment is recovered: {reason}");
        self.last_heal = Instant::now();
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
#[path = "writer_tests.rs"]
mod tests;
