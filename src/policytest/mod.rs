//! Policy tests: named decision cases kept as data beside the policies (`policies/tests/*.json`),
//! run against a loaded snapshot with the service's own [`crate::decide::decide`], compared with
//! what each case expects, and summarised with policy coverage.
//!
//! `file` owns the test file format (and its JSON Merge Patch defaults), `run` evaluates and
//! compares, `report` renders text and JUnit XML. The `medpdp test` subcommand
//! (`src/cli/test.rs`) and the pack's integration test both drive this module, so a case
//! behaves the same under `cargo test` and in an administrator's shell.
//!
//! This module reads test files but never writes anything, and never loads a workspace itself:
//! the caller passes the snapshot.

mod file;
mod report;
mod run;

pub use file::{
    find_test_files, load_test_file, merge_patch, parse_test_file, Defaults, Expect, TestCase,
    TestFile, TestFileError,
};
pub use report::{render_human, render_junit};
pub use run::{run, Actual, CaseResult, Coverage, FileReport, Mismatch, Report};

/// Loads every test file under `paths` (files, or directories searched for `*.json`), or
/// reports every file that cannot be used.
pub fn load_test_files(paths: &[std::path::PathBuf]) -> Result<Vec<TestFile>, Vec<TestFileError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in find_test_files(paths).map_err(|e| vec![e])? {
        match load_test_file(&path) {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
