//! The policy test file format: reading, checking and expanding `policies/tests/*.json`.
//!
//! ```json
//! {
//!   "description": "what this file covers",
//!   "defaults": {"request": {"action": "Med5G::Action::\"attach\"", "context": {…}}},
//!   "cases": [
//!     {
//!       "name": "A1 robot attaches to its clinic's URLLC NPN",
//!       "request": {"principal": "Med5G::Terminal::\"t-robot1\"", "resource": …},
//!       "entities": [ … ],
//!       "expect": {"decision": "allow", "reasons": ["P01-…"], "obligations": []}
//!     }
//!   ]
//! }
//! ```
//!
//! A case's `request` has the shape of a `POST /v1/decide` body and is applied as a JSON Merge
//! Patch (RFC 7386) over `defaults.request`: objects merge key by key, `null` removes a key,
//! anything else replaces. Case `entities` are appended to the request's. Unknown fields are
//! errors, so a misspelt expectation can never pass silently.
//!
//! This module does not evaluate anything; see `run`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::decide::Decision;

/// One test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The file as shown in reports (as given on the command line, or found in a directory).
    #[serde(skip)]
    pub path: String,
    /// What the file covers.
    #[serde(default)]
    pub description: Option<String>,
    /// Values every case starts from.
    #[serde(default)]
    pub defaults: Defaults,
    /// The cases, in order.
    pub cases: Vec<TestCase>,
}

/// File-wide defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// The request every case's `request` is merged over.
    #[serde(default)]
    pub request: Option<Value>,
}

/// One named decision case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Unique within the file.
    pub name: String,
    /// Why the case matters (the rule it checks).
    #[serde(default)]
    pub description: Option<String>,
    /// A decision request, merged over the file's `defaults.request`.
    #[serde(default)]
    pub request: Value,
    /// Extra entities for this case (Cedar JSON entity format), merged over the stored ones.
    #[serde(default)]
    pub entities: Vec<Value>,
    /// What the answer must be.
    pub expect: Expect,
}

/// The expected answer. Either `decision` (with optional details) or `request_error`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow` or `deny`.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// Exactly these policies determine the decision (order does not matter).
    #[serde(default)]
    pub reasons: Option<Vec<String>>,
    /// Exactly these obligations (order does not matter).
    #[serde(default)]
    pub obligations: Option<Vec<String>>,
    /// Exactly these policies raise evaluation errors.
    #[serde(default)]
    pub errors: Option<Vec<String>>,
    /// The request is rejected with this error code (`invalid_context`, `unknown_action`, …)
    /// instead of being decided.
    #[serde(default)]
    pub request_error: Option<String>,
}

/// Why test files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    /// A file or directory could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON or not shaped as a test file.
    #[error("`{path}`:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, with the JSON path of the offending field.
        message: String,
    },
    /// The file parses but a case is unusable.
    #[error("`{path}`: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Nothing to run.
    #[error("no test files (`*.json`) found in {0}")]
    NoTests(String),
}

/// Lists the test files under `paths`: files as given, directories searched recursively for
/// `*.json` (hidden entries skipped), each directory's files sorted by path.
pub fn find_test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, TestFileError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|source| TestFileError::Read { path: p.display().to_string(), source })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
        return Err(TestFileError::NoTests(shown.join(", ")));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TestFileError> {
    let read_err = |source| TestFileError::Read { path: dir.display().to_string(), source };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and checks one test file.
pub fn load_test_file(path: &Path) -> Result<TestFile, TestFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|source| TestFileError::Read { path: shown.clone(), source })?;
    parse_test_file(&shown, &text)
}

/// Parses and checks the text of a test file; `path` is only used in messages.
pub fn parse_test_file(path: &str, text: &str) -> Result<TestFile, TestFileError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut file: TestFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends " at line L column C"; the position leads the message instead.
        let text = inner.to_string();
        let text = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m);
        let message = if at == "." { text.to_owned() } else { format!("{at}: {text}") };
        TestFileError::Parse {
            path: path.to_owned(),
            line: inner.line(),
            column: inner.column(),
            message,
        }
    })?;
    file.path = path.to_owned();
    check(&file)?;
    Ok(file)
}

fn check(file: &TestFile) -> Result<(), TestFileError> {
    let invalid = |message: String| TestFileError::Invalid { path: file.path.clone(), message };
    if let Some(d) = &file.defaults.request {
        if !d.is_object() {
            return Err(invalid("`defaults.request` must be a JSON object".to_owned()));
        }
    }
    let mut names = HashSet::new();
    for (i, case) in file.cases.iter().enumerate() {
        let at = format!("cases[{i}] (`{}`)", case.name);
        if case.name.trim().is_empty() {
            return Err(invalid(format!("cases[{i}]: `name` is empty")));
        }
        if !names.insert(case.name.as_str()) {
            return Err(invalid(format!("{at}: duplicate case name")));
        }
        if !case.request.is_object() && !case.request.is_null() {
            return Err(invalid(format!("{at}: `request` must be a JSON object")));
        }
        let e = &case.expect;
        match (&e.decision, &e.request_error) {
            (None, None) => {
                return Err(invalid(format!(
                    "{at}: `expect` needs a `decision` (or a `request_error`)"
                )))
            }
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "{at}: `expect` has both `decision` and `request_error`; a rejected request \
                     is not decided"
                )))
            }
            (None, Some(_))
                if e.reasons.is_some() || e.obligations.is_some() || e.errors.is_some() =>
            {
                return Err(invalid(format!(
                    "{at}: `reasons`, `obligations` and `errors` only apply to a decided request"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

impl TestCase {
    /// The request this case sends: its `request` merged over `defaults`, plus its entities.
    pub fn expanded_request(&self, defaults: &Defaults) -> Value {
        let mut request = defaults.request.clone().unwrap_or_else(|| Value::Object(Map::new()));
        merge_patch(&mut request, &self.request);
        if !self.entities.is_empty() {
            if let Value::Object(map) = &mut request {
                let slot = map.entry("entities").or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(items) = slot {
                    items.extend(self.entities.iter().cloned());
                }
            }
        }
        request
    }
}

/// JSON Merge Patch (RFC 7386 §2).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}
