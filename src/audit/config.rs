//! The `[audit]` configuration section and the layout of the data directory.
//!
//! ```text
//! <data>/audit/                 the decision log: <first seq>.jsonl segments
//! <data>/keys/audit-signing.pk8 Ed25519 checkpoint key (0600)
//! <data>/keys/audit-mask.salt   masking salt (0600)
//! <data>/versions/              archive of every activated workspace (blobs + manifests)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mask::parse_pointer;

/// Whether a decision is answered before or after its record is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Answer only once the record is durable (group commit). The default.
    Sync,
    /// Answer once the record is queued (bounded queue, back-pressure when full). Decisions
    /// with an `audit` obligation still wait for durability.
    Async,
}

/// `[audit]`: the decision log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Record decisions at all. Off only for development and benchmarks.
    pub enabled: bool,
    /// `sync` (default) or `async`.
    pub durability: Durability,
    /// Records that may wait for the writer; beyond it callers wait (back-pressure).
    pub queue_capacity: usize,
    /// How long a caller waits for queue space before it is answered 503.
    pub enqueue_timeout_ms: u64,
    /// Start a new segment after this many bytes.
    pub segment_max_bytes: u64,
    /// Start a new segment after this many seconds.
    pub segment_max_age_secs: u64,
    /// Sign a checkpoint after this many records.
    pub checkpoint_every: u64,
    /// Sign a checkpoint after this many seconds (when records were written since the last).
    pub checkpoint_secs: u64,
    /// JSON pointers into requests whose values are masked, e.g. `/context/patient/id`.
    pub mask: Vec<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            durability: Durability::Sync,
            queue_capacity: 16_384,
            enqueue_timeout_ms: 2_000,
            segment_max_bytes: 64 * 1024 * 1024,
            segment_max_age_secs: 24 * 3600,
            checkpoint_every: 10_000,
            checkpoint_secs: 60,
            mask: Vec::new(),
        }
    }
}

impl AuditConfig {
    /// Checks every value; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(16..=1_048_576).contains(&self.queue_capacity) {
            return Err(("audit.queue_capacity", "must be between 16 and 1048576".into()));
        }
        if !(1..=600_000).contains(&self.enqueue_timeout_ms) {
            return Err(("audit.enqueue_timeout_ms", "must be between 1 and 600000".into()));
        }
        if self.segment_max_bytes < 4096 {
            return Err(("audit.segment_max_bytes", "must be at least 4096".into()));
        }
        if self.segment_max_age_secs == 0 {
            return Err(("audit.segment_max_age_secs", "must be at least 1".into()));
        }
        if self.checkpoint_every == 0 {
            return Err(("audit.checkpoint_every", "must be at least 1".into()));
        }
        if self.checkpoint_secs == 0 {
            return Err(("audit.checkpoint_secs", "must be at least 1".into()));
        }
        for p in &self.mask {
            parse_pointer(p).map_err(|m| ("audit.mask", m))?;
        }
        Ok(())
    }

    /// How long a caller waits for queue space.
    pub fn enqueue_timeout(&self) -> Duration {
        Duration::from_millis(self.enqueue_timeout_ms)
    }
}

/// Paths inside the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    root: PathBuf,
}

impl DataLayout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The decision log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// The checkpoint signing key.
    pub fn signing_key(&self) -> PathBuf {
        self.root.join("keys").join("audit-signing.pk8")
    }

    /// The masking salt.
    pub fn mask_salt(&self) -> PathBuf {
        self.root.join("keys").join("audit-mask.salt")
    }

    /// The versions archive.
    pub fn archive_dir(&self) -> PathBuf {
        self.root.join("versions")
    }
}
