//! Record filters shared by `audit query` and `audit replay`: time range, principal, action,
//! decision. Streaming; nothing is indexed.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::record::{format_ts, LoggedRecord, RecordKind};
use super::segment::LogReader;
use super::AuditError;
use crate::decide::{parse_entity_ref, Decision};

/// Which decision records to look at. Empty matches every decision.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Recorded at or after (RFC 3339, normalized to the log's format).
    since: Option<String>,
    /// Recorded before.
    until: Option<String>,
    /// Principal: an entity (`Type::"id"`) or an entity type (`Type`).
    principal: Option<EntityMatch>,
    /// Action: an action entity, or just its id (`attach`).
    action: Option<EntityMatch>,
    /// Logged decision.
    decision: Option<Decision>,
}

#[derive(Debug, Clone)]
enum EntityMatch {
    Exact(String),
    Type(String),
    Id(String),
}

impl Filter {
    /// Only records at or after `t` (RFC 3339).
    pub fn since(mut self, t: &str) -> Result<Self, String> {
        self.since = Some(normalize_time(t)?);
        Ok(self)
    }

    /// Only records before `t` (RFC 3339).
    pub fn until(mut self, t: &str) -> Result<Self, String> {
        self.until = Some(normalize_time(t)?);
        Ok(self)
    }

    /// Only this principal (`Type::"id"`, `{"type","id"}` JSON) or principal type (`Type`).
    pub fn principal(mut self, p: &str) -> Self {
        self.principal = Some(entity_match(p, false));
        self
    }

    /// Only this action (`Ns::Action::"id"` or `id`).
    pub fn action(mut self, a: &str) -> Self {
        self.action = Some(entity_match(a, true));
        self
    }

    /// Only this logged decision.
    pub fn decision(mut self, d: Decision) -> Self {
        self.decision = Some(d);
        self
    }

    /// Whether a decision record passes the filter (events and checkpoints never do).
    pub fn matches(&self, r: &LoggedRecord) -> bool {
        if r.kind != RecordKind::Decision {
            return false;
        }
        if self.since.as_deref().is_some_and(|s| r.ts.as_str() < s)
            || self.until.as_deref().is_some_and(|u| r.ts.as_str() >= u)
        {
            return false;
        }
        if self.decision.is_some_and(|d| r.decision != Some(d)) {
            return false;
        }
        let field = |name: &str| r.request.as_ref().and_then(|q| q.get(name));
        if let Some(m) = &self.principal {
            if !entity_matches(m, field("principal")) {
                return false;
            }
        }
        if let Some(m) = &self.action {
            if !entity_matches(m, field("action")) {
                return false;
            }
        }
        true
    }
}

fn normalize_time(t: &str) -> Result<String, String> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(format_ts)
        .map_err(|e| format!("`{t}` is not an RFC 3339 time such as 2026-11-24T10:00:00Z: {e}"))
}

fn entity_match(s: &str, id_alone: bool) -> EntityMatch {
    let as_json = serde_json::from_str::<Value>(s).ok();
    let uid = as_json
        .as_ref()
        .and_then(|v| parse_entity_ref(v).ok())
        .or_else(|| parse_entity_ref(&Value::String(s.to_owned())).ok());
    match uid {
        Some(uid) => EntityMatch::Exact(uid.to_string()),
        None if id_alone && !s.contains("::") => EntityMatch::Id(s.to_owned()),
        None => EntityMatch::Type(s.to_owned()),
    }
}

fn entity_matches(m: &EntityMatch, v: Option<&Value>) -> bool {
    let Some(uid) = v.and_then(|v| parse_entity_ref(v).ok()) else {
        return false;
    };
    match m {
        EntityMatch::Exact(s) => uid.to_string() == *s,
        EntityMatch::Type(t) => uid.type_name().to_string() == *t,
        EntityMatch::Id(id) => uid.id().unescaped() == id,
    }
}

