//! `medpdp audit`: the auditor's commands over a decision log.
//!
//! - `verify`: every hash, link and checkpoint signature; exit 5 when anything is wrong.
//! - `replay`: re-evaluate every logged decision with its archived version (exit 5 unless all
//!   reproduce), or `--against WORKSPACE` for a what-if.
//! - `query`: list decision records.
//! - `pubkey`: export the checkpoint public key.
//!
//! Output streams (constant memory): table rows, JSON lines or CSV as records are read.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use super::{print_diagnostics, ExitStatus};
use crate::audit::checkpoint::{PublicKey, SigningKey};
use crate::audit::query::{query, Filter, QueryRow};
use crate::audit::replay::{log_bytes, Replay, ReplayItem, ReplaySummary, Target};
use crate::audit::verify::{verify_log, VerifyReport};
use crate::audit::{archive::VersionArchive, Anchor, DataLayout};
use crate::decide::Decision;
use crate::policy::load_workspace;

/// Arguments of `medpdp audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every hash link and checkpoint signature; report what was changed, removed,
    /// inserted, reordered or truncated.
    Verify(VerifyArgs),
    /// Re-evaluate logged decisions with the archived versions that made them, or what-if
    /// against a candidate workspace (`--against`).
    Replay(ReplayArgs),
    /// List decision records.
    Query(QueryArgs),
    /// Print the public key that verifies checkpoints (PEM), for auditors to pin.
    Pubkey(PubkeyArgs),
}

#[derive(Debug, Args)]
struct Location {
    /// The service's data directory.
    #[arg(long, env = "MEDPDP_DATA", default_value = "data")]
    data: PathBuf,
    /// The log directory [default: <data>/audit].
    #[arg(long)]
    log: Option<PathBuf>,
}

impl Location {
    fn layout(&self) -> DataLayout {
        DataLayout::new(&self.data)
    }

    fn log_dir(&self) -> PathBuf {
        self.log.clone().unwrap_or_else(|| self.layout().log_dir())
    }
}

#[derive(Debug, Args)]
struct Filters {
    /// Only decisions at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only decisions before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Only this principal (`Type::"id"`) or principal type (`Type`).
    #[arg(long)]
    principal: Option<String>,
    /// Only this action (`Ns::Action::"id"` or just `id`).
    #[arg(long)]
    action: Option<String>,
    /// Only this logged decision.
    #[arg(long, value_enum)]
    decision: Option<DecisionArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DecisionArg {
    Allow,
    Deny,
}

impl Filters {
    fn build(&self) -> anyhow::Result<Filter> {
        let mut f = Filter::default();
        if let Some(s) = &self.since {
            f = f.since(s).map_err(anyhow::Error::msg)?;
        }
        if let Some(u) = &self.until {
            f = f.until(u).map_err(anyhow::Error::msg)?;
        }
        if let Some(p) = &self.principal {
            f = f.principal(p);
        }
        if let Some(a) = &self.action {
            f = f.action(a);
        }
        if let Some(d) = self.decision {
            f = f.decision(match d {
                DecisionArg::Allow => Decision::Allow,
                DecisionArg::Deny => Decision::Deny,
            });
        }
        Ok(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    at: Location,
    /// The pinned public key (PEM from `medpdp audit pubkey`) [default: the key in <data>].
    #[arg(long)]
    pubkey: Option<PathBuf>,
    /// A checkpoint noted earlier, `SEQ:HASH`: the log must still contain it unchanged.
    #[arg(long)]
    anchor: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    at: Location,
    /// What-if: evaluate the logged requests against this workspace instead.
    #[arg(long)]
    against: Option<PathBuf>,
    #[command(flatten)]
    filters: Filters,
    /// Output format of the listed decisions.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Worker threads [default: one per core].
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    at: Location,
    #[command(flatten)]
    filters: Filters,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(Debug, Args)]
struct PubkeyArgs {
    /// The service's data directory.
    #[arg(long, env = "MEDPDP_DATA", default_value = "data")]
    data: PathBuf,
}

pub(super) fn run(args: AuditArgs) -> ExitStatus {
    let result = match args.command {
        AuditCommand::Verify(a) => verify(&a),
        AuditCommand::Replay(a) => replay(&a),
        AuditCommand::Query(a) => run_query(&a),
        AuditCommand::Pubkey(a) => pubkey(&a),
    };
    match result {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitStatus::Failure
        }
    }
}

fn pubkey(args: &PubkeyArgs) -> anyhow::Result<ExitStatus> {
    let path = DataLayout::new(&args.data).signing_key();
    let key = SigningKey::load(&path)
        .with_context(|| "no log key yet: it is created when `medpdp serve` first starts")?;
    print!("{}", key.public_key().to_pem());
    Ok(ExitStatus::Ok)
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitStatus> {
    let key = match &args.pubkey {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("`{}`", p.display()))?;
            PublicKey::from_pem(&text).map_err(anyhow::Error::msg)?
        }
        None => {
            let path = args.at.layout().signing_key();
            eprintln!(
                "note: checking signatures with the key in `{}`; pin the exported key with --pubkey for an independent check",
                path.display()
            );
            SigningKey::load(&path)?.public_key()
        }
    };
    let anchor = args.anchor.as_deref().map(parse_anchor).transpose()?;
    let report = verify_log(&args.at.log_dir(), &key, anchor.as_ref())?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_verify(&report, args.format == Format::Csv)?;
    }
    Ok(if report.is_intact() { ExitStatus::Ok } else { ExitStatus::AuditFailed })
}

