//! The active policy snapshot and how it is replaced.
//!
//! Readers take the current `Arc<Snapshot>` with one atomic load (no lock on the request path)
//! and keep it for the whole request, so in-flight requests finish on the set they started
//! with. Reloads are serialized, run the loader on a blocking thread (off the request path),
//! and swap the pointer only when the new workspace is fully valid; a broken edit leaves the
//! last good snapshot active and is recorded as the last reload error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use time::OffsetDateTime;

use super::diagnostic::Diagnostic;
use super::files::{read_workspace, versions, SourceFile};
use super::load::{rebuild_snapshot, LoadError};
use super::snapshot::{Snapshot, SnapshotMeta};

/// What asked for a reload (logged and shown in status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadTrigger {
    /// The first load at start-up.
    Startup,
    /// The file watcher saw a change.
    Watch,
    /// SIGHUP.
    Signal,
    /// `POST /v1/admin/reload`.
    Admin,
}

/// The result of one reload attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// A new snapshot became active.
    Activated {
        /// The new version.
        version: String,
        /// The version it replaced, if any.
        previous: Option<String>,
    },
    /// The files hash to the active version; nothing changed.
    Unchanged {
        /// The active version.
        version: String,
    },
    /// The workspace is invalid; the previous snapshot (if any) stays active.
    Failed {
        /// The version of the broken files, when they could be read.
        version: Option<String>,
        /// The version still active.
        active: Option<String>,
        /// Every problem found.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Called with a validated snapshot and its files just before it becomes active. Returning an
/// error refuses the activation (the previous snapshot stays), e.g. when the versions archive
/// cannot be written.
pub trait ActivationHook: Send + Sync + std::fmt::Debug {
    /// Prepare for `snapshot` to become active.
    fn before_activate(&self, snapshot: &Snapshot, sources: &[SourceFile]) -> Result<(), String>;
}

/// A failed reload as shown in status.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadFailure {
    /// When it failed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What triggered it.
    pub trigger: ReloadTrigger,
    /// The version of the broken files, when they could be read.
    pub version: Option<String>,
    /// Every problem found.
    pub diagnostics: Vec<Diagnostic>,
}

/// Status of the store as shown by `/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStatus {
    /// The workspace directory.
    pub workspace: String,
    /// The active snapshot, if any.
    pub active: Option<SnapshotMeta>,
    /// Successful activations since start.
    pub reloads: u64,
    /// Failed reloads since start.
    pub reload_failures: u64,
    /// The most recent failure, cleared when the files become valid again.
    pub last_reload_error: Option<ReloadFailure>,
}

#[derive(Debug, Default)]
struct Counters {
    reloads: u64,
    failures: u64,
    last_error: Option<ReloadFailure>,
}

/// Holds the active snapshot of one workspace directory.
#[derive(Debug)]
pub struct PolicyStore {
    dir: PathBuf,
    current: ArcSwapOption<Snapshot>,
    counters: Mutex<Counters>,
    reload_gate: tokio::sync::Mutex<()>,
    hooks: Vec<Arc<dyn ActivationHook>>,
}

impl PolicyStore {
    /// A store for `dir` with nothing active yet; call [`PolicyStore::reload`] to load.
    pub fn new(dir: impl Into<PathBuf>, hooks: Vec<Arc<dyn ActivationHook>>) -> Self {
        Self {
            dir: dir.into(),
            current: ArcSwapOption::empty(),
            counters: Mutex::new(Counters::default()),
            reload_gate: tokio::sync::Mutex::new(()),
            hooks,
        }
    }

    /// The workspace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The active snapshot, if a valid one has ever loaded. One atomic load; no lock.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// Reads the workspace again and activates it if it changed and is valid.
    pub async fn reload(&self, trigger: ReloadTrigger) -> ReloadOutcome {
        let _serialized = self.reload_gate.lock().await;
        let dir = self.dir.clone();
        let current = self.current();
        let active = current.as_ref().map(|s| s.version().to_owned());
        let hooks = self.hooks.clone();
        let loaded =
            tokio::task::spawn_blocking(move || load_if_changed(&dir, current.as_deref(), &hooks))
                .await;
        let result = match loaded {
            Ok(r) => r,
            Err(join) => Err(LoadError {
                dir: self.dir.display().to_string(),
                version: None,
                diagnostics: vec![Diagnostic::file_error(".", format!("loader failed: {join}"))],
            }),
        };
        self.finish(trigger, active, result)
    }

    fn finish(
        &self,
        trigger: ReloadTrigger,
        active: Option<String>,
        result: Result<Option<Snapshot>, LoadError>,
    ) -> ReloadOutcome {
        let mut counters = match self.counters.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        match result {
            Ok(Some(snapshot)) => {
                let version = snapshot.version().to_owned();
                let previous = self.current.swap(Some(Arc::new(snapshot)));
                retire(previous);
                counters.reloads += 1;
                counters.last_error = None;
                tracing::info!(?trigger, %version, previous = ?active, "policy workspace activated");
                ReloadOutcome::Activated { version, previous: active }
            }
            Ok(None) => {
                counters.last_error = None;
                let version = active.unwrap_or_default();
                tracing::debug!(?trigger, %version, "policy workspace unchanged");
                ReloadOutcome::Unchanged { version }
            }
            Err(e) => {
                counters.failures += 1;
                for d in &e.diagnostics {
                    tracing::error!(?trigger, "{d}");
                }
                tracing::error!(
                    ?trigger,
                    errors = e.error_count(),
                    active = ?active,
                    "policy workspace rejected; the last good version stays active"
                );
                counters.last_error = Some(ReloadFailure {
                    at: OffsetDateTime::now_utc(),
                    trigger,
                    version: e.version.clone(),
                    diagnostics: e.diagnostics.clone(),
                });
                ReloadOutcome::Failed { version: e.version, active, diagnostics: e.diagnostics }
            }
        }
    }

