//! Assembling and running the service: load the workspace, start the watcher, serve the API,
//! shut down gracefully.
//!
//! [`start`] takes an already bound listener and returns a handle, so tests run the real server
//! on `127.0.0.1:0`; the process-level concerns (signals) live in [`run`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::audit::archive::{ArchiveHook, VersionArchive};
use crate::audit::{AuditLog, DataLayout};
use crate::config::Config;
use crate::http::authzen::{AuthzenState, IndexHook};
use crate::http::{router, AppState};
use crate::policy::{
    watch, ActivationHook, PolicyStore, ReloadOutcome, ReloadTrigger, WatchHandle,
};

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The listener could not be bound.
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file watcher could not start.
    #[error("cannot watch `{dir}`: {source}")]
    Watch {
        /// The directory.
        dir: String,
        /// The watcher error.
        source: notify::Error,
    },
    /// The decision log or the versions archive could not be opened.
    #[error("decision log: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// A running service.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<std::io::Result<()>>,
    _watch: Option<WatchHandle>,
}

impl RunningServer {
    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (stores, limits).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish for up to `grace`, then returns.
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(grace, &mut self.join).await {
            Ok(Ok(result)) => {
                self.close_audit().await;
                Ok(result?)
            }
            Ok(Err(join)) => {
                self.close_audit().await;
                Err(ServeError::Io(std::io::Error::other(join)))
            }
            Err(_) => {
                tracing::warn!(?grace, "in-flight requests did not finish in time; closing");
                self.join.abort();
                self.close_audit().await;
                Ok(())
            }
        }
    }

    /// The decision log closes last: every answered decision is already durable (`sync`) or
    /// queued (`async`); closing flushes the queue and signs a final checkpoint.
    async fn close_audit(&self) {
        if let Some(log) = &self.state.audit {
            log.close().await;
        }
    }
}

/// Loads the workspace and serves the API on `listener` until [`RunningServer::shutdown`].
///
/// An invalid workspace does not stop the start: the service runs unready (decisions answer
/// 503, `/health/ready` fails) and the watcher activates the workspace once it is fixed.
pub async fn start(config: &Config, listener: TcpListener) -> Result<RunningServer, ServeError> {
    let addr = listener.local_addr()?;
    // INVARIANT: the AuthZEN index hook is the last activation hook (see `IndexHook`).
    let authzen_index = Arc::new(IndexHook::default());
    // The versions archive comes first: nothing is indexed for a version it refused.
    let (audit, mut hooks) = open_audit(config)?;
    hooks.push(authzen_index.clone());
    let store = Arc::new(PolicyStore::new(config.workspace.dir.clone(), hooks));
    if let ReloadOutcome::Failed { diagnostics, .. } = store.reload(ReloadTrigger::Startup).await {
        tracing::error!(
            errors = diagnostics.len(),
            "no valid policy set: serving unready until the workspace is fixed"
        );
    }
    let watch_handle = if config.workspace.watch {
        let debounce = Duration::from_millis(config.workspace.debounce_ms);
        Some(watch(Arc::clone(&store), debounce).map_err(|source| ServeError::Watch {
            dir: config.workspace.dir.display().to_string(),
            source,
        })?)
    } else {
        None
    };
    // The listener serves plain HTTP; `[authzen] base_url` names the URL PEPs really use.
    let base_url = config.authzen.effective_base_url("http", addr);
    let authzen = Arc::new(AuthzenState::new(&config.authzen, base_url, authzen_index));
    let state = AppState {
        store,
        limits: config.limits,
        started_at: time::OffsetDateTime::now_utc(),
        authzen,
        audit,
    };
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let join = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningServer { addr, state, shutdown: Some(tx), join, _watch: watch_handle })
}

/// The decision log (when enabled) and the activation hooks of the policy store.
type AuditParts = (Option<Arc<AuditLog>>, Vec<Arc<dyn ActivationHook>>);

/// Opens the decision log (unless disabled) and the versions archive hook that every
/// activation passes through.
fn open_audit(config: &Config) -> Result<AuditParts, ServeError> {
    let layout = DataLayout::new(&config.data.dir);
    let audit = if config.audit.enabled {
        Some(AuditLog::open(&layout, &config.audit)?)
    } else {
        tracing::warn!("the decision log is disabled (audit.enabled = false)");
        None
    };
    let hook = ArchiveHook::new(VersionArchive::new(layout.archive_dir()), audit.clone());
    Ok((audit, vec![Arc::new(hook)]))
}

/// Binds the configured address and serves until SIGINT or SIGTERM; SIGHUP reloads.
pub async fn run(config: Config) -> Result<(), ServeError> {
    config.validate()?;
    let addr = config.server.listen;
    let listener =
        TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    let server = start(&config, listener).await?;
    tracing::info!(
        addr = %server.addr(),
        workspace = %config.workspace.dir.display(),
        "medpdp listening on http://{}",
        server.addr()
    );
    let reloader = spawn_sighup_reloader(Arc::clone(&server.state().store));
    crate::shutdown::signal().await;
    tracing::info!("shutting down");
    if let Some(task) = reloader {
        task.abort();
    }
    server.shutdown(config.shutdown_grace()).await
}

#[cfg(unix)]
fn spawn_sighup_reloader(store: Arc<PolicyStore>) -> Option<JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot install SIGHUP handler; reload by file or API only");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            store.reload(ReloadTrigger::Signal).await;
        }
    }))
}

#[cfg(not(unix))]
fn spawn_sighup_reloader(_store: Arc<PolicyStore>) -> Option<JoinHandle<()>> {
    None
}
