//! Service configuration: a TOML file, environment variables and flags, merged and validated
//! before any port is bound.
//!
//! Precedence, highest first: command-line flag, environment variable (`MEDPDP_*`, declared on
//! the flags), the TOML file (`--config`), built-in defaults. Relative paths are relative to the
//! working directory. Unknown keys in the file are errors, so a typo never silently falls back
//! to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::audit::AuditConfig;
use crate::ca::{CaConfig, EstConfig};
use crate::http::Limits;
use crate::identity::Caller;
use crate::tls::TlsConfig;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener settings.
    pub server: ServerConfig,
    /// The domain policy workspace.
    pub workspace: WorkspaceConfig,
    /// Request bounds.
    pub limits: Limits,
    /// Logging.
    pub log: LogConfig,
    /// The OpenID AuthZEN Authorization API.
    pub authzen: AuthzenConfig,
    /// Where state lives (decision log, keys, versions archive).
    pub data: DataConfig,
    /// The decision log.
    pub audit: AuditConfig,
    /// The API listener's TLS material.
    pub tls: TlsConfig,
    /// The access policies: which caller may use which endpoint.
    pub access: AccessConfig,
    /// The plain-HTTP development listener (off unless `listen` is set).
    pub insecure_http: InsecureHttpConfig,
    /// The certificate authority.
    pub ca: CaConfig,
    /// Enrollment over EST.
    pub est: EstConfig,
}

/// The AuthZEN endpoints (`/access/v1/...`) and how their requests map to Cedar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzenConfig {
    /// The base URL PEPs use to reach this service, announced as `policy_decision_point` in
    /// `/.well-known/authzen-configuration`. Unset: the listener's own address.
    pub base_url: Option<String>,
    /// Cedar namespace given to AuthZEN `type`s and action names without one: with `Med5G`,
    /// `"type": "Terminal"` is `Med5G::Terminal` and `"name": "attach"` is
    /// `Med5G::Action::"attach"`. Empty: no namespace.
    pub namespace: String,
    /// Most stored entities (or actions) one search request evaluates before it answers with a
    /// page token to continue from.
    pub search_scan_limit: usize,
}

impl Default for AuthzenConfig {
    fn default() -> Self {
        Self { base_url: None, namespace: "Med5G".to_owned(), search_scan_limit: 2000 }
    }
}

impl AuthzenConfig {
    /// The base URL to announce: the configured one without a trailing `/`, else
    /// `{scheme}://{addr}` of the listener actually bound.
    pub fn effective_base_url(&self, scheme: &str, addr: SocketAddr) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{scheme}://{addr}"),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if let Some(url) = &self.base_url {
            if let Err(message) = check_base_url(url) {
                return invalid("authzen.base_url", message);
            }
        }
        if !self.namespace.is_empty() {
            let probe = format!("{}::Probe", self.namespace);
            if cedar_policy::EntityTypeName::from_str(&probe).is_err() {
                return invalid(
                    "authzen.namespace",
                    format!("`{}` is not a Cedar namespace such as `Med5G`", self.namespace),
                );
            }
        }
        if !(1..=1_000_000).contains(&self.search_scan_limit) {
            return invalid("authzen.search_scan_limit", "must be between 1 and 1000000".into());
        }
        Ok(())
    }
}

/// An absolute `http`/`https` URL with a host and no query or fragment (AuthZEN's
/// `policy_decision_point` rules; `http` is allowed for loopback development and TLS offload).
fn check_base_url(url: &str) -> Result<(), String> {
    let uri: axum::http::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err(format!("`{url}` must start with `https://` (or `http://`)")),
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(format!("`{url}` has no host"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!("`{url}` must not have a query or fragment"));
    }
    Ok(())
}

/// `[data]`: the data directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The directory (created if missing): `audit/`, `keys/`, `versions/`.
    pub dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("data") }
    }
}

/// Listener settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the API listener (TLS with client certificates).
    pub listen: SocketAddr,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Milliseconds a client has to send a request's headers (HTTP/1.1).
    pub header_read_timeout_ms: u64,
    /// Seconds a connection may stay without any traffic before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds one request (reading its body, deciding, answering) may take; 408 above.
    pub request_timeout_secs: u64,
    /// Connections served at once per listener; further clients wait in the accept queue.
    pub max_connections: usize,
}