    /// Status for `/v1/status`.
    pub fn status(&self) -> StoreStatus {
        let counters = match self.counters.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        StoreStatus {
            workspace: self.dir.display().to_string(),
            active: self.current().map(|s| s.meta().clone()),
            reloads: counters.reloads,
            reload_failures: counters.failures,
            last_reload_error: counters.last_error.clone(),
        }
    }
}

/// Frees a replaced snapshot off the request path.
///
/// Freeing a large snapshot (entity store, policy slices) takes milliseconds; done by whoever
/// drops the last reference, it would stall the async worker that runs `finish` or the request
/// that finished last on the old version. A blocking-pool thread instead waits (briefly) until
/// in-flight requests have released it and frees it there.
fn retire(previous: Option<Arc<Snapshot>>) {
    let Some(old) = previous else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return; // no runtime (command-line use): dropping here is fine
    };
    runtime.spawn_blocking(move || {
        // Requests hold a snapshot for one decision (or one batch): this ends in milliseconds.
        // Past the deadline the last request to finish frees it, as it would have anyway.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(old);
    });
}

/// Loads the workspace unless its files hash to the active version. `Ok(None)` means
/// unchanged. The active snapshot's entity store is reused when neither the entity data nor the
/// schema changed (an edit of policies only), which spares parsing and validating it again.
fn load_if_changed(
    dir: &Path,
    active: Option<&Snapshot>,
    hooks: &[Arc<dyn ActivationHook>],
) -> Result<Option<Snapshot>, LoadError> {
    let files = read_workspace(dir).map_err(|diagnostics| LoadError {
        dir: dir.display().to_string(),
        version: None,
        diagnostics,
    })?;
    if active.map(Snapshot::version) == Some(versions(&files).workspace.as_str()) {
        return Ok(None);
    }
    let loaded = rebuild_snapshot(dir, files, active)?;
    for hook in hooks {
        hook.before_activate(&loaded.snapshot, &loaded.sources).map_err(|msg| LoadError {
            dir: dir.display().to_string(),
            version: Some(loaded.snapshot.version().to_owned()),
            diagnostics: vec![Diagnostic::file_error(".", msg)],
        })?;
    }
    Ok(Some(loaded.snapshot))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test set-up")]

    use super::*;

    fn append(path: &Path, text: &str) {
        let mut content = std::fs::read_to_string(path).unwrap();
        content.push_str(text);
        std::fs::write(path, content).unwrap();
    }

    async fn activated(store: &PolicyStore) -> Arc<Snapshot> {
        let outcome = store.reload(ReloadTrigger::Admin).await;
        assert!(matches!(outcome, ReloadOutcome::Activated { .. }), "{outcome:?}");
        store.current().unwrap()
    }

    #[tokio::test]
    async fn a_policy_only_edit_reuses_the_entity_store_and_other_edits_rebuild_it() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        std::fs::write(
            ws.join("schema.cedarschema"),
            "entity User;\nentity Doc;\naction read appliesTo { principal: User, resource: Doc };\n",
        )
        .unwrap();
        std::fs::write(
            ws.join("policies.cedar"),
            "@id(\"readers\")\npermit(principal, action, resource);\n",
        )
        .unwrap();
        let user = |id: &str| serde_json::json!({"uid": {"type": "User", "id": id}, "attrs": {}, "parents": []});
        std::fs::write(ws.join("entities.json"), serde_json::json!([user("alice")]).to_string())
            .unwrap();
        let store = PolicyStore::new(ws, Vec::new());
        let first = activated(&store).await;

        append(
            &ws.join("policies.cedar"),
            "\n@id(\"extra\")\nforbid(principal, action, resource) when { false };\n",
        );
        let policy_edit = activated(&store).await;
        assert!(Arc::ptr_eq(&first.entities, &policy_edit.entities));
        assert_eq!(policy_edit.meta().policy_count, first.meta().policy_count + 1);
        assert_eq!(policy_edit.meta().entity_count, first.meta().entity_count);

        append(&ws.join("schema.cedarschema"), "\n// a comment changes the schema file\n");
        let schema_edit = activated(&store).await;
        assert!(!Arc::ptr_eq(&policy_edit.entities, &schema_edit.entities));

        std::fs::write(
            ws.join("entities.json"),
            serde_json::json!([user("alice"), user("bob")]).to_string(),
        )
        .unwrap();
        let entity_edit = activated(&store).await;
        assert!(!Arc::ptr_eq(&schema_edit.entities, &entity_edit.entities));
        assert_eq!(entity_edit.meta().entity_count, schema_edit.meta().entity_count + 1);
    }
}
