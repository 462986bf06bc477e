//! `medpdp ca`: the certificate authority for administrators at the command line: create or
//! import the CA, issue from a CSR, list, revoke, re-sign the CRL, create enrollment tokens.
//!
//! It works on the same files and registry as the service (`[ca]` and `[data]` of `--config`),
//! safely while the service runs (SQLite serializes writers; the CRL file is replaced
//! atomically and the service's TLS watcher picks it up). Terminal and gateway certificates
//! are decided by the same Med5G credential policies the service uses (`-w`), evaluated here
//! with the same `decide`; those decisions are printed, not written to the decision log (the
//! log has one writer, the service: use the admin API to have them logged).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::ExitStatus;
use crate::ca::authority::{IssueRequest, Subject};
use crate::ca::csr::{decode_base64, parse_csr};
use crate::ca::profiles::{cedar_duration, parse_duration};
use crate::ca::registry::{CertStatus, IssueEffect, ListFilter};
use crate::ca::{pem_of, setup, Authority, CaKeyAlg, RevocationReason, SubjectAltName};
use crate::config::Config;
use crate::identity::Caller;

/// Arguments of `medpdp ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// The configuration file (`[ca]`, `[data]`).
    #[arg(long, short, env = "MEDPDP_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The data directory (registry) [default: data].
    #[arg(long, env = "MEDPDP_DATA", global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create a new self-signed CA (key mode 0600) and an empty CRL.
    Init {
        /// Key algorithm.
        #[arg(long, value_enum, default_value = "p256")]
        key_alg: CaKeyAlg,
        /// The CA's common name.
        #[arg(long, default_value = "medpdp CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// Import an existing CA certificate and key (e.g. an intermediate under a hospital root).
    Import {
        /// The CA certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// The certificates above it, in order up to the root (PEM).
        #[arg(long)]
        chain: Option<PathBuf>,
    },
    /// Issue a certificate from a CSR along a profile.
    Issue {
        /// The profile (`certs/profiles.toml`).
        #[arg(long)]
        profile: String,
        /// The CSR (PEM or base64 DER).
        #[arg(long)]
        csr: PathBuf,
        /// The identity, `urn:medpdp:<kind>:<id>` (caller profiles).
        #[arg(long)]
        identity: Option<String>,
        /// DNS names (server profiles).
        #[arg(long)]
        dns: Vec<String>,
        /// IP addresses (server profiles).
        #[arg(long)]
        ip: Vec<std::net::IpAddr>,
        /// Validity such as `12h` (default: the profile's lifetime).
        #[arg(long)]
        validity: Option<String>,
        /// Where to write the certificate (PEM, with the chain); default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The policy workspace deciding terminal and gateway issuance [default: policies].
        #[arg(long, short)]
        workspace: Option<PathBuf>,
    },
    /// List issued certificates.
    List {
        /// Only this identity.
        #[arg(long)]
        identity: Option<String>,
        /// Only this status.
        #[arg(long, value_enum)]
        status: Option<CertStatus>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a certificate and publish a new CRL.
    Revoke {
        /// The serial number (hex).
        serial: String,
        /// Why.
        #[arg(long, value_enum)]
        reason: RevocationReason,
    },
    /// Re-sign and publish the CRL now.
    Crl,
    /// Create a one-time enrollment token for a terminal or gateway (HTTP Basic for EST).
    Token {
        /// The identity it enrolls, `urn:medpdp:terminal:<id>` or `urn:medpdp:gateway:<id>`.
        #[arg(long)]
        identity: String,
        /// Limit it to one profile.
        #[arg(long)]
        profile: Option<String>,
        /// Lifetime such as `24h` [default: ca.token_ttl].
        #[arg(long)]
        ttl: Option<String>,
    },
}

pub(super) fn run(args: CaArgs) -> ExitStatus {
    match run_inner(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitStatus::Failure
        }
    }
}

