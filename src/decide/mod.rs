//! Evaluating one decision request against one snapshot.
//!
//! INVARIANT: this module is pure. It does no I/O, reads no clock, draws no randomness and
//! never panics on any input; the same snapshot and request always give the same [`Outcome`].
//! That is what makes the decision log replayable. Decision ids, timestamps and logging belong
//! to the caller.
//!
//! Fail closed: Cedar skips a policy whose condition raises an error, so an erroring `forbid`
//! would let a request through. Here any evaluation error turns the decision into `deny` and the
//! errors are returned with it.
//!
//! The hot path (no request entities) builds the request with typed values (`context`) and
//! evaluates it against the policy slice for its principal type, action and resource type
//! (`Snapshot::policies_for`), which Cedar answers exactly as it answers the full set.

mod context;
mod request;
mod slice;

use cedar_policy::{Authorizer, Context, Request, RequestValidationError};
use serde::Serialize;
use serde_json::Value;

use crate::policy::{Effect, PolicyInfo, Snapshot};

pub(crate) use context::verify_action_shape;
pub use request::{parse_entity_ref, uid_from_parts, DecisionRequest, EntityRef};

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request is permitted.
    Allow,
    /// The request is not permitted (including every failure).
    Deny,
}

/// A policy that raised an error while being evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EvaluationError {
    /// The policy id.
    pub policy: String,
    /// Cedar's message.
    pub message: String,
}

/// The result of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Allow or deny.
    pub decision: Decision,
    /// Ids of the policies that determined the decision, sorted.
    pub reasons: Vec<String>,
    /// Policies that raised errors (non-empty implies deny).
    pub errors: Vec<EvaluationError>,
    /// Obligations of the determining policies, in order, without duplicates.
    pub obligations: Vec<String>,
}

/// Why a request could not be evaluated at all (a client error, answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct RequestError {
    /// Machine-readable category.
    pub code: RequestErrorCode,
    /// The request field at fault, e.g. `action` or `context`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Categories of [`RequestError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestErrorCode {
    /// The request is not shaped as a decision request.
    Malformed,
    /// The action is not declared in the schema.
    UnknownAction,
    /// An entity type is not declared, or not allowed for the action.
    InvalidEntityType,
    /// The context does not match the schema.
    InvalidContext,
    /// Request-supplied entities are invalid.
    InvalidEntities,
    /// The request is larger than a configured limit allows.
    LimitExceeded,
}

impl RequestErrorCode {
    /// The stable name of the category, as API errors and metrics show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_request",
            Self::UnknownAction => "unknown_action",
            Self::InvalidEntityType => "invalid_entity_type",
            Self::InvalidContext => "invalid_context",
            Self::InvalidEntities => "invalid_entities",
            Self::LimitExceeded => "limit_exceeded",
        }
    }
}

impl RequestError {
    pub(crate) fn new(
        code: RequestErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self { code, field: field.into(), message: message.into() }
    }
}

/// Evaluates `req` against `snapshot`.
pub fn decide(snapshot: &Snapshot, req: &DecisionRequest) -> Result<Outcome, RequestError> {
    let request = build_request(snapshot, req)?;
    let authorizer = Authorizer::new();
    let response = match req.entities.as_deref() {
        Some(extra) if !extra.is_empty() => {
            let entities =
                slice::request_entities(snapshot, extra, &request, req.context.as_ref())?;
            // Request entities may reshape the action hierarchy the slices were built from:
            // evaluate the full set.
            authorizer.is_authorized(&request, snapshot.policies(), &entities)
        }
        // The hot path: the resident store and a pre-built slice, shared, never copied.
        _ => {
            let policies =
                snapshot.policies_for(req.principal.uid(), req.action.uid(), req.resource.uid());
            authorizer.is_authorized(&request, policies, snapshot.entities())
        }
    };
    Ok(outcome(snapshot, &response))
}