/// One record as `audit query` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct QueryRow {
    /// Sequence number.
    pub seq: u64,
    /// When.
    pub ts: String,
    /// Decision id.
    pub decision_id: String,
    /// Caller URN, if any.
    pub caller: String,
    /// Principal.
    pub principal: String,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// Allow or deny.
    pub decision: String,
    /// Determining policies, `;`-separated.
    pub reasons: String,
    /// Erroring policies or the request error, `;`-separated.
    pub errors: String,
    /// Policy version.
    pub policy_version: String,
}

impl QueryRow {
    /// The row of a decision record.
    pub fn of(r: &LoggedRecord) -> Self {
        let entity = |name: &str| {
            r.request
                .as_ref()
                .and_then(|q| q.get(name))
                .map(|v| {
                    parse_entity_ref(v).map(|u| u.to_string()).unwrap_or_else(|_| v.to_string())
                })
                .unwrap_or_default()
        };
        let mut errors: Vec<String> = r.errors.iter().map(|e| e.policy.clone()).collect();
        if let Some(e) = &r.request_error {
            errors
                .push(e.get("code").and_then(Value::as_str).unwrap_or("request_error").to_owned());
        }
        Self {
            seq: r.seq,
            ts: r.ts.clone(),
            decision_id: r.decision_id.clone().unwrap_or_default(),
            caller: r.caller.clone().unwrap_or_default(),
            principal: entity("principal"),
            action: entity("action"),
            resource: entity("resource"),
            decision: r
                .decision
                .map(|d| if d == Decision::Allow { "allow" } else { "deny" })
                .unwrap_or("")
                .to_owned(),
            reasons: r.reasons.join(";"),
            errors: errors.join(";"),
            policy_version: r.policy_version.clone().unwrap_or_default(),
        }
    }
}

/// Streams the decision records of the log in `dir` that pass `filter` to `sink` (which
/// returns false to stop). Damaged lines are skipped and counted; `audit verify` reports them.
pub fn query(
    dir: &Path,
    filter: &Filter,
    mut sink: impl FnMut(&LoggedRecord) -> bool,
) -> Result<u64, AuditError> {
    let mut damaged = 0;
    for line in LogReader::open(dir)? {
        let line = line?;
        match serde_json::from_slice::<LoggedRecord>(&line.bytes) {
            Ok(r) if filter.matches(&r) => {
                if !sink(&r) {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => damaged += 1,
        }
    }
    Ok(damaged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(ts: &str, principal: Value, action: &str, decision: &str) -> LoggedRecord {
        serde_json::from_value(json!({
            "seq": 1, "prev": "", "kind": "decision", "ts": ts, "hash": "",
            "decision": decision,
            "request": {"principal": principal, "action": action, "resource": "A::R::\"r\""}
        }))
        .unwrap()
    }

    #[test]
    fn filters_by_time_principal_action_and_decision() {
        let r = rec(
            "2026-11-24T10:00:00.000000Z",
            json!("Med5G::Terminal::\"t1\""),
            "Med5G::Action::\"attach\"",
            "allow",
        );
        assert!(Filter::default().matches(&r));
        assert!(Filter::default().since("2026-11-24T10:00:00Z").unwrap().matches(&r));
        assert!(!Filter::default().since("2026-11-24T10:00:01Z").unwrap().matches(&r));
        assert!(!Filter::default().until("2026-11-24T11:00:00+01:00").unwrap().matches(&r));
        assert!(Filter::default().principal("Med5G::Terminal::\"t1\"").matches(&r));
        assert!(Filter::default()
            .principal("{\"type\":\"Med5G::Terminal\",\"id\":\"t1\"}")
            .matches(&r));
        assert!(Filter::default().principal("Med5G::Terminal").matches(&r));
        assert!(!Filter::default().principal("Med5G::Clinician").matches(&r));
        assert!(Filter::default().action("attach").matches(&r));
        assert!(Filter::default().action("Med5G::Action::\"attach\"").matches(&r));
        assert!(!Filter::default().action("transmit").matches(&r));
        assert!(!Filter::default().decision(Decision::Deny).matches(&r));
        assert!(Filter::default().since("yesterday").is_err());
    }
}