fn run_inner(args: CaArgs) -> anyhow::Result<ExitStatus> {
    let mut config = match &args.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(d) = &args.data {
        config.data.dir = d.clone();
    }
    if let Err((key, message)) = config.ca.validate() {
        bail!("invalid configuration `{key}`: {message}");
    }
    let data = config.data.dir.clone();
    let open = || -> anyhow::Result<Authority> {
        Authority::open(&config.ca, &data)?.with_context(|| {
            format!(
                "no CA: `{}` or `{}` does not exist (run `medpdp ca init` or `medpdp ca import`)",
                config.ca.cert.display(),
                config.ca.key.display()
            )
        })
    };
    match args.command {
        CaCommand::Init { key_alg, name, days } => {
            let a = setup::init(&config.ca, &data, key_alg, &name, time::Duration::days(days))?;
            println!("created CA `{name}` ({key_alg:?})");
            println!("  certificate  {}", a.config().cert.display());
            println!("  key          {} (mode 0600)", a.config().key.display());
            println!("  CRL          {}", a.config().crl.display());
        }
        CaCommand::Import { cert, key, chain } => {
            let read =
                |p: &PathBuf| std::fs::read_to_string(p).with_context(|| p.display().to_string());
            let chain = match &chain {
                Some(c) => read(c)?,
                None => String::new(),
            };
            let a = setup::import(&config.ca, &data, &read(&cert)?, &read(&key)?, &chain)?;
            println!(
                "imported CA into {} ({} certificate(s) in its chain)",
                a.config().cert.display(),
                a.chain().len()
            );
        }
        CaCommand::Issue { profile, csr, identity, dns, ip, validity, out, workspace } => {
            let authority = open()?;
            let profile = authority
                .profiles()
                .get(&profile)
                .with_context(|| format!("no profile `{profile}`"))?;
            let text = std::fs::read(&csr).with_context(|| csr.display().to_string())?;
            let csr = parse_csr(&decode_base64(&text)?, authority.config().max_csr_bytes)?;
            let subject = match (&identity, profile.kind.caller_kind()) {
                (Some(urn), Some(_)) => Subject::Caller(Caller::from_urn(urn)?),
                (None, None) if !(dns.is_empty() && ip.is_empty()) => {
                    let mut names: Vec<SubjectAltName> =
                        dns.into_iter().map(SubjectAltName::Dns).collect();
                    names.extend(ip.into_iter().map(SubjectAltName::Ip));
                    Subject::Server(names)
                }
                _ => bail!(
                    "profile `{}` needs {}",
                    profile.name,
                    if profile.kind.caller_kind().is_some() {
                        "--identity"
                    } else {
                        "--dns and/or --ip"
                    }
                ),
            };
            let validity =
                validity.as_deref().map(parse_duration).transpose().map_err(anyhow::Error::msg)?;
            if let Subject::Caller(c) = &subject {
                if profile.kind.policy_gated() {
                    let ws = workspace.unwrap_or_else(|| config.workspace.dir.clone());
                    decide(
                        &authority,
                        &ws,
                        c,
                        &profile.name,
                        &csr.key_alg.name(),
                        validity.unwrap_or(profile.lifetime),
                    )?;
                }
            }
            let record = authority.issue(&IssueRequest {
                subject,
                profile,
                public_key: &csr.public_key,
                key_alg: csr.key_alg.name(),
                validity,
                via: "cli",
                decision_id: None,
                effect: IssueEffect::None,
            })?;
            let pem = pem_of("CERTIFICATE", &record.der) + &authority.chain_pem_for_leaf();
            match out {
                Some(path) => {
                    crate::ca::write_new_public(&path, &pem)?;
                    eprintln!(
                        "issued {} for {} ({}), until {}",
                        record.serial,
                        record.identity,
                        record.profile,
                        record.not_after.format(&Rfc3339)?
                    );
                    println!("{}", path.display());
                }
                None => print!("{pem}"),
            }
        }
        CaCommand::List { identity, status, json } => {
            let authority = open()?;
            let rows = authority.registry().list(&ListFilter { identity, status, limit: None })?;
            if !json {
                println!(
                    "{:<32}  {:<10}  {:<20}  {:<14}  {:<20}  identity",
                    "serial", "status", "not_after", "profile", "issued_via"
                );
            }
            for r in rows {
                let not_after = r.not_after.format(&Rfc3339)?;
                if json {
                    println!(
                        "{}",
                        json!({"serial": r.serial, "identity": r.identity, "profile": r.profile, "key_alg": r.key_alg, "status": r.status, "not_after": not_after, "superseded_by": r.superseded_by, "revocation_reason": r.revocation_reason, "issued_via": r.issued_via, "decision_id": r.decision_id})
                    );
                } else {
                    let status =
                        serde_json::to_value(r.status)?.as_str().unwrap_or_default().to_owned();
                    println!(
                        "{:<32}  {:<10}  {:<20}  {:<14}  {:<20}  {}",
                        r.serial, status, not_after, r.profile, r.issued_via, r.identity
                    );
                }
            }
        }
        CaCommand::Revoke { serial, reason } => {
            let (record, crl) = open()?.revoke(&serial, reason)?;
            println!("revoked {} ({}): {}", record.serial, record.identity, reason.as_str());
            println!(
                "CRL #{} written to {} ({} revoked); a running service reloads it",
                crl.number,
                crl.path.display(),
                crl.revoked
            );
        }
        CaCommand::Crl => {
            let crl = open()?.publish_crl()?;
            println!(
                "CRL #{} written to {} ({} revoked, next update {})",
                crl.number,
                crl.path.display(),
                crl.revoked,
                crl.next_update.format(&Rfc3339)?
            );
        }
        CaCommand::Token { identity, profile, ttl } => {
            let authority = open()?;
            let caller = Caller::from_urn(&identity)?;
            let ttl = match ttl {
                Some(t) => parse_duration(&t).map_err(anyhow::Error::msg)?,
                None => authority.config().token_ttl(),
            };
            let token = authority.create_token(&caller, profile.as_deref(), ttl)?;
            eprintln!(
                "one-time enrollment token for {} (expires {}); shown once:",
                token.identity,
                token.expires_at.format(&Rfc3339)?
            );
            println!("{}:{}", token.id, token.secret);
        }
    }
    Ok(ExitStatus::Ok)
}

