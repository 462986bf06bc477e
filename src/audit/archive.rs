//! The versions archive: every workspace that becomes active, kept content-addressed so any
//! logged decision can be re-evaluated with exactly the policies, schema and entity data that
//! produced it.
//!
//! ```text
//! versions/blobs/<aa>/<sha256>         file contents, named by their SHA-256
//! versions/manifests/<version>.json    {version, entities_version, files: [{path, kind, sha256}]}
//! ```
//!
//! Unchanged files are stored once however many versions use them. Writes are atomic
//! (temporary file, fsync, rename, fsync of the directory) and happen in [`ArchiveHook`]
//! *before* a version becomes active: if the archive cannot be written the activation is
//! refused, so no decision is ever made by a version that cannot be replayed. Loading checks
//! every blob's hash and the manifest's version, so a tampered archive is an error, not a
//! silently different replay.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use super::entry::{AuditEvent, EventKind};
use super::segment::sync_dir;
use super::{AuditError, AuditLog};
use crate::policy::{
    build_snapshot, sha256_hex, versions, ActivationHook, FileKind, Snapshot, SourceFile,
};

/// The archive directory.
#[derive(Debug, Clone)]
pub struct VersionArchive {
    dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: String,
    entities_version: String,
    files: Vec<ManifestFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestFile {
    path: String,
    kind: String,
    sha256: String,
}

impl VersionArchive {
    /// The archive in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn manifest_path(&self, version: &str) -> Result<PathBuf, AuditError> {
        let hex = version
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                AuditError::Archive(format!("`{version}` is not a workspace version"))
            })?;
        Ok(self.dir.join("manifests").join(format!("{hex}.json")))
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.dir.join("blobs").join(prefix).join(sha256)
    }

    /// Stores a workspace version (no-op for what is already there).
    pub fn store(&self, snapshot: &Snapshot, sources: &[SourceFile]) -> Result<(), AuditError> {
        let manifest_path = self.manifest_path(snapshot.version())?;
        if manifest_path.is_file() {
            return Ok(());
        }
        for f in sources {
            let path = self.blob_path(&f.sha256);
            if !path.is_file() {
                write_atomic(&path, f.text.as_bytes())?;
            }
        }
        let manifest = Manifest {
            version: snapshot.version().to_owned(),
            entities_version: snapshot.meta().entities_version.clone(),
            files: sources
                .iter()
                .map(|f| ManifestFile {
                    path: f.path.clone(),
                    kind: kind_name(f.kind).to_owned(),
                    sha256: f.sha256.clone(),
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| AuditError::Archive(format!("cannot encode a manifest: {e}")))?;
        write_atomic(&manifest_path, &json)
    }

    /// Rebuilds the snapshot of `version`, checking every hash on the way.
    pub fn load(&self, version: &str) -> Result<Snapshot, AuditError> {
        let path = self.manifest_path(version)?;
        let text = std::fs::read(&path).map_err(|e| {
            AuditError::Archive(format!(
                "version `{version}` is not archived ({}: {e})",
                path.display()
            ))
        })?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| AuditError::Archive(format!("manifest of `{version}` is corrupt: {e}")))?;
        let mut files = Vec::with_capacity(manifest.files.len());
        for f in &manifest.files {
            let bytes = std::fs::read(self.blob_path(&f.sha256)).map_err(|e| {
                AuditError::Archive(format!("`{}` of `{version}` is missing: {e}", f.path))
            })?;
            if sha256_hex(&bytes) != f.sha256 {
                return Err(AuditError::Archive(format!(
                    "`{}` of `{version}` does not match its hash (archive altered)",
                    f.path
                )));
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| AuditError::Archive(format!("`{}` is not UTF-8", f.path)))?;
            let kind = kind_from_name(&f.kind).ok_or_else(|| {
                AuditError::Archive(format!("`{}` has an unknown kind `{}`", f.path, f.kind))
            })?;
            files.push(SourceFile {
                path: f.path.clone(),
                kind,
                text: text.into(),
                sha256: f.sha256.clone(),
            });
        }
        if versions(&files).workspace != version || manifest.version != version {
            return Err(AuditError::Archive(format!(
                "manifest of `{version}` does not hash to that version (archive altered)"
            )));
        }
        build_snapshot(&self.dir, files)
            .map(|l| l.snapshot)
            .map_err(|e| AuditError::Archive(format!("version `{version}` no longer loads: {e}")))
    }
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Schema => "schema",
        FileKind::Policies => "policies",
        FileKind::Entities => "entities",
        FileKind::Links => "links",
    }
}

