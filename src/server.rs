//! Assembling and running the service: load the policy workspaces and the TLS material, start
//! the watchers, serve the API, shut down gracefully.
//!
//! [`start`] takes already bound listeners and returns a handle, so tests run the real server
//! on `127.0.0.1:0`; the process-level concerns (signals) live in [`run`]. The accept loop and
//! per-connection handling (TLS handshake, caller identity, timeouts) are in `listener`.

mod listener;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch as signal_watch;
use tokio::task::JoinHandle;

use crate::audit::archive::{ArchiveHook, VersionArchive};
use crate::audit::{AuditLog, DataLayout};
use crate::config::Config;
use crate::http::authzen::{AuthzenState, IndexHook};
use crate::http::ca::CaState;
use crate::http::{router, AppParts, AppState};
use crate::metrics::Metrics;
use crate::policy::{
    watch, ActivationHook, PolicyStore, ReloadOutcome, ReloadTrigger, WatchHandle,
};
use crate::tls::{TlsError, TlsStore, TlsWatchHandle};
use listener::{ConnSettings, Transport};

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
    /// The TLS material cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The certificate authority's files cannot be used.
    #[error("certificate authority: {0}")]
    Ca(#[from] crate::ca::CaError),
    /// No listener to serve on.
    #[error("no listener: the TLS listener or the development listener is needed")]
    NoListener,
    /// The metrics registry could not be set up.
    #[error("metrics: {0}")]
    Metrics(String),
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// The bound sockets to serve on.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The API listener: TLS with client certificates.
    pub tls: Option<TcpListener>,
    /// The plain-HTTP development listener (every caller is `insecure_http.identity`).
    pub insecure_http: Option<TcpListener>,
    /// The EST listener: TLS, client certificate optional, EST routes only.
    pub est: Option<TcpListener>,
}

/// A running service.
#[derive(Debug)]
pub struct RunningServer {
    tls_addr: Option<SocketAddr>,
    est_addr: Option<SocketAddr>,
    insecure_http_addr: Option<SocketAddr>,
    state: AppState,
    shutdown: signal_watch::Sender<bool>,
    joins: Vec<JoinHandle<std::io::Result<()>>>,
    _watches: Vec<WatchHandle>,
    _tls_watch: Option<TlsWatchHandle>,
    ca_task: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The address of the TLS listener, if one runs.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The address of the EST listener, if one runs.
    pub fn est_addr(&self) -> Option<SocketAddr> {
        self.est_addr
    }

    /// The address of the plain-HTTP development listener, if one runs.
    pub fn insecure_http_addr(&self) -> Option<SocketAddr> {
        self.insecure_http_addr
    }

    /// The shared state (stores, limits).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting, lets open connections finish for up to `grace`, then returns.
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), ServeError> {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.ca_task.take() {
            task.abort();
        }
        let joins = std::mem::take(&mut self.joins);
        let aborts: Vec<_> = joins.iter().map(JoinHandle::abort_handle).collect();
        let all = async {
            let mut first_error = None;
            for join in joins {
                match join.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => first_error = first_error.or(Some(e)),
                    Err(join) => first_error = first_error.or(Some(std::io::Error::other(join))),
                }
            }
            first_error
        };
        // Connections get `grace` to finish once shutdown starts; a little more here covers
        // the hand-over.
        let result = match tokio::time::timeout(grace + Duration::from_millis(200), all).await {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(ServeError::Io(e)),
            Err(_) => {
                tracing::warn!(?grace, "in-flight requests did not finish in time; closing");
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
                Ok(())
            }
        };
        self.close_audit().await;
        result
    }

    /// The decision log closes last: every answered decision is already durable (`sync`) or
    /// queued (`async`); closing flushes the queue and signs a final checkpoint.
    async fn close_audit(&self) {
        if let Some(log) = &self.state.audit {
            log.close().await;
        }
    }
}

fn conn_settings(config: &Config) -> ConnSettings {
    ConnSettings {
        handshake_timeout: config.tls.handshake_timeout(),
        header_read_timeout: Duration::from_millis(config.server.header_read_timeout_ms),
        idle_timeout: Duration::from_secs(config.server.idle_timeout_secs),
        request_timeout: Duration::from_secs(config.server.request_timeout_secs),
        max_connections: config.server.max_connections,
        max_headers: config.limits.max_headers,
        max_header_bytes: config.limits.max_header_bytes,
        grace: config.shutdown_grace(),
    }
}

