//! `POST /v1/decide` and `POST /v1/decide/batch`.
//!
//! Both take the active snapshot once per HTTP request (a batch is decided entirely by one
//! policy version) and evaluate inline: a decision is tens of microseconds of CPU, less than a
//! hop to a blocking pool would cost. Every decision is handed to the decision log in
//! [`evaluate`]; a batch queues all its records first and then waits for durability once.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::json::JsonBody;
use super::AppState;
use crate::audit::{DecisionEntry, LoggedRequest, Receipt};
use crate::decide::{
    decide, Decision, DecisionRequest, EvaluationError, Outcome, RequestError, RequestErrorCode,
};
use crate::identity::Caller;
use crate::policy::Snapshot;

/// The answer to one decision request.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionResponse {
    /// `allow` or `deny`.
    #[schema(value_type = super::openapi::DecisionDoc)]
    pub decision: Decision,
    /// Time-ordered unique id (UUIDv7) of this decision.
    pub decision_id: String,
    /// Content hash of the workspace that decided.
    pub policy_version: String,
    /// Ids of the determining policies.
    pub reasons: Vec<String>,
    /// Policies that raised errors (non-empty means the request was denied for safety).
    #[schema(value_type = Vec<super::openapi::EvaluationErrorDoc>)]
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

/// Which endpoint asked for a decision (recorded with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "endpoint", rename_all = "snake_case")]
pub enum DecisionSource {
    /// `POST /v1/decide`.
    Decide,
    /// `POST /v1/decide/batch`, item `index`.
    Batch {
        /// Position in the batch.
        index: usize,
    },
    /// A certificate issuance or renewal by the CA (EST or the admin API).
    Ca {
        /// `issue` or `renew`.
        operation: &'static str,
        /// How the requester authenticated: `idevid:<serialNumber>`, `token:<id>`,
        /// `certificate:<serial>` or the administrator's URN.
        authenticated_as: String,
    },
    /// An AuthZEN endpoint, with the PEP's `X-Request-ID` (generated when absent).
    Authzen {
        /// Which AuthZEN API.
        api: super::authzen::AuthzenApi,
        /// The `X-Request-ID` of the HTTP request.
        request_id: String,
        /// Position in an evaluations batch, or of the candidate in a search.
        #[serde(skip_serializing_if = "Option::is_none")]
        index: Option<usize>,
    },
}

/// Why [`evaluate`] gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The request cannot be evaluated (400; not a decision, so not recorded).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The decision could not be recorded (503: no answer without a record).
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<EvaluateError> for ApiError {
    fn from(e: EvaluateError) -> Self {
        match e {
            EvaluateError::Request(e) => e.into(),
            EvaluateError::Audit(e) => {
                tracing::error!("decision not answered: {e}");
                ApiError::audit_unavailable()
            }
        }
    }
}

/// A decision that is evaluated and queued for the decision log, but not yet known durable.
#[derive(Debug)]
#[must_use = "call `durable` before answering"]
pub struct Recorded {
    response: DecisionResponse,
    receipt: Option<Receipt>,
}

impl Recorded {
    /// The answer (known before it is durable; do not send it before [`Recorded::durable`]).
    pub fn response(&self) -> &DecisionResponse {
        &self.response
    }

    /// Waits until the record is durable (per the log's durability mode) and gives the answer.
    pub async fn durable(self) -> Result<DecisionResponse, EvaluateError> {
        if let Some(r) = self.receipt {
            r.durable().await?;
        }
        Ok(self.response)
    }
}

/// Evaluates one request for an endpoint and records it; answers once the record is durable
/// (in `sync` mode, or when the decision carries an `audit` obligation).
///
/// INVARIANT: every endpoint that decides goes through here (or [`evaluate_deferred`]), so
/// that every decision gets an id and is recorded the same way whichever API asked for it.
pub async fn evaluate(
    state: &AppState,
    snapshot: &Arc<Snapshot>,
    caller: Option<&Caller>,
    source: &DecisionSource,
    req: &DecisionRequest,
) -> Result<DecisionResponse, EvaluateError> {
    evaluate_deferred(state, snapshot, caller, source, req).await?.durable().await
}

