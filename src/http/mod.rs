//! The HTTP API: routes, shared state, and the per-request tracing span.
//!
//! Handlers are thin: they extract and check input, call [`crate::decide`], and shape the
//! answer. The router is built by [`router`] so tests can drive it without a socket. Every
//! route is registered in [`api`] through utoipa-axum, which builds the OpenAPI document
//! (`GET /openapi.json`) from the same registrations.

pub mod access;
mod audit;
pub mod authzen;
pub mod ca;
mod decide;
mod error;
mod json;
pub mod json_guard;
mod openapi;
mod ops;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::policy::PolicyStore;

pub use decide::{
    decide_batch_item, evaluate, evaluate_deferred, new_decision_id, DecisionResponse,
    DecisionSource, EvaluateError, Recorded,
};
pub use error::ApiError;
pub use json::JsonBody;
pub(crate) use openapi::ErrorEnvelope;
pub use openapi::ROUTES;

/// Parses a decision request from JSON bytes as the API does (same checks, same errors, same
/// field paths), under the default [`Limits`].
pub fn parse_request_json(bytes: &[u8]) -> Result<crate::decide::DecisionRequest, ApiError> {
    json::decode(bytes, &Limits::default())
}

/// Bounds on what one request may ask for. Every one is answered with a 4xx naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most requests in one batch (400 above).
    pub max_batch: usize,
    /// Most objects and arrays nested in one another in a JSON body (400 above).
    pub max_json_depth: usize,
    /// Most entities one decision request may bring, and most parent links among them (400
    /// above).
    pub max_request_entities: usize,
    /// Most JSON values (objects, arrays and scalars, counted recursively) in one decision's
    /// context (400 above).
    pub max_context_values: usize,
    /// Most header fields in an HTTP/1.1 request (431 above).
    pub max_headers: usize,
    /// Largest request head (request line and headers) in bytes; on HTTP/2 the largest header
    /// list (431 above, or the stream is reset).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_batch: 100,
            max_json_depth: 32,
            max_request_entities: 1000,
            max_context_values: 4096,
            max_headers: 100,
            max_header_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    /// Checks every value; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let range = |key, value: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err((key, format!("must be between {lo} and {hi}")))
            }
        };
        range("limits.max_body_bytes", self.max_body_bytes, 256, 1 << 30)?;
        range("limits.max_batch", self.max_batch, 1, 100_000)?;
        range("limits.max_json_depth", self.max_json_depth, 4, 128)?;
        range("limits.max_request_entities", self.max_request_entities, 0, 1_000_000)?;
        range("limits.max_context_values", self.max_context_values, 1, 10_000_000)?;
        range("limits.max_headers", self.max_headers, 8, 1000)?;
        // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB.
        range("limits.max_header_bytes", self.max_header_bytes, 8192, 1 << 20)
    }
}

/// What every handler can reach: one reference-counted pointer to [`AppParts`], so that the
/// clones every middleware layer and handler takes cost one atomic increment each.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Shares `parts` with every handler.
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The shared state's contents.
#[derive(Debug)]
pub struct AppParts {
    /// The domain policy workspace.
    pub store: Arc<PolicyStore>,
    /// Request bounds.
    pub limits: Limits,
    /// When the service started.
    pub started_at: time::OffsetDateTime,
    /// The AuthZEN endpoints' configuration and per-snapshot index.
    pub authzen: Arc<authzen::AuthzenState>,
    /// The decision log (`None` only when `audit.enabled = false`).
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// The access policy workspace: which caller may use which endpoint.
    pub access: Arc<PolicyStore>,
    /// The TLS listener's material (`None` when only the development listener runs).
    pub tls: Option<Arc<crate::tls::TlsStore>>,
    /// The certificate authority (`None` when no CA is configured).
    pub ca: Option<Arc<ca::CaState>>,
    /// Figures counted on the request path (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Every route with its documentation. INVARIANT: routes are added only here, only with
/// `routes!` (never axum's `.route(`), so the OpenAPI document lists exactly what is routed.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(decide::decide_one))
        .routes(routes!(decide::decide_batch))
        .routes(routes!(ops::status))
        .routes(routes!(ops::reload))
        .routes(routes!(ops::live))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(audit::records))
        .routes(routes!(openapi::openapi_json))
        .merge(authzen::routes())
        .merge(ca::routes())
}

/// The OpenAPI document of every route.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// Builds the API router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    let (routes, doc) = api().split_for_parts();
    routes
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(Extension(openapi::Document::new(&doc)))
        .layer(Extension(state.limits))
        .layer(DefaultBodyLimit::max(body_limit))
        // Inside the trace span (so denials are logged with the caller), outside the handlers
        // (so a refused request never reaches one).
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::authorize))
        // Outside the access check, so refusals are timed and counted too.
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn_with_state(state.clone(), check_head))
        // A panic is a bug, never an answer to input: log it and answer a generic 500 rather
        // than dropping the connection.
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
                .into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        // Outermost: every answer, errors included, carries the request's `X-Request-ID`
        // (a new UUIDv7 when the client sent none), as AuthZEN requires.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(NewRequestId))
        .with_state(state)
}

/// Times every request for `medpdp_http_request_duration_seconds` (by route template, so the
/// label set is bounded).
async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state.metrics.http_request(route, response.status().as_u16(), started.elapsed());
    response
}

/// 431 for a request head larger than `limits.max_header_bytes`. hyper's read buffer bounds
/// the head only roughly (a head that arrives in one read may exceed it), so it is counted
/// exactly here: the request target plus every header name and value.
async fn check_head(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let max = state.limits.max_header_bytes;
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let headers: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if target + headers > max {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request head exceeds {max} bytes (limits.max_header_bytes)"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Generates `X-Request-ID`s: UUIDv7, so they sort by time like decision ids.
#[derive(Debug, Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()).ok().map(RequestId::new)
    }
}

/// One span per HTTP request; the access check fills in `caller` and handlers `decision_id`, so
/// every log line of the request carries them.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let path =
        req.extensions().get::<MatchedPath>().map_or_else(|| req.uri().path(), MatchedPath::as_str);
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok());
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %path,
        request_id = request_id.unwrap_or_default(),
        decision_id = tracing::field::Empty,
        caller = tracing::field::Empty,
    )
}
