//! Prometheus metrics: `GET /metrics` in the text exposition format.
//!
//! Two kinds of figures, kept apart so the request path pays only for what it must:
//! - **counted as they happen** ([`Metrics`], lock-free atomics of the `prometheus` crate):
//!   decisions by action and outcome, evaluation and HTTP latency, request errors, TLS
//!   handshake failures by reason, open connections, and the decision log's fsync latency
//!   (observed by its writer thread);
//! - **read at scrape time** ([`render`]) from the counters the subsystems keep anyway for
//!   `/v1/status`: policy versions and reloads, the decision log's queue and record counts,
//!   the certificate authority's issuance and revocation counts.
//!
//! Label values come only from bounded sets (route templates, schema-declared actions, fixed
//! reason names), never from raw request input, so a client cannot blow up the series count.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::http::AppState;
use crate::policy::{Snapshot, StoreStatus};

/// Buckets for decision evaluation time, in seconds (10 µs to 100 ms).
const EVAL_BUCKETS: &[f64] =
    &[1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1];
/// Buckets for HTTP request time, in seconds (50 µs to 10 s).
const HTTP_BUCKETS: &[f64] =
    &[5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 2.5, 10.0];
/// Buckets for the decision log's `fdatasync`, in seconds (100 µs to 2.5 s).
pub const FSYNC_BUCKETS: &[f64] =
    &[1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1.0, 2.5];

/// Why a TLS handshake failed, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client presented no certificate where one is required.
    NoCertificate,
    /// The client certificate does not chain to a trusted CA.
    UnknownCa,
    /// The client certificate has expired.
    Expired,
    /// The client certificate is not valid yet.
    NotYetValid,
    /// The client certificate is revoked by a loaded CRL.
    Revoked,
    /// The client certificate lacks the clientAuth extended key usage.
    BadEku,
    /// Any other problem with the client certificate (bad signature, encoding, …).
    BadCertificate,
    /// The client refused the server (it sent an alert, e.g. it does not trust our certificate).
    ClientAlert,
    /// Not TLS, or TLS the server does not speak (versions, suites, malformed messages).
    Protocol,
    /// The handshake did not finish in `tls.handshake_timeout_ms`.
    Timeout,
    /// The connection broke during the handshake.
    Io,
}

impl HandshakeFailure {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::UnknownCa => "unknown_ca",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::BadEku => "bad_eku",
            Self::BadCertificate => "bad_certificate",
            Self::ClientAlert => "client_alert",
            Self::Protocol => "protocol",
            Self::Timeout => "timeout",
            Self::Io => "io",
        }
    }

    /// Classifies the error a TLS accept returned.
    pub fn classify(e: &std::io::Error) -> Self {
        use rustls::{CertificateError as C, Error as E};
        let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) else {
            return if e.kind() == std::io::ErrorKind::InvalidData {
                Self::Protocol
            } else {
                Self::Io
            };
        };
        match tls {
            E::NoCertificatesPresented => Self::NoCertificate,
            E::InvalidCertificate(c) => match c {
                C::UnknownIssuer => Self::UnknownCa,
                C::Expired | C::ExpiredContext { .. } => Self::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => Self::NotYetValid,
                C::Revoked => Self::Revoked,
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => Self::BadEku,
                _ => Self::BadCertificate,
            },
            E::AlertReceived(_) => Self::ClientAlert,
            _ => Self::Protocol,
        }
    }
}

/// The figures counted on the request path. One per server, shared (`Arc`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    evaluation_errors: IntCounterVec,
    request_errors: IntCounterVec,
    evaluation_seconds: Histogram,
    http_seconds: HistogramVec,
    handshake_failures: IntCounterVec,
    connections: IntGaugeVec,
}

