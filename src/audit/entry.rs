//! What callers hand to the log: decision entries and events, and their payload encoding.
//!
//! The payload is serialized by the caller's task (in parallel with other requests); the
//! writer only prepends `seq`/`prev` and hashes.

use serde::Serialize;
use serde_json::Value;

use super::mask::Masker;
use super::record::{now_rfc3339, payload_of, RecordKind};
use super::AuditError;
use crate::decide::{Decision, DecisionRequest, Outcome};
use crate::http::DecisionSource;
use crate::identity::Caller;
use crate::policy::Snapshot;

/// The request as the log records it.
#[derive(Debug, Clone, Copy)]
pub enum LoggedRequest<'a> {
    /// A request that parsed.
    Parsed(&'a DecisionRequest),
    /// A batch item that did not parse, as received.
    Raw(&'a Value),
}

/// One decision, borrowed from the request path.
#[derive(Debug, Clone, Copy)]
pub struct DecisionEntry<'a> {
    /// The id the caller receives.
    pub decision_id: &'a str,
    /// The authenticated caller, if any.
    pub caller: Option<&'a Caller>,
    /// The endpoint.
    pub source: &'a DecisionSource,
    /// The snapshot that decided.
    pub snapshot: &'a Snapshot,
    /// The request.
    pub request: LoggedRequest<'a>,
    /// The outcome, or the error answer of a batch item that could not be evaluated.
    pub outcome: Result<&'a Outcome, &'a Value>,
    /// Evaluation time in microseconds.
    pub eval_us: u64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RequestJson<'a> {
    Parsed(&'a DecisionRequest),
    Value(&'a Value),
    Masked(Value),
}

#[derive(Serialize)]
struct DecisionPayload<'a> {
    kind: RecordKind,
    ts: String,
    decision_id: &'a str,
    caller: Option<String>,
    source: &'a DecisionSource,
    policy_version: &'a str,
    entities_version: &'a str,
    request: RequestJson<'a>,
    decision: Decision,
    reasons: &'a [String],
    errors: &'a [crate::decide::EvaluationError],
    obligations: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    request_error: Option<&'a Value>,
    eval_us: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    masked: Vec<String>,
}

impl DecisionEntry<'_> {
    /// The record payload, with configured fields masked.
    pub(crate) fn payload(&self, masker: &Masker) -> Result<Vec<u8>, AuditError> {
        let encode = |e: serde_json::Error| AuditError::Encode(e.to_string());
        let (request, masked) = if masker.is_active() {
            let mut v = match self.request {
                LoggedRequest::Parsed(r) => serde_json::to_value(r).map_err(encode)?,
                LoggedRequest::Raw(v) => v.clone(),
            };
            let masked = masker.apply(&mut v);
            (RequestJson::Masked(v), masked)
        } else {
            let r = match self.request {
                LoggedRequest::Parsed(r) => RequestJson::Parsed(r),
                LoggedRequest::Raw(v) => RequestJson::Value(v),
            };
            (r, Vec::new())
        };
        let empty: &[String] = &[];
        let (decision, reasons, errors, obligations, request_error) = match self.outcome {
            Ok(o) => (o.decision, &o.reasons[..], &o.errors[..], &o.obligations[..], None),
            Err(e) => (Decision::Deny, empty, &[][..], empty, Some(e)),
        };
        let meta = self.snapshot.meta();
        payload_of(&DecisionPayload {
            kind: RecordKind::Decision,
            ts: now_rfc3339(),
            decision_id: self.decision_id,
            caller: self.caller.map(Caller::urn),
            source: self.source,
            policy_version: &meta.version,
            entities_version: &meta.entities_version,
            request,
            decision,
            reasons,
            errors,
            obligations,
            request_error,
            eval_us: self.eval_us,
            masked,
        })
        .map_err(encode)
    }
}

/// Kinds of non-decision events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A workspace version became active (written before it serves any decision).
    PolicyActivated,
    /// An administrator did something (reload, configuration change, …).
    AdminAction,
    /// The CA issued a credential.
    CredentialIssued,
    /// The CA renewed a credential.
    CredentialRenewed,
    /// The CA revoked a credential.
    CredentialRevoked,
}

/// A non-decision event: what happened, who asked, and the details an auditor needs
/// (e.g. a certificate serial and subject, never key material).
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// What happened.
    pub kind: EventKind,
    /// Who asked, when an authenticated caller did.
    pub caller: Option<Caller>,
    /// Free-form details (a JSON object).
    pub details: Value,
}

#[derive(Serialize)]
struct EventPayload<'a> {
    kind: RecordKind,
    ts: String,
    event: EventKind,
    caller: Option<String>,
    details: &'a Value,
}

impl AuditEvent {
    /// An event.
    pub fn new(kind: EventKind, caller: Option<Caller>, details: Value) -> Self {
        Self { kind, caller, details }
    }

    pub(crate) fn payload(&self) -> Result<Vec<u8>, AuditError> {
        payload_of(&EventPayload {
            kind: RecordKind::Event,
            ts: now_rfc3339(),
            event: self.kind,
            caller: self.caller.as_ref().map(Caller::urn),
            details: &self.details,
        })
        .map_err(|e| AuditError::Encode(e.to_string()))
    }
}
