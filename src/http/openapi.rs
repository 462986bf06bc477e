//! The OpenAPI 3.1 document (`GET /openapi.json`), generated from the code.
//!
//! Routes are registered only through utoipa-axum's `OpenApiRouter` with `routes!(...)` (see
//! [`super::router`]), so the document is built from the same registrations that route
//! requests: a handler cannot be routed without its `#[utoipa::path]` annotation. [`ROUTES`]
//! lists every route by hand; the integration tests check it against both the served document
//! and the live router, and a source check forbids plain axum `.route(` calls in `src/`.
//!
//! The schemas of types owned by other modules (the decision request, status, reload
//! outcomes, the error envelope) are mirrored here, so that `decide` and `policy` stay free of
//! HTTP documentation concerns; they are plain descriptions of the JSON those types produce.

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::Extension;
use utoipa::{OpenApi, ToSchema};

/// Every route medpdp serves, as `(METHOD, path)`. Adding an endpoint means annotating its
/// handler with `#[utoipa::path]`, registering it with `routes!` and listing it here.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/decide"),
    ("POST", "/v1/decide/batch"),
    ("GET", "/v1/status"),
    ("POST", "/v1/admin/reload"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/v1/audit/records"),
    ("GET", "/openapi.json"),
    ("POST", "/access/v1/evaluation"),
    ("POST", "/access/v1/evaluations"),
    ("POST", "/access/v1/search/subject"),
    ("POST", "/access/v1/search/resource"),
    ("POST", "/access/v1/search/action"),
    ("GET", "/.well-known/authzen-configuration"),
    ("GET", "/.well-known/est/cacerts"),
    ("POST", "/.well-known/est/simpleenroll"),
    ("POST", "/.well-known/est/simplereenroll"),
    ("GET", "/v1/ca/certificates"),
    ("POST", "/v1/ca/certificates"),
    ("POST", "/v1/ca/certificates/{serial}/revoke"),
    ("GET", "/v1/ca/crl"),
];

/// Document-level information; paths and their schemas come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "medpdp",
        description = "Cedar policy decision service for 5G healthcare terminals: native decision API, OpenID AuthZEN Authorization API 1.0, operations.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "decide", description = "medpdp's native decision API"),
        (name = "authzen", description = "OpenID AuthZEN Authorization API 1.0"),
        (name = "ops", description = "Health, status, administration"),
        (name = "est", description = "Certificate enrollment over EST (RFC 7030)"),
        (name = "ca", description = "Certificate authority administration and CRL"),
        (name = "audit", description = "The decision log, for auditors"),
    )
)]
pub(super) struct ApiDoc;

/// The served document, serialized once at start-up.
#[derive(Debug, Clone)]
pub(super) struct Document(pub(super) Arc<String>);

impl Document {
    pub(super) fn new(doc: &utoipa::openapi::OpenApi) -> Self {
        let json = doc.to_pretty_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialize the OpenAPI document");
            String::from("{}")
        });
        Self(Arc::new(json))
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service", content_type = "application/json", body = Object))
)]
pub(super) async fn openapi_json(Extension(doc): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        doc.0.as_str().to_owned(),
    )
}

/// Every error answer: `{"error": {...}}`.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
pub(crate) struct ErrorEnvelope {
    /// What went wrong.
    pub(crate) error: ErrorBody,
}

/// The error itself.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
pub(crate) struct ErrorBody {
    /// Stable machine-readable code, e.g. `unknown_action`, `malformed_request`, `no_policy`.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
    /// The request field at fault, e.g. `action` or `evaluations[2].subject.type`.
    pub field: Option<String>,
    /// Structured details (e.g. every policy diagnostic of a failed reload).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// `allow` or `deny`.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[schema(as = Decision)]
pub(crate) enum DecisionDoc {
    /// Permitted.
    Allow,
    /// Not permitted (including every failure).
    Deny,
}

/// A Cedar entity reference: `Type::"id"` or `{"type": "Type", "id": "id"}`.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = EntityRef)]
pub(crate) enum EntityRefDoc {
    /// `Med5G::Terminal::"t-ecg1"`.
    Uid(String),
    /// `{"type": "Med5G::Terminal", "id": "t-ecg1"}`.
    Parts {
        /// The entity type, with its namespace.
        #[serde(rename = "type")]
        ty: String,
        /// The id.
        id: String,
    },
}

/// One decision request: may `principal` do `action` on `resource`?
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
#[schema(as = DecisionRequest)]
pub(crate) struct DecisionRequestDoc {
    /// Who asks.
    pub principal: EntityRefDoc,
    /// The action entity, e.g. `Med5G::Action::"attach"`.
    pub action: EntityRefDoc,
    /// What it is done to.
    pub resource: EntityRefDoc,
    /// Shaped as the schema declares for the action.
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Value>,
    /// Cedar JSON entities merged over the stored ones for this request only.
    #[schema(value_type = Option<Vec<Object>>)]
    pub entities: Option<Vec<serde_json::Value>>,
}

/// A policy that raised an error while being evaluated.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
#[schema(as = EvaluationError)]
pub(crate) struct EvaluationErrorDoc {
    /// The policy id.
    pub policy: String,
    /// Cedar's message.
    pub message: String,
}

/// `GET /health/live` and `GET /health/ready`.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
#[schema(as = Health)]
pub(crate) struct HealthDoc {
    /// `ok`, `ready` or `not_ready`.
    pub status: String,
    /// The active version (ready only).
    pub policy_version: Option<String>,
    /// Why not ready.
    pub reason: Option<String>,
}

/// `GET /v1/status`.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
#[schema(as = Status)]
pub(crate) struct StatusDoc {
    /// `medpdp`.
    pub service: String,
    /// The service version.
    pub version: String,
    /// RFC 3339.
    pub started_at: String,
    /// The workspace directory.
    pub workspace: String,
    /// The active snapshot: `version`, `entities_version`, `loaded_at`, counts, `warnings`,
    /// `files`; null while none is active.
    #[schema(value_type = Option<Object>)]
    pub active: Option<serde_json::Value>,
    /// Successful activations since start.
    pub reloads: u64,
    /// Failed reloads since start.
    pub reload_failures: u64,
    /// The last failure (`at`, `trigger`, `version`, `diagnostics`), null once fixed.
    #[schema(value_type = Option<Object>)]
    pub last_reload_error: Option<serde_json::Value>,
}

/// `POST /v1/admin/reload` when it succeeds.
#[allow(dead_code, reason = "documents a JSON shape; never built")]
#[derive(Debug, ToSchema)]
#[schema(as = ReloadOutcome)]
pub(crate) struct ReloadDoc {
    /// `activated` or `unchanged`.
    pub outcome: String,
    /// The active version.
    pub version: String,
    /// The version replaced (`activated` only).
    pub previous: Option<String>,
}
