//! The tamper-evident decision log, the versions archive, and the auditor's tools.
//!
//! - [`AuditLog`]: the service's handle. Decisions and events become JSON lines chained by
//!   SHA-256 ([`record`]), written by one thread with group commit ([`writer`]) into segments
//!   that rotate and recover from a torn tail ([`segment`]); signed checkpoints
//!   ([`checkpoint`]); masking of configured request fields ([`mask`]).
//! - [`archive`]: every activated workspace, content-addressed, so any decision can be
//!   re-evaluated with exactly what produced it.
//! - [`verify`], [`replay`], [`query`]: what `medpdp audit …` runs, all streaming.
//!
//! This module does not decide anything: it records what [`crate::http::evaluate`] decided.

pub mod archive;
pub mod checkpoint;
mod config;
mod counters;
mod entry;
pub mod mask;
pub mod query;
pub mod record;
pub mod replay;
pub mod segment;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use config::{AuditConfig, DataLayout, Durability};
pub use counters::{Anchor, AuditCounters, AuditStats, Degraded, WriterState};
pub use entry::{AuditEvent, DecisionEntry, EventKind, LoggedRequest};

use checkpoint::{PublicKey, SigningKey};
use mask::Masker;
use writer::{Msg, Reply, Writer, WriterOptions};

/// Everything that can go wrong in the audit subsystem.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or directory operation failed.
    #[error("`{path}`: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key or salt file is unusable.
    #[error("key `{path}`: {message}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The audit configuration is invalid.
    #[error("invalid audit configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// No log segments where a log was expected.
    #[error("no decision log in `{dir}` (no `*.jsonl` segments)")]
    NoLog {
        /// The directory.
        dir: String,
    },
    /// The writer could not make a record durable (503 to the caller).
    #[error("the decision log cannot be written: {message}")]
    Write {
        /// Why.
        message: String,
    },
    /// The queue stayed full for the whole enqueue timeout (503 to the caller).
    #[error("the decision log is overloaded: no queue space within {waited_ms} ms")]
    Overloaded {
        /// How long the caller waited.
        waited_ms: u64,
    },
    /// The log was closed.
    #[error("the decision log is closed")]
    Closed,
    /// A record could not be serialized.
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// The versions archive lacks or has a corrupt version.
    #[error("versions archive: {0}")]
    Archive(String),
}

impl AuditError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }
}

/// The service's handle on the decision log. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    durability: Durability,
    enqueue_timeout: Duration,
    masker: Masker,
    counters: Arc<AuditCounters>,
    state: Arc<Mutex<WriterState>>,
    dir: PathBuf,
    public_key: PublicKey,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Proof of queueing; [`Receipt::durable`] waits until the record is on disk.
#[derive(Debug)]
#[must_use = "a receipt must be awaited for the record to be known durable"]
pub struct Receipt(Option<oneshot::Receiver<writer::Ack>>);

impl Receipt {
    /// Waits until the record is durable (immediately when nobody needed to wait).
    pub async fn durable(self) -> Result<(), AuditError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => match rx.await {
                Ok(Ok(_seq)) => Ok(()),
                Ok(Err(message)) => Err(AuditError::Write { message: message.to_string() }),
                Err(_) => Err(AuditError::Closed),
            },
        }
    }
}

/// Status of the log for `/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditStatus {
    /// `sync` or `async`.
    pub durability: Durability,
    /// The log directory.
    pub dir: String,
    /// Id of the checkpoint signing key.
    pub key_id: String,
    /// Records waiting for the writer.
    pub queued: usize,
    /// Writer position, last checkpoint, failure, recovery.
    #[serde(flatten)]
    pub state: WriterState,
    /// Counters since start.
    pub counters: AuditStats,
}

