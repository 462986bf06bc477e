//! The certificate authority over HTTP: EST enrollment (`est`), the admin API and the CRL
//! (`admin`), and the issuance pipeline they share (`issue`: CSR checks, the Cedar decision,
//! signing, registry, audit event).
//!
//! The CA itself (keys, profiles, registry) is `crate::ca`; this module decides *whether* to
//! issue and shapes the answers.

mod admin;
mod est;
mod issue;

use std::sync::Arc;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::ca::{Authority, EstConfig};

/// Every EST route starts with this.
pub const EST_PREFIX: &str = "/.well-known/est/";
/// `GET`: the CA certificates.
pub const EST_CACERTS: &str = "/.well-known/est/cacerts";
/// `POST`: initial enrollment.
pub const EST_SIMPLEENROLL: &str = "/.well-known/est/simpleenroll";
/// `POST`: re-enrollment with the current certificate.
pub const EST_SIMPLEREENROLL: &str = "/.well-known/est/simplereenroll";

/// The CA as the HTTP layer holds it.
#[derive(Debug)]
pub struct CaState {
    /// CA, profiles, registry.
    pub authority: Authority,
    /// `[est]`.
    pub est: EstConfig,
}

impl CaState {
    /// Wraps an opened authority.
    pub fn new(authority: Authority, est: EstConfig) -> Arc<Self> {
        Arc::new(Self { authority, est })
    }
}

/// The CA routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(est::cacerts))
        .routes(routes!(est::simpleenroll))
        .routes(routes!(est::simplereenroll))
        .routes(routes!(admin::list, admin::issue_cert))
        .routes(routes!(admin::revoke))
        .routes(routes!(admin::crl))
}
