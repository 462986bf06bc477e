//! Reloading a workspace when its files change.
//!
//! A debounced recursive watcher on the workspace directory nudges one reload task; nudges that
//! arrive while a reload runs coalesce into one more reload, so a burst of saves (an editor
//! writing a swap file, then renaming) costs at most two loads. Whether anything really
//! changed is decided by the content hash in [`PolicyStore::reload`], not by the event kind.
//!
//! Access events (open, read, close after reading) are not changes: a reload reads every file,
//! and treating its own reads as changes made the watcher reload in a loop, hashing the whole
//! workspace several times a second and competing with requests for the CPU.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use super::store::{PolicyStore, ReloadTrigger};

/// Keeps the watcher alive; dropping it stops watching.
pub struct WatchHandle {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish_non_exhaustive()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches the store's directory and reloads after changes settle for `debounce`.
pub fn watch(store: Arc<PolicyStore>, debounce: Duration) -> Result<WatchHandle, notify::Error> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let root = store.dir().canonicalize().unwrap_or_else(|_| store.dir().to_owned());
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
        match result {
            Ok(events) => {
                let relevant = events
                    .iter()
                    .any(|e| is_change(&e.kind) && e.paths.iter().any(|p| !is_hidden(&root, p)));
                if relevant {
                    // A full channel means a reload is already pending: coalesce.
                    let _ = tx.try_send(());
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watcher error");
                }
            }
        }
    })?;
    debouncer.watch(store.dir(), RecursiveMode::Recursive)?;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            store.reload(ReloadTrigger::Watch).await;
        }
    });
    Ok(WatchHandle { _debouncer: debouncer, task })
}

/// Whether an event may mean that a file's content changed (a file closed after writing does;
/// opening, reading or closing after reading does not).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Whether a changed path is hidden *below the workspace root* (editor swap files, `.git`).
/// The root's own location may well be hidden (e.g. a temporary directory) and does not count.
fn is_hidden(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{CreateKind, ModifyKind, RemoveKind};
        assert!(!is_change(&EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Remove(RemoveKind::File)));
        assert!(is_change(&EventKind::Any));
    }

    #[test]
    fn only_components_below_the_root_count_as_hidden() {
        let root = Path::new("/tmp/.tmpAbc/ws");
        assert!(!is_hidden(root, Path::new("/tmp/.tmpAbc/ws/a.cedar")));
        assert!(is_hidden(root, Path::new("/tmp/.tmpAbc/ws/.a.cedar.swp")));
        assert!(is_hidden(root, Path::new("/tmp/.tmpAbc/ws/.git/index")));
    }
}
