//! `audit replay`: re-evaluates logged decisions, exactly (with the archived version that
//! decided each one) or what-if (against a candidate workspace).
//!
//! Streaming and parallel: a reader thread cuts the log into chunks of lines, a bounded
//! channel feeds one worker per core, and results are put back in log order before they reach
//! the caller; memory is bounded by the chunks in flight, whatever the log size. Each archived
//! version is loaded once ([`SnapshotCache`]).
//!
//! Exactness: `decide` is pure, and the record holds the request as received (including
//! request entities) and the version that decided it; a replayed decision must equal the
//! logged one in decision, reasons, errors and obligations (or, for a batch item that could not
//! be evaluated, the same error answer). A record whose request had fields masked cannot be
//! replayed faithfully; it is reported as not replayable and never counted as reproduced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::archive::{SnapshotCache, VersionArchive};
use super::query::Filter;
use super::record::LoggedRecord;
use super::segment::{list_segments, LogReader};
use super::AuditError;
use crate::decide::{decide, Decision, DecisionRequest, Outcome};
use crate::policy::Snapshot;

const CHUNK: usize = 256;

/// A chunk of log lines and its index in the log.
type Chunk = (u64, Vec<Vec<u8>>);

/// What to replay against.
#[derive(Debug, Clone)]
pub enum Target {
    /// Each record's own archived version: must reproduce every decision.
    Archived(VersionArchive),
    /// A candidate workspace: what would change.
    Candidate(Arc<Snapshot>),
}

/// How one replayed decision compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Same decision, reasons, errors and obligations (exact replay).
    Reproduced,
    /// Exact replay gave something else.
    Mismatch,
    /// Could not be replayed (masked inputs, missing version, damaged record).
    NotReplayable,
    /// What-if: same decision.
    Unchanged,
    /// What-if: was allowed, now denied.
    AllowToDeny,
    /// What-if: was denied, now allowed.
    DenyToAllow,
    /// What-if: now raises an error (and did not before).
    NowErroring,
}

/// A decision worth showing: a mismatch, a non-replayable record, or a what-if change.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayItem {
    /// The comparison.
    pub verdict: Verdict,
    /// Sequence number.
    pub seq: u64,
    /// Decision id.
    pub decision_id: String,
    /// When it was decided.
    pub ts: String,
    /// Principal, action, resource.
    pub principal: String,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// The logged decision.
    pub logged: Decision,
    /// The replayed decision, when there is one.
    pub replayed: Option<Decision>,
    /// Explanation (what differs).
    pub detail: String,
}

/// Totals of a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    /// Decision records that passed the filter.
    pub decisions: u64,
    /// Exact: reproduced.
    pub reproduced: u64,
    /// Exact: mismatched.
    pub mismatched: u64,
    /// Not replayable (see the items for why).
    pub not_replayable: u64,
    /// Of which because of masked inputs.
    pub masked: u64,
    /// What-if: unchanged.
    pub unchanged: u64,
    /// What-if: allow → deny.
    pub allow_to_deny: u64,
    /// What-if: deny → allow.
    pub deny_to_allow: u64,
    /// What-if: now erroring.
    pub now_erroring: u64,
    /// Lines that are not readable records (run `audit verify`).
    pub damaged: u64,
    /// Wall time.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl ReplaySummary {
    /// Replayed decisions per second.
    pub fn rate(&self) -> f64 {
        self.decisions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn add(&mut self, v: Verdict) {
        let c = match v {
            Verdict::Reproduced => &mut self.reproduced,
            Verdict::Mismatch => &mut self.mismatched,
            Verdict::NotReplayable => &mut self.not_replayable,
            Verdict::Unchanged => &mut self.unchanged,
            Verdict::AllowToDeny => &mut self.allow_to_deny,
            Verdict::DenyToAllow => &mut self.deny_to_allow,
            Verdict::NowErroring => &mut self.now_erroring,
        };
        *c += 1;
    }
}

