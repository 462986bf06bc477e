//! Reloading the TLS material when its files change.
//!
//! Watches the directories holding the configured files (not the files themselves, so that an
//! atomic replace by rename, as certificate tools do, is seen), debounced; only events on the
//! configured files count. Whether anything really changed is decided by the content
//! fingerprint in [`TlsStore::reload`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use super::TlsStore;
use crate::policy::ReloadTrigger;

/// Keeps the watcher alive; dropping it stops watching.
pub struct TlsWatchHandle {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TlsWatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsWatchHandle").finish_non_exhaustive()
    }
}

impl Drop for TlsWatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An absolute form of `path` for comparing with watcher events: the canonical parent
/// directory joined with the file name (the file itself may not exist between a delete and a
/// create).
fn absolute(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let parent = parent.canonicalize().unwrap_or(parent);
    match path.file_name() {
        Some(name) => parent.join(name),
        None => parent,
    }
}

/// Watches the store's files and reloads after changes settle for the configured debounce.
pub fn watch(store: Arc<TlsStore>) -> Result<TlsWatchHandle, notify::Error> {
    let settings = store.settings();
    let debounce = Duration::from_millis(settings.debounce_ms);
    let files: BTreeSet<PathBuf> = [&settings.cert, &settings.key, &settings.client_ca]
        .into_iter()
        .chain(&settings.crls)
        .chain(&settings.bootstrap_cas)
        .map(|p| absolute(p))
        .collect();
    let dirs: BTreeSet<PathBuf> =
        files.iter().filter_map(|f| f.parent()).map(Path::to_owned).collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let watched = files.clone();
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                if events.iter().any(|e| e.paths.iter().any(|p| watched.contains(&absolute(p)))) {
                    // A full channel means a reload is already pending: coalesce.
                    let _ = tx.try_send(());
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "TLS file watcher error");
                }
            }
        }
    })?;
    for dir in &dirs {
        debouncer.watch(dir, RecursiveMode::NonRecursive)?;
    }
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            store.reload(ReloadTrigger::Watch).await;
        }
    });
    Ok(TlsWatchHandle { _debouncer: debouncer, task })
}
