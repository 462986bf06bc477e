//! `GET /v1/audit/records`: auditors read decision records over the API (access action
//! `read_log`), with the filters of `medpdp audit query`, paged by sequence number.
//!
//! Records are answered exactly as they are stored (one JSON object per line of the log, hash
//! included), so an auditor can check each one's hash and chain link offline. The log is
//! streamed from its start on a blocking thread; `after` skips what a previous page returned.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::audit::query::Filter;
use crate::audit::record::LoggedRecord;
use crate::audit::segment::LogReader;
use crate::decide::Decision;

/// Most records one page may hold.
const MAX_LIMIT: usize = 1000;

/// Filters and paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordsQuery {
    /// Recorded at or after (RFC 3339).
    since: Option<String>,
    /// Recorded before (RFC 3339).
    until: Option<String>,
    /// An entity (`Med5G::Terminal::"t-ecg1"`) or an entity type (`Med5G::Terminal`).
    principal: Option<String>,
    /// An action (`Med5G::Action::"attach"`) or just its id (`attach`).
    action: Option<String>,
    /// `allow` or `deny`.
    decision: Option<String>,
    /// Only records after this sequence number (the `next_after` of the previous page).
    after: Option<u64>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

/// A page of decision records.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RecordsPage {
    /// Decision records as stored (byte for byte), oldest first.
    #[schema(value_type = Vec<Object>)]
    records: Vec<Box<serde_json::value::RawValue>>,
    /// Pass as `after` for the next page; `null` when this page reached the end of the log.
    next_after: Option<u64>,
}

/// Decision records of the log that pass the filters, oldest first.
#[utoipa::path(get, path = "/v1/audit/records", tag = "audit", params(RecordsQuery),
    responses(
        (status = 200, description = "A page of decision records, exactly as stored", body = RecordsPage),
        (status = 400, description = "A bad filter", body = super::ErrorEnvelope),
        (status = 503, description = "The decision log is disabled", body = super::ErrorEnvelope),
    ))]
pub(super) async fn records(
    State(state): State<AppState>,
    query: Result<Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordsPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let log = state.audit.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "audit_disabled",
            "the decision log is disabled (audit.enabled = false)",
        )
    })?;
    let filter = filter(&q)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let after = q.after.unwrap_or(0);
    let dir = log.dir().to_owned();
    let page = tokio::task::spawn_blocking(move || read_page(&dir, &filter, after, limit))
        .await
        .map_err(|e| {
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?
        .map_err(|e| {
            tracing::error!("cannot read the decision log: {e}");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "audit_unreadable",
                "the decision log cannot be read right now",
            )
        })?;
    Ok(Json(page))
}

fn filter(q: &RecordsQuery) -> Result<Filter, ApiError> {
    let bad = |field: &str, m: String| ApiError::bad_request("bad_filter", m).with_field(field);
    let mut f = Filter::default();
    if let Some(t) = &q.since {
        f = f.since(t).map_err(|m| bad("since", m))?;
    }
    if let Some(t) = &q.until {
        f = f.until(t).map_err(|m| bad("until", m))?;
    }
    if let Some(p) = &q.principal {
        f = f.principal(p);
    }
    if let Some(a) = &q.action {
        f = f.action(a);
    }
    match q.decision.as_deref() {
        None => {}
        Some("allow") => f = f.decision(Decision::Allow),
        Some("deny") => f = f.decision(Decision::Deny),
        Some(other) => return Err(bad("decision", format!("`{other}` is not `allow` or `deny`"))),
    }
    Ok(f)
}

fn read_page(
    dir: &std::path::Path,
    filter: &Filter,
    after: u64,
    limit: usize,
) -> Result<RecordsPage, crate::audit::AuditError> {
    let mut records = Vec::new();
    let mut last = None;
    for line in LogReader::open(dir)? {
        let line = line?;
        // Damaged lines are `audit verify`'s business; they are skipped here.
        let Ok(record) = serde_json::from_slice::<LoggedRecord>(&line.bytes) else {
            continue;
        };
        if record.seq <= after || !filter.matches(&record) {
            continue;
        }
        if records.len() == limit {
            return Ok(RecordsPage { records, next_after: last });
        }
        // Served as stored, so that each record's hash can be checked against its bytes.
        let raw = String::from_utf8(line.bytes).ok();
        if let Some(raw) = raw.and_then(|s| serde_json::value::RawValue::from_string(s).ok()) {
            records.push(raw);
            last = Some(record.seq);
        }
    }
    Ok(RecordsPage { records, next_after: None })
}
