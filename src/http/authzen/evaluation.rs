//! `POST /access/v1/evaluation` and `POST /access/v1/evaluations`.
//!
//! Both take the active snapshot once per HTTP request (a batch is decided by one policy
//! version) and decide every item through [`crate::http::evaluate`], so each decision gets an
//! id and is recorded with the PEP's `X-Request-ID`.

use axum::extract::State;
use axum::{Extension, Json};

use super::mapping::{request_error, resolve, Mapper, Tuple};
use super::model::{
    AuthzenJson, EvaluationItem, EvaluationRequest, EvaluationResponse, EvaluationsAnswer,
    EvaluationsRequest, EvaluationsResponse, EvaluationsSemantic,
};
use super::{parse, AuthzenApi, RequestIdOf};
use crate::decide::Decision;
use crate::http::{
    evaluate, evaluate_deferred, ApiError, AppState, DecisionSource, ErrorEnvelope, EvaluateError,
    Recorded,
};
use crate::identity::Caller;

/// Decides one access request.
#[utoipa::path(
    post,
    path = "/access/v1/evaluation",
    tag = "authzen",
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed in the answer; generated (UUIDv7) when absent")),
    request_body = EvaluationRequest,
    responses(
        (status = 200, description = "The decision; a deny is `decision: false`", body = EvaluationResponse),
        (status = 400, description = "Not an AuthZEN evaluation request (including a wrong content type)", body = ErrorEnvelope),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = ErrorEnvelope),
        (status = 503, description = "No valid policy set is active", body = ErrorEnvelope),
    )
)]
pub(super) async fn evaluation(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    RequestIdOf(request_id): RequestIdOf,
    AuthzenJson(body): AuthzenJson<EvaluationRequest>,
) -> Result<Json<EvaluationResponse>, ApiError> {
    let tuple = Tuple {
        subject: body.subject,
        action: body.action,
        resource: body.resource,
        context: body.context,
    };
    let caller = caller.map(|Extension(c)| c);
    let source = DecisionSource::Authzen { api: AuthzenApi::Evaluation, request_id, index: None };
    single(&state, caller.as_ref(), &source, &tuple).await.map(Json)
}

/// Decides several access requests, in order, with shared defaults.
#[utoipa::path(
    post,
    path = "/access/v1/evaluations",
    tag = "authzen",
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed in the answer; generated (UUIDv7) when absent")),
    request_body = EvaluationsRequest,
    responses(
        (status = 200, description = "`{evaluations: [...]}` in request order, or a single decision when the request has no items", body = EvaluationsAnswer),
        (status = 400, description = "The payload as a whole is invalid (a bad item is answered in place instead)", body = ErrorEnvelope),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = ErrorEnvelope),
        (status = 503, description = "No valid policy set is active", body = ErrorEnvelope),
    )
)]
pub(super) async fn evaluations(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    RequestIdOf(request_id): RequestIdOf,
    AuthzenJson(mut body): AuthzenJson<EvaluationsRequest>,
) -> Result<Json<EvaluationsAnswer>, ApiError> {
    let caller = caller.map(|Extension(c)| c);
    let items = body.evaluations.take().unwrap_or_default();
    if items.is_empty() {
        // No items: the top level is one evaluation, with the single endpoint's rules.
        let tuple = resolve(&body, None, "")?;
        let source =
            DecisionSource::Authzen { api: AuthzenApi::Evaluations, request_id, index: None };
        let answer = single(&state, caller.as_ref(), &source, &tuple).await?;
        return Ok(Json(EvaluationsAnswer::Single(answer)));
    }
    let max = state.limits.max_batch;
    if items.len() > max {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("{} evaluations; the limit is {max} (limits.max_batch)", items.len()),
        )
        .with_field("evaluations"));
    }
    let semantic = body.options.as_ref().and_then(|o| o.evaluations_semantic).unwrap_or_default();
    // One snapshot for the whole batch.
    let snapshot = state.store.current().ok_or_else(ApiError::no_policy)?;
    let index = state.authzen.index_for(&snapshot)?;
    let mapper = Mapper { namespace: &state.authzen.namespace, snapshot: &snapshot, index: &index };
    // Queue every decision first and await durability once at the end, so one group commit
    // of the decision log covers the whole batch instead of one fsync per item.
    let mut pending: Vec<(Pending, Option<&'static str>)> = Vec::with_capacity(items.len());
    for (i, raw) in items.into_iter().enumerate() {
        let prefix = format!("evaluations[{i}].");
        let source = DecisionSource::Authzen {
            api: AuthzenApi::Evaluations,
            request_id: request_id.clone(),
            index: Some(i),
        };
        let prepared = parse::<EvaluationItem>(raw, &prefix)
            .and_then(|item| resolve(&body, Some(&item), &prefix))
            .and_then(|t| mapper.request(&t, &prefix).map(|req| (t, req)));
        let (item, decision) = match prepared {
            Ok((t, req)) => {
                match evaluate_deferred(&state, &snapshot, caller.as_ref(), &source, &req).await {
                    Ok(r) => {
                        let allowed = r.response().decision == Decision::Allow;
                        (Pending::Recorded(r), allowed)
                    }
                    Err(EvaluateError::Request(e)) => (
                        Pending::Ready(EvaluationResponse::failed(&request_error(e, &prefix, &t))),
                        false,
                    ),
                    Err(e @ EvaluateError::Audit(_)) => return Err(e.into()),
                }
            }
            Err(e) => (Pending::Ready(EvaluationResponse::failed(&e)), false),
        };
        let stop = match semantic {
            EvaluationsSemantic::ExecuteAll => None,
            EvaluationsSemantic::DenyOnFirstDeny => (!decision).then_some("deny_on_first_deny"),
            EvaluationsSemantic::PermitOnFirstPermit => {
                decision.then_some("permit_on_first_permit")
            }
        };
        pending.push((item, stop));
        if stop.is_some() {
            break;
        }
    }
    let mut answers = Vec::with_capacity(pending.len());
    for (item, stop) in pending {
        let answer = match item {
            Pending::Recorded(r) => EvaluationResponse::decided(r.durable().await?),
            Pending::Ready(a) => a,
        };
        answers.push(match stop {
            Some(semantic) => answer.ended_by(semantic),
            None => answer,
        });
    }
    Ok(Json(EvaluationsAnswer::Batch(EvaluationsResponse { evaluations: answers })))
}

/// A batch item: a decision waiting for its record to be durable, or an answer already final.
enum Pending {
    Recorded(Recorded),
    Ready(EvaluationResponse),
}

/// One evaluation whose errors are the whole request's (a 4xx, not a `false`).
async fn single(
    state: &AppState,
    caller: Option<&Caller>,
    source: &DecisionSource,
    tuple: &Tuple,
) -> Result<EvaluationResponse, ApiError> {
    let snapshot = state.store.current().ok_or_else(ApiError::no_policy)?;
    let index = state.authzen.index_for(&snapshot)?;
    let mapper = Mapper { namespace: &state.authzen.namespace, snapshot: &snapshot, index: &index };
    let req = mapper.request(tuple, "")?;
    let response = evaluate(state, &snapshot, caller, source, &req).await.map_err(|e| match e {
        EvaluateError::Request(e) => request_error(e, "", tuple),
        e @ EvaluateError::Audit(_) => e.into(),
    })?;
    tracing::Span::current().record("decision_id", response.decision_id.as_str());
    Ok(EvaluationResponse::decided(response))
}
