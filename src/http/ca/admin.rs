//! The CA's admin API (access action `manage_ca`): list, issue from a CSR, revoke; and the CRL
//! (any operational caller).
//!
//! A revocation rewrites the CRL and reloads the TLS material at once (not through the file
//! watcher's debounce), so the revoked certificate's next handshake fails.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::issue::{self, AuthMethod, Enrollment, IssueError};
use super::CaState;
use crate::audit::{AuditEvent, EventKind};
use crate::ca::authority::Subject;
use crate::ca::csr::{decode_base64, parse_csr};
use crate::ca::profiles::{parse_duration, ProfileKind};
use crate::ca::registry::{CertRecord, CertStatus, ListFilter};
use crate::ca::{pem_of, RevocationReason, SubjectAltName};
use crate::http::{ApiError, AppState, JsonBody};
use crate::identity::Caller;
use crate::policy::ReloadTrigger;

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::BadRequest(m) => ApiError::bad_request("bad_certificate_request", m),
            IssueError::Unauthorized(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
            }
            IssueError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            IssueError::Denied { decision_id, reasons, message } => {
                ApiError::new(StatusCode::FORBIDDEN, "issuance_denied", message)
                    .with_details(json!({"decision_id": decision_id, "reasons": reasons}))
            }
            IssueError::Api(api) => api,
        }
    }
}

fn ca(state: &AppState) -> Result<&std::sync::Arc<CaState>, ApiError> {
    state.ca.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_ca",
            "no certificate authority is configured",
        )
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "CA operation failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
}

/// A registry entry as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CertificateView {
    serial: String,
    identity: String,
    profile: String,
    key_alg: String,
    not_before: String,
    not_after: String,
    /// `valid`, `superseded` or `revoked`.
    status: String,
    superseded_by: Option<String>,
    revoked_at: Option<String>,
    revocation_reason: Option<String>,
    issued_at: String,
    /// `est-idevid`, `est-token`, `est-reenroll`, `admin-api`, `cli`, `dev-pki`.
    issued_via: String,
    decision_id: Option<String>,
    /// The certificate (PEM); on issuance only.
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
    /// The CA certificates a client sends after it (PEM; empty for a root CA); on issuance only.
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<String>,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl CertificateView {
    fn of(r: &CertRecord) -> Self {
        Self {
            serial: r.serial.clone(),
            identity: r.identity.clone(),
            profile: r.profile.clone(),
            key_alg: r.key_alg.clone(),
            not_before: rfc3339(r.not_before),
            not_after: rfc3339(r.not_after),
            status: serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            superseded_by: r.superseded_by.clone(),
            revoked_at: r.revoked_at.map(rfc3339),
            revocation_reason: r.revocation_reason.map(|x| x.as_str().to_owned()),
            issued_at: rfc3339(r.issued_at),
            issued_via: r.issued_via.clone(),
            decision_id: r.decision_id.clone(),
            certificate: None,
            chain: None,
        }
    }
}

/// `GET /v1/ca/certificates` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only this identity (`urn:medpdp:terminal:t-ecg1`, or `dns:<name>` for servers).
    identity: Option<String>,
    /// Only `valid`, `superseded` or `revoked`.
    status: Option<String>,
    /// At most this many, newest first (default 100, at most 10000).
    limit: Option<usize>,
}

/// `{"certificates": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct CertificateList {
    certificates: Vec<CertificateView>,
}

/// Lists issued certificates, newest first.
#[utoipa::path(get, path = "/v1/ca/certificates", tag = "ca", params(ListQuery),
    responses(
        (status = 200, description = "Registry entries", body = CertificateList),
        (status = 400, description = "Bad filter", body = super::super::ErrorEnvelope),
        (status = 503, description = "No CA is configured", body = super::super::ErrorEnvelope),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CertificateList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let ca = std::sync::Arc::clone(ca(&state)?);
    let status = match q.status.as_deref() {
        None => None,
        Some("valid") => Some(CertStatus::Valid),
        Some("superseded") => Some(CertStatus::Superseded),
        Some("revoked") => Some(CertStatus::Revoked),
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_filter",
                format!("unknown status `{other}` (valid, superseded, revoked)"),
            )
            .with_field("status"))
        }
    };
    let filter = ListFilter {
        identity: q.identity,
        status,
        limit: Some(q.limit.unwrap_or(100).min(10_000)),
    };
    let rows = tokio::task::spawn_blocking(move || ca.authority.registry().list(&filter))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(CertificateList { certificates: rows.iter().map(CertificateView::of).collect() }))
}

