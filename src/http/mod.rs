//! The HTTP API: routes, shared state, and the per-request tracing span.
//!
//! Handlers are thin: they extract and check input, call [`crate::decide`], and shape the
//! answer. The router is built by [`router`] so tests can drive it without a socket.

mod decide;
mod error;
mod json;
mod ops;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::policy::PolicyStore;

pub use decide::{evaluate, new_decision_id, DecisionResponse, DecisionSource};
pub use error::ApiError;
pub use json::JsonBody;

/// Parses a decision request from JSON bytes as the API does (same errors, same field paths).
pub fn parse_request_json(bytes: &[u8]) -> Result<crate::decide::DecisionRequest, ApiError> {
    json::parse_json(bytes)
}

/// Bounds on what one request may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most requests in one batch (400 above).
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, max_batch: 100 }
    }
}

/// What every handler can reach. Cheap to clone (reference-counted).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The domain policy workspace.
    pub store: Arc<PolicyStore>,
    /// Request bounds.
    pub limits: Limits,
    /// When the service started.
    pub started_at: time::OffsetDateTime,
}

/// Builds the API router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/v1/decide", post(decide::decide_one))
        .route("/v1/decide/batch", post(decide::decide_batch))
        .route("/v1/status", get(ops::status))
        .route("/v1/admin/reload", post(ops::reload))
        .route("/health/live", get(ops::live))
        .route("/health/ready", get(ops::ready))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(body_limit))
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
        .with_state(state)
}

/// One span per HTTP request; handlers fill in `decision_id` (and `caller`, once callers are
/// authenticated) so every log line of the request carries them.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let path =
        req.extensions().get::<MatchedPath>().map_or_else(|| req.uri().path(), MatchedPath::as_str);
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %path,
        decision_id = tracing::field::Empty,
        caller = tracing::field::Empty,
    )
}