fn build_request(snapshot: &Snapshot, req: &DecisionRequest) -> Result<Request, RequestError> {
    let action = req.action.uid();
    let schema = snapshot.schema();
    if let Some(schema) = schema {
        if !schema.actions().any(|a| a == action) {
            return Err(unknown_action(snapshot, req));
        }
    }
    if let Some(request) = context::fast_request(req, schema, snapshot.request_shapes()) {
        return Ok(request);
    }
    // Cedar's generic path: whatever the fast path declined, including every invalid request,
    // is built (or rejected, with Cedar's message) exactly as Cedar's JSON parser does.
    let context = match &req.context {
        None | Some(Value::Null) => Context::empty(),
        Some(v @ Value::Object(_)) => {
            Context::from_json_value(v.clone(), schema.map(|s| (s, action))).map_err(|e| {
                RequestError::new(RequestErrorCode::InvalidContext, "context", e.to_string())
            })?
        }
        Some(_) => {
            return Err(RequestError::new(
                RequestErrorCode::Malformed,
                "context",
                "context must be a JSON object",
            ))
        }
    };
    Request::new(
        req.principal.uid().clone(),
        action.clone(),
        req.resource.uid().clone(),
        context,
        schema,
    )
    .map_err(request_validation_error)
}

fn unknown_action(snapshot: &Snapshot, req: &DecisionRequest) -> RequestError {
    let mut declared: Vec<String> = snapshot
        .schema()
        .map(|s| s.actions().map(ToString::to_string).collect())
        .unwrap_or_default();
    declared.sort();
    RequestError::new(
        RequestErrorCode::UnknownAction,
        "action",
        format!("unknown action `{}`; the schema declares: {}", req.action, declared.join(", ")),
    )
}

fn request_validation_error(e: RequestValidationError) -> RequestError {
    use RequestErrorCode as C;
    let (code, field) = match &e {
        RequestValidationError::UndeclaredAction(_) | RequestValidationError::ExternalAction(_) => {
            (C::UnknownAction, "action")
        }
        RequestValidationError::UndeclaredPrincipalType(_)
        | RequestValidationError::InvalidPrincipalType(_) => (C::InvalidEntityType, "principal"),
        RequestValidationError::UndeclaredResourceType(_)
        | RequestValidationError::InvalidResourceType(_) => (C::InvalidEntityType, "resource"),
        RequestValidationError::InvalidContext(_) | RequestValidationError::TypeOfContext(_) => {
            (C::InvalidContext, "context")
        }
        _ => (C::Malformed, "request"),
    };
    let mut message = e.to_string();
    if let Some(help) = miette::Diagnostic::help(&e) {
        message.push_str(&format!(" ({help})"));
    }
    RequestError::new(code, field, message)
}

fn outcome(snapshot: &Snapshot, response: &cedar_policy::Response) -> Outcome {
    let diagnostics = response.diagnostics();
    let mut errors: Vec<EvaluationError> = diagnostics
        .errors()
        .map(|e| match e {
            cedar_policy::AuthorizationError::PolicyEvaluationError(pe) => EvaluationError {
                policy: pe.policy_id().to_string(),
                message: pe.inner().to_string(),
            },
        })
        .collect();
    errors.sort_by(|a, b| a.policy.cmp(&b.policy));
    let cedar_allows = response.decision() == cedar_policy::Decision::Allow;
    let decision = if cedar_allows && errors.is_empty() { Decision::Allow } else { Decision::Deny };

    // On a fail-closed deny the permits Cedar matched do not explain the answer; only satisfied
    // forbids (if any) do.
    let mut determining: Vec<(&cedar_policy::PolicyId, Option<&PolicyInfo>)> = diagnostics
        .reason()
        .map(|id| (id, snapshot.policy_info(id)))
        .filter(|(_, info)| {
            decision == Decision::Allow || info.is_none_or(|i| i.effect == Effect::Forbid)
        })
        .collect();
    determining.sort_by(|a, b| AsRef::<str>::as_ref(a.0).cmp(b.0.as_ref()));

    let mut reasons = Vec::with_capacity(determining.len());
    let mut obligations: Vec<String> = Vec::new();
    for (id, info) in determining {
        reasons.push(id.to_string());
        for o in info.iter().flat_map(|i| &i.obligations) {
            if !obligations.contains(o) {
                obligations.push(o.clone());
            }
        }
    }
    Outcome { decision, reasons, errors, obligations }
}

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;