impl Metrics {
    /// Creates the instruments, and registers the decision log's fsync histogram when there is
    /// a log.
    pub fn new(fsync_seconds: Option<&Histogram>) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new("medpdp_decisions_total", "Decisions answered, by action and outcome."),
            &["action", "decision"],
        )?;
        let evaluation_errors = IntCounterVec::new(
            Opts::new(
                "medpdp_evaluation_errors_total",
                "Decisions in which a policy raised an evaluation error (each denied: fail closed).",
            ),
            &["action"],
        )?;
        let request_errors = IntCounterVec::new(
            Opts::new(
                "medpdp_request_errors_total",
                "Decision requests refused before evaluation (400), by error code.",
            ),
            &["code"],
        )?;
        let evaluation_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "medpdp_decision_evaluation_seconds",
                "Time to evaluate one decision (building the request and running Cedar).",
            )
            .buckets(EVAL_BUCKETS.to_vec()),
        )?;
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "medpdp_http_request_duration_seconds",
                "Time from request headers to response, by route template and status class.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["route", "status"],
        )?;
        let handshake_failures = IntCounterVec::new(
            Opts::new(
                "medpdp_tls_handshake_failures_total",
                "TLS handshakes that failed, by listener and reason.",
            ),
            &["listener", "reason"],
        )?;
        let connections = IntGaugeVec::new(
            Opts::new("medpdp_connections_open", "Connections being served, by listener."),
            &["listener"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(evaluation_errors.clone()))?;
        registry.register(Box::new(request_errors.clone()))?;
        registry.register(Box::new(evaluation_seconds.clone()))?;
        registry.register(Box::new(http_seconds.clone()))?;
        registry.register(Box::new(handshake_failures.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        if let Some(h) = fsync_seconds {
            registry.register(Box::new(h.clone()))?;
        }
        Ok(Self {
            registry,
            decisions,
            evaluation_errors,
            request_errors,
            evaluation_seconds,
            http_seconds,
            handshake_failures,
            connections,
        })
    }

    /// Counts one evaluated decision.
    pub fn decision(&self, snapshot: &Snapshot, action: &cedar_policy::EntityUid, allow: bool) {
        let label = action_label(snapshot, action);
        let outcome = if allow { "allow" } else { "deny" };
        if let Ok(c) = self.decisions.get_metric_with_label_values(&[label.as_str(), outcome]) {
            c.inc();
        }
    }

    /// Counts a decision whose evaluation raised errors.
    pub fn evaluation_error(&self, snapshot: &Snapshot, action: &cedar_policy::EntityUid) {
        let label = action_label(snapshot, action);
        if let Ok(c) = self.evaluation_errors.get_metric_with_label_values(&[label.as_str()]) {
            c.inc();
        }
    }

    /// Counts a request refused before evaluation.
    pub fn request_error(&self, code: &'static str) {
        if let Ok(c) = self.request_errors.get_metric_with_label_values(&[code]) {
            c.inc();
        }
    }

    /// Records how long an evaluation took.
    pub fn evaluation_time(&self, elapsed: Duration) {
        self.evaluation_seconds.observe(elapsed.as_secs_f64());
    }

    /// Records one HTTP request: its route template (or `unmatched`) and status.
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        if let Ok(h) = self.http_seconds.get_metric_with_label_values(&[route, class]) {
            h.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a failed handshake on `listener` (`api` or `est`).
    pub fn handshake_failure(&self, listener: &str, reason: HandshakeFailure) {
        if let Ok(c) =
            self.handshake_failures.get_metric_with_label_values(&[listener, reason.as_str()])
        {
            c.inc();
        }
    }

    /// Counts a connection opening (`+1`) or closing (`-1`) on `listener`.
    pub fn connection(&self, listener: &str, delta: i64) {
        if let Ok(g) = self.connections.get_metric_with_label_values(&[listener]) {
            g.add(delta);
        }
    }
}

/// The `action` label: the action's uid when a schema declares it (a bounded set); without a
/// schema any action can be asked for, so they share one label.
fn action_label(snapshot: &Snapshot, action: &cedar_policy::EntityUid) -> String {
    match snapshot.schema() {
        Some(_) => action.to_string(),
        None => "undeclared".to_owned(),
    }
}

/// The whole exposition: the registry plus the figures read from the subsystems now.
pub fn render(state: &AppState) -> String {
    let mut families = state.metrics.registry.gather();
    families.extend(scraped(state));
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::with_capacity(16 * 1024);
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!("cannot encode metrics: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A family of metrics read at scrape time: `(labels, value)` per series.
fn family(
    name: &str,
    help: &str,
    kind: MetricType,
    series: Vec<(Vec<(&str, String)>, f64)>,
) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    let metrics = series
        .into_iter()
        .map(|(labels, value)| {
            let pairs = labels
                .into_iter()
                .map(|(k, v)| {
                    let mut p = LabelPair::default();
                    p.set_name(k.to_owned());
                    p.set_value(v);
                    p
                })
                .collect();
            let mut m = Metric::from_label(pairs);
            match kind {
                MetricType::COUNTER => {
                    let mut c = Counter::default();
                    c.set_value(value);
                    m.set_counter(c);
                }
                _ => {
                    let mut g = Gauge::default();
                    g.set_value(value);
                    m.set_gauge(g);
                }
            }
            m
        })
        .collect();
    f.set_metric(metrics);
    f
}

fn counter(name: &str, help: &str, series: Vec<(Vec<(&str, String)>, f64)>) -> MetricFamily {
    family(name, help, MetricType::COUNTER, series)
}

fn gauge(name: &str, help: &str, series: Vec<(Vec<(&str, String)>, f64)>) -> MetricFamily {
    family(name, help, MetricType::GAUGE, series)
}

#[allow(clippy::cast_precision_loss, reason = "counters far below 2^52")]
fn scraped(state: &AppState) -> Vec<MetricFamily> {
    let stores = [("domain", state.store.status()), ("access", state.access.status())];
    let store_series = |f: &dyn Fn(&StoreStatus) -> f64| -> Vec<(Vec<(&str, String)>, f64)> {
        stores.iter().map(|(name, s)| (vec![("store", (*name).to_owned())], f(s))).collect()
    };
    let mut reloads = Vec::new();
    for (name, s) in &stores {
        reloads
            .push((vec![("store", (*name).to_owned()), ("result", "ok".into())], s.reloads as f64));
        reloads.push((
            vec![("store", (*name).to_owned()), ("result", "failed".into())],
            s.reload_failures as f64,
        ));
    }
    if let Some(tls) = &state.tls {
        let s = tls.status();
        reloads.push((vec![("store", "tls".into()), ("result", "ok".into())], s.reloads as f64));
        reloads.push((
            vec![("store", "tls".into()), ("result", "failed".into())],
            s.reload_failures as f64,
        ));
    }
    let versions = stores
        .iter()
        .filter_map(|(name, s)| {
            s.active
                .as_ref()
                .map(|a| (vec![("store", (*name).to_owned()), ("version", a.version.clone())], 1.0))
        })
        .collect();
    let mut out = vec![
        gauge(
            "medpdp_build_info",
            "The running medpdp version.",
            vec![(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0)],
        ),
        gauge(
            "medpdp_uptime_seconds",
            "Seconds since the service started.",
            vec![(vec![], (time::OffsetDateTime::now_utc() - state.started_at).as_seconds_f64())],
        ),
        gauge(
            "medpdp_policy_version_info",
            "The active version of each policy store (1 per active version).",
            versions,
        ),
        gauge(
            "medpdp_policy_active",
            "1 when the store has a valid active version (the service denies everything otherwise).",
            store_series(&|s| f64::from(u8::from(s.active.is_some()))),
        ),
        gauge(
            "medpdp_policy_count",
            "Policies in the active version.",
            store_series(&|s| s.active.as_ref().map_or(0.0, |a| a.policy_count as f64)),
        ),
        gauge(
            "medpdp_entity_count",
            "Entities in the active version.",
            store_series(&|s| s.active.as_ref().map_or(0.0, |a| a.entity_count as f64)),
        ),
        counter(
            "medpdp_reloads_total",
            "Reloads that activated a new version (ok) or were rejected (failed), by store.",
            reloads,
        ),
    ];
    if let Some(log) = &state.audit {
        let status = log.status();
        let c = status.counters;
        let healthy = status.state.failed.is_none() && status.state.degraded.is_none();
        out.push(gauge(
            "medpdp_audit_healthy",
            "1 while the decision log accepts records; 0 while writes fail (decisions answer 503).",
            vec![(vec![], f64::from(u8::from(healthy)))],
        ));
        out.push(gauge(
            "medpdp_audit_queue_depth",
            "Records waiting for the decision log writer.",
            vec![(vec![], status.queued as f64)],
        ));
        out.push(counter(
            "medpdp_audit_records_written_total",
            "Records durably written to the decision log (decisions, events, checkpoints).",
            vec![(vec![], c.records as f64)],
        ));
        out.push(counter(
            "medpdp_audit_records_not_written_total",
            "Records that were not written: refused before queueing and failed writes (both answered 503), and acknowledged async records lost.",
            vec![
                (vec![("reason", "rejected".into())], c.rejected as f64),
                (vec![("reason", "write_failure".into())], c.write_failures as f64),
                (vec![("reason", "lost".into())], c.lost as f64),
            ],
        ));
        out.push(counter(
            "medpdp_audit_commits_total",
            "Group commits (one fdatasync each).",
            vec![(vec![], c.commits as f64)],
        ));
        out.push(counter(
            "medpdp_audit_checkpoints_total",
            "Signed checkpoints written.",
            vec![(vec![], c.checkpoints as f64)],
        ));
        out.push(counter(
            "medpdp_audit_bytes_written_total",
            "Bytes written to the decision log.",
            vec![(vec![], c.bytes as f64)],
        ));
    }
    if let Some(ca) = &state.ca {
        let c = ca.authority.counters();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        out.push(counter(
            "medpdp_ca_certificates_total",
            "Certificate authority operations: issued, renewed, revoked, denied by policy, rejected before a decision.",
            vec![
                (vec![("operation", "issued".into())], get(&c.issued)),
                (vec![("operation", "renewed".into())], get(&c.renewed)),
                (vec![("operation", "revoked".into())], get(&c.revoked)),
                (vec![("operation", "denied".into())], get(&c.denied)),
                (vec![("operation", "rejected".into())], get(&c.rejected)),
            ],
        ));
        out.push(counter(
            "medpdp_ca_crls_signed_total",
            "CRLs signed.",
            vec![(vec![], get(&c.crls_signed))],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_errors_are_classified() {
        use rustls::{CertificateError as C, Error as E};
        let io = |e: E| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let cases = [
            (io(E::NoCertificatesPresented), HandshakeFailure::NoCertificate),
            (io(E::InvalidCertificate(C::UnknownIssuer)), HandshakeFailure::UnknownCa),
            (io(E::InvalidCertificate(C::Expired)), HandshakeFailure::Expired),
            (io(E::InvalidCertificate(C::NotValidYet)), HandshakeFailure::NotYetValid),
            (io(E::InvalidCertificate(C::Revoked)), HandshakeFailure::Revoked),
            (io(E::InvalidCertificate(C::InvalidPurpose)), HandshakeFailure::BadEku),
            (io(E::InvalidCertificate(C::BadSignature)), HandshakeFailure::BadCertificate),
            (
                io(E::AlertReceived(rustls::AlertDescription::UnknownCA)),
                HandshakeFailure::ClientAlert,
            ),
            (io(E::HandshakeNotComplete), HandshakeFailure::Protocol),
            (std::io::Error::from(std::io::ErrorKind::ConnectionReset), HandshakeFailure::Io),
        ];
        for (e, want) in cases {
            assert_eq!(HandshakeFailure::classify(&e), want, "{e}");
        }
    }

    #[test]
    fn instruments_render_in_the_text_format() {
        let m = Metrics::new(None).unwrap();
        m.request_error("invalid_context");
        m.http_request("/v1/decide", 200, Duration::from_micros(120));
        m.handshake_failure("api", HandshakeFailure::UnknownCa);
        let mut out = Vec::new();
        TextEncoder::new().encode(&m.registry.gather(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("medpdp_request_errors_total{code=\"invalid_context\"} 1"), "{text}");
        assert!(text.contains(
            "medpdp_http_request_duration_seconds_bucket{route=\"/v1/decide\",status=\"2xx\",le=\"0.00025\"} 1"
        ), "{text}");
        assert!(text.contains(
            "medpdp_tls_handshake_failures_total{listener=\"api\",reason=\"unknown_ca\"} 1"
        ));
    }
}