/// Loads a workspace into a new store (an invalid one leaves the store empty, and logs why).
async fn load_store(
    dir: &std::path::Path,
    hooks: Vec<Arc<dyn ActivationHook>>,
    what: &str,
    consequence: &str,
) -> Arc<PolicyStore> {
    let store = Arc::new(PolicyStore::new(dir.to_owned(), hooks));
    if let ReloadOutcome::Failed { diagnostics, .. } = store.reload(ReloadTrigger::Startup).await {
        tracing::error!(
            errors = diagnostics.len(),
            dir = %dir.display(),
            "no valid {what}: {consequence} until it is fixed"
        );
    }
    store
}

/// Loads the workspaces (and, with a TLS listener, the TLS material) and serves the API on
/// `listeners` until [`RunningServer::shutdown`].
///
/// An invalid domain workspace does not stop the start: the service runs unready (decisions
/// answer 503, `/health/ready` fails) and the watcher activates the workspace once it is fixed.
/// Invalid access policies do not stop it either: every request but the health checks is
/// refused (403) until they are fixed. Unusable TLS material does stop it.
pub async fn start(config: &Config, listeners: Listeners) -> Result<RunningServer, ServeError> {
    if listeners.tls.is_none() && listeners.insecure_http.is_none() && listeners.est.is_none() {
        return Err(ServeError::NoListener);
    }
    // First, so that unusable TLS material stops the start before anything is opened.
    let tls = match (&listeners.tls, &listeners.est) {
        (None, None) => None,
        _ => Some(Arc::new(TlsStore::load(&config.tls)?)),
    };
    let ca = crate::ca::Authority::open(&config.ca, &config.data.dir)?
        .map(|a| CaState::new(a, config.est.clone()));
    if ca.is_none() {
        tracing::info!(
            cert = %config.ca.cert.display(),
            "no certificate authority configured: EST and /v1/ca answer 503"
        );
    }
    // INVARIANT: the AuthZEN index hook is the last activation hook (see `IndexHook`).
    let authzen_index = Arc::new(IndexHook::default());
    // The versions archive comes first: nothing is indexed for a version it refused.
    let (audit, mut hooks) = open_audit(config)?;
    hooks.push(authzen_index.clone());
    let store = load_store(&config.workspace.dir, hooks, "policy set", "serving unready").await;
    let access = load_store(
        &config.access.dir,
        Vec::new(),
        "access policy set",
        "refusing every request except health checks",
    )
    .await;
    let mut watches = Vec::new();
    if config.workspace.watch {
        let debounce = Duration::from_millis(config.workspace.debounce_ms);
        for s in [&store, &access] {
            watches.push(watch(Arc::clone(s), debounce).map_err(|source| ServeError::Watch {
                dir: s.dir().display().to_string(),
                source,
            })?);
        }
    }
    let tls_watch = match &tls {
        Some(t) if config.tls.watch => {
            Some(crate::tls::watch(Arc::clone(t)).map_err(|source| ServeError::Watch {
                dir: config.tls.cert.display().to_string(),
                source,
            })?)
        }
        _ => None,
    };
    // `[authzen] base_url` names the URL PEPs really use; else the main listener's own.
    let base_url = match (&listeners.tls, &listeners.insecure_http) {
        (Some(l), _) => config.authzen.effective_base_url("https", l.local_addr()?),
        (None, Some(l)) => config.authzen.effective_base_url("http", l.local_addr()?),
        (None, None) => return Err(ServeError::NoListener),
    };
    let authzen = Arc::new(AuthzenState::new(&config.authzen, base_url, authzen_index));
    let fsync = audit.as_ref().map(|a| &a.counters().fsync_seconds);
    let metrics = Arc::new(Metrics::new(fsync).map_err(|e| ServeError::Metrics(e.to_string()))?);
    let state = AppState::new(AppParts {
        store,
        limits: config.limits,
        started_at: time::OffsetDateTime::now_utc(),
        authzen,
        audit,
        access,
        tls: tls.clone(),
        ca: ca.clone(),
        metrics: Arc::clone(&metrics),
    });
    let app = router(state.clone());
    let settings = conn_settings(config);
    let (shutdown, stop) = signal_watch::channel(false);
    let mut joins = Vec::new();
    let mut tls_addr = None;
    if let (Some(listener), Some(tls)) = (listeners.tls, tls.clone()) {
        tls_addr = Some(listener.local_addr()?);
        let serve = listener::serve(
            listener,
            Transport::Tls(tls),
            app.clone(),
            settings,
            Arc::clone(&metrics),
            stop.clone(),
        );
        joins.push(tokio::spawn(serve));
    }
    let mut est_addr = None;
    if let (Some(listener), Some(tls)) = (listeners.est, &tls) {
        est_addr = Some(listener.local_addr()?);
        let transport = Transport::Est(Arc::clone(tls));
        joins.push(tokio::spawn(listener::serve(
            listener,
            transport,
            app.clone(),
            settings,
            Arc::clone(&metrics),
            stop.clone(),
        )));
    }
    let ca_task = ca.map(|ca| tokio::spawn(maintain_crl(ca, tls.clone())));
    let mut insecure_http_addr = None;
    if let Some(listener) = listeners.insecure_http {
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            return Err(ServeError::Config(crate::config::ConfigError::Invalid {
                key: "insecure_http.listen",
                message: format!("`{addr}` is not a loopback address"),
            }));
        }
        let caller = config.insecure_http.caller().map_err(|e| {
            ServeError::Config(crate::config::ConfigError::Invalid {
                key: "insecure_http.identity",
                message: e.to_string(),
            })
        })?;
        tracing::warn!(
            %addr,
            identity = %caller,
            "INSECURE plain-HTTP development listener: no TLS, no client authentication, every \
             caller is treated as `{caller}`; never use this outside development"
        );
        insecure_http_addr = Some(addr);
        let transport = Transport::InsecureHttp(caller);
        joins
            .push(tokio::spawn(listener::serve(listener, transport, app, settings, metrics, stop)));
    }
    Ok(RunningServer {
        tls_addr,
        est_addr,
        insecure_http_addr,
        ca_task,
        state,
        shutdown,
        joins,
        _watches: watches,
        _tls_watch: tls_watch,
    })
}

