//! `medpdp decide`: evaluate one request JSON against a workspace, print the decision JSON.
//!
//! Exit code: 0 allow, 2 deny, 1 bad request, 3 invalid workspace.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;

use super::{print_diagnostics, ExitStatus};
use crate::decide::{decide, Decision, DecisionRequest};
use crate::http::{new_decision_id, DecisionResponse};
use crate::policy::load_workspace;

/// Arguments of `medpdp decide`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The policy workspace directory.
    #[arg(long, short, env = "MEDPDP_WORKSPACE", default_value = "policies")]
    workspace: PathBuf,
    /// The request file, or `-` for standard input.
    #[arg(default_value = "-")]
    input: String,
}

pub(super) fn run(args: DecideArgs) -> ExitStatus {
    let text = match read_input(&args.input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", args.input);
            return ExitStatus::Failure;
        }
    };
    let req: DecisionRequest = match crate::http::parse_request_json(text.as_bytes()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: invalid request: {}", e.message());
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
    let snapshot = loaded.snapshot;
    match decide(&snapshot, &req) {
        Ok(outcome) => {
            let response = DecisionResponse::from_outcome(new_decision_id(), &snapshot, outcome);
            let allowed = response.decision == Decision::Allow;
            match serde_json::to_string_pretty(&response) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitStatus::Failure;
                }
            }
            if allowed {
                ExitStatus::Ok
            } else {
                ExitStatus::Deny
            }
        }
        Err(e) => {
            eprintln!("error: invalid request: {e}");
            ExitStatus::Failure
        }
    }
}

fn read_input(input: &str) -> std::io::Result<String> {
    if input == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(input)
    }
}
