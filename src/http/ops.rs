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

/// 200 while the process runs.
#[utoipa::path(get, path = "/health/live", tag = "ops",
    responses((status = 200, description = "Alive", body = super::openapi::HealthDoc)))]
pub(super) async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready only while a valid policy set is active.
#[utoipa::path(get, path = "/health/ready", tag = "ops", responses(
    (status = 200, description = "A valid policy set is active", body = super::openapi::HealthDoc),
    (status = 503, description = "No valid policy set is active", body = super::openapi::HealthDoc),
))]
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    match state.store.current() {
        Some(s) => Json(json!({"status": "ready", "policy_version": s.version()})).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "no valid policy set is active"})),
        )
            .into_response(),
    }
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
    })
}

/// Reloads the workspace now. 200 when activated or unchanged, 422 with every diagnostic when
/// the files are invalid (the previous version stays active).
#[utoipa::path(post, path = "/v1/admin/reload", tag = "ops", responses(
    (status = 200, description = "`activated` or `unchanged`", body = super::openapi::ReloadDoc),
    (status = 422, description = "The workspace is invalid; `details.diagnostics` lists every problem", body = super::ErrorEnvelope),
))]
pub(super) async fn reload(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Response {
    let outcome = state.store.reload(ReloadTrigger::Admin).await;
    if let Some(log) = &state.audit {
        let details = serde_json::json!({"action": "reload", "result": &outcome});
        let event = AuditEvent::new(EventKind::AdminAction, caller.map(|Extension(c)| c), details);
        if let Err(e) = log.record_event(&event).await {
            tracing::error!("admin reload not recorded: {e}");
            return ApiError::audit_unavailable().into_response();
        }
    }
    match &outcome {
        ReloadOutcome::Failed { .. } => {
            let details = serde_json::to_value(&outcome).unwrap_or_default();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_workspace",
                "the workspace is invalid; the previous version stays active",
            )
            .with_details(details)
            .into_response()
        }
        _ => Json(outcome).into_response(),
    }
}
