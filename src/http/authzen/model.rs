//! AuthZEN wire types (requests and answers, also the OpenAPI schemas) and the body extractor
//! that applies the HTTPS binding's rules.
//!
//! The binding differs from the rest of the API in what it answers for bad input: every
//! problem with the payload is a 400 (a wrong or missing content type included, where
//! [`crate::http::JsonBody`] answers 415), the body must be a JSON object, and unknown fields
//! are ignored. Field names in error messages are AuthZEN's (`subject.type`, not `principal`).

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::http::json::{from_value, guard, limits_of, read_body};
use crate::http::ApiError;

/// A subject or a resource: `type` and `id` are required.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct Entity {
    /// The entity type; without `::` the configured namespace is prepended
    /// (`Terminal` is `Med5G::Terminal`).
    #[serde(rename = "type")]
    pub(crate) ty: String,
    /// The entity id, scoped to the type.
    pub(crate) id: String,
    /// Attributes for this request only, merged over the stored entity's.
    #[schema(value_type = Option<Object>)]
    pub(crate) properties: Option<Map<String, Value>>,
}

/// The action: `name` is required.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct Action {
    /// The action name (`attach` is `Med5G::Action::"attach"`).
    pub(crate) name: String,
    /// Added to the Cedar context.
    #[schema(value_type = Option<Object>)]
    pub(crate) properties: Option<Map<String, Value>>,
}

/// `POST /access/v1/evaluation`: may `subject` do `action` on `resource`?
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct EvaluationRequest {
    /// Who asks.
    pub(crate) subject: Entity,
    /// What they want to do.
    pub(crate) action: Action,
    /// What they want to do it to.
    pub(crate) resource: Entity,
    /// The environment; becomes the Cedar context (keys the schema does not declare are
    /// ignored).
    #[schema(value_type = Option<Object>)]
    pub(crate) context: Option<Map<String, Value>>,
}

/// A subject or resource that may lack `type` or `id`: a default or one item of a batch.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub(crate) struct PartialEntity {
    /// The entity type.
    #[serde(rename = "type")]
    pub(crate) ty: Option<String>,
    /// The entity id.
    pub(crate) id: Option<String>,
    /// Attributes for this request only.
    #[schema(value_type = Option<Object>)]
    pub(crate) properties: Option<Map<String, Value>>,
}

/// An action that may lack `name`: a default or one item of a batch.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub(crate) struct PartialAction {
    /// The action name.
    pub(crate) name: Option<String>,
    /// Added to the Cedar context.
    #[schema(value_type = Option<Object>)]
    pub(crate) properties: Option<Map<String, Value>>,
}

/// One item of `evaluations`; what it omits comes from the top-level defaults.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub(crate) struct EvaluationItem {
    /// Replaces the default subject (its missing `type`/`id` fall back to the default's).
    pub(crate) subject: Option<PartialEntity>,
    /// Replaces the default action (a missing `name` falls back to the default's).
    pub(crate) action: Option<PartialAction>,
    /// Replaces the default resource (its missing `type`/`id` fall back to the default's).
    pub(crate) resource: Option<PartialEntity>,
    /// Replaces the default context.
    #[schema(value_type = Option<Object>)]
    pub(crate) context: Option<Map<String, Value>>,
}

/// How a batch is evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EvaluationsSemantic {
    /// Evaluate every item (the default).
    #[default]
    ExecuteAll,
    /// Stop after the first item that is denied or fails; later items are not evaluated and
    /// not answered.
    DenyOnFirstDeny,
    /// Stop after the first item that is permitted; later items are not evaluated and not
    /// answered.
    PermitOnFirstPermit,
}

/// `options` of a batch; unknown options are ignored.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub(crate) struct EvaluationsOptions {
    /// Default `execute_all`.
    pub(crate) evaluations_semantic: Option<EvaluationsSemantic>,
}

/// `POST /access/v1/evaluations`: top-level defaults and the items. Without items (absent or
/// empty) it is a single evaluation of the top-level fields.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct EvaluationsRequest {
    /// Default subject.
    pub(crate) subject: Option<PartialEntity>,
    /// Default action.
    pub(crate) action: Option<PartialAction>,
    /// Default resource.
    pub(crate) resource: Option<PartialEntity>,
    /// Default context.
    #[schema(value_type = Option<Object>)]
    pub(crate) context: Option<Map<String, Value>>,
    /// The evaluations, answered in this order. Each item is checked on its own: a bad item
    /// gets `decision: false` with the error in its `context`.
    #[schema(value_type = Option<Vec<EvaluationItem>>)]
    pub(crate) evaluations: Option<Vec<Value>>,
    /// Evaluation options.
    pub(crate) options: Option<EvaluationsOptions>,
}

/// A decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EvaluationResponse {
    /// `true`: permitted. `false`: denied (including every failure).
    pub(crate) decision: bool,
    /// Why, and what the PEP must do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) context: Option<DecisionContext>,
}