fn parse_anchor(s: &str) -> anyhow::Result<Anchor> {
    let (seq, hash) = s.split_once(':').context("an anchor is `SEQ:HASH`")?;
    Ok(Anchor { seq: seq.parse().context("the anchor's SEQ is not a number")?, hash: hash.into() })
}

fn print_verify(r: &VerifyReport, csv: bool) -> anyhow::Result<()> {
    if csv {
        let mut w = csv::Writer::from_writer(std::io::stdout().lock());
        for f in &r.findings {
            w.serialize(f)?;
        }
        w.flush()?;
        return Ok(());
    }
    for f in &r.findings {
        println!(
            "{:<13} position {} ({} line {}) seq {} decision_id {}: {}",
            serde_json::to_value(f.problem)?.as_str().unwrap_or_default(),
            f.position,
            f.segment,
            f.line,
            f.seq.map_or_else(|| "?".to_owned(), |s| s.to_string()),
            f.decision_id.as_deref().unwrap_or("-"),
            f.detail
        );
    }
    let last =
        r.last.as_ref().map_or_else(|| "none".to_owned(), |a| format!("seq {} {}", a.seq, a.hash));
    println!(
        "{} records ({} decisions, {} events, {} valid checkpoints); chain ends at {last}",
        r.records, r.decisions, r.events, r.checkpoints
    );
    if let Some(c) = &r.last_checkpoint {
        println!("last checkpoint: --anchor {}:{} (key {})", c.seq, c.hash, r.key_id);
    }
    if r.unsigned_tail > 0 {
        println!(
            "{} records after the last checkpoint are covered by the chain only (not yet signed)",
            r.unsigned_tail
        );
    }
    if r.is_intact() {
        println!("intact");
    } else {
        println!("NOT INTACT: {} problem(s)", r.findings.len() as u64 + r.more_findings);
    }
    Ok(())
}