/// `[access]`: the access policy workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// The access workspace directory (its own schema, policies and entities). Reloaded like
    /// the domain workspace (`workspace.watch`, `workspace.debounce_ms`).
    pub dir: PathBuf,
}

/// `[insecure_http]`: a plain-HTTP listener for development only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsecureHttpConfig {
    /// Loopback address to listen on; unset (the default) means no plain listener.
    pub listen: Option<SocketAddr>,
    /// The identity every caller on this listener is treated as.
    pub identity: String,
}

/// Where the policies are and how they are reloaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspaceConfig {
    /// The workspace directory.
    pub dir: PathBuf,
    /// Reload when files change.
    pub watch: bool,
    /// How long changes must settle before a reload, in milliseconds.
    pub debounce_ms: u64,
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` (default) or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `medpdp=debug,tower_http=info`.
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            shutdown_grace_secs: 10,
            header_read_timeout_ms: 10_000,
            idle_timeout_secs: 60,
            request_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("policies/access") }
    }
}

impl Default for InsecureHttpConfig {
    fn default() -> Self {
        Self { listen: None, identity: "urn:medpdp:admin:dev".to_owned() }
    }
}

impl InsecureHttpConfig {
    /// The development identity.
    pub fn caller(&self) -> Result<Caller, crate::identity::IdentityError> {
        Caller::from_urn(&self.identity)
    }
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("policies"), watch: true, debounce_ms: 250 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Human, filter: "info".to_owned() }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid config file `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration `{key}`: {message}")]
    Invalid {
        /// The dotted key, e.g. `limits.max_batch`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads a TOML configuration file; missing keys take their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text)
            .map_err(|message| ConfigError::Parse { path: path.to_owned(), message })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks every value; called before any port is bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key, message: &str| Err(ConfigError::Invalid { key, message: message.into() });
        if let Some(addr) = self.insecure_http.listen {
            if !addr.ip().is_loopback() {
                return invalid(
                    "insecure_http.listen",
                    "must be a loopback address: this listener has no authentication",
                );
            }
            if addr == self.server.listen {
                return invalid("insecure_http.listen", "must differ from server.listen");
            }
        }
        if let Err(e) = self.insecure_http.caller() {
            return Err(ConfigError::Invalid {
                key: "insecure_http.identity",
                message: e.to_string(),
            });
        }
        if let Err((key, message)) = self.tls.validate() {
            return Err(ConfigError::Invalid { key, message });
        }
        if !(100..=600_000).contains(&self.server.header_read_timeout_ms) {
            return invalid("server.header_read_timeout_ms", "must be between 100 and 600000");
        }
        if !(1..=86_400).contains(&self.server.idle_timeout_secs) {
            return invalid("server.idle_timeout_secs", "must be between 1 and 86400");
        }
        if !(1..=3_600).contains(&self.server.request_timeout_secs) {
            return invalid("server.request_timeout_secs", "must be between 1 and 3600");
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            return invalid("server.max_connections", "must be between 1 and 1000000");
        }
        if let Err((key, message)) = self.limits.validate() {
            return Err(ConfigError::Invalid { key, message });
        }
        if !(10..=60_000).contains(&self.workspace.debounce_ms) {
            return invalid("workspace.debounce_ms", "must be between 10 and 60000");
        }
        if self.shutdown_grace().is_zero() {
            return invalid("server.shutdown_grace_secs", "must be at least 1");
        }
        self.authzen.validate()?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(ConfigError::Invalid { key: "log.filter", message: e.to_string() });
        }
        if let Err((key, message)) = self.ca.validate().and_then(|()| self.est.validate()) {
            return Err(ConfigError::Invalid { key, message });
        }
        if let Some(addr) = self.est.listen {
            if addr == self.server.listen || Some(addr) == self.insecure_http.listen {
                return invalid("est.listen", "must differ from the other listeners");
            }
        }
        if let Err((key, message)) = self.audit.validate() {
            return Err(ConfigError::Invalid { key, message });
        }
        if self.data.dir.exists() && !self.data.dir.is_dir() {
            return Err(ConfigError::Invalid {
                key: "data.dir",
                message: format!("`{}` is not a directory", self.data.dir.display()),
            });
        }
        if !self.workspace.dir.is_dir() {
            return Err(ConfigError::Invalid {
                key: "workspace.dir",
                message: format!("`{}` is not a directory", self.workspace.dir.display()),
            });
        }
        Ok(())
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.server.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_errors_with_a_position() {
        let e = Config::from_toml("[limits]\nmax_batchh = 3\n").unwrap_err();
        assert!(e.contains("max_batchh"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn audit_and_data_sections_parse() {
        let c = Config::from_toml(
            "[data]\ndir = \"/var/lib/medpdp\"\n[audit]\ndurability = \"async\"\nmask = [\"/context/patient\"]\n",
        )
        .unwrap();
        assert_eq!(c.data.dir, PathBuf::from("/var/lib/medpdp"));
        assert_eq!(c.audit.durability, crate::audit::Durability::Async);
        assert_eq!(c.audit.mask, vec!["/context/patient".to_owned()]);
        assert!(c.audit.enabled, "the log is on unless turned off");
        assert!(Config::from_toml("[audit]\nmode = \"sync\"\n").unwrap_err().contains("mode"));
    }

    #[test]
    fn sections_override_defaults() {
        let c = Config::from_toml("[limits]\nmax_batch = 7\n[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(c.limits.max_batch, 7);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.limits.max_body_bytes, Limits::default().max_body_bytes);
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.workspace.dir = std::env::temp_dir();
        c.limits.max_batch = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("limits.max_batch"), "{e}");
        c.limits.max_batch = 1;
        c.server.listen = "0.0.0.0:1".parse().unwrap();
        c.validate().expect("the TLS listener may listen on any address");
        c.insecure_http.listen = Some("0.0.0.0:2".parse().unwrap());
        assert!(c.validate().unwrap_err().to_string().contains("insecure_http.listen"));
        c.insecure_http.listen = Some("127.0.0.1:2".parse().unwrap());
        c.validate().unwrap();
        c.insecure_http.identity = "dev".into();
        assert!(c.validate().unwrap_err().to_string().contains("insecure_http.identity"));
        c.insecure_http.identity = "urn:medpdp:gateway:dev".into();
        c.server.max_connections = 0;
        assert!(c.validate().unwrap_err().to_string().contains("server.max_connections"));
        c.server.max_connections = 10;
        c.tls.handshake_timeout_ms = 0;
        assert!(c.validate().unwrap_err().to_string().contains("tls.handshake_timeout_ms"));
        c.tls.handshake_timeout_ms = 1000;
        c.log.filter = "medpdp=notalevel".into();
        assert!(c.validate().unwrap_err().to_string().contains("log.filter"));
        c.log.filter = "info".into();
        c.audit.mask = vec!["/principal".into()];
        assert!(c.validate().unwrap_err().to_string().contains("audit.mask"));
        c.audit.mask = vec![];
        c.audit.checkpoint_every = 0;
        assert!(c.validate().unwrap_err().to_string().contains("audit.checkpoint_every"));
    }

    #[test]
    fn authzen_section_is_validated() {
        let c = Config::from_toml(
            "[authzen]\nbase_url = \"https://pdp.example.org/\"\nnamespace = \"Cert\"\n",
        )
        .unwrap();
        assert_eq!(c.authzen.namespace, "Cert");
        let addr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(c.authzen.effective_base_url("https", addr), "https://pdp.example.org");
        assert_eq!(
            Config::default().authzen.effective_base_url("http", addr),
            "http://127.0.0.1:1"
        );
        let mut c = Config::default();
        c.workspace.dir = std::env::temp_dir();
        c.validate().unwrap();
        for bad in ["pdp.example.org", "ftp://x", "https://x/?a=1", "https://x/#f", "https://"] {
            c.authzen.base_url = Some(bad.into());
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("authzen.base_url"), "{bad}: {e}");
        }
        c.authzen.base_url = None;
        c.authzen.namespace = "Not A Namespace".into();
        assert!(c.validate().unwrap_err().to_string().contains("authzen.namespace"));
        c.authzen.namespace = String::new();
        c.validate().unwrap();
        c.authzen.namespace = "A::B".into();
        c.validate().unwrap();
    }
}