fn kind_from_name(name: &str) -> Option<FileKind> {
    Some(match name {
        "schema" => FileKind::Schema,
        "policies" => FileKind::Policies,
        "entities" => FileKind::Entities,
        "links" => FileKind::Links,
        _ => return None,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| AuditError::io(&tmp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| AuditError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| AuditError::io(path, e))?;
    sync_dir(dir)
}

/// Archives every version before it becomes active and records the activation in the log;
/// refuses the activation when either fails.
#[derive(Debug)]
pub struct ArchiveHook {
    archive: VersionArchive,
    log: Option<Arc<AuditLog>>,
}

impl ArchiveHook {
    /// A hook writing to `archive` and, when given, recording activations in `log`.
    pub fn new(archive: VersionArchive, log: Option<Arc<AuditLog>>) -> Self {
        Self { archive, log }
    }
}

impl ActivationHook for ArchiveHook {
    fn before_activate(&self, snapshot: &Snapshot, sources: &[SourceFile]) -> Result<(), String> {
        self.archive.store(snapshot, sources).map_err(|e| {
            format!("cannot archive version `{}`, so it is not activated: {e}", snapshot.version())
        })?;
        if let Some(log) = &self.log {
            let meta = snapshot.meta();
            let event = AuditEvent::new(
                EventKind::PolicyActivated,
                None,
                serde_json::json!({
                    "version": meta.version,
                    "entities_version": meta.entities_version,
                    "policies": meta.policy_count,
                    "entities": meta.entity_count,
                }),
            );
            log.record_event_blocking(&event).map_err(|e| {
                format!(
                    "cannot record the activation of `{}`, so it is not activated: {e}",
                    meta.version
                )
            })?;
        }
        Ok(())
    }
}

/// Snapshots loaded from the archive, each version once, shared by replay workers.
#[derive(Debug)]
pub struct SnapshotCache {
    archive: VersionArchive,
    loaded: Mutex<HashMap<String, Arc<LoadOnce>>>,
}

/// One version's load, run once, shared by every worker that needs it.
type LoadOnce = OnceLock<Result<Arc<Snapshot>, String>>;

impl SnapshotCache {
    /// A cache over `archive`.
    pub fn new(archive: VersionArchive) -> Self {
        Self { archive, loaded: Mutex::new(HashMap::new()) }
    }

    /// The snapshot of `version`, loading it on first use (concurrent callers wait for the
    /// one load).
    pub fn get(&self, version: &str) -> Result<Arc<Snapshot>, String> {
        let cell = {
            let mut map = match self.loaded.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            Arc::clone(map.entry(version.to_owned()).or_default())
        };
        cell.get_or_init(|| self.archive.load(version).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_workspace;

    #[test]
    fn versions_round_trip_and_tampering_is_detected() {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/med5g-mini");
        let loaded = load_workspace(&ws).unwrap();
        let d = tempfile::tempdir().unwrap();
        let archive = VersionArchive::new(d.path());
        archive.store(&loaded.snapshot, &loaded.sources).unwrap();
        archive.store(&loaded.snapshot, &loaded.sources).unwrap();
        let version = loaded.snapshot.version();
        let back = archive.load(version).unwrap();
        assert_eq!(back.version(), version);
        assert_eq!(back.meta().entities_version, loaded.snapshot.meta().entities_version);
        assert_eq!(back.meta().policy_count, loaded.snapshot.meta().policy_count);

        let schema = loaded.sources.iter().find(|f| f.kind == FileKind::Schema).unwrap();
        std::fs::write(archive.blob_path(&schema.sha256), "namespace X {}").unwrap();
        let e = archive.load(version).unwrap_err().to_string();
        assert!(e.contains("does not match its hash"), "{e}");
        let e = archive.load(&format!("sha256:{}", "0".repeat(64))).unwrap_err().to_string();
        assert!(e.contains("is not archived"), "{e}");
        assert!(archive.load("v1").unwrap_err().to_string().contains("not a workspace version"));
    }
}
