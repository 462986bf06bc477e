//! `medpdp serve`: merge file, environment and flag configuration, validate it, create the
//! development PKI on first run (and say where it is), run the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::ExitStatus;
use crate::ca::dev::DevPki;
use crate::config::{Config, LogFormat};

/// Arguments of `medpdp serve`. Flags override environment variables, which override the
/// configuration file, which overrides defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The policy workspace directory [default: policies].
    #[arg(long, short, env = "MEDPDP_WORKSPACE")]
    workspace: Option<PathBuf>,
    /// Address of the API listener: TLS, client certificates required [default: 127.0.0.1:8443].
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
    /// DEVELOPMENT ONLY: also serve plain HTTP without authentication on this loopback
    /// address; every caller on it is `insecure_http.identity` [default: urn:medpdp:admin:dev].
    #[arg(long, env = "MEDPDP_INSECURE_HTTP", value_name = "ADDR")]
    insecure_http: Option<SocketAddr>,
    /// The access policy workspace [default: policies/access].
    #[arg(long, env = "MEDPDP_ACCESS")]
    access: Option<PathBuf>,
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
        if let Some(l) = self.insecure_http {
            config.insecure_http.listen = Some(l);
        }
        if let Some(a) = &self.access {
            config.access.dir = a.clone();
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
    if config.tls.dev_pki {
        match crate::ca::dev::ensure(&config.tls, &config.ca, &config.data.dir) {
            Ok(Some(pki)) => print_dev_pki(&pki, &config),
            Ok(None) => {}
            Err(e) => {
                eprintln!("error: cannot create the development PKI: {e}");
                return ExitStatus::Failure;
            }
        }
    }
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

/// Tells the user what the first run created and how to use it.
fn print_dev_pki(pki: &DevPki, config: &Config) {
    tracing::warn!(
        ca = %pki.ca_cert.display(),
        "created a development PKI: fine for trying medpdp, not for production (set tls.dev_pki = false)"
    );
    println!("Created a development PKI (not for production):");
    println!("  CA certificate      {}", pki.ca_cert.display());
    println!("  CA key              {}", pki.ca_key.display());
    println!("  server certificate  {}  (localhost, 127.0.0.1, ::1)", pki.server_cert.display());
    println!("  server key          {}", pki.server_key.display());
    if let Some(crl) = &pki.crl {
        println!("  CRL                 {}", crl.display());
    }
    println!("  demo client certificates (identity, certificate, key):");
    for c in &pki.clients {
        println!("    {:<34} {}  {}", c.identity, c.cert.display(), c.key.display());
    }
    let port = config.server.listen.port();
    if let Some(admin) = pki.clients.iter().find(|c| c.identity.contains(":admin:")) {
        println!("Try:");
        println!(
            "  curl --cert {} --key {} --cacert {} https://localhost:{port}/v1/status",
            admin.cert.display(),
            admin.key.display(),
            pki.ca_cert.display()
        );
    }
}
