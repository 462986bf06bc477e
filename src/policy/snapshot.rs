//! An immutable, validated policy workspace: what every decision is evaluated against.
//!
//! INVARIANT: a `Snapshot` is only ever built by the loader after every file parsed and, when a
//! schema is present, every policy and entity validated against it. It is never mutated; the
//! store swaps whole snapshots, and readers hold an `Arc` for as long as they need one.

use std::collections::HashMap;
use std::sync::Arc;

use cedar_policy::{Entities, EntityUid, PolicyId, PolicySet, Schema};
use serde::Serialize;
use time::OffsetDateTime;

use super::diagnostic::Diagnostic;
use super::shapes::RequestShapes;
use super::slices::PolicySlices;

/// Whether a policy permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// A `permit` policy.
    Permit,
    /// A `forbid` policy.
    Forbid,
}

/// What the service knows about one policy besides its Cedar text.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    /// The policy id (from `@id`, else `<file>#<n>`).
    pub id: String,
    /// Workspace-relative file that holds it.
    pub file: String,
    /// Permit or forbid.
    pub effect: Effect,
    /// Obligations named by `@obligation("…")`, split on `;`.
    pub obligations: Vec<String>,
    /// `@description("…")`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// True for a template (which decides nothing until linked).
    pub template: bool,
}

/// A loaded, validated workspace.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) policies: PolicySet,
    pub(crate) schema: Option<Schema>,
    /// Shared with the next snapshot when a reload changes neither entities nor schema.
    pub(crate) entities: Arc<Entities>,
    /// SHA-256 of the schema file the entities were validated against, if any.
    schema_sha: Option<String>,
    pub(crate) info: HashMap<PolicyId, PolicyInfo>,
    /// Entities that policies name literally (e.g. `Med5G::Role::"surgeon"`): a request-scoped
    /// entity slice must include them, since a policy may read their attributes.
    pub(crate) literal_uids: Vec<EntityUid>,
    /// The policy set sliced by what a request names (see `slices`).
    slices: PolicySlices,
    /// Declared context shapes, for building request contexts without Cedar's JSON parser.
    shapes: RequestShapes,
    meta: SnapshotMeta,
}

/// Descriptive facts about a snapshot, as shown by `/v1/status` and `medpdp check`.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotMeta {
    /// Content hash over every file of the workspace.
    pub version: String,
    /// Content hash over the entity data files.
    pub entities_version: String,
    /// When this snapshot was loaded.
    #[serde(with = "time::serde::rfc3339")]
    pub loaded_at: OffsetDateTime,
    /// Static and template-linked policies.
    pub policy_count: usize,
    /// Templates.
    pub template_count: usize,
    /// Entities from the workspace's entity data (action entities not counted).
    pub entity_count: usize,
    /// Whether a schema validates policies, entities and requests.
    pub schema: bool,
    /// Non-fatal findings (for example schema shadowing warnings).
    pub warnings: Vec<Diagnostic>,
    /// `(path, sha256)` of every file, sorted by path.
    pub files: Vec<(String, String)>,
}

impl Snapshot {
    pub(crate) fn new(
        policies: PolicySet,
        schema: Option<Schema>,
        entities: Arc<Entities>,
        info: HashMap<PolicyId, PolicyInfo>,
        literal_uids: Vec<EntityUid>,
        meta: SnapshotMeta,
    ) -> Self {
        // Slicing cannot fail on a set that loaded; should it anyway, every request is evaluated
        // against the full set (an empty `PolicySlices` answers no slice).
        let slices = PolicySlices::build(&policies, &entities, schema.as_ref()).unwrap_or_default();
        let shapes = RequestShapes::default();
        Self {
            policies,
            schema,
            entities,
            schema_sha: None,
            info,
            literal_uids,
            slices,
            shapes,
            meta,
        }
    }

    /// Records the SHA-256 of the schema file (see [`Snapshot::entities_if_built_from`]).
    pub(crate) fn with_schema_sha(mut self, schema_sha: Option<String>) -> Self {
        self.schema_sha = schema_sha;
        self
    }

    /// This snapshot's entity store and entity count, if it was built from exactly these
    /// entity files (`entities_version`) and this schema file (or none).
    pub(crate) fn entities_if_built_from(
        &self,
        schema_sha: Option<&str>,
        entities_version: &str,
    ) -> Option<(Arc<Entities>, usize)> {
        (self.schema_sha.as_deref() == schema_sha && self.meta.entities_version == entities_version)
            .then(|| (Arc::clone(&self.entities), self.meta.entity_count))
    }

    /// Sets the declared context shapes (read from the schema source by the loader).
    pub(crate) fn with_shapes(mut self, shapes: RequestShapes) -> Self {
        self.shapes = shapes;
        self
    }

    /// Descriptive facts (version, counts, load time).
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Content hash over every file of the workspace.
    pub fn version(&self) -> &str {
        &self.meta.version
    }

    /// The policy set (static, templates and links).
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The policies whose scope can match a request for this principal, action and resource: a
    /// slice of [`Snapshot::policies`] that Cedar answers exactly as it answers the full set,
    /// when evaluated against the resident entity store.
    pub fn policies_for(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> &PolicySet {
        self.slices.get(principal, action, resource).unwrap_or(&self.policies)
    }

    /// Number of distinct policy slices and the number of policies in the largest.
    pub fn slice_stats(&self) -> (usize, usize) {
        self.slices.stats()
    }

    /// The context shapes the schema declares, by action.
    pub fn request_shapes(&self) -> &RequestShapes {
        &self.shapes
    }

    /// The schema, when the workspace has one.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The resident entity store.
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// Service-side facts about a policy.
    pub fn policy_info(&self, id: &PolicyId) -> Option<&PolicyInfo> {
        self.info.get(id)
    }

    /// Facts about every policy and template, sorted by id.
    pub fn policy_infos(&self) -> Vec<&PolicyInfo> {
        let mut v: Vec<_> = self.info.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}