/// The same `request_credential` decision the service makes, on the workspace at `ws`.
fn decide(
    authority: &Authority,
    ws: &std::path::Path,
    subject: &Caller,
    profile: &str,
    key_alg: &str,
    validity: time::Duration,
) -> anyhow::Result<()> {
    let loaded = crate::policy::load_workspace(ws)
        .map_err(|e| anyhow::anyhow!("workspace `{}` does not load: {e:?}", ws.display()))?;
    let ns = &authority.config().namespace;
    let ty =
        if subject.kind == crate::identity::CallerKind::Gateway { "Gateway" } else { "Terminal" };
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0)?.format(&Rfc3339)?;
    let req: crate::decide::DecisionRequest = serde_json::from_value(json!({
        "principal": {"type": format!("{ns}::{ty}"), "id": subject.id},
        "action": format!("{ns}::Action::\"request_credential\""),
        "resource": {"type": format!("{ns}::CertificateProfile"), "id": profile},
        "context": {"env": {"now": now, "risk_score": 0, "inside_geofence": true, "audit_available": true},
                    "attested": true, "key_alg": key_alg, "requested_validity": cedar_duration(validity)},
    }))?;
    let outcome =
        crate::decide::decide(&loaded.snapshot, &req).map_err(|e| anyhow::anyhow!("{e}"))?;
    if outcome.decision != crate::decide::Decision::Allow {
        bail!(
            "issuance denied by policy ({})",
            if outcome.reasons.is_empty() {
                "no policy permits it".to_owned()
            } else {
                outcome.reasons.join(", ")
            }
        );
    }
    eprintln!("allowed by {}", outcome.reasons.join(", "));
    Ok(())
}
