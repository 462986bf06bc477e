//! The OpenID AuthZEN Authorization API 1.0: access evaluation(s), the three search APIs and
//! the PDP metadata document, over the HTTPS JSON binding.
//!
//! AuthZEN requests are mapped onto Cedar decision requests ([`mapping`]) and decided through
//! [`crate::http::evaluate`] like every other decision. This module does not authenticate or
//! authorize the PEP: that is the listener's and the access layer's job, as for every endpoint.

mod evaluation;
mod index;
mod mapping;
mod model;
mod search;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use tower_http::request_id::RequestId;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};
use crate::config::AuthzenConfig;
use crate::policy::Snapshot;

pub use index::IndexHook;
pub(crate) use model::parse;

/// Default paths of the AuthZEN endpoints (also their routes).
pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
/// Access Evaluations API.
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
/// Subject Search API.
pub const SEARCH_SUBJECT_PATH: &str = "/access/v1/search/subject";
/// Resource Search API.
pub const SEARCH_RESOURCE_PATH: &str = "/access/v1/search/resource";
/// Action Search API.
pub const SEARCH_ACTION_PATH: &str = "/access/v1/search/action";
/// PDP metadata.
pub const METADATA_PATH: &str = "/.well-known/authzen-configuration";

/// Longest `X-Request-ID` recorded with a decision (the header itself is echoed unchanged).
const MAX_RECORDED_REQUEST_ID: usize = 256;

/// Which AuthZEN API asked for a decision (recorded with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthzenApi {
    /// `POST /access/v1/evaluation`.
    Evaluation,
    /// `POST /access/v1/evaluations`.
    Evaluations,
    /// `POST /access/v1/search/subject`.
    SearchSubject,
    /// `POST /access/v1/search/resource`.
    SearchResource,
    /// `POST /access/v1/search/action`.
    SearchAction,
}

/// What the AuthZEN handlers share.
#[derive(Debug)]
pub struct AuthzenState {
    namespace: String,
    base_url: String,
    search_scan_limit: usize,
    index: Arc<IndexHook>,
}

impl AuthzenState {
    /// `base_url` is the announced `policy_decision_point`; `index` must be registered with the
    /// policy store as its last activation hook.
    pub fn new(config: &AuthzenConfig, base_url: String, index: Arc<IndexHook>) -> Self {
        Self {
            namespace: config.namespace.clone(),
            base_url,
            search_scan_limit: config.search_scan_limit,
            index,
        }
    }

    /// The base URL announced as `policy_decision_point`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn index_for(&self, snapshot: &Snapshot) -> Result<Arc<index::SnapshotIndex>, ApiError> {
        self.index.get(snapshot.version()).ok_or_else(|| {
            tracing::error!(
                version = snapshot.version(),
                "no AuthZEN index for the active snapshot: the index hook is not registered"
            );
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "authzen_unavailable",
                "the AuthZEN endpoints are not ready",
            )
        })
    }
}

/// The AuthZEN routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(evaluation::evaluation))
        .routes(routes!(evaluation::evaluations))
        .routes(routes!(search::search_subject))
        .routes(routes!(search::search_resource))
        .routes(routes!(search::search_action))
        .routes(routes!(metadata))
}

/// The request's `X-Request-ID` (set by the router's request-id layer when the PEP sent none),
/// bounded for the decision record.
#[derive(Debug, Clone)]
pub(crate) struct RequestIdOf(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for RequestIdOf {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let value = parts
            .extensions
            .get::<RequestId>()
            .map(RequestId::header_value)
            .or_else(|| parts.headers.get("x-request-id"));
        let id = value
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(MAX_RECORDED_REQUEST_ID)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self(id))
    }
}

/// The PDP metadata document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PdpMetadata {
    /// The base URL of this PDP (`[authzen] base_url`).
    pub policy_decision_point: String,
    /// URL of the Access Evaluation API.
    pub access_evaluation_endpoint: String,
    /// URL of the Access Evaluations API.
    pub access_evaluations_endpoint: String,
    /// URL of the Subject Search API.
    pub search_subject_endpoint: String,
    /// URL of the Resource Search API.
    pub search_resource_endpoint: String,
    /// URL of the Action Search API.
    pub search_action_endpoint: String,
    /// Obligation types answers may carry (AuthZEN obligations profile).
    pub supported_obligations: Vec<String>,
}

/// Where the AuthZEN endpoints are.
#[utoipa::path(
    get,
    path = "/.well-known/authzen-configuration",
    tag = "authzen",
    responses((status = 200, description = "PDP metadata", body = PdpMetadata))
)]
pub(super) async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let base = state.authzen.base_url();
    let doc = PdpMetadata {
        policy_decision_point: base.to_owned(),
        access_evaluation_endpoint: format!("{base}{EVALUATION_PATH}"),
        access_evaluations_endpoint: format!("{base}{EVALUATIONS_PATH}"),
        search_subject_endpoint: format!("{base}{SEARCH_SUBJECT_PATH}"),
        search_resource_endpoint: format!("{base}{SEARCH_RESOURCE_PATH}"),
        search_action_endpoint: format!("{base}{SEARCH_ACTION_PATH}"),
        supported_obligations: vec!["custom".to_owned()],
    };
    // It changes only with the configuration.
    ([(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"))], Json(doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::DecisionSource;

    #[test]
    fn decisions_are_recorded_with_the_api_and_request_id() {
        let source = DecisionSource::Authzen {
            api: AuthzenApi::Evaluations,
            request_id: "bfe9eb29".into(),
            index: Some(2),
        };
        assert_eq!(
            serde_json::to_value(&source).unwrap(),
            serde_json::json!({
                "endpoint": "authzen", "api": "evaluations", "request_id": "bfe9eb29", "index": 2
            })
        );
        let single = DecisionSource::Authzen {
            api: AuthzenApi::Evaluation,
            request_id: "r".into(),
            index: None,
        };
        assert!(serde_json::to_value(&single).unwrap().get("index").is_none());
    }
}
