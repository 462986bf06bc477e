//! The issuance pipeline shared by EST and the admin API: check the CSR against the profile,
//! ask the Med5G credential policies (through [`crate::http::evaluate`], so the decision is
//! recorded like every other), sign and commit the registry row, record the audit event.
//!
//! INVARIANT: a certificate of a policy-gated profile (terminal, gateway) is signed only after
//! an `allow` of `request_credential` / `renew_credential` for that principal and profile, and
//! the registry row carries that decision's id.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, EvalResult};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::CaState;
use crate::audit::{AuditEvent, EventKind};
use crate::ca::authority::{IssueRequest, Subject};
use crate::ca::csr::Csr;
use crate::ca::profiles::{cedar_duration, Profile};
use crate::ca::registry::{CertRecord, IssueEffect, RegistryError};
use crate::ca::CaError;
use crate::decide::DecisionRequest;
use crate::http::{evaluate, ApiError, AppState, DecisionSource, EvaluateError};
use crate::identity::{Caller, CallerKind};
use crate::policy::Snapshot;

/// How the requester proved who it is.
#[derive(Debug, Clone)]
pub(super) enum AuthMethod {
    /// A manufacturer (IDevID) certificate with this serialNumber.
    Idevid(String),
    /// A one-time enrollment token with this id.
    Token(String),
    /// An administrator (admin API).
    Admin(Caller),
    /// The current operational certificate (EST re-enrollment).
    Renewal {
        /// Its serial.
        serial: String,
        /// Its end of validity.
        not_after: OffsetDateTime,
        /// Whether the registry has it revoked.
        revoked: bool,
    },
}

impl AuthMethod {
    /// The registry's `issued_via`.
    pub(super) fn via(&self) -> &'static str {
        match self {
            AuthMethod::Idevid(_) => "est-idevid",
            AuthMethod::Token(_) => "est-token",
            AuthMethod::Admin(_) => "admin-api",
            AuthMethod::Renewal { .. } => "est-reenroll",
        }
    }

    fn describe(&self) -> String {
        match self {
            AuthMethod::Idevid(sn) => format!("idevid:{sn}"),
            AuthMethod::Token(id) => format!("token:{id}"),
            AuthMethod::Admin(c) => c.urn(),
            AuthMethod::Renewal { serial, .. } => format!("certificate:{serial}"),
        }
    }
}

/// Why no certificate was issued.
#[derive(Debug)]
pub(super) enum IssueError {
    /// The request is wrong (CSR, profile, validity): 400.
    BadRequest(String),
    /// The credentials do not allow it: 401.
    Unauthorized(String),
    /// Policy said no: 403 with the decision.
    Denied {
        /// The decision id.
        decision_id: String,
        /// Determining policies.
        reasons: Vec<String>,
        /// Why, for people.
        message: String,
    },
    /// Refused outright (already renewed, not ours): 403.
    Forbidden(String),
    /// Another error answer (e.g. 503 no policy / audit unavailable).
    Api(ApiError),
}

impl From<CaError> for IssueError {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Registry(RegistryError::TokenUnusable) => {
                IssueError::Unauthorized(RegistryError::TokenUnusable.to_string())
            }
            CaError::Registry(e @ RegistryError::AlreadySuperseded(_)) => {
                IssueError::Forbidden(e.to_string())
            }
            CaError::Invalid(m) => IssueError::BadRequest(m),
            other => {
                tracing::error!(error = %other, "certificate issuance failed");
                IssueError::Api(ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the certificate could not be issued",
                ))
            }
        }
    }
}

/// One issuance to decide and carry out.
#[derive(Debug)]
pub(super) struct Enrollment {
    /// What the certificate will name.
    pub(super) subject: Subject,
    /// The profile's name.
    pub(super) profile: String,
    /// The checked CSR.
    pub(super) csr: Csr,
    /// Asked validity (admin only); `None`: the profile's lifetime.
    pub(super) validity: Option<Duration>,
    /// How the requester authenticated.
    pub(super) auth: AuthMethod,
    /// The operational caller asking, if any (recorded with the decision).
    pub(super) requester: Option<Caller>,
}