/// [`evaluate`] without waiting for durability: endpoints answering several decisions queue
/// them all, then await each [`Recorded::durable`], so one group commit covers them.
pub async fn evaluate_deferred(
    state: &AppState,
    snapshot: &Arc<Snapshot>,
    caller: Option<&Caller>,
    source: &DecisionSource,
    req: &DecisionRequest,
) -> Result<Recorded, EvaluateError> {
    let metrics = &state.metrics;
    let started = Instant::now();
    let outcome = match check_size(req, &state.limits).and_then(|()| decide(snapshot, req)) {
        Ok(outcome) => outcome,
        Err(e) => {
            metrics.request_error(e.code.as_str());
            return Err(e.into());
        }
    };
    let elapsed = started.elapsed();
    metrics.evaluation_time(elapsed);
    metrics.decision(snapshot, req.action.uid(), outcome.decision == Decision::Allow);
    if !outcome.errors.is_empty() {
        metrics.evaluation_error(snapshot, req.action.uid());
    }
    let eval_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let decision_id = new_decision_id();
    tracing::debug!(
        %decision_id,
        decision = ?outcome.decision,
        principal = %req.principal,
        action = %req.action,
        "decided"
    );
    let receipt = match &state.audit {
        Some(log) => {
            let entry = DecisionEntry {
                decision_id: &decision_id,
                caller,
                source,
                snapshot,
                request: LoggedRequest::Parsed(req),
                outcome: Ok(&outcome),
                eval_us,
            };
            // A decision that obliges an audit trail is durable before it is answered, in
            // every durability mode.
            let must_be_durable = outcome.obligations.iter().any(|o| o == "audit");
            Some(log.submit_decision(&entry, must_be_durable).await?)
        }
        None => None,
    };
    Ok(Recorded {
        response: DecisionResponse::from_outcome(decision_id, snapshot, outcome),
        receipt,
    })
}

/// Applies `limits.max_request_entities` (entities, and parent links) and
/// `limits.max_context_values` to one decision,
/// whichever API it came from (the body limits bound the whole HTTP request; these bound what
/// one evaluation may be asked to carry).
fn check_size(req: &DecisionRequest, limits: &super::Limits) -> Result<(), RequestError> {
    let max = limits.max_request_entities;
    let entities = req.entities.as_deref().unwrap_or_default();
    // Parent links bound the entity graph as entities do: both are limited alike.
    let links: usize = entities
        .iter()
        .map(|e| e.get("parents").and_then(Value::as_array).map_or(0, Vec::len))
        .sum();
    if entities.len() > max || links > max {
        return Err(RequestError::new(
            RequestErrorCode::LimitExceeded,
            "entities",
            format!(
                "{} entities with {links} parent links; at most {max} of each \
                 (limits.max_request_entities)",
                entities.len()
            ),
        ));
    }
    if let Some(context) = &req.context {
        let budget = limits.max_context_values;
        if count_values(context, budget) > budget {
            return Err(RequestError::new(
                RequestErrorCode::LimitExceeded,
                "context",
                format!("the context has more than {budget} values (limits.max_context_values)"),
            ));
        }
    }
    Ok(())
}

/// Counts the JSON values in `v` (itself included), stopping once past `budget`.
fn count_values(v: &Value, budget: usize) -> usize {
    let mut count = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        count += 1;
        if count > budget {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(members) => stack.extend(members.values()),
            _ => {}
        }
    }
    count
}

/// Records a batch item that could not be evaluated: the caller receives a decision id and a
/// deny for it, so it is logged like any decision.
async fn record_failed_item(
    state: &AppState,
    snapshot: &Arc<Snapshot>,
    caller: Option<&Caller>,
    source: &DecisionSource,
    request: LoggedRequest<'_>,
    error: &Value,
    decision_id: &str,
) -> Result<Option<Receipt>, EvaluateError> {
    let Some(log) = &state.audit else {
        return Ok(None);
    };
    let entry = DecisionEntry {
        decision_id,
        caller,
        source,
        snapshot,
        request,
        outcome: Err(error),
        eval_us: 0,
    };
    Ok(Some(log.submit_decision(&entry, false).await?))
}

/// Evaluates one raw batch item exactly as `POST /v1/decide/batch` does, without recording
/// it (used by replay to reproduce items that failed).
pub fn decide_batch_item(
    snapshot: &Snapshot,
    raw: Value,
    index: usize,
) -> Result<(DecisionRequest, Outcome), ApiError> {
    let req = parse_item(&raw, index)?;
    let outcome = decide(snapshot, &req).map_err(|e| item_error(e, index))?;
    Ok((req, outcome))
}

fn item_error(e: RequestError, index: usize) -> ApiError {
    let field = format!("requests[{index}].{}", e.field);
    ApiError::from(e).with_field(field)
}

