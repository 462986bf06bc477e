//! What the fuzz targets share: the real API router over the Med5G mini fixture and the
//! bundled access policies, driven in process on one runtime, without sockets or a log.
#![allow(clippy::expect_used, clippy::panic, reason = "fuzz harness: fail loudly")]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use medpdp::config::AuthzenConfig;
use medpdp::http::authzen::{AuthzenState, IndexHook};
use medpdp::http::{router, AppParts, AppState, Limits};
use medpdp::identity::Caller;
use medpdp::policy::{PolicyStore, ReloadOutcome, ReloadTrigger};
use tower::ServiceExt;

/// The runtime and router every iteration uses.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    caller: Caller,
}

fn repo(rel: &str) -> String {
    format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))
}

impl Harness {
    /// Built once per process.
    pub fn get() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let app = runtime.block_on(async {
                let index = Arc::new(IndexHook::default());
                let store = store(&repo("tests/fixtures/med5g-mini"), vec![index.clone()]).await;
                let access = store_plain(&repo("policies/access")).await;
                let authzen = AuthzenState::new(
                    &AuthzenConfig::default(),
                    "https://localhost:8443".into(),
                    index,
                );
                router(AppState::new(AppParts {
                    store,
                    limits: Limits::default(),
                    started_at: time::OffsetDateTime::now_utc(),
                    authzen: Arc::new(authzen),
                    audit: None,
                    access,
                    tls: None,
                    ca: None,
                    metrics: Arc::new(medpdp::metrics::Metrics::new(None).expect("metrics")),
                }))
            });
            let caller = Caller::from_urn("urn:medpdp:admin:fuzz").expect("caller");
            Harness { runtime, app, caller }
        })
    }

    /// POSTs `body` to `path` as JSON; returns the status and the body.
    pub fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_vec()))
            .expect("request");
        req.extensions_mut().insert(self.caller.clone());
        self.runtime.block_on(async {
            let resp = self.app.clone().oneshot(req).await.expect("infallible");
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
            (status, bytes.to_vec())
        })
    }
}

async fn store(dir: &str, hooks: Vec<Arc<dyn medpdp::policy::ActivationHook>>) -> Arc<PolicyStore> {
    let s = Arc::new(PolicyStore::new(dir, hooks));
    if let ReloadOutcome::Failed { diagnostics, .. } = s.reload(ReloadTrigger::Startup).await {
        panic!("{dir} is invalid: {diagnostics:?}");
    }
    s
}

async fn store_plain(dir: &str) -> Arc<PolicyStore> {
    store(dir, Vec::new()).await
}

/// The invariant every API answer keeps: no 5xx for any input (503 only with no policy,
/// which the harness always has), and every answer is JSON.
pub fn check_answer(path: &str, input: &[u8], status: u16, body: &[u8]) {
    assert!(
        status < 500,
        "{path}: {status} for input {:?}: {}",
        String::from_utf8_lossy(input),
        String::from_utf8_lossy(body)
    );
    assert!(
        serde_json::from_slice::<serde_json::Value>(body).is_ok(),
        "{path}: answer is not JSON: {}",
        String::from_utf8_lossy(body)
    );
}
