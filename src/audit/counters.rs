//! What the decision log reports about itself: counters (for `/v1/status` and `/metrics`) and
//! the writer's position and health. The writer updates them; readers copy them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::segment::Truncation;

/// Counters of the log, exported by `/v1/status` and `/metrics`. Never reset.
#[derive(Debug)]
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
    /// Set while the log refuses records at once: a sync failed and the segment has not been
    /// recovered yet (the writer retries, see [`Writer::run`]).
    pub halted: std::sync::atomic::AtomicBool,
    /// How long each group commit's `fdatasync` took (exported by `/metrics`).
    pub fsync_seconds: prometheus::Histogram,
}

impl Default for AuditCounters {
    fn default() -> Self {
        let opts = prometheus::HistogramOpts::new(
            "medpdp_audit_fsync_seconds",
            "Time of each decision log group commit's fdatasync.",
        )
        .buckets(crate::metrics::FSYNC_BUCKETS.to_vec());
        Self {
            records: AtomicU64::default(),
            commits: AtomicU64::default(),
            checkpoints: AtomicU64::default(),
            bytes: AtomicU64::default(),
            rejected: AtomicU64::default(),
            write_failures: AtomicU64::default(),
            lost: AtomicU64::default(),
            max_batch: AtomicU64::default(),
            halted: std::sync::atomic::AtomicBool::default(),
            // The options are constants that the crate accepts; failure would be a bug here.
            #[allow(clippy::expect_used, reason = "constant, valid options")]
            fsync_seconds: prometheus::Histogram::with_opts(opts).expect("valid histogram options"),
        }
    }
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
    /// Set while the log refuses records at once (a sync failed; recovery is retried).
    pub failed: Option<String>,
    /// Set while writes fail (and `/health/ready` fails); cleared by the first write that
    /// succeeds again, which is a `log_resumed` event.
    pub degraded: Option<Degraded>,
    /// Torn tails truncated at start-up.
    pub recovered: Vec<Truncation>,
}

/// Since when and why the log's writes fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Degraded {
    /// When the first write failed (RFC 3339).
    pub since: String,
    /// The most recent error.
    pub error: String,
    /// Batches that failed since.
    pub failed_commits: u64,
}

/// A record position and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    /// Sequence number.
    pub seq: u64,
    /// Hash of that record.
    pub hash: String,
}
