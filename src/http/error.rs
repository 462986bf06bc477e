//! API errors and their JSON shape.
//!
//! Every error answer is `{"error": {"code": "…", "message": "…", "field": "…"?}}` with a 4xx
//! status for bad input and 503 when no valid policy set is active. A deny is *not* an error:
//! it is a normal 200 answer. Internal failures never reach this type with details; they are
//! logged and answered with a generic 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::decide::RequestError;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: Box<ErrorBody>,
}

#[derive(Debug, Clone, Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a status, a stable code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody { code, message: message.into(), field: None, details: None }),
        }
    }

    /// 400 for input that is not what the endpoint expects.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Names the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Attaches structured details (e.g. policy diagnostics).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.body.details = Some(details);
        self
    }

    /// 503: nothing valid to evaluate against, so nothing is allowed.
    pub fn no_policy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_policy",
            "no valid policy set is active; see /v1/status for the load errors",
        )
    }

    /// 503: the decision could not be recorded, so it is not answered (fail closed).
    pub fn audit_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the decision log cannot record decisions right now; retry later (see /v1/status)",
        )
    }

    /// 404 for unknown paths.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }

    /// 405 for a known path with the wrong method.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.body.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.body.message
    }

    /// The error as a JSON value (used for batch items).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&*self.body).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("status".into(), self.status.as_u16().into());
        }
        v
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::bad_request(e.code.as_str(), e.message).with_field(e.field)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Envelope {
            error: ErrorBody,
        }
        (self.status, Json(Envelope { error: *self.body })).into_response()
    }
}
