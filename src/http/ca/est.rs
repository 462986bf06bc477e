//! EST (RFC 7030) enrollment: `cacerts`, `simpleenroll`, `simplereenroll`.
//!
//! Bodies are base64 (RFC 8951: with or without line breaks); answers are base64 certs-only
//! PKCS#7. Errors are `text/plain` sentences, as EST clients show them to people; a policy
//! denial names the decision id and the determining policies.
//!
//! Who may enroll as whom:
//! - a device with a manufacturer certificate (a `BootstrapPeer`) enrolls as
//!   `urn:medpdp:<est.bootstrap_kind>:<subject serialNumber>`;
//! - a client without a certificate (EST listener) enrolls with a one-time token (HTTP Basic,
//!   RFC 7030 §3.2.3: user = token id, password = secret) as the identity the token is bound to;
//! - `simplereenroll` needs the current operational certificate, issued by this CA, neither
//!   renewed nor revoked; the new certificate names the same identity with the same profile,
//!   and the old one is recorded as superseded. (The CSR's subject is not compared: the CA
//!   never writes it.)

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;

use super::issue::{self, AuthMethod, Enrollment, IssueError};
use super::CaState;
use crate::ca::authority::Subject;
use crate::ca::csr::{decode_base64, parse_csr, Csr};
use crate::ca::pkcs7;
use crate::ca::registry::CertStatus;
use crate::http::AppState;
use crate::identity::Caller;
use crate::tls::{BootstrapPeer, PeerCertificate};

const PKCS7: &str = "application/pkcs7-mime; smime-type=certs-only";

/// An EST error answer: a status and a plain-text sentence.
#[derive(Debug)]
pub(super) struct EstError(StatusCode, String);

impl IntoResponse for EstError {
    fn into_response(self) -> Response {
        let mut resp =
            (self.0, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.1 + "\n")
                .into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"medpdp EST\""),
            );
        }
        resp
    }
}

impl From<IssueError> for EstError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::BadRequest(m) => EstError(StatusCode::BAD_REQUEST, m),
            IssueError::Unauthorized(m) => EstError(StatusCode::UNAUTHORIZED, m),
            IssueError::Forbidden(m) => EstError(StatusCode::FORBIDDEN, m),
            IssueError::Denied { decision_id, message, .. } => {
                EstError(StatusCode::FORBIDDEN, format!("{message}; decision `{decision_id}`"))
            }
            IssueError::Api(api) => EstError(api.status(), api.message().to_owned()),
        }
    }
}

fn ca(state: &AppState) -> Result<&std::sync::Arc<CaState>, EstError> {
    state.ca.as_ref().ok_or_else(|| {
        EstError(StatusCode::SERVICE_UNAVAILABLE, "no certificate authority is configured".into())
    })
}

fn pkcs7_answer(der: &[u8]) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(PKCS7)),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                HeaderValue::from_static("base64"),
            ),
        ],
        pkcs7::base64_lines(der),
    )
        .into_response()
}

/// The CA certificates (RFC 7030 §4.1): the issuing CA, then its chain up to the root.
#[utoipa::path(get, path = "/.well-known/est/cacerts", tag = "est",
    responses(
        (status = 200, description = "Base64 certs-only PKCS#7: the issuing CA certificate and the certificates above it", content_type = "application/pkcs7-mime", body = String),
        (status = 503, description = "No CA is configured", content_type = "text/plain", body = String),
    ))]
pub(super) async fn cacerts(State(state): State<AppState>) -> Result<Response, EstError> {
    Ok(pkcs7_answer(&ca(&state)?.authority.cacerts_pkcs7()))
}

