//! Policy workspaces: the files administrators edit, loaded into validated, immutable
//! snapshots, and the store that swaps snapshots atomically on reload.
//!
//! This module does I/O only to read workspace files; evaluation lives in [`crate::decide`].

mod diagnostic;
mod entities;
mod files;
mod load;
mod shapes;
mod slices;
mod snapshot;
mod store;
mod watch;

pub use diagnostic::{Diagnostic, Severity};
pub use files::{
    read_workspace, sha256_hex, versions, FileKind, SourceFile, Versions, ENTITIES_DIR,
    ENTITIES_FILE, LINKS_FILE, SCHEMA_FILE,
};
pub use load::{build_snapshot, load_workspace, LoadError, LoadedWorkspace};
pub use shapes::{ActionShape, ExtensionType, RequestShapes, Shape};
pub use snapshot::{Effect, PolicyInfo, Snapshot, SnapshotMeta};
pub use store::{
    ActivationHook, PolicyStore, ReloadFailure, ReloadOutcome, ReloadTrigger, StoreStatus,
};
pub use watch::{watch, WatchHandle};
