//! Operational endpoints: liveness, readiness, status and the admin reload.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::AppState;
use crate::audit::{AuditEvent, AuditStatus, EventKind};
use crate::identity::Caller;
use crate::policy::{ReloadOutcome, ReloadTrigger, StoreStatus};
use crate::tls::{TlsReloadOutcome, TlsStatus};

/// 200 while the process runs.
#[utoipa::path(get, path = "/health/live", tag = "ops",
    responses((status = 200, description = "Alive", body = super::openapi::HealthDoc)))]
pub(super) async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready only while a valid policy set is active and the decision log can record decisions
/// (without both, every decision would be refused).
#[utoipa::path(get, path = "/health/ready", tag = "ops", responses(
    (status = 200, description = "A valid policy set is active and the decision log writes", body = super::openapi::HealthDoc),
    (status = 503, description = "No valid policy set is active, or the decision log cannot write (`reason` says which)", body = super::openapi::HealthDoc),
))]
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = |reason: String| {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready", "reason": reason})))
            .into_response()
    };
    let Some(snapshot) = state.store.current() else {
        return not_ready("no valid policy set is active".into());
    };
    if let Some(log) = &state.audit {
        let status = log.status();
        if let Some(failed) = &status.state.failed {
            return not_ready(format!("the decision log refuses records: {failed}"));
        }
        if let Some(d) = &status.state.degraded {
            return not_ready(format!(
                "the decision log cannot write since {}: {}",
                d.since, d.error
            ));
        }
    }
    Json(json!({"status": "ready", "policy_version": snapshot.version()})).into_response()
}

/// Prometheus metrics in the text exposition format (for a scraper identity).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format 0.0.4: decisions by action and outcome, latency histograms, errors, reloads, policy versions, decision log and CA counters, TLS handshake failures by reason", content_type = "text/plain", body = String),
))]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let text = crate::metrics::render(&state);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
        .into_response()
}

#[derive(Debug, Serialize)]
pub(super) struct Status {
    service: &'static str,
    version: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    started_at: time::OffsetDateTime,
    #[serde(flatten)]
    policy: StoreStatus,
    /// The decision log; `null` when disabled.
    audit: Option<AuditStatus>,
    /// The access policy workspace.
    access: StoreStatus,
    /// The TLS listener's material, when TLS is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsStatus>,
    /// The certificate authority's counters since start, when a CA is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<serde_json::Value>,
}

/// The active version, counts and the last reload error.
#[utoipa::path(get, path = "/v1/status", tag = "ops",
    responses((status = 200, description = "Service and policy status", body = super::openapi::StatusDoc)))]
pub(super) async fn status(State(state): State<AppState>) -> Json<Status> {
    Json(Status {
        service: "medpdp",
        version: env!("CARGO_PKG_VERSION"),
        started_at: state.started_at,
        policy: state.store.status(),
        audit: state.audit.as_ref().map(|a| a.status()),
        access: state.access.status(),
        tls: state.tls.as_ref().map(|t| t.status()),
        ca: state.ca.as_ref().map(|ca| {
            let mut v = serde_json::to_value(ca.authority.counters()).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "profiles".into(),
                    ca.authority.profiles().iter().map(|p| p.name.clone()).collect(),
                );
            }
            v
        }),
    })
}

/// Reloads the domain workspace, the access policies and the TLS material now. 200 when each
/// was activated or unchanged; 422 when any is invalid (that part keeps its previous version),
/// naming the first failure in `code` and reporting all three in `details`: the domain
/// outcome at the top level (with `diagnostics` when it failed), `access` and `tls` beside it.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "ops", responses(
    (status = 200, description = "`activated` or `unchanged` (workspace), with `access` and `tls` outcomes", body = super::openapi::ReloadDoc),
    (status = 422, description = "Something is invalid (`invalid_workspace`, `invalid_access_policies`, `invalid_tls_material`); `details` has every outcome and diagnostic", body = super::ErrorEnvelope),
))]
pub(super) async fn reload(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Response {
    let tls = async {
        match &state.tls {
            Some(t) => Some(t.reload(ReloadTrigger::Admin).await),
            None => None,
        }
    };
    let (domain, access, tls) = tokio::join!(
        state.store.reload(ReloadTrigger::Admin),
        state.access.reload(ReloadTrigger::Admin),
        tls
    );
    let mut failed = Vec::new();
    if matches!(domain, ReloadOutcome::Failed { .. }) {
        failed.push(("invalid_workspace", "the policy workspace"));
    }
    if matches!(access, ReloadOutcome::Failed { .. }) {
        failed.push(("invalid_access_policies", "the access policies"));
    }
    if matches!(tls, Some(TlsReloadOutcome::Failed { .. })) {
        failed.push(("invalid_tls_material", "the TLS material"));
    }
    let mut body = serde_json::to_value(&domain).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("access".into(), serde_json::to_value(&access).unwrap_or_default());
        if let Some(tls) = &tls {
            obj.insert("tls".into(), serde_json::to_value(tls).unwrap_or_default());
        }
    }
    if let Some(log) = &state.audit {
        let details = serde_json::json!({"action": "reload", "result": &body});
        let event = AuditEvent::new(EventKind::AdminAction, caller.map(|Extension(c)| c), details);
        if let Err(e) = log.record_event(&event).await {
            tracing::error!("admin reload not recorded: {e}");
            return ApiError::audit_unavailable().into_response();
        }
    }
    match failed.first() {
        None => Json(body).into_response(),
        Some((code, _)) => {
            let what: Vec<&str> = failed.iter().map(|(_, w)| *w).collect();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                format!(
                    "{} {} invalid; the previous version stays active",
                    what.join(" and "),
                    if what.len() == 1 { "is" } else { "are" }
                ),
            )
            .with_details(body)
            .into_response()
        }
    }
}