fn replay(args: &ReplayArgs) -> anyhow::Result<ExitStatus> {
    let log_dir = args.at.log_dir();
    let target = match &args.against {
        Some(ws) => match load_workspace(ws) {
            Ok(l) => Target::Candidate(Arc::new(l.snapshot)),
            Err(e) => {
                print_diagnostics(&e.diagnostics);
                eprintln!("error: {e}");
                return Ok(ExitStatus::InvalidWorkspace);
            }
        },
        None => Target::Archived(VersionArchive::new(args.at.layout().archive_dir())),
    };
    let what_if = matches!(target, Target::Candidate(_));
    let run = Replay {
        log_dir: log_dir.clone(),
        target,
        filter: args.filters.build()?,
        threads: args.threads,
    };
    let bar = progress_bar(log_bytes(&log_dir)?);
    let mut out = ItemWriter::new(args.format)?;
    let summary = run.run(|item| out.write(item), &|bytes| bar.set_position(bytes))?;
    bar.finish_and_clear();
    out.finish()?;
    print_summary(&summary, what_if, args.format);
    let ok = what_if || (summary.mismatched == 0 && summary.not_replayable == summary.masked);
    Ok(if ok { ExitStatus::Ok } else { ExitStatus::AuditFailed })
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} replay [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Streams replay items in the chosen format.
struct ItemWriter {
    format: Format,
    csv: Option<csv::Writer<std::io::Stdout>>,
    rows: u64,
    failed: Option<std::io::Error>,
}

impl ItemWriter {
    fn new(format: Format) -> anyhow::Result<Self> {
        let csv = (format == Format::Csv).then(|| csv::Writer::from_writer(std::io::stdout()));
        Ok(Self { format, csv, rows: 0, failed: None })
    }

    fn write(&mut self, item: &ReplayItem) {
        if self.failed.is_some() {
            return;
        }
        let result = match self.format {
            Format::Csv => match self.csv.as_mut() {
                Some(w) => w.serialize(item).map_err(std::io::Error::other),
                None => Ok(()),
            },
            Format::Json => serde_json::to_string(item)
                .map_err(std::io::Error::other)
                .and_then(|s| writeln!(std::io::stdout(), "{s}")),
            Format::Table => {
                let header = if self.rows == 0 {
                    format!(
                        "{:<15} {:<36} {:<8} {:<8} {:<30} {:<28} DETAIL\n",
                        "VERDICT", "DECISION_ID", "LOGGED", "NOW", "PRINCIPAL", "ACTION"
                    )
                } else {
                    String::new()
                };
                let verdict = serde_json::to_value(item.verdict).unwrap_or_default();
                writeln!(
                    std::io::stdout(),
                    "{header}{:<15} {:<36} {:<8} {:<8} {:<30} {:<28} {}",
                    verdict.as_str().unwrap_or_default(),
                    item.decision_id,
                    decision_name(Some(item.logged)),
                    decision_name(item.replayed),
                    item.principal,
                    item.action,
                    item.detail
                )
            }
        };
        self.rows += 1;
        if let Err(e) = result {
            self.failed = Some(e);
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if let Some(w) = self.csv.as_mut() {
            w.flush()?;
        }
        match self.failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

fn decision_name(d: Option<Decision>) -> &'static str {
    match d {
        Some(Decision::Allow) => "allow",
        Some(Decision::Deny) => "deny",
        None => "-",
    }
}

fn print_summary(s: &ReplaySummary, what_if: bool, format: Format) {
    let text = if what_if {
        format!(
            "what-if over {} decisions: {} unchanged, {} allow->deny, {} deny->allow, {} now erroring, {} not replayable ({} masked); {:.0} decisions/s",
            s.decisions, s.unchanged, s.allow_to_deny, s.deny_to_allow, s.now_erroring, s.not_replayable, s.masked, s.rate()
        )
    } else {
        let replayable = s.decisions - s.masked;
        format!(
            "replayed {} decisions: {} of {replayable} replayable reproduced exactly, {} mismatched, {} not replayable ({} because of masked inputs); {:.0} decisions/s",
            s.decisions, s.reproduced, s.mismatched, s.not_replayable, s.masked, s.rate()
        )
    };
    let damaged = if s.damaged > 0 {
        format!("\n{} damaged lines were skipped: run `medpdp audit verify`", s.damaged)
    } else {
        String::new()
    };
    match format {
        Format::Table => println!("{text}{damaged}"),
        Format::Json => {
            let v = serde_json::json!({"summary": s, "what_if": what_if, "decisions_per_sec": s.rate()});
            println!("{v}");
            if !damaged.is_empty() {
                eprintln!("{}", damaged.trim());
            }
        }
        Format::Csv => eprintln!("{text}{damaged}"),
    }
}

fn run_query(args: &QueryArgs) -> anyhow::Result<ExitStatus> {
    let filter = args.filters.build()?;
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut csv = (args.format == Format::Csv).then(|| csv::Writer::from_writer(std::io::stdout()));
    let mut stdout = std::io::stdout().lock();
    let mut n = 0;
    let mut failure: Option<anyhow::Error> = None;
    let damaged = query(&args.at.log_dir(), &filter, |r| {
        let row = QueryRow::of(r);
        let written: anyhow::Result<()> = match (args.format, csv.as_mut()) {
            (Format::Csv, Some(w)) => w.serialize(&row).map_err(Into::into),
            (Format::Json, _) => serde_json::to_string(&row)
                .map_err(anyhow::Error::from)
                .and_then(|s| writeln!(stdout, "{s}").map_err(Into::into)),
            _ => writeln!(
                stdout,
                "{:>8} {} {:<36} {:<5} {:<30} {:<28} {:<30} {}",
                row.seq,
                row.ts,
                row.decision_id,
                row.decision,
                row.principal,
                row.action,
                row.resource,
                row.reasons
            )
            .map_err(Into::into),
        };
        if let Err(e) = written {
            failure = Some(e);
            return false;
        }
        n += 1;
        n < limit
    })?;
    if let Some(w) = csv.as_mut() {
        w.flush()?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if damaged > 0 {
        eprintln!("{damaged} damaged lines were skipped: run `medpdp audit verify`");
    }
    Ok(ExitStatus::Ok)
}