/// `POST /v1/ca/certificates`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IssueBody {
    /// The CSR: base64 DER or PEM. Only its public key is used.
    csr: String,
    /// The profile (`certs/profiles.toml`).
    profile: String,
    /// The identity for caller profiles: `urn:medpdp:<kind>:<id>` of the profile's kind.
    identity: Option<String>,
    /// DNS names, for `server` profiles.
    #[serde(default)]
    dns: Vec<String>,
    /// IP addresses, for `server` profiles.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    ips: Vec<std::net::IpAddr>,
    /// Validity such as `12h` or `30d` (default: the profile's lifetime; at most its
    /// `max_lifetime`).
    validity: Option<String>,
}

/// Issues a certificate for an administrator. Terminal and gateway profiles are still a Cedar
/// decision (`request_credential`, attested by the administrator).
#[utoipa::path(post, path = "/v1/ca/certificates", tag = "ca", request_body = IssueBody,
    responses(
        (status = 201, description = "Issued: the registry entry with `certificate` and `chain` (PEM)", body = CertificateView),
        (status = 400, description = "Bad CSR, profile, identity or validity", body = super::super::ErrorEnvelope),
        (status = 403, description = "`issuance_denied` by policy: `details` has `decision_id` and `reasons`", body = super::super::ErrorEnvelope),
        (status = 503, description = "No CA, no valid policy set, or the decision log is unavailable", body = super::super::ErrorEnvelope),
    ))]
pub(super) async fn issue_cert(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    JsonBody(body): JsonBody<IssueBody>,
) -> Result<Response, ApiError> {
    let ca = ca(&state)?;
    let caller = caller.map(|Extension(c)| c);
    let bad = |code, m: String, field: &str| ApiError::bad_request(code, m).with_field(field);
    let profile = ca.authority.profiles().get(&body.profile).ok_or_else(|| {
        bad("unknown_profile", format!("no profile named `{}`", body.profile), "profile")
    })?;
    let subject = if profile.kind == ProfileKind::Server {
        let mut names: Vec<SubjectAltName> =
            body.dns.iter().map(|d| SubjectAltName::Dns(d.clone())).collect();
        names.extend(body.ips.iter().map(|ip| SubjectAltName::Ip(*ip)));
        if names.is_empty() || body.identity.is_some() {
            return Err(bad(
                "bad_identity",
                "a `server` profile takes `dns` and/or `ips`, not `identity`".into(),
                "dns",
            ));
        }
        Subject::Server(names)
    } else {
        let urn = body
            .identity
            .as_deref()
            .ok_or_else(|| bad("bad_identity", "`identity` is required".into(), "identity"))?;
        let c =
            Caller::from_urn(urn).map_err(|e| bad("bad_identity", e.to_string(), "identity"))?;
        if Some(c.kind) != profile.kind.caller_kind() {
            return Err(bad(
                "bad_identity",
                format!("profile `{}` is not for `{}` identities", profile.name, c.kind.as_str()),
                "identity",
            ));
        }
        Subject::Caller(c)
    };
    let validity = match &body.validity {
        Some(v) => Some(parse_duration(v).map_err(|m| bad("bad_validity", m, "validity"))?),
        None => None,
    };
    let max = ca.authority.config().max_csr_bytes;
    let csr = decode_base64(body.csr.as_bytes())
        .and_then(|der| parse_csr(&der, max))
        .map_err(|e| bad("bad_csr", e.to_string(), "csr"))?;
    let Some(admin) = caller.clone() else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "no caller"));
    };
    let enrollment = Enrollment {
        subject,
        profile: profile.name.clone(),
        csr,
        validity,
        auth: AuthMethod::Admin(admin),
        requester: caller,
    };
    let record = issue::issue(&state, ca, enrollment).await?;
    let mut view = CertificateView::of(&record);
    view.certificate = Some(pem_of("CERTIFICATE", &record.der));
    view.chain = Some(ca.authority.chain_pem_for_leaf());
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `POST /v1/ca/certificates/{serial}/revoke`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeBody {
    /// `unspecified`, `key-compromise`, `ca-compromise`, `affiliation-changed`, `superseded`,
    /// `cessation-of-operation`, `privilege-withdrawn`.
    reason: String,
}

