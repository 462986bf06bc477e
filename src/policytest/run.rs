//! Running test cases against a snapshot: expand each request, decide it with
//! [`crate::decide::decide`] (exactly what the service would answer), compare with the
//! expectation, and compute policy coverage.
//!
//! A policy is *covered* when it is among the determining policies (`reasons`) of at least one
//! passing case: some test shows it deciding. Templates are not counted (their links are).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::file::{TestCase, TestFile};
use crate::decide::{decide, Decision, DecisionRequest, Outcome, RequestError, RequestErrorCode};
use crate::policy::Snapshot;

/// The result of running test files.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of the workspace the cases ran against.
    pub policy_version: String,
    /// Per file, in the order given.
    pub files: Vec<FileReport>,
    /// Which policies the passing cases made decisive.
    pub coverage: Coverage,
}

/// The results of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file.
    pub path: String,
    /// Its cases, in file order.
    pub cases: Vec<CaseResult>,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// Whether everything expected matched.
    pub passed: bool,
    /// What did not match (empty when passed).
    pub mismatches: Vec<Mismatch>,
    /// What medpdp answered.
    pub actual: Actual,
    /// Time to evaluate the case.
    #[serde(serialize_with = "as_secs")]
    pub elapsed: Duration,
}

/// What medpdp answered for a case.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actual {
    /// The request was decided.
    Decided(Outcome),
    /// The request was rejected before evaluation.
    Rejected(RequestError),
}

/// One difference between expected and actual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum Mismatch {
    /// The decision differs.
    Decision {
        /// Expected.
        expected: Decision,
        /// Actual.
        actual: Decision,
    },
    /// The determining policies differ.
    Reasons {
        /// Expected.
        expected: Vec<String>,
        /// Actual.
        actual: Vec<String>,
        /// Expected ids that are no policy of the workspace (likely typos).
        unknown: Vec<String>,
    },
    /// The obligations differ.
    Obligations {
        /// Expected.
        expected: Vec<String>,
        /// Actual.
        actual: Vec<String>,
    },
    /// The policies raising errors differ.
    Errors {
        /// Expected.
        expected: Vec<String>,
        /// Actual.
        actual: Vec<String>,
    },
    /// A rejection was expected and the request was decided, or the other way round, or the
    /// rejection has another code.
    RequestError {
        /// Expected code, if a rejection was expected.
        expected: Option<String>,
        /// Actual code and message, if the request was rejected.
        actual: Option<String>,
    },
}

/// Policy coverage.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// Every policy of the workspace (templates excluded), with the number of passing cases
    /// it determined.
    pub policies: BTreeMap<String, usize>,
    /// Policies no passing case made decisive, sorted.
    pub uncovered: Vec<String>,
}

impl Coverage {
    /// Covered policies / all policies, in percent (100 for a workspace without policies).
    pub fn percent(&self) -> f64 {
        let total = self.policies.len();
        if total == 0 {
            return 100.0;
        }
        let covered = total - self.uncovered.len();
        // Counts are far below 2^52, so the conversions are exact.
        covered as f64 * 100.0 / total as f64
    }

    /// Whether every policy is covered.
    pub fn complete(&self) -> bool {
        self.uncovered.is_empty()
    }
}

impl Report {
    /// Number of passing cases.
    pub fn passed(&self) -> usize {
        self.cases().filter(|c| c.passed).count()
    }

    /// Number of failing cases.
    pub fn failed(&self) -> usize {
        self.cases().filter(|c| !c.passed).count()
    }

    /// Every case result, file by file.
    pub fn cases(&self) -> impl Iterator<Item = &CaseResult> {
        self.files.iter().flat_map(|f| f.cases.iter())
    }

    /// `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Runs every case of `files` against `snapshot`.
pub fn run(snapshot: &Snapshot, files: &[TestFile]) -> Report {
    let mut counts: BTreeMap<String, usize> = snapshot
        .policy_infos()
        .into_iter()
        .filter(|i| !i.template)
        .map(|i| (i.id.clone(), 0))
        .collect();
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        let mut cases = Vec::with_capacity(file.cases.len());
        for case in &file.cases {
            let result = run_case(snapshot, file, case, &counts);
            if let (true, Actual::Decided(outcome)) = (result.passed, &result.actual) {
                for id in &outcome.reasons {
                    if let Some(n) = counts.get_mut(id) {
                        *n += 1;
                    }
                }
            }
            cases.push(result);
        }
        reports.push(FileReport { path: file.path.clone(), cases });
    }
    let uncovered = counts.iter().filter(|(_, n)| **n == 0).map(|(id, _)| id.clone()).collect();
    Report {
        policy_version: snapshot.version().to_owned(),
        files: reports,
        coverage: Coverage { policies: counts, uncovered },
    }
}

