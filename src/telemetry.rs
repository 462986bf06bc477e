//! Logging setup: `tracing` to stderr, human-readable or JSON lines.
//!
//! Standard output is left to command results (decision JSON, check summaries) so that scripts
//! can pipe them. Key material is never logged anywhere.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. A second call (as happens in tests) is a no-op.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    // An error only means a subscriber is already installed.
    drop(result);
}
