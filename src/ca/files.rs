//! Writing certificate material: private keys are created with mode 0600 (never readable by
//! others, not even for an instant), and nothing existing is overwritten unless asked.

use std::io::Write;
use std::path::Path;

use super::CaError;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io { path: path.to_owned(), source }
}

/// Reads a text file.
pub(super) fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

fn create_new(path: &Path, text: &str, mode: u32) -> Result<(), CaError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(text.as_bytes()).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// Creates a file only the owner can read (mode 0600); fails if it exists.
pub fn write_new_private(path: &Path, text: &str) -> Result<(), CaError> {
    create_new(path, text, 0o600)
}

/// Creates a world-readable file (mode 0644); fails if it exists.
pub fn write_new_public(path: &Path, text: &str) -> Result<(), CaError> {
    create_new(path, text, 0o644)
}

/// Replaces a file atomically (write a temporary file beside it, then rename), so a watcher
/// never sees it half-written. The new file gets `mode`.
pub fn write_replace(path: &Path, text: &str, mode: u32) -> Result<(), CaError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    create_new(&tmp, text, mode)?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}