impl AuditLog {
    /// Opens (recovering if needed) the log under `layout` and starts its writer thread.
    pub fn open(layout: &DataLayout, config: &AuditConfig) -> Result<Arc<Self>, AuditError> {
        config.validate().map_err(|(key, message)| AuditError::Config {
            message: format!("`{key}`: {message}"),
        })?;
        // The log holds requests (possibly health data): the data directory is owner-only.
        checkpoint::create_private_dir(layout.root())?;
        let key = SigningKey::load_or_create(&layout.signing_key())?;
        let public_key = key.public_key();
        let masker = Masker::new(&config.mask, &layout.mask_salt())?;
        let counters = Arc::new(AuditCounters::default());
        let state = Arc::new(Mutex::new(WriterState::default()));
        let opts = WriterOptions {
            segment_max_bytes: config.segment_max_bytes,
            segment_max_age: Duration::from_secs(config.segment_max_age_secs),
            checkpoint_every: config.checkpoint_every,
            checkpoint_interval: Duration::from_secs(config.checkpoint_secs),
            max_batch: 4096,
        };
        let dir = layout.log_dir();
        let writer = Writer::open(&dir, opts, key, Arc::clone(&counters), Arc::clone(&state))?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let thread = std::thread::Builder::new()
            .name("medpdp-audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::io(&dir, e))?;
        spawn_ticker(tx.downgrade(), Duration::from_secs(config.checkpoint_secs.min(1)));
        tracing::info!(dir = %dir.display(), durability = ?config.durability, "decision log open");
        Ok(Arc::new(Self {
            tx,
            durability: config.durability,
            enqueue_timeout: config.enqueue_timeout(),
            masker,
            counters,
            state,
            dir,
            public_key,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `sync` or `async`.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The public key that verifies this log's checkpoints.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The counters (shared; they keep counting).
    pub fn counters(&self) -> &Arc<AuditCounters> {
        &self.counters
    }

    /// Serializes a decision record (masking configured fields) and queues it. Waits only
    /// for queue space (back-pressure, bounded by the enqueue timeout); await the receipt for
    /// durability. `must_be_durable` forces waiting even in `async` mode (e.g. the decision
    /// carries an `audit` obligation).
    pub async fn submit_decision(
        &self,
        entry: &DecisionEntry<'_>,
        must_be_durable: bool,
    ) -> Result<Receipt, AuditError> {
        let payload = entry.payload(&self.masker)?;
        let wait = must_be_durable || self.durability == Durability::Sync;
        self.submit(payload, wait).await
    }

    /// Records a non-decision event and waits until it is durable, whatever the durability
    /// mode. This is the API for everything that must be provable besides decisions:
    /// credential issuance, renewal and revocation, administrative actions. Returns the
    /// record's sequence number.
    pub async fn record_event(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let payload = event.payload()?;
        self.submit(payload, true).await?.durable().await
    }

    /// [`AuditLog::record_event`] for synchronous code on a blocking thread (such as a policy
    /// activation hook). Must not be called from an async task.
    pub fn record_event_blocking(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let payload = event.payload()?;
        let (ack, rx) = oneshot::channel();
        self.tx.blocking_send(Msg::Append { payload, reply: Reply::Wait(ack) }).map_err(|_| {
            self.counters.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            AuditError::Closed
        })?;
        match rx.blocking_recv() {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(message)) => Err(AuditError::Write { message: message.to_string() }),
            Err(_) => Err(AuditError::Closed),
        }
    }

    async fn submit(&self, payload: Vec<u8>, wait: bool) -> Result<Receipt, AuditError> {
        if self.counters.halted.load(std::sync::atomic::Ordering::Relaxed) {
            // Fail closed at once rather than queue what can never be written.
            self.counters.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(AuditError::Write {
                message: "the log refuses records until it recovers from a failed sync".into(),
            });
        }
        let (reply, rx) = if wait {
            let (tx, rx) = oneshot::channel();
            (Reply::Wait(tx), Some(rx))
        } else {
            (Reply::Async, None)
        };
        let msg = Msg::Append { payload, reply };
        let sent = match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AuditError::Closed),
            Err(mpsc::error::TrySendError::Full(msg)) => {
                // Back-pressure: wait for space, but not forever (fail closed with 503).
                match tokio::time::timeout(self.enqueue_timeout, self.tx.send(msg)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(AuditError::Closed),
                    Err(_) => Err(AuditError::Overloaded {
                        waited_ms: u64::try_from(self.enqueue_timeout.as_millis())
                            .unwrap_or(u64::MAX),
                    }),
                }
            }
        };
        if let Err(e) = sent {
            self.counters.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(e);
        }
        Ok(Receipt(rx))
    }

    /// Writes a final checkpoint and stops the writer; later submissions fail with
    /// [`AuditError::Closed`].
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = match self.thread.lock() {
            Ok(mut t) => t.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }

    /// Status for `/v1/status`.
    pub fn status(&self) -> AuditStatus {
        let state = match self.state.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        AuditStatus {
            durability: self.durability,
            dir: self.dir.display().to_string(),
            key_id: self.public_key.key_id().to_owned(),
            queued: self.tx.max_capacity() - self.tx.capacity(),
            state,
            counters: self.counters.snapshot(),
        }
    }
}

/// Wakes the writer periodically so time-based checkpoints and rotation happen while idle.
/// Holds only a weak sender: it never keeps the log open, and stops when the log closes.
fn spawn_ticker(tx: mpsc::WeakSender<Msg>, period: Duration) {
    let spawned =
        std::thread::Builder::new().name("medpdp-audit-ticker".into()).spawn(move || loop {
            std::thread::sleep(period);
            let Some(tx) = tx.upgrade() else {
                return;
            };
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Msg::Tick) {
                return;
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no audit ticker thread ({e}); checkpoints follow traffic only");
    }
}

#[cfg(test)]
mod tests;