/// Decides one request.
#[utoipa::path(
    post,
    path = "/v1/decide",
    tag = "decide",
    request_body = super::openapi::DecisionRequestDoc,
    responses(
        (status = 200, description = "The decision (a deny is a 200 too)", body = DecisionResponse),
        (status = 400, description = "Not a valid request for the active schema", body = super::ErrorEnvelope),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = super::ErrorEnvelope),
        (status = 415, description = "Not `application/json`", body = super::ErrorEnvelope),
        (status = 503, description = "No valid policy set is active", body = super::ErrorEnvelope),
    )
)]
pub(super) async fn decide_one(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    JsonBody(req): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionResponse>, ApiError> {
    let snapshot = state.store.current().ok_or_else(ApiError::no_policy)?;
    let caller = caller.map(|Extension(c)| c);
    let response =
        evaluate(&state, &snapshot, caller.as_ref(), &DecisionSource::Decide, &req).await?;
    tracing::Span::current().record("decision_id", response.decision_id.as_str());
    Ok(Json(response))
}

/// `{"requests": [ … ]}`; items stay raw JSON so one malformed item fails alone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct BatchRequest {
    /// Decision requests, answered in order.
    #[schema(value_type = Vec<super::openapi::DecisionRequestDoc>)]
    requests: Vec<Value>,
}

/// `{"results": [ … ]}` in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct BatchResponse {
    /// One result per request, in order.
    results: Vec<BatchItem>,
}

/// One batch result: a decision, or an error that still carries `decision: "deny"` so that a
/// caller reading only `decision` fails closed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum BatchItem {
    /// The item was decided.
    Decided(DecisionResponse),
    /// The item was not a valid request: denied, with the error.
    Failed {
        /// Always `deny`.
        #[schema(value_type = super::openapi::DecisionDoc)]
        decision: Decision,
        /// An id for this answer.
        decision_id: String,
        /// The active version.
        policy_version: String,
        /// `{code, message, field, status}`.
        #[schema(value_type = Object)]
        error: Value,
    },
}

/// Decides several requests against one policy version.
#[utoipa::path(
    post,
    path = "/v1/decide/batch",
    tag = "decide",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "Results in request order; a bad item is answered in place", body = BatchResponse),
        (status = 400, description = "Not a batch, or over `limits.max_batch`", body = super::ErrorEnvelope),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = super::ErrorEnvelope),
        (status = 415, description = "Not `application/json`", body = super::ErrorEnvelope),
        (status = 503, description = "No valid policy set is active", body = super::ErrorEnvelope),
    )
)]
pub(super) async fn decide_batch(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
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
    // One snapshot for the whole batch: every item is decided by the same policy version.
    let snapshot = state.store.current().ok_or_else(ApiError::no_policy)?;
    let caller = caller.map(|Extension(c)| c);
    let caller = caller.as_ref();
    // Queue every item's record first, then wait once: one group commit covers the batch.
    let mut pending = Vec::with_capacity(batch.requests.len());
    for (index, raw) in batch.requests.into_iter().enumerate() {
        let source = DecisionSource::Batch { index };
        let req = match parse_item(&raw, index) {
            Ok(req) => req,
            Err(e) => {
                let error = e.to_json();
                let id = new_decision_id();
                let r = LoggedRequest::Raw(&raw);
                let receipt =
                    record_failed_item(&state, &snapshot, caller, &source, r, &error, &id).await?;
                pending.push(Pending::Failed(id, error, receipt));
                continue;
            }
        };
        match evaluate_deferred(&state, &snapshot, caller, &source, &req).await {
            Ok(recorded) => pending.push(Pending::Decided(recorded)),
            Err(EvaluateError::Request(e)) => {
                let error = item_error(e, index).to_json();
                let id = new_decision_id();
                let r = LoggedRequest::Parsed(&req);
                let receipt =
                    record_failed_item(&state, &snapshot, caller, &source, r, &error, &id).await?;
                pending.push(Pending::Failed(id, error, receipt));
            }
            Err(e @ EvaluateError::Audit(_)) => return Err(e.into()),
        }
    }
    let mut results = Vec::with_capacity(pending.len());
    for p in pending {
        results.push(match p {
            Pending::Decided(recorded) => BatchItem::Decided(recorded.durable().await?),
            Pending::Failed(decision_id, error, receipt) => {
                if let Some(r) = receipt {
                    r.durable().await.map_err(EvaluateError::from)?;
                }
                BatchItem::Failed {
                    decision: Decision::Deny,
                    decision_id,
                    policy_version: snapshot.version().to_owned(),
                    error,
                }
            }
        });
    }
    Ok(Json(BatchResponse { results }))
}

enum Pending {
    Decided(Recorded),
    Failed(String, Value, Option<Receipt>),
}

fn parse_item(raw: &Value, index: usize) -> Result<DecisionRequest, ApiError> {
    super::json::from_value(raw).map_err(|(field, message)| {
        let field = match field {
            Some(f) => format!("requests[{index}].{f}"),
            None => format!("requests[{index}]"),
        };
        ApiError::bad_request("malformed_request", message).with_field(field)
    })
}