/// Re-signs the CRL before it expires (when less than a third of its validity is left), and
/// makes the listeners use the new one at once.
async fn maintain_crl(ca: Arc<CaState>, tls: Option<Arc<TlsStore>>) {
    let validity = ca.authority.config().crl_validity();
    let period = Duration::from_secs(
        u64::try_from((validity / 6i32).whole_seconds()).unwrap_or(60).clamp(10, 300),
    );
    loop {
        let due = {
            let ca = Arc::clone(&ca);
            tokio::task::spawn_blocking(move || {
                if !ca.authority.crl_due(time::OffsetDateTime::now_utc()) {
                    return Ok(None);
                }
                ca.authority.publish_crl().map(Some)
            })
            .await
        };
        match due {
            Ok(Ok(Some(crl))) => {
                tracing::info!(number = crl.number, next_update = %crl.next_update, "CRL re-signed");
                if let Some(tls) = &tls {
                    tls.reload(ReloadTrigger::Watch).await;
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot re-sign the CRL"),
            Err(e) => tracing::error!(error = %e, "CRL task failed"),
        }
        tokio::time::sleep(period).await;
    }
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

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })
}

/// Binds the configured addresses and serves until SIGINT or SIGTERM; SIGHUP reloads the
/// workspaces and the TLS material.
pub async fn run(config: Config) -> Result<(), ServeError> {
    config.validate()?;
    crate::shutdown::survive_file_size_limit();
    let tls = bind(config.server.listen).await?;
    let insecure_http = match config.insecure_http.listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let est = match config.est.listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let server = start(&config, Listeners { tls: Some(tls), insecure_http, est }).await?;
    if let Some(addr) = server.est_addr() {
        tracing::info!(%addr, "EST listener on https://{addr} (client certificates optional, EST only)");
    }
    if let Some(addr) = server.tls_addr() {
        tracing::info!(
            %addr,
            workspace = %config.workspace.dir.display(),
            access = %config.access.dir.display(),
            "medpdp listening on https://{addr} (client certificates required)"
        );
    }
    let reloader = spawn_sighup_reloader(server.state().clone());
    crate::shutdown::signal().await;
    tracing::info!("shutting down");
    if let Some(task) = reloader {
        task.abort();
    }
    server.shutdown(config.shutdown_grace()).await
}

#[cfg(unix)]
fn spawn_sighup_reloader(state: AppState) -> Option<JoinHandle<()>> {
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
            state.store.reload(ReloadTrigger::Signal).await;
            state.access.reload(ReloadTrigger::Signal).await;
            if let Some(tls) = &state.tls {
                tls.reload(ReloadTrigger::Signal).await;
            }
        }
    }))
}

#[cfg(not(unix))]
fn spawn_sighup_reloader(_state: AppState) -> Option<JoinHandle<()>> {
    None
}