/// A replay run.
#[derive(Debug)]
pub struct Replay {
    /// The log directory.
    pub log_dir: PathBuf,
    /// What to evaluate against.
    pub target: Target,
    /// Which records.
    pub filter: Filter,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

struct ChunkResult {
    summary: ReplaySummary,
    items: Vec<ReplayItem>,
    bytes: u64,
}

/// Total size of a log's segments (for progress).
pub fn log_bytes(dir: &Path) -> Result<u64, AuditError> {
    Ok(list_segments(dir)?.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum())
}

impl Replay {
    /// Runs the replay; `sink` gets every interesting item in log order, `progress` the bytes
    /// processed so far.
    pub fn run(
        &self,
        mut sink: impl FnMut(&ReplayItem),
        progress: &dyn Fn(u64),
    ) -> Result<ReplaySummary, AuditError> {
        let started = Instant::now();
        let reader = LogReader::open(&self.log_dir)?;
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        };
        let ctx = Arc::new(Ctx {
            cache: match &self.target {
                Target::Archived(a) => Some(SnapshotCache::new(a.clone())),
                Target::Candidate(_) => None,
            },
            candidate: match &self.target {
                Target::Candidate(s) => Some(Arc::clone(s)),
                Target::Archived(_) => None,
            },
            filter: self.filter.clone(),
        });
        let (work_tx, work_rx) = sync_channel::<Chunk>(threads * 2);
        let (done_tx, done_rx) = sync_channel::<(u64, ChunkResult)>(threads * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let mut summary = ReplaySummary::default();
        let read_error = std::thread::scope(|scope| {
            let producer = scope.spawn(move || -> Result<(), AuditError> {
                let mut chunk = Vec::with_capacity(CHUNK);
                let mut idx = 0;
                for line in reader {
                    chunk.push(line?.bytes);
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        if work_tx.send((idx, full)).is_err() {
                            return Ok(());
                        }
                        idx += 1;
                    }
                }
                if !chunk.is_empty() {
                    let _ = work_tx.send((idx, chunk));
                }
                Ok(())
            });
            for _ in 0..threads {
                let rx = Arc::clone(&work_rx);
                let tx = done_tx.clone();
                let ctx = Arc::clone(&ctx);
                scope.spawn(move || worker(&rx, &tx, &ctx));
            }
            drop(done_tx);
            // Put chunks back in log order; at most the chunks in flight wait here.
            let mut waiting: BTreeMap<u64, ChunkResult> = BTreeMap::new();
            let mut next = 0;
            let mut bytes = 0;
            for (idx, result) in done_rx.iter() {
                waiting.insert(idx, result);
                while let Some(r) = waiting.remove(&next) {
                    merge(&mut summary, &r.summary);
                    r.items.iter().for_each(&mut sink);
                    bytes += r.bytes;
                    progress(bytes);
                    next += 1;
                }
            }
            producer.join().unwrap_or(Ok(()))
        });
        read_error?;
        summary.elapsed = started.elapsed();
        Ok(summary)
    }
}

struct Ctx {
    cache: Option<SnapshotCache>,
    candidate: Option<Arc<Snapshot>>,
    filter: Filter,
}

fn worker(
    rx: &Mutex<Receiver<Chunk>>,
    tx: &std::sync::mpsc::SyncSender<(u64, ChunkResult)>,
    ctx: &Ctx,
) {
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok((idx, lines)) = next else {
            return;
        };
        let mut result =
            ChunkResult { summary: ReplaySummary::default(), items: Vec::new(), bytes: 0 };
        for line in &lines {
            result.bytes += line.len() as u64 + 1;
            replay_line(ctx, line, &mut result);
        }
        if tx.send((idx, result)).is_err() {
            return;
        }
    }
}

fn replay_line(ctx: &Ctx, line: &[u8], out: &mut ChunkResult) {
    let Ok(mut rec) = serde_json::from_slice::<LoggedRecord>(line) else {
        out.summary.damaged += 1;
        return;
    };
    if !ctx.filter.matches(&rec) {
        return;
    }
    out.summary.decisions += 1;
    let logged = rec.decision.unwrap_or(Decision::Deny);
    let what_if = ctx.candidate.is_some();
    let (verdict, replayed, detail) = if !rec.masked.is_empty() {
        out.summary.masked += 1;
        (Verdict::NotReplayable, None, format!("masked inputs: {}", rec.masked.join(", ")))
    } else {
        let snapshot = match (&ctx.candidate, &ctx.cache) {
            (Some(s), _) => Ok(Arc::clone(s)),
            (None, Some(cache)) => match rec.policy_version.as_deref() {
                Some(v) => cache.get(v),
                None => Err("the record names no policy version".to_owned()),
            },
            (None, None) => Err("nothing to replay against".to_owned()),
        };
        match snapshot {
            Err(e) => (Verdict::NotReplayable, None, e),
            Ok(snapshot) => {
                // The request moves into evaluation (no copy); keep what a listed item shows.
                let request = rec.request.take().unwrap_or(Value::Null);
                let mut shown = serde_json::Map::new();
                for key in ["principal", "action", "resource"] {
                    if let Some(v) = request.get(key) {
                        shown.insert(key.to_owned(), v.clone());
                    }
                }
                let now = evaluate(&snapshot, request, &rec);
                rec.request = Some(Value::Object(shown));
                if what_if {
                    compare_what_if(&rec, &now)
                } else {
                    compare_exact(&rec, &now)
                }
            }
        }
    };
    out.summary.add(verdict);
    if !matches!(verdict, Verdict::Reproduced | Verdict::Unchanged) {
        let q = super::query::QueryRow::of(&rec);
        out.items.push(ReplayItem {
            verdict,
            seq: rec.seq,
            decision_id: q.decision_id,
            ts: q.ts,
            principal: q.principal,
            action: q.action,
            resource: q.resource,
            logged,
            replayed,
            detail,
        });
    }
}

