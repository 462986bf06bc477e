//! What the access check costs per request, in process (no sockets): the full API path for
//! `POST /v1/decide` (router, access check, JSON, domain decision) against the access check on
//! its own, on one thread.
//!
//! ```sh
//! cargo run --release --example access_overhead -- [WORKSPACE] [ACCESS_DIR] [ITERATIONS]
//! ```
//!
//! Prints both per-request times and the decisions/s of one core with the check and without it
//! (full minus the check). Defaults: `policies`, `policies/access`, 20000.
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::panic,
    reason = "a command-line tool: fail loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use medpdp::config::AuthzenConfig;
use medpdp::http::authzen::{AuthzenState, IndexHook};
use medpdp::http::{access, router, AppParts, AppState, Limits};
use medpdp::identity::Caller;
use medpdp::policy::{PolicyStore, ReloadOutcome, ReloadTrigger};
use tower::ServiceExt;

const BODY: &str = r#"{
  "principal": {"type": "Med5G::Terminal", "id": "t-ecg1"},
  "action": "Med5G::Action::\"attach\"",
  "resource": {"type": "Med5G::NetworkSlice", "id": "plmn-miot-health"},
  "context": {
    "env": {"now": "2026-11-24T10:00:00Z", "risk_score": 10, "inside_geofence": true, "audit_available": true},
    "attested": true
  }
}"#;

async fn store(dir: &str) -> Arc<PolicyStore> {
    let s = Arc::new(PolicyStore::new(dir, Vec::new()));
    if let ReloadOutcome::Failed { diagnostics, .. } = s.reload(ReloadTrigger::Startup).await {
        panic!("{dir} is invalid: {diagnostics:?}");
    }
    s
}

fn per_call(total: Duration, n: u32) -> f64 {
    total.as_secs_f64() * 1e6 / f64::from(n)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workspace = args.first().map_or("policies", String::as_str);
    let access_dir = args.get(1).map_or("policies/access", String::as_str);
    let n: u32 = args.get(2).map_or(20_000, |s| s.parse().expect("ITERATIONS"));
    let authzen = AuthzenState::new(
        &AuthzenConfig::default(),
        "https://localhost:8443".into(),
        Arc::new(IndexHook::default()),
    );
    // No decision log: it costs the same with or without the access check.
    let state = AppState::new(AppParts {
        store: store(workspace).await,
        limits: Limits::default(),
        started_at: time::OffsetDateTime::now_utc(),
        authzen: Arc::new(authzen),
        audit: None,
        access: store(access_dir).await,
        tls: None,
        ca: None,
        metrics: Arc::new(medpdp::metrics::Metrics::new(None).expect("metrics")),
    });
    let app = router(state.clone());
    let caller = Caller::from_urn("urn:medpdp:gateway:bench").expect("caller");

    let request = || {
        let mut req = Request::post("/v1/decide")
            .header("content-type", "application/json")
            .body(Body::from(BODY))
            .expect("request");
        req.extensions_mut().insert(caller.clone());
        req
    };
    let warm = app.clone().oneshot(request()).await.expect("response");
    assert_eq!(warm.status(), 200, "the gateway must be allowed to decide");

    let mut full = Duration::ZERO;
    for _ in 0..n {
        let req = request();
        let start = Instant::now();
        let resp = app.clone().oneshot(req).await.expect("response");
        full += start.elapsed();
        assert_eq!(resp.status(), 200);
    }
    let start = Instant::now();
    for _ in 0..n {
        access::check(&state.access, &caller, "/v1/decide").expect("allowed");
    }
    let check = start.elapsed();

    let (full_us, check_us) = (per_call(full, n), per_call(check, n));
    println!("iterations                      {n}");
    println!("full request (with access)      {full_us:.2} us");
    println!("access check alone              {check_us:.2} us");
    println!("decisions/s/core with access    {:.0}", 1e6 / full_us);
    println!("decisions/s/core without access {:.0}", 1e6 / (full_us - check_us));
    println!("access share of a request       {:.1}%", 100.0 * check_us / full_us);
}
