//! The active TLS configuration and how it is replaced.
//!
//! The accept loop takes the current `Arc<ServerConfig>` once per new connection (one atomic
//! load). A reload rebuilds the whole configuration from the files off the accept path and
//! swaps it only when it is complete and valid; established connections keep the
//! configuration they were accepted with. A failed reload keeps the previous configuration
//! and is reported in status and the log.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use serde::Serialize;
use time::OffsetDateTime;

use super::material::{self, Active, MaterialInfo};
use super::{TlsConfig, TlsError};
use crate::policy::ReloadTrigger;

/// The result of one reload attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TlsReloadOutcome {
    /// New material is in use for new connections.
    Activated {
        /// Fingerprint of the new files.
        fingerprint: String,
        /// Fingerprint of the material it replaced.
        previous: String,
    },
    /// The files are identical to the active material.
    Unchanged {
        /// Fingerprint of the active material.
        fingerprint: String,
    },
    /// The files are unusable; the previous material stays active.
    Failed {
        /// What is wrong, naming the file.
        error: String,
        /// Fingerprint of the material still active.
        active: String,
    },
}

/// A failed reload as shown in status.
#[derive(Debug, Clone, Serialize)]
pub struct TlsReloadFailure {
    /// When it failed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What triggered it.
    pub trigger: ReloadTrigger,
    /// What is wrong.
    pub error: String,
}

/// Status of the TLS material as shown by `/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct TlsStatus {
    /// What is in use.
    pub active: MaterialInfo,
    /// When it was loaded.
    #[serde(with = "time::serde::rfc3339")]
    pub loaded_at: OffsetDateTime,
    /// Successful reloads since start (not counting the first load).
    pub reloads: u64,
    /// Failed reloads since start.
    pub reload_failures: u64,
    /// The most recent failure, cleared by the next successful or unchanged reload.
    pub last_reload_error: Option<TlsReloadFailure>,
}

/// Holds the active server configuration.
#[derive(Debug)]
pub struct TlsStore {
    settings: TlsConfig,
    current: ArcSwap<Active>,
    status: Mutex<TlsStatus>,
    reload_gate: tokio::sync::Mutex<()>,
}

impl TlsStore {
    /// Loads the material; at start-up an error is fatal (there is nothing to fall back to).
    pub fn load(settings: &TlsConfig) -> Result<Self, TlsError> {
        let m = material::load(settings)?;
        warn_about(&m.info);
        Ok(Self {
            settings: settings.clone(),
            current: ArcSwap::new(m.active),
            status: Mutex::new(TlsStatus {
                active: m.info,
                loaded_at: OffsetDateTime::now_utc(),
                reloads: 0,
                reload_failures: 0,
                last_reload_error: None,
            }),
            reload_gate: tokio::sync::Mutex::new(()),
        })
    }

    /// The settings the material is read from.
    pub fn settings(&self) -> &TlsConfig {
        &self.settings
    }

    /// The API listener's configuration for a new connection. One atomic load; no lock.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load().config.clone()
    }

    /// Everything built from the current files (both listeners' configurations and the
    /// classifier), for a new connection. One atomic load; no lock.
    pub fn active(&self) -> Arc<Active> {
        self.current.load_full()
    }

    /// Reads the files again and activates them if they changed and are valid.
    pub async fn reload(&self, trigger: ReloadTrigger) -> TlsReloadOutcome {
        let _serialized = self.reload_gate.lock().await;
        let active = self.lock_status().active.fingerprint.clone();
        let settings = self.settings.clone();
        let previous = active.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            if material::fingerprint(&settings)? == previous {
                return Ok(None);
            }
            material::load(&settings).map(Some)
        })
        .await
        .unwrap_or_else(|join| Err(TlsError::Config(format!("loader failed: {join}"))));
        let mut status = self.lock_status();
        match loaded {
            Ok(Some(m)) => {
                warn_about(&m.info);
                let fingerprint = m.info.fingerprint.clone();
                self.current.store(m.active);
                status.active = m.info;
                status.loaded_at = OffsetDateTime::now_utc();
                status.reloads += 1;
                status.last_reload_error = None;
                tracing::info!(?trigger, %fingerprint, previous = %active, "TLS material activated");
                TlsReloadOutcome::Activated { fingerprint, previous: active }
            }
            Ok(None) => {
                status.last_reload_error = None;
                tracing::debug!(?trigger, "TLS material unchanged");
                TlsReloadOutcome::Unchanged { fingerprint: active }
            }
            Err(e) => {
                let error = e.to_string();
                status.reload_failures += 1;
                status.last_reload_error = Some(TlsReloadFailure {
                    at: OffsetDateTime::now_utc(),
                    trigger,
                    error: error.clone(),
                });
                tracing::error!(
                    ?trigger,
                    %error,
                    "TLS material rejected; the previous material stays in use"
                );
                TlsReloadOutcome::Failed { error, active }
            }
        }
    }

    /// Status for `/v1/status`.
    pub fn status(&self) -> TlsStatus {
        self.lock_status().clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, TlsStatus> {
        match self.status.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Logs what an operator should act on: expiring server certificate, overdue CRLs.
fn warn_about(info: &MaterialInfo) {
    let now = OffsetDateTime::now_utc();
    let cert = &info.server_cert;
    if cert.not_after <= now {
        tracing::error!(not_after = %cert.not_after, "the server certificate has expired");
    } else if cert.not_after - now < time::Duration::days(14) {
        tracing::warn!(not_after = %cert.not_after, "the server certificate expires within 14 days");
    }
    for crl in &info.crls {
        if crl.next_update.is_some_and(|t| t <= now) {
            tracing::warn!(file = %crl.file, next_update = ?crl.next_update, "CRL is overdue");
        }
    }
}
