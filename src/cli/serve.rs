//! `medpdp serve`: merge file, environment and flag configuration, validate it, run the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::ExitStatus;
use crate::config::{Config, LogFormat};

/// Arguments of `medpdp serve`. Flags override environment variables, which override the
/// configuration file, which overrides defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The policy workspace directory [default: policies].
    #[arg(long, short, env = "MEDPDP_WORKSPACE")]
    workspace: Option<PathBuf>,
    /// Address of the API listener [default: 127.0.0.1:8443].
    #[arg(long, env = "MEDPDP_LISTEN")]
    listen: Option<SocketAddr>,
    /// The data directory: decision log, keys, versions archive [default: data].
    #[arg(long, env = "MEDPDP_DATA")]
    data: Option<PathBuf>,
    /// Decision-log durability [default: sync].
    #[arg(long, env = "MEDPDP_AUDIT_DURABILITY", value_enum)]
    audit_durability: Option<crate::audit::Durability>,
    /// Do not record decisions (development and benchmarks only).
    #[arg(long)]
    no_audit: bool,
    /// A TOML configuration file.
    #[arg(long, short, env = "MEDPDP_CONFIG")]
    config: Option<PathBuf>,
    /// Log format [default: human].
    #[arg(long, env = "MEDPDP_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `medpdp=debug` [default: info].
    #[arg(long, env = "MEDPDP_LOG")]
    log: Option<String>,
    /// Do not reload when workspace files change (SIGHUP and the admin endpoint still work).
    #[arg(long)]
    no_watch: bool,
}

impl ServeArgs {
    /// The merged configuration.
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(w) = &self.workspace {
            config.workspace.dir = w.clone();
        }
        if let Some(l) = self.listen {
            config.server.listen = l;
        }
        if let Some(f) = self.log_format {
            config.log.format = f;
        }
        if let Some(l) = &self.log {
            config.log.filter = l.clone();
        }
        if let Some(d) = &self.data {
            config.data.dir = d.clone();
        }
        if let Some(d) = self.audit_durability {
            config.audit.durability = d;
        }
        if self.no_audit {
            config.audit.enabled = false;
        }
        if self.no_watch {
            config.workspace.watch = false;
        }
        config.validate()?;
        Ok(config)
    }
}

pub(super) fn run(args: ServeArgs) -> ExitStatus {
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Usage;
        }
    };
    crate::telemetry::init(config.log.format, &config.log.filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitStatus::Failure;
        }
    };
    match runtime.block_on(crate::server::run(config)) {
        Ok(()) => ExitStatus::Ok,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitStatus::Failure
        }
    }
}