fn run_case(
    snapshot: &Snapshot,
    file: &TestFile,
    case: &TestCase,
    known: &BTreeMap<String, usize>,
) -> CaseResult {
    let started = Instant::now();
    let request = case.expanded_request(&file.defaults);
    let actual = match serde_path_to_error::deserialize::<_, DecisionRequest>(&request) {
        Ok(req) => match decide(snapshot, &req) {
            Ok(outcome) => Actual::Decided(outcome),
            Err(e) => Actual::Rejected(e),
        },
        // The API answers such a body with a `malformed` error, and so does the runner.
        Err(e) => {
            let field = e.path().to_string();
            let message = e.into_inner().to_string();
            Actual::Rejected(RequestError { code: RequestErrorCode::Malformed, field, message })
        }
    };
    let elapsed = started.elapsed();
    let mismatches = compare(case, &actual, known);
    CaseResult {
        name: case.name.clone(),
        passed: mismatches.is_empty(),
        mismatches,
        actual,
        elapsed,
    }
}

fn compare(case: &TestCase, actual: &Actual, known: &BTreeMap<String, usize>) -> Vec<Mismatch> {
    let expect = &case.expect;
    let mut out = Vec::new();
    let outcome = match actual {
        Actual::Decided(outcome) => outcome,
        Actual::Rejected(e) => {
            let code = code_name(e.code);
            if expect.request_error.as_deref() != Some(code.as_str()) {
                out.push(Mismatch::RequestError {
                    expected: expect.request_error.clone(),
                    actual: Some(format!("{code}: {e}")),
                });
            }
            return out;
        }
    };
    if expect.request_error.is_some() {
        out.push(Mismatch::RequestError { expected: expect.request_error.clone(), actual: None });
        return out;
    }
    if let Some(expected) = expect.decision {
        if expected != outcome.decision {
            out.push(Mismatch::Decision { expected, actual: outcome.decision });
        }
    }
    if let Some(expected) = &expect.reasons {
        if !same_set(expected, &outcome.reasons) {
            let unknown = expected.iter().filter(|id| !known.contains_key(*id)).cloned().collect();
            out.push(Mismatch::Reasons {
                expected: sorted(expected),
                actual: outcome.reasons.clone(),
                unknown,
            });
        }
    }
    if let Some(expected) = &expect.obligations {
        if !same_set(expected, &outcome.obligations) {
            out.push(Mismatch::Obligations {
                expected: sorted(expected),
                actual: sorted(&outcome.obligations),
            });
        }
    }
    if let Some(expected) = &expect.errors {
        let actual: Vec<String> = outcome.errors.iter().map(|e| e.policy.clone()).collect();
        if !same_set(expected, &actual) {
            out.push(Mismatch::Errors { expected: sorted(expected), actual: sorted(&actual) });
        }
    }
    out
}

pub(super) fn code_name(code: RequestErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{code:?}"),
    }
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".to_owned()
    } else {
        v.join(", ")
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Decision { expected, actual } => {
                write!(f, "decision: expected {}, got {}", decision(*expected), decision(*actual))
            }
            Mismatch::Reasons { expected, actual, unknown } => {
                write!(f, "reasons: expected {}, got {}", list(expected), list(actual))?;
                if !unknown.is_empty() {
                    write!(f, " (not policies of this workspace: {})", list(unknown))?;
                }
                Ok(())
            }
            Mismatch::Obligations { expected, actual } => {
                write!(f, "obligations: expected {}, got {}", list(expected), list(actual))
            }
            Mismatch::Errors { expected, actual } => {
                write!(f, "errors: expected {}, got {}", list(expected), list(actual))
            }
            Mismatch::RequestError { expected: Some(code), actual: Some(got) } => {
                write!(f, "request error: expected `{code}`, got {got}")
            }
            Mismatch::RequestError { expected: Some(code), actual: None } => {
                write!(f, "request error: expected `{code}`, but the request was decided")
            }
            Mismatch::RequestError { expected: None, actual } => {
                write!(f, "request rejected: {}", actual.as_deref().unwrap_or("without a message"))
            }
        }
    }
}

pub(super) fn decision(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
    }
}