/// The revoked entry and the CRL now in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RevokeAnswer {
    certificate: CertificateView,
    /// `{number, revoked, next_update}` of the new CRL.
    #[schema(value_type = Object)]
    crl: serde_json::Value,
}

/// Revokes a certificate: the registry, a new CRL, and the TLS listeners at once.
#[utoipa::path(post, path = "/v1/ca/certificates/{serial}/revoke", tag = "ca", request_body = RevokeBody,
    params(("serial" = String, Path, description = "Serial number, hex")),
    responses(
        (status = 200, description = "Revoked; the new CRL is in force for new connections", body = RevokeAnswer),
        (status = 400, description = "The serial is not hexadecimal, or the reason is unknown", body = super::super::ErrorEnvelope),
        (status = 404, description = "No certificate with this serial", body = super::super::ErrorEnvelope),
        (status = 409, description = "Already revoked", body = super::super::ErrorEnvelope),
        (status = 503, description = "No CA is configured, or the decision log is unavailable", body = super::super::ErrorEnvelope),
    ))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(serial): Path<String>,
    JsonBody(body): JsonBody<RevokeBody>,
) -> Result<Json<RevokeAnswer>, ApiError> {
    let ca = std::sync::Arc::clone(ca(&state)?);
    if serial.is_empty() || serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "bad_serial",
            format!("`{serial}` is not a serial number (hexadecimal, as `ca list` shows it)"),
        )
        .with_field("serial"));
    }
    let reason = RevocationReason::parse(&body.reason).ok_or_else(|| {
        ApiError::bad_request("bad_reason", format!("unknown reason `{}`", body.reason))
            .with_field("reason")
    })?;
    let serial_arg = serial.clone();
    let ca2 = std::sync::Arc::clone(&ca);
    let result = tokio::task::spawn_blocking(move || ca2.authority.revoke(&serial_arg, reason))
        .await
        .map_err(internal)?;
    let (record, crl) = result.map_err(|e| match e {
        crate::ca::CaError::Registry(r @ crate::ca::registry::RegistryError::UnknownSerial(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_serial", r.to_string())
        }
        crate::ca::CaError::Registry(r @ crate::ca::registry::RegistryError::AlreadyRevoked(_)) => {
            ApiError::new(StatusCode::CONFLICT, "already_revoked", r.to_string())
        }
        other => internal(other),
    })?;
    // INVARIANT: the listeners use the new CRL before the revocation is answered.
    if let Some(tls) = &state.tls {
        tls.reload(ReloadTrigger::Admin).await;
    }
    let caller = caller.map(|Extension(c)| c);
    let details = json!({
        "serial": record.serial,
        "identity": record.identity,
        "reason": reason.as_str(),
        "crl_number": crl.number,
    });
    issue::record_event(&state, AuditEvent::new(EventKind::CredentialRevoked, caller, details))
        .await?;
    tracing::info!(serial = %record.serial, reason = reason.as_str(), "certificate revoked");
    Ok(Json(RevokeAnswer {
        certificate: CertificateView::of(&record),
        crl: json!({"number": crl.number, "revoked": crl.revoked, "next_update": rfc3339(crl.next_update)}),
    }))
}

/// The CA's current CRL (DER).
#[utoipa::path(get, path = "/v1/ca/crl", tag = "ca",
    responses(
        (status = 200, description = "The signed X.509 CRL (DER)", content_type = "application/pkix-crl", body = Vec<u8>),
        (status = 503, description = "No CA is configured", body = super::super::ErrorEnvelope),
    ))]
pub(super) async fn crl(State(state): State<AppState>) -> Result<Response, ApiError> {
    let der = ca(&state)?.authority.crl_der().map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/pkix-crl"))], der)
        .into_response())
}