/// Checks the content type and decodes and checks the CSR.
fn read_csr(ca: &CaState, headers: &HeaderMap, body: &[u8]) -> Result<Csr, EstError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let essence =
        content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if essence.as_deref() != Some("application/pkcs10") {
        return Err(EstError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be a base64 PKCS#10 request with Content-Type: application/pkcs10"
                .into(),
        ));
    }
    let max = ca.authority.config().max_csr_bytes;
    // Base64 is 4/3 of the DER, plus line breaks.
    if body.len() > max * 2 {
        return Err(EstError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request is {} bytes; CSRs are limited to {max} bytes", body.len()),
        ));
    }
    let checked = decode_base64(body).and_then(|der| parse_csr(&der, max));
    checked.map_err(|e| {
        ca.authority.counters().rejected.fetch_add(1, Ordering::Relaxed);
        EstError(StatusCode::BAD_REQUEST, format!("bad CSR: {e}"))
    })
}

/// HTTP Basic credentials `(user, password)`.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Initial enrollment (RFC 7030 §4.2.1), authenticated by a manufacturer certificate or a
/// one-time token.
#[utoipa::path(post, path = "/.well-known/est/simpleenroll", tag = "est",
    request_body(content = String, content_type = "application/pkcs10", description = "Base64 DER PKCS#10 request (line breaks allowed)"),
    responses(
        (status = 200, description = "Base64 certs-only PKCS#7 holding the issued certificate", content_type = "application/pkcs7-mime", body = String),
        (status = 400, description = "Bad CSR (encoding, signature, key algorithm, profile)", content_type = "text/plain", body = String),
        (status = 401, description = "No usable credential: token missing, unknown, used or expired", content_type = "text/plain", body = String),
        (status = 403, description = "Denied by policy (decision id and policies named), or not an enrolling client", content_type = "text/plain", body = String),
        (status = 413, description = "Larger than `ca.max_csr_bytes`", content_type = "text/plain", body = String),
        (status = 415, description = "Not `application/pkcs10`", content_type = "text/plain", body = String),
        (status = 503, description = "No CA, no valid policy set, or the decision log is unavailable", content_type = "text/plain", body = String),
    ))]
pub(super) async fn simpleenroll(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    bootstrap: Option<Extension<BootstrapPeer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, EstError> {
    let ca = ca(&state)?;
    if let Some(Extension(c)) = &caller {
        return Err(EstError(
            StatusCode::FORBIDDEN,
            format!("`{c}` already has an operational certificate: renew it with simplereenroll"),
        ));
    }
    let kind = ca.est.bootstrap_kind;
    let (subject, auth, token_profile) = match &bootstrap {
        Some(Extension(b)) => {
            let caller_kind = kind.caller_kind().unwrap_or(crate::identity::CallerKind::Terminal);
            let subject = Caller::new(caller_kind, &b.serial_number)
                .map_err(|e| EstError(StatusCode::FORBIDDEN, e.to_string()))?;
            (subject, AuthMethod::Idevid(b.serial_number.clone()), None)
        }
        None => {
            let Some((user, pass)) = basic_auth(&headers) else {
                return Err(EstError(
                    StatusCode::UNAUTHORIZED,
                    "enrollment needs a manufacturer certificate or a one-time token (HTTP Basic)"
                        .into(),
                ));
            };
            let token = ca.authority.check_token(&user, &pass).map_err(|e| {
                ca.authority.counters().rejected.fetch_add(1, Ordering::Relaxed);
                EstError::from(IssueError::from(e))
            })?;
            let subject = Caller::from_urn(&token.identity)
                .map_err(|e| EstError(StatusCode::FORBIDDEN, e.to_string()))?;
            (subject, AuthMethod::Token(token.id), token.profile)
        }
    };
    let csr = read_csr(ca, &headers, &body)?;
    let profile_kind = match subject.kind {
        crate::identity::CallerKind::Gateway => crate::ca::profiles::ProfileKind::Gateway,
        _ => crate::ca::profiles::ProfileKind::Terminal,
    };
    let snapshot = state.store.current();
    let ns = ca.authority.config().namespace.clone();
    let profile = ca
        .authority
        .choose_profile(profile_kind, token_profile.as_deref(), |p| {
            snapshot.as_ref().is_some_and(|s| issue::device_fits(s, &ns, &subject, &p.name))
        })
        .map_err(|m| EstError(StatusCode::BAD_REQUEST, m))?
        .name
        .clone();
    let enrollment = Enrollment {
        subject: Subject::Caller(subject),
        profile,
        csr,
        validity: None,
        auth,
        requester: None,
    };
    let record = issue::issue(&state, ca, enrollment).await?;
    Ok(pkcs7_answer(&pkcs7::certs_only(&[&record.der])))
}

/// Re-enrollment (RFC 7030 §4.2.2), authenticated by the current certificate.
#[utoipa::path(post, path = "/.well-known/est/simplereenroll", tag = "est",
    request_body(content = String, content_type = "application/pkcs10", description = "Base64 DER PKCS#10 request (a new key is allowed)"),
    responses(
        (status = 200, description = "Base64 certs-only PKCS#7 holding the new certificate; the old one is superseded", content_type = "application/pkcs7-mime", body = String),
        (status = 400, description = "Bad CSR", content_type = "text/plain", body = String),
        (status = 403, description = "Not a current certificate of this CA (unknown, renewed, revoked), or denied by policy", content_type = "text/plain", body = String),
        (status = 415, description = "Not `application/pkcs10`", content_type = "text/plain", body = String),
        (status = 503, description = "No CA, no valid policy set, or the decision log is unavailable", content_type = "text/plain", body = String),
    ))]