/// The response `context`: medpdp's decision record, obligations per the AuthZEN obligations
/// profile, and for a failed batch item the error.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub(crate) struct DecisionContext {
    /// The id under which the decision is logged (UUIDv7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) decision_id: Option<String>,
    /// Content hash of the policy workspace that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy_version: Option<String>,
    /// Ids of the determining policies (the permits on an allow; the forbids, if any, on a
    /// deny).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasons: Option<Vec<String>>,
    /// Obligations of the determining policies; the PEP must carry them out, and must treat
    /// the decision as a deny if it cannot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) obligations: Vec<Obligation>,
    /// Policies that raised errors; the decision is then `false` (medpdp fails closed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub(crate) errors: Vec<crate::decide::EvaluationError>,
    /// Why a batch item could not be evaluated: `{status, code, message, field}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(crate) error: Option<Value>,
    /// On the item that ended a short-circuiting batch: the semantic that ended it
    /// (`deny_on_first_deny` or `permit_on_first_permit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// An obligation in the AuthZEN obligations profile's shape. medpdp's obligations (from
/// `@obligation` annotations) have no registered type, so they are `custom`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Obligation {
    /// The obligation as the policy names it, e.g. `audit` (unique within the answer).
    pub(crate) id: String,
    /// Always `custom`.
    #[serde(rename = "type")]
    pub(crate) ty: String,
    /// `{"vendor": "medpdp", "obligation": "<the obligation>"}`.
    #[schema(value_type = Object)]
    pub(crate) properties: Value,
}

impl Obligation {
    pub(crate) fn custom(obligation: &str) -> Self {
        Self {
            id: obligation.to_owned(),
            ty: "custom".to_owned(),
            properties: serde_json::json!({"vendor": "medpdp", "obligation": obligation}),
        }
    }
}

/// The answer to a batch with items, in request order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EvaluationsResponse {
    /// One answer per evaluated item (fewer than asked when a short-circuit stopped early).
    pub(crate) evaluations: Vec<EvaluationResponse>,
}

/// `POST /access/v1/evaluations` answers a single decision when there are no items.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum EvaluationsAnswer {
    /// There were items.
    Batch(EvaluationsResponse),
    /// There were no items: the top-level fields were evaluated once.
    Single(EvaluationResponse),
}

/// A JSON object body under the AuthZEN binding's rules (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct AuthzenBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for AuthzenBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_content_type(req.headers().get(header::CONTENT_TYPE))?;
        let limits = limits_of(&req);
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("empty_body", "the request body is empty"));
        }
        guard(&bytes, &limits)?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
        match value {
            Value::Object(map) => Ok(Self(map)),
            other => Err(ApiError::bad_request(
                "invalid_request",
                format!("the request body must be a JSON object, not {}", json_kind(&other)),
            )),
        }
    }
}

/// A body deserialized into `T` after the checks of [`AuthzenBody`].
#[derive(Debug, Clone)]
pub(crate) struct AuthzenJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AuthzenJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let AuthzenBody(map) = AuthzenBody::from_request(req, state).await?;
        parse(Value::Object(map), "").map(AuthzenJson)
    }
}

/// Deserializes `value`, naming the failing field (prefixed with `prefix`, e.g.
/// `evaluations[2].`) in the error.
pub(crate) fn parse<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ApiError> {
    from_value(&value).map_err(|(field, message)| {
        let message = match &field {
            Some(f) => format!("{prefix}{f}: {message}"),
            None => message,
        };
        let err = ApiError::bad_request("malformed_request", message);
        match field {
            Some(f) => err.with_field(format!("{prefix}{f}")),
            None if !prefix.is_empty() => err.with_field(prefix.trim_end_matches('.')),
            None => err,
        }
    })
}

/// `application/json` (or `application/*+json`), with no `charset` other than UTF-8.
fn check_content_type(value: Option<&header::HeaderValue>) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_content_type", m);
    let Some(value) = value else {
        return Err(bad("missing content type: send `Content-Type: application/json`".into()));
    };
    let text = value.to_str().unwrap_or_default();
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !json {
        return Err(bad(format!(
            "unsupported content type `{text}`: send `Content-Type: application/json`"
        )));
    }
    for param in parts {
        let Some((name, val)) = param.split_once('=') else { continue };
        let val = val.trim().trim_matches('"').to_ascii_lowercase();
        if name.trim().eq_ignore_ascii_case("charset") && val != "utf-8" && val != "utf8" {
            return Err(bad(format!("unsupported charset `{val}`: JSON is UTF-8")));
        }
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn content_types() {
        let ok = |s: &'static str| check_content_type(Some(&HeaderValue::from_static(s))).is_ok();
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("Application/JSON;charset=\"UTF-8\""));
        assert!(ok("application/authzen+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!ok("application/json; charset=latin1"));
        assert!(check_content_type(None).is_err());
    }

    #[test]
    fn parse_errors_name_authzen_fields() {
        let e = parse::<EvaluationRequest>(json!({"subject": {"id": "a"}}), "").unwrap_err();
        assert_eq!(e.code(), "malformed_request");
        assert!(e.message().starts_with("subject.type: missing field `type`"), "{}", e.message());
        let e =
            parse::<EvaluationItem>(json!({"action": {"name": 1}}), "evaluations[3].").unwrap_err();
        assert!(e.message().starts_with("evaluations[3].action.name: invalid type"), "{e:?}");
        let e = parse::<EvaluationsRequest>(
            json!({"options": {"evaluations_semantic": "sometimes"}}),
            "",
        )
        .unwrap_err();
        assert!(e.message().contains("unknown variant `sometimes`"), "{}", e.message());
    }
}
