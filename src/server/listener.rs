//! The accept loop and the life of one connection.
//!
//! Per connection: take a permit (the connection cap: at the cap, new clients wait in the
//! kernel's accept queue), accept, run the TLS handshake under a timeout with the TLS
//! configuration current at that moment, read the caller identity from the verified client
//! certificate, then serve HTTP/1.1 or HTTP/2 with that identity attached to every request.
//! A header-read timeout, an idle timeout and a per-request timeout bound how long a slow or
//! silent client can hold a connection.
//!
//! On the development listener there is no TLS and every request carries the configured
//! development identity. On the EST listener a client certificate is optional (token
//! enrollment) and every request is marked [`EstListener`], so only EST routes answer there.
//! A certificate that chains only to a manufacturer CA gives a `BootstrapPeer`, never a
//! `Caller`. Either way the identity is set here, from the connection, and never from anything
//! the client sends over HTTP.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::http::access::ConnectionAccess;
use crate::http::ApiError;
use crate::identity::Caller;
use crate::metrics::{HandshakeFailure, Metrics};
use crate::tls::{
    bootstrap_from_certificate, caller_from_certificate, Anonymous, BootstrapPeer, EstListener,
    PeerCertificate, PeerClass, PeerIdentityError, TlsStore,
};

/// How connections on a listener are secured and who their callers are.
#[derive(Debug, Clone)]
pub(super) enum Transport {
    /// TLS with required client certificates; the caller comes from the certificate.
    Tls(Arc<TlsStore>),
    /// The EST listener: TLS, client certificate optional, EST routes only.
    Est(Arc<TlsStore>),
    /// Plain HTTP on loopback (development only); every caller is this identity.
    InsecureHttp(Caller),
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone)]
enum Peer {
    Caller(Caller),
    Bootstrap(BootstrapPeer),
    Anonymous,
    Refused(PeerIdentityError),
}

/// What every request of a connection carries.
#[derive(Debug, Clone)]
struct ConnIdentity {
    peer: Peer,
    cert: Option<PeerCertificate>,
    est: bool,
}

/// Bounds on connections.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnSettings {
    pub(super) handshake_timeout: Duration,
    pub(super) header_read_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) max_connections: usize,
    /// Header fields per HTTP/1.1 request (431 above).
    pub(super) max_headers: usize,
    /// Bytes of a request head (HTTP/1.1) or header list (HTTP/2).
    pub(super) max_header_bytes: usize,
    /// After shutdown starts, how long an open connection gets to finish.
    pub(super) grace: Duration,
}