/// Checks, decides (policy-gated profiles), issues and records. Returns the registry row.
pub(super) async fn issue(
    state: &AppState,
    ca: &Arc<CaState>,
    e: Enrollment,
) -> Result<CertRecord, IssueError> {
    let authority = &ca.authority;
    let profile = authority
        .profiles()
        .get(&e.profile)
        .ok_or_else(|| IssueError::BadRequest(format!("no profile named `{}`", e.profile)))?;
    if !profile.allows(e.csr.key_alg) {
        authority.counters().rejected.fetch_add(1, Ordering::Relaxed);
        return Err(IssueError::BadRequest(format!(
            "profile `{}` does not allow {} keys (allowed: {})",
            profile.name,
            e.csr.key_alg,
            profile.key_algs.join(", ")
        )));
    }
    let validity = e.validity.unwrap_or(profile.lifetime);
    if validity > profile.max_lifetime {
        return Err(IssueError::BadRequest(format!(
            "validity {validity} is longer than profile `{}` allows ({})",
            profile.name, profile.max_lifetime
        )));
    }
    let decision_id = match (&e.subject, profile.kind.policy_gated()) {
        (Subject::Caller(subject), true) => {
            Some(decide(state, ca, subject, profile, &e, validity).await?)
        }
        _ => None,
    };
    let effect_arg = match &e.auth {
        AuthMethod::Token(id) => Some(id.clone()),
        AuthMethod::Renewal { serial, .. } => Some(serial.clone()),
        _ => None,
    };
    let renewal = matches!(e.auth, AuthMethod::Renewal { .. });
    let via = e.auth.via();
    let ca2 = Arc::clone(ca);
    let subject = e.subject.clone();
    let public_key = e.csr.public_key.clone();
    let key_alg = e.csr.key_alg.name();
    let profile_name = profile.name.clone();
    let decision = decision_id.clone();
    // Signing and the synchronous SQLite commit are blocking work.
    let record = tokio::task::spawn_blocking(move || {
        let authority = &ca2.authority;
        let profile = authority
            .profiles()
            .get(&profile_name)
            .ok_or_else(|| CaError::Invalid(format!("no profile named `{profile_name}`")))?;
        let effect = match (&effect_arg, renewal) {
            (Some(serial), true) => IssueEffect::Supersede(serial),
            (Some(token), false) => IssueEffect::ConsumeToken(token),
            (None, _) => IssueEffect::None,
        };
        authority.issue(&IssueRequest {
            subject,
            profile,
            public_key: &public_key,
            key_alg,
            validity: Some(validity),
            via,
            decision_id: decision,
            effect,
        })
    })
    .await
    .map_err(|join| {
        tracing::error!(error = %join, "issuance task failed");
        IssueError::Api(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the certificate could not be issued",
        ))
    })??;
    let kind = if renewal { EventKind::CredentialRenewed } else { EventKind::CredentialIssued };
    let details = json!({
        "serial": record.serial,
        "identity": record.identity,
        "profile": record.profile,
        "key_alg": record.key_alg,
        "not_before": record.not_before.format(&Rfc3339).unwrap_or_default(),
        "not_after": record.not_after.format(&Rfc3339).unwrap_or_default(),
        "via": record.issued_via,
        "authenticated_as": e.auth.describe(),
        "decision_id": record.decision_id,
        "renews": match &e.auth { AuthMethod::Renewal { serial, .. } => Some(serial), _ => None },
    });
    record_event(state, AuditEvent::new(kind, e.requester.clone(), details)).await?;
    tracing::info!(
        serial = %record.serial,
        identity = %record.identity,
        profile = %record.profile,
        via = %record.issued_via,
        "certificate issued"
    );
    Ok(record)
}

/// Records a CA event in the decision log; no log, no answer (503), as for decisions.
pub(super) async fn record_event(state: &AppState, event: AuditEvent) -> Result<(), IssueError> {
    if let Some(log) = &state.audit {
        log.record_event(&event).await.map_err(|err| {
            tracing::error!(error = %err, "CA event not recorded");
            IssueError::Api(ApiError::audit_unavailable())
        })?;
    }
    Ok(())
}

