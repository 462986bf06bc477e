//! A small closed-loop HTTP/1.1 load generator that can present a client certificate (wrk and
//! oha cannot): N keep-alive connections, each sending the same request back to back for a
//! fixed time, then requests/s, latency percentiles and the status codes seen.
//!
//! ```sh
//! cargo run --release --example loadgen -- --url https://localhost:8443/v1/decide \
//!   --body request.json --cacert certs/ca.pem --cert certs/demo-gateway.pem \
//!   --key certs/demo-gateway.key --connections 32 --duration 10
//! ```
//!
//! TLS uses rustls with the ring provider (TLS 1.3), as the service does. `--json` prints one
//! JSON object instead of text, for scripts (`scripts/bench-mtls.sh`); `--bodies FILE` rotates
//! over one request body per line and `--result-line` prints the `RESULT …` line of
//! `scripts/bench-http.sh`.
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::panic,
    reason = "a command-line tool: fail loudly"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Closed-loop HTTP/1.1 load with optional client certificates.
#[derive(Debug, Parser)]
struct Args {
    /// `http://` or `https://` URL.
    #[arg(long)]
    url: String,
    /// Request body file; POST when given, GET otherwise.
    #[arg(long)]
    body: Option<PathBuf>,
    /// A file of request bodies, one per line, sent in rotation (POST); instead of `--body`.
    #[arg(long, conflicts_with = "body")]
    bodies: Option<PathBuf>,
    /// CA bundle to verify the server with (https).
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of unmeasured warm-up load first.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Print one `RESULT key=value …` line (the format of `scripts/bench-bodies.lua`).
    #[arg(long, conflicts_with = "json")]
    result_line: bool,
}

struct Target {
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    addr: String,
    host: String,
    path: String,
    /// Bodies to POST in rotation; empty for GET.
    bodies: Vec<Bytes>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

fn tls_connector(args: &Args) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let ca = args.cacert.as_ref().expect("--cacert is needed for https");
    for cert in CertificateDer::pem_file_iter(ca).expect("read --cacert") {
        roots.add(cert.expect("CA certificate")).expect("usable CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("read --cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("client certificate");
            let key = PrivateKeyDer::from_pem_file(key).expect("read --key");
            builder.with_client_auth_cert(chain, key).expect("client certificate and key")
        }
        _ => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn target(args: &Args) -> Target {
    let uri: hyper::Uri = args.url.parse().expect("--url");
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().expect("host in --url").to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let mut bodies: Vec<Bytes> =
        args.body.iter().map(|p| Bytes::from(std::fs::read(p).expect("read --body"))).collect();
    if let Some(p) = &args.bodies {
        let text = std::fs::read_to_string(p).expect("read --bodies");
        bodies.extend(text.lines().filter(|l| !l.is_empty()).map(|l| Bytes::from(l.to_owned())));
        assert!(!bodies.is_empty(), "no request bodies in --bodies");
    }
    let tls = https.then(|| {
        let name = ServerName::try_from(host.clone()).expect("server name");
        (tls_connector(args), name)
    });
    let addr =
        if host == "localhost" { format!("127.0.0.1:{port}") } else { format!("{host}:{port}") };
    Target { tls, addr, host, path: uri.path().to_owned(), bodies }
}

/// One connection: send requests back to back until `until`, recording after `measure_from`.
async fn worker(target: Arc<Target>, index: usize, measure_from: Instant, until: Instant) -> Tally {
    let mut tally = Tally::default();
    // Connections start at different places in the rotation.
    let mut next = index.wrapping_mul(7919);
    let tcp = tokio::net::TcpStream::connect(&target.addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut sender = match &target.tls {
        Some((connector, name)) => {
            let tls = connector.connect(name.clone(), tcp).await.expect("TLS handshake");
            let (s, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("http");
            tokio::spawn(conn);
            s
        }
        None => {
            let (s, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("http");
            tokio::spawn(conn);
            s
        }
    };
    while Instant::now() < until {
        let builder = hyper::Request::builder().uri(&target.path).header("host", &target.host);
        let req = if target.bodies.is_empty() {
            builder.method("GET").body(Full::new(Bytes::new()))
        } else {
            next = next.wrapping_add(1);
            let body = target.bodies[next % target.bodies.len()].clone();
            builder.method("POST").header("content-type", "application/json").body(Full::new(body))
        }
        .expect("request");
        let start = Instant::now();
        if sender.ready().await.is_err() {
            tally.errors += 1;
            break;
        }
        let result = match sender.send_request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                resp.into_body().collect().await.map(|_| status)
            }
            Err(e) => Err(e),
        };
        if start < measure_from {
            continue;
        }
        match result {
            Ok(status) => {
                *tally.statuses.entry(status).or_default() += 1;
                let us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
                tally.latencies_us.push(us);
            }
            Err(_) => tally.errors += 1,
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let target = Arc::new(target(&args));
    let measure_from = Instant::now() + Duration::from_secs(args.warmup);
    let until = measure_from + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(worker(Arc::clone(&target), i, measure_from, until)))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.expect("worker");
        all.latencies_us.extend(t.latencies_us);
        all.errors += t.errors;
        for (s, n) in t.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
    }
    all.latencies_us.sort_unstable();
    let n = all.latencies_us.len();
    let rps = n as f64 / args.duration as f64;
    let (p50, p99) = (percentile(&all.latencies_us, 0.5), percentile(&all.latencies_us, 0.99));
    if args.result_line {
        let non2xx: u64 =
            all.statuses.iter().filter(|(s, _)| !(200..300).contains(*s)).map(|(_, n)| n).sum();
        let us = |p: f64| (percentile(&all.latencies_us, p) * 1000.0).round();
        println!(
            "RESULT requests={n} rps={rps:.1} p50_us={} p90_us={} p99_us={} max_us={} \
             non2xx={non2xx} socket_errors={}",
            us(0.5),
            us(0.9),
            us(0.99),
            all.latencies_us.last().copied().unwrap_or(0),
            all.errors
        );
    } else if args.json {
        let statuses: BTreeMap<String, u64> =
            all.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let out = serde_json::json!({
            "url": args.url, "connections": args.connections, "duration_s": args.duration,
            "requests": n, "requests_per_s": rps.round(), "p50_ms": p50, "p99_ms": p99,
            "errors": all.errors, "statuses": statuses,
        });
        println!("{out}");
    } else {
        println!(
            "{}: {n} requests in {} s over {} connections",
            args.url, args.duration, args.connections
        );
        println!(
            "  {rps:.0} requests/s, latency p50 {p50:.3} ms, p99 {p99:.3} ms, {} errors",
            all.errors
        );
        println!("  statuses: {:?}", all.statuses);
    }
}
