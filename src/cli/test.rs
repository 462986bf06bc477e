//! `medpdp test`: run policy test cases against a workspace and report failures and coverage.
//!
//! Exit code: 0 when every case passes (and, with `--coverage-required`, every policy is
//! covered), 4 otherwise; 1 when a test file cannot be used, 3 for an invalid workspace.

use std::path::PathBuf;

use clap::Args;

use super::{print_diagnostics, ExitStatus};
use crate::policy::load_workspace;
use crate::policytest::{self, load_test_files, render_human, render_junit};

/// Arguments of `medpdp test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The policy workspace directory.
    #[arg(long, short, env = "MEDPDP_WORKSPACE", default_value = "policies")]
    workspace: PathBuf,
    /// Output format: human text, a JSON report, or JUnit XML for CI systems.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Also fail unless every policy is made decisive by some passing case.
    #[arg(long)]
    coverage_required: bool,
    /// Test files or directories of `*.json` test files [default: WORKSPACE/tests].
    files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Junit,
}

pub(super) fn run(args: TestArgs) -> ExitStatus {
    let paths =
        if args.files.is_empty() { vec![args.workspace.join("tests")] } else { args.files.clone() };
    let files = match load_test_files(&paths) {
        Ok(f) => f,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitStatus::Failure;
        }
    };
    let loaded = match load_workspace(&args.workspace) {
        Ok(l) => l,
        Err(e) => {
            print_diagnostics(&e.diagnostics);
            eprintln!("error: {e}");
            return ExitStatus::InvalidWorkspace;
        }
    };
    let report = policytest::run(&loaded.snapshot, &files);
    match args.format {
        Format::Human => print!("{}", render_human(&report)),
        Format::Junit => print!("{}", render_junit(&report, args.coverage_required)),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitStatus::Failure;
            }
        },
    }
    let coverage_short = args.coverage_required && !report.coverage.complete();
    if coverage_short {
        eprintln!(
            "error: policy coverage is {:.1}%, and --coverage-required asks for 100%",
            report.coverage.percent()
        );
    }
    if report.failed() > 0 || coverage_short {
        ExitStatus::TestsFailed
    } else {
        ExitStatus::Ok
    }
}