/// The Cedar decision for a policy-gated profile; the decision id of an allow.
async fn decide(
    state: &AppState,
    ca: &CaState,
    subject: &Caller,
    profile: &Profile,
    e: &Enrollment,
    validity: Duration,
) -> Result<String, IssueError> {
    let snapshot = state.store.current().ok_or_else(|| IssueError::Api(ApiError::no_policy()))?;
    let req = credential_request(ca, subject, profile, e, validity, state.audit.is_some())
        .map_err(IssueError::BadRequest)?;
    let source = DecisionSource::Ca {
        operation: if matches!(e.auth, AuthMethod::Renewal { .. }) { "renew" } else { "issue" },
        authenticated_as: e.auth.describe(),
    };
    let answer = match evaluate(state, &snapshot, e.requester.as_ref(), &source, &req).await {
        Ok(a) => a,
        Err(EvaluateError::Request(r)) => {
            return Err(IssueError::BadRequest(format!(
                "the policy schema refuses the issuance request: {}",
                r.message
            )))
        }
        Err(other) => return Err(IssueError::Api(other.into())),
    };
    if answer.decision != crate::decide::Decision::Allow {
        ca.authority.counters().denied.fetch_add(1, Ordering::Relaxed);
        let reasons: Vec<String> = answer
            .reasons
            .iter()
            .cloned()
            .chain(answer.errors.iter().map(|er| er.policy.clone()))
            .collect();
        let why =
            if reasons.is_empty() { "no policy permits it".to_owned() } else { reasons.join(", ") };
        return Err(IssueError::Denied {
            message: format!(
                "issuance of a `{}` certificate to `{}` denied by policy ({why})",
                profile.name, subject
            ),
            decision_id: answer.decision_id,
            reasons,
        });
    }
    Ok(answer.decision_id)
}

/// The `request_credential` / `renew_credential` request: the device as principal, the profile
/// as resource, a context from the CSR, the validity and the authentication.
fn credential_request(
    ca: &CaState,
    subject: &Caller,
    profile: &Profile,
    e: &Enrollment,
    validity: Duration,
    audit_available: bool,
) -> Result<DecisionRequest, String> {
    let ns = &ca.authority.config().namespace;
    let principal_type = match subject.kind {
        CallerKind::Terminal => "Terminal",
        CallerKind::Gateway => "Gateway",
        other => return Err(format!("`{}` identities are not decided by policy", other.as_str())),
    };
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(OffsetDateTime::now_utc());
    // The CA has no location or risk feed: it states a neutral score and no geofence breach.
    let env = json!({
        "now": now.format(&Rfc3339).unwrap_or_default(),
        "risk_score": 0,
        "inside_geofence": true,
        "audit_available": audit_available,
    });
    let (action, context) = match &e.auth {
        AuthMethod::Renewal { not_after, revoked, .. } => (
            "renew_credential",
            json!({
                "env": env,
                "key_alg": e.csr.key_alg.name(),
                "requested_validity": cedar_duration(validity),
                "current_cert_expiry": not_after.format(&Rfc3339).unwrap_or_default(),
                "current_cert_revoked": revoked,
            }),
        ),
        // The device's identity was proven at enrollment: by its manufacturer certificate, by
        // an administrator's one-time token bound to it, or by the administrator issuing.
        _ => (
            "request_credential",
            json!({
                "env": env,
                "attested": true,
                "key_alg": e.csr.key_alg.name(),
                "requested_validity": cedar_duration(validity),
            }),
        ),
    };
    let value = json!({
        "principal": {"type": format!("{ns}::{principal_type}"), "id": subject.id},
        "action": format!("{ns}::Action::\"{action}\""),
        "resource": {"type": format!("{ns}::CertificateProfile"), "id": profile.name},
        "context": context,
    });
    serde_json::from_value(value).map_err(|err| format!("cannot build the decision request: {err}"))
}

/// Whether the device's `kind` attribute is one of the profile entity's `allowed_kinds` (used
/// to pick a profile when a kind has several and the request names none).
pub(super) fn device_fits(snapshot: &Snapshot, ns: &str, subject: &Caller, profile: &str) -> bool {
    let uid = |ty: &str, id: &str| -> Option<EntityUid> {
        let t: EntityTypeName = format!("{ns}::{ty}").parse().ok()?;
        Some(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
    };
    let ty = if subject.kind == CallerKind::Gateway { "Gateway" } else { "Terminal" };
    let (Some(device), Some(prof)) = (uid(ty, &subject.id), uid("CertificateProfile", profile))
    else {
        return false;
    };
    let entities = snapshot.entities();
    let kind = match entities.get(&device).and_then(|d| d.attr("kind")) {
        Some(Ok(EvalResult::String(k))) => k,
        _ => return false,
    };
    match entities.get(&prof).and_then(|p| p.attr("allowed_kinds")) {
        Some(Ok(EvalResult::Set(set))) => {
            set.iter().any(|v| matches!(v, EvalResult::String(s) if *s == kind))
        }
        _ => false,
    }
}