/// Accepts and serves connections until `shutdown` turns true, then waits for the open
/// connections to finish (each closes gracefully, within the grace period).
pub(super) async fn serve(
    listener: TcpListener,
    transport: Transport,
    app: Router,
    settings: ConnSettings,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let builder = Arc::new(http_builder(&settings));
    loop {
        let permit = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let conn = Connection {
            peer,
            app: app.clone(),
            builder: Arc::clone(&builder),
            settings,
            shutdown: shutdown.clone(),
            open: OpenConnection::new(Arc::clone(&metrics), transport.label()),
            _permit: permit,
        };
        tokio::spawn(conn.run(tcp, transport.clone()));
    }
    drop(listener);
    // Every open connection holds a permit: having them all back means all are closed.
    let all = u32::try_from(settings.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// Resolves once shutdown has started (or the sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held across an await by the caller.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn http_builder(settings: &ConnSettings) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        // The read buffer bounds the request head: past it hyper answers 431.
        .max_buf_size(settings.max_header_bytes.max(8192))
        .keep_alive(true);
    if settings.max_headers != 100 {
        // hyper keeps up to 100 header slots on the stack; any other count costs an allocation
        // per request, so only a configured change asks for it.
        http1.max_headers(settings.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

struct Connection {
    peer: SocketAddr,
    app: Router,
    builder: Arc<Builder<TokioExecutor>>,
    settings: ConnSettings,
    shutdown: watch::Receiver<bool>,
    open: OpenConnection,
    _permit: OwnedSemaphorePermit,
}

impl Transport {
    /// The listener's name in metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::Tls(_) => "api",
            Self::Est(_) => "est",
            Self::InsecureHttp(_) => "insecure_http",
        }
    }
}

/// Counts a connection in `medpdp_connections_open` for as long as it lives.
struct OpenConnection {
    metrics: Arc<Metrics>,
    listener: &'static str,
}

impl OpenConnection {
    fn new(metrics: Arc<Metrics>, listener: &'static str) -> Self {
        metrics.connection(listener, 1);
        Self { metrics, listener }
    }

    fn handshake_failed(&self, reason: HandshakeFailure) {
        self.metrics.handshake_failure(self.listener, reason);
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connection(self.listener, -1);
    }
}

impl Connection {
    async fn run(self, tcp: TcpStream, transport: Transport) {
        let _ = tcp.set_nodelay(true);
        match transport {
            Transport::InsecureHttp(caller) => {
                let id = ConnIdentity { peer: Peer::Caller(caller), cert: None, est: false };
                self.serve_http(tcp, id).await;
            }
            Transport::Tls(store) => self.run_tls(tcp, &store, false).await,
            Transport::Est(store) => self.run_tls(tcp, &store, true).await,
        }
    }

    async fn run_tls(self, tcp: TcpStream, store: &TlsStore, est: bool) {
        {
            {
                // One load: the handshake and the classification use the same material.
                let active = store.active();
                let config = if est { active.est_config.clone() } else { active.config.clone() };
                let acceptor = TlsAcceptor::from(config);
                let handshake = acceptor.accept(tcp);
                let tls =
                    match tokio::time::timeout(self.settings.handshake_timeout, handshake).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            let reason = HandshakeFailure::classify(&e);
                            self.open.handshake_failed(reason);
                            tracing::info!(
                                peer = %self.peer,
                                error = %e,
                                reason = reason.as_str(),
                                "TLS handshake failed"
                            );
                            return;
                        }
                        Err(_) => {
                            self.open.handshake_failed(HandshakeFailure::Timeout);
                            tracing::info!(peer = %self.peer, "TLS handshake timed out");
                            return;
                        }
                    };
                let (peer, cert) = match tls.get_ref().1.peer_certificates() {
                    Some(chain @ [leaf, ..]) => {
                        let peer = match active.classifier.classify(chain) {
                            PeerClass::Operational => match caller_from_certificate(leaf) {
                                Ok(c) => Peer::Caller(c),
                                Err(e) => Peer::Refused(e),
                            },
                            PeerClass::Bootstrap => match bootstrap_from_certificate(leaf) {
                                Ok(b) => Peer::Bootstrap(b),
                                Err(e) => Peer::Refused(e),
                            },
                        };
                        (peer, PeerCertificate::from_der(leaf))
                    }
                    _ if est => (Peer::Anonymous, None),
                    _ => (Peer::Refused(PeerIdentityError::NoCertificate), None),
                };
                match &peer {
                    Peer::Caller(caller) => {
                        tracing::debug!(peer = %self.peer, %caller, "TLS connection");
                    }
                    Peer::Bootstrap(b) => tracing::info!(
                        peer = %self.peer,
                        serial_number = %b.serial_number,
                        subject = %b.subject,
                        "bootstrap (manufacturer) certificate: enrollment only"
                    ),
                    Peer::Anonymous => {
                        tracing::debug!(peer = %self.peer, "EST client without a certificate")
                    }
                    Peer::Refused(e) => tracing::info!(
                        peer = %self.peer,
                        error = %e,
                        "client certificate names no caller; its requests are refused"
                    ),
                }
                self.serve_http(tls, ConnIdentity { peer, cert, est }).await;
            }
        }
    }

    /// Serves HTTP on `io`, attaching the identity (or why there is none) to every request.
    async fn serve_http<I>(mut self, io: I, identity: ConnIdentity)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Activity::new();
        let io = TokioIo::new(IdleIo { inner: io, activity: Arc::clone(&activity) });
        let app = self.app.clone();
        let request_timeout = self.settings.request_timeout;
        // One cache of access allows per connection: its caller never changes.
        let access_cache = ConnectionAccess::default();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let ext = req.extensions_mut();
            match &identity.peer {
                Peer::Caller(caller) => {
                    ext.insert(caller.clone());
                }
                Peer::Bootstrap(b) => {
                    ext.insert(b.clone());
                }
                Peer::Anonymous => {
                    ext.insert(Anonymous);
                }
                Peer::Refused(e) => {
                    ext.insert(e.clone());
                }
            }
            if let Some(cert) = &identity.cert {
                ext.insert(cert.clone());
            }
            if identity.est {
                ext.insert(EstListener);
            }
            ext.insert(access_cache.clone());
            let app = app.clone();
            async move {
                match tokio::time::timeout(request_timeout, app.oneshot(req)).await {
                    Ok(response) => response,
                    Err(_) => Ok(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        "the request took longer than server.request_timeout_secs",
                    )
                    .into_response()),
                }
            }
        });
        let conn = self.builder.serve_connection(io, service);
        tokio::pin!(conn);
        let idle = self.settings.idle_timeout;
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = stopped(&mut self.shutdown), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep_until(activity.last() + idle), if !closing => {
                    if activity.last().elapsed() >= idle {
                        tracing::debug!(peer = %self.peer, "closing idle connection");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
                () = tokio::time::sleep(self.settings.grace), if closing => {
                    tracing::debug!(peer = %self.peer, "connection did not close in time; dropping it");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved any bytes.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), last_ms: AtomicU64::new(0) })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// An I/O stream that records activity, for the idle timeout.
struct IdleIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
