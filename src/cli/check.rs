//! `medpdp check`: validate a workspace, print every diagnostic, exit 0 when valid.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{print_diagnostics, ExitStatus};
use crate::policy::{load_workspace, Severity};

/// Arguments of `medpdp check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy workspace directory.
    #[arg(long, short, env = "MEDPDP_WORKSPACE", default_value = "policies")]
    workspace: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
    /// Output format of the result.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

pub(super) fn run(args: CheckArgs) -> ExitStatus {
    let dir = args.workspace.display().to_string();
    match load_workspace(&args.workspace) {
        Ok(loaded) => {
            let meta = loaded.snapshot.meta();
            let warnings = meta.warnings.iter().filter(|d| d.severity == Severity::Warning).count();
            let valid = !(args.deny_warnings && warnings > 0);
            match args.format {
                Format::Json => println!(
                    "{}",
                    json!({"valid": valid, "workspace": dir, "snapshot": meta, "diagnostics": meta.warnings})
                ),
                Format::Human => {
                    print_diagnostics(&meta.warnings);
                    let verdict = if valid { "valid" } else { "invalid (warnings denied)" };
                    println!(
                        "workspace `{dir}` is {verdict}: {} policies, {} templates, {} entities, \
                         {warnings} warnings, schema {}\nversion {}",
                        meta.policy_count,
                        meta.template_count,
                        meta.entity_count,
                        if meta.schema { "validated (strict)" } else { "absent" },
                        meta.version,
                    );
                }
            }
            if valid {
                ExitStatus::Ok
            } else {
                ExitStatus::InvalidWorkspace
            }
        }
        Err(e) => {
            match args.format {
                Format::Json => println!(
                    "{}",
                    json!({"valid": false, "workspace": dir, "version": e.version, "diagnostics": e.diagnostics})
                ),
                Format::Human => {
                    print_diagnostics(&e.diagnostics);
                    eprintln!("error: workspace `{dir}` is invalid: {} error(s)", e.error_count());
                }
            }
            ExitStatus::InvalidWorkspace
        }
    }
}
