//! `POST /v1/decide` and `POST /v1/decide/batch`.
//!
//! Both take the active snapshot once per HTTP request (a batch is decided entirely by one
//! policy version) and evaluate inline: a decision is tens of microseconds of CPU, less than a
//! hop to a blocking pool would cost.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::json::JsonBody;
use super::AppState;
use crate::decide::{decide, Decision, DecisionRequest, EvaluationError, Outcome};
use crate::policy::Snapshot;

/// The answer to one decision request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionResponse {
    /// `allow` or `deny`.
    pub decision: Decision,
    /// Time-ordered unique id (UUIDv7) of this decision.
    pub decision_id: String,
    /// Content hash of the workspace that decided.
    pub policy_version: String,
    /// Ids of the determining policies.
    pub reasons: Vec<String>,
    /// Policies that raised errors (non-empty means the request was denied for safety).
    pub errors: Vec<EvaluationError>,
    /// Obligations of the determining policies, which the caller must carry out.
    pub obligations: Vec<String>,
}

impl DecisionResponse {
    /// Shapes an evaluation outcome as the API answers it.
    pub fn from_outcome(decision_id: String, snapshot: &Snapshot, outcome: Outcome) -> Self {
        Self {
            decision: outcome.decision,
            decision_id,
            policy_version: snapshot.version().to_owned(),
            reasons: outcome.reasons,
            errors: outcome.errors,
            obligations: outcome.obligations,
        }
    }
}

/// A new time-ordered decision id.
pub fn new_decision_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(super) async fn decide_one(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionResponse>, ApiError> {
    let snapshot = state.store.current().ok_or_else(ApiError::no_policy)?;
    let outcome = decide(&snapshot, &req)?;
    let decision_id = new_decision_id();
    tracing::Span::current().record("decision_id", decision_id.as_str());
    tracing::debug!(decision = ?outcome.decision, principal = %req.principal, action = %req.action, "decided");
    Ok(Json(DecisionResponse::from_outcome(
        decision_id,
        &snapshot,
        outcome,
    )))
}

/// `{"requests": [ … ]}`; items stay raw JSON so one malformed item fails alone.
#[derive(Debug, Deserialize)]
pub(super) struct BatchRequest {
    requests: Vec<Value>,
}

/// `{"results": [ … ]}` in request order.
#[derive(Debug, Serialize)]
pub(super) struct BatchResponse {
    results: Vec<BatchItem>,
}

/// One batch result: a decision, or an error that still carries `decision: "deny"` so that a
/// caller reading only `decision` fails closed.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum BatchItem {
    Decided(DecisionResponse),
    Failed {
        decision: Decision,
        decision_id: String,
        policy_version: String,
        error: Value,
    },
}

pub(super) async fn decide_batch(
    State(state): State<AppState>,
    JsonBody(batch): JsonBody<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let max = state.limits.max_batch;
    if batch.requests.len() > max {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "batch has {} requests; the limit is {max} (limits.max_batch)",
                batch.requests.len()
            ),
        )
        .with_field("requests"));
    }
    let snapshot = state.store.current().ok_or_else(ApiError::no_policy)?;
    let results = batch
        .requests
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let decision_id = new_decision_id();
            match decide_raw(&snapshot, raw, i) {
                Ok(outcome) => BatchItem::Decided(DecisionResponse::from_outcome(
                    decision_id,
                    &snapshot,
                    outcome,
                )),
                Err(e) => BatchItem::Failed {
                    decision: Decision::Deny,
                    decision_id,
                    policy_version: snapshot.version().to_owned(),
                    error: e.to_json(),
                },
            }
        })
        .collect();
    Ok(Json(BatchResponse { results }))
}

fn decide_raw(snapshot: &Snapshot, raw: Value, index: usize) -> Result<Outcome, ApiError> {
    let req: DecisionRequest = serde_path_to_error::deserialize(raw).map_err(|e| {
        let field = format!("requests[{index}].{}", e.path());
        ApiError::bad_request("malformed_request", e.into_inner().to_string()).with_field(field)
    })?;
    decide(snapshot, &req).map_err(|e| {
        let field = format!("requests[{index}].{}", e.field);
        ApiError::from(e).with_field(field)
    })
}