pub(super) async fn simplereenroll(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, EstError> {
    let ca = ca(&state)?;
    let (Some(Extension(caller)), Some(Extension(cert))) = (caller, cert) else {
        return Err(EstError(
            StatusCode::FORBIDDEN,
            "re-enrollment needs the current operational certificate".into(),
        ));
    };
    let authority = &ca.authority;
    let lookup = {
        let ca2 = std::sync::Arc::clone(ca);
        let serial = cert.serial.clone();
        tokio::task::spawn_blocking(move || ca2.authority.registry().get(&serial)).await
    };
    let current = match lookup {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => {
            return Err(EstError(
                StatusCode::FORBIDDEN,
                format!("certificate `{}` was not issued by this CA", cert.serial),
            ))
        }
        _ => {
            return Err(EstError(StatusCode::INTERNAL_SERVER_ERROR, "registry unavailable".into()))
        }
    };
    if current.identity != caller.urn() {
        return Err(EstError(
            StatusCode::FORBIDDEN,
            "the certificate does not match its registry entry".into(),
        ));
    }
    if current.status == CertStatus::Superseded {
        authority.counters().rejected.fetch_add(1, Ordering::Relaxed);
        return Err(EstError(
            StatusCode::FORBIDDEN,
            format!(
                "certificate `{}` was already renewed (by `{}`); renew with the newest one",
                current.serial,
                current.superseded_by.unwrap_or_default()
            ),
        ));
    }
    let revoked = current.status == CertStatus::Revoked;
    let gated = authority.profiles().get(&current.profile).is_some_and(|p| p.kind.policy_gated());
    if revoked && !gated {
        return Err(EstError(
            StatusCode::FORBIDDEN,
            format!("certificate `{}` is revoked", current.serial),
        ));
    }
    let csr = read_csr(ca, &headers, &body)?;
    let enrollment = Enrollment {
        subject: Subject::Caller(caller.clone()),
        profile: current.profile.clone(),
        csr,
        validity: None,
        auth: AuthMethod::Renewal {
            serial: current.serial.clone(),
            not_after: current.not_after,
            revoked,
        },
        requester: Some(caller),
    };
    let record = issue::issue(&state, ca, enrollment).await?;
    Ok(pkcs7_answer(&pkcs7::certs_only(&[&record.der])))
}
