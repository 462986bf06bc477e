//! Service configuration: a TOML file, environment variables and flags, merged and validated
//! before any port is bound.
//!
//! Precedence, highest first: command-line flag, environment variable (`MEDPDP_*`, declared on
//! the flags), the TOML file (`--config`), built-in defaults. Relative paths are relative to the
//! working directory. Unknown keys in the file are errors, so a typo never silently falls back
//! to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::http::Limits;

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
}

/// Listener settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the API listener.
    pub listen: SocketAddr,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
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
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 8443)), shutdown_grace_secs: 10 }
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
        if !self.server.listen.ip().is_loopback() {
            return invalid(
                "server.listen",
                "must be a loopback address: the API has no client authentication on this listener",
            );
        }
        if self.limits.max_body_bytes < 256 {
            return invalid("limits.max_body_bytes", "must be at least 256");
        }
        if self.limits.max_batch == 0 {
            return invalid("limits.max_batch", "must be at least 1");
        }
        if !(10..=60_000).contains(&self.workspace.debounce_ms) {
            return invalid("workspace.debounce_ms", "must be between 10 and 60000");
        }
        if self.shutdown_grace().is_zero() {
            return invalid("server.shutdown_grace_secs", "must be at least 1");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(ConfigError::Invalid { key: "log.filter", message: e.to_string() });
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
        assert!(c.validate().unwrap_err().to_string().contains("server.listen"));
        c.server.listen = "127.0.0.1:1".parse().unwrap();
        c.log.filter = "medpdp=notalevel".into();
        assert!(c.validate().unwrap_err().to_string().contains("log.filter"));
    }
}
