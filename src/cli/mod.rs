//! The `medpdp` command line: argument parsing and one module per subcommand.
//!
//! Each subcommand module exposes `XxxArgs` and `fn run(XxxArgs) -> ExitStatus`. This is the
//! only place that prints to standard output and the only place `anyhow` is used.
#![allow(clippy::print_stdout, reason = "the CLI prints its results")]

mod audit;
mod ca;
mod check;
mod decide;
mod serve;
mod test;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Policy decision service and certificate authority for 5G healthcare terminals.
#[derive(Debug, Parser)]
#[command(name = "medpdp", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the decision service.
    Serve(serve::ServeArgs),
    /// Validate a policy workspace and print every problem found.
    Check(check::CheckArgs),
    /// Evaluate one decision request (JSON, same shape as `POST /v1/decide`).
    Decide(decide::DecideArgs),
    /// Run policy test cases (`policies/tests/*.json`) and report failures and coverage.
    Test(test::TestArgs),
    /// Verify, replay and query the decision log; export its public key.
    Audit(audit::AuditArgs),
    /// The certificate authority: init, import, issue, list, revoke, crl, token.
    Ca(ca::CaArgs),
}

/// Process exit codes. Allow and every success are 0; a deny is 2 (as in the Cedar CLI) so
/// scripts can tell it from an error (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success (or allow).
    Ok,
    /// A runtime failure or a bad request.
    Failure,
    /// `decide`: the request was denied.
    Deny,
    /// The workspace is invalid.
    InvalidWorkspace,
    /// `test`: a case failed (or coverage fell short of what was required).
    TestsFailed,
    /// `audit verify` found tampering, or `audit replay` did not reproduce every decision.
    AuditFailed,
    /// Command-line usage error.
    Usage,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(match s {
            ExitStatus::Ok => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Deny => 2,
            ExitStatus::InvalidWorkspace => 3,
            ExitStatus::TestsFailed => 4,
            ExitStatus::AuditFailed => 5,
            ExitStatus::Usage => 64,
        })
    }
}

/// Parses the arguments and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitStatus::Usage.into() } else { ExitStatus::Ok.into() };
        }
    };
    let status = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => check::run(args),
        Command::Decide(args) => decide::run(args),
        Command::Test(args) => test::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Ca(args) => ca::run(args),
    };
    status.into()
}

/// Whether diagnostics on stderr may use colour.
fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints every diagnostic of a failed load to stderr, rendered with source snippets.
fn print_diagnostics(diags: &[crate::policy::Diagnostic]) {
    let color = stderr_color();
    for d in diags {
        eprintln!("{}", d.render(color));
    }
}