/// The outcome of re-evaluating a record: an outcome, or the error answer (as JSON).
type Now = Result<Outcome, Value>;

fn evaluate(snapshot: &Snapshot, raw: Value, rec: &LoggedRecord) -> Now {
    let batch_index = rec
        .source
        .as_ref()
        .filter(|s| s.get("endpoint").and_then(Value::as_str) == Some("batch"))
        .and_then(|s| s.get("index"))
        .and_then(Value::as_u64);
    match batch_index {
        // A batch item is evaluated through the same path the batch endpoint used, so an item
        // that failed fails the same way.
        Some(i) => {
            crate::http::decide_batch_item(snapshot, raw, usize::try_from(i).unwrap_or(usize::MAX))
                .map(|(_, o)| o)
                .map_err(|e| e.to_json())
        }
        None => match serde_json::from_value::<DecisionRequest>(raw) {
            Ok(req) => decide(snapshot, &req).map_err(|e| crate::http::ApiError::from(e).to_json()),
            Err(e) => {
                Err(serde_json::json!({"code": "malformed_request", "message": e.to_string()}))
            }
        },
    }
}

fn describe(o: &Now) -> String {
    match o {
        Ok(o) => {
            let errs: Vec<&str> = o.errors.iter().map(|e| e.policy.as_str()).collect();
            format!(
                "{} [{}]{}",
                if o.decision == Decision::Allow { "allow" } else { "deny" },
                o.reasons.join(", "),
                if errs.is_empty() {
                    String::new()
                } else {
                    format!(" errors [{}]", errs.join(", "))
                }
            )
        }
        Err(e) => format!("error {}", e.get("code").and_then(Value::as_str).unwrap_or("?")),
    }
}

fn logged_now(rec: &LoggedRecord) -> Now {
    match &rec.request_error {
        Some(e) => Err(e.clone()),
        None => Ok(Outcome {
            decision: rec.decision.unwrap_or(Decision::Deny),
            reasons: rec.reasons.clone(),
            errors: rec.errors.clone(),
            obligations: rec.obligations.clone(),
        }),
    }
}

fn compare_exact(rec: &LoggedRecord, now: &Now) -> (Verdict, Option<Decision>, String) {
    let logged = logged_now(rec);
    let replayed = Some(now.as_ref().map_or(Decision::Deny, |o| o.decision));
    if logged == *now {
        (Verdict::Reproduced, replayed, String::new())
    } else {
        (
            Verdict::Mismatch,
            replayed,
            format!("logged {}, replayed {}", describe(&logged), describe(now)),
        )
    }
}

fn erroring(o: &Now) -> bool {
    o.as_ref().map_or(true, |o| !o.errors.is_empty())
}

fn compare_what_if(rec: &LoggedRecord, now: &Now) -> (Verdict, Option<Decision>, String) {
    let logged = logged_now(rec);
    let before = logged.as_ref().map_or(Decision::Deny, |o| o.decision);
    let after = now.as_ref().map_or(Decision::Deny, |o| o.decision);
    let verdict = if erroring(now) && !erroring(&logged) {
        Verdict::NowErroring
    } else if before == after {
        Verdict::Unchanged
    } else if before == Decision::Allow {
        Verdict::AllowToDeny
    } else {
        Verdict::DenyToAllow
    };
    (verdict, Some(after), format!("was {}, now {}", describe(&logged), describe(now)))
}

fn merge(total: &mut ReplaySummary, s: &ReplaySummary) {
    total.decisions += s.decisions;
    total.reproduced += s.reproduced;
    total.mismatched += s.mismatched;
    total.not_replayable += s.not_replayable;
    total.masked += s.masked;
    total.unchanged += s.unchanged;
    total.allow_to_deny += s.allow_to_deny;
    total.deny_to_allow += s.deny_to_allow;
    total.now_erroring += s.now_erroring;
    total.damaged += s.damaged;
}
