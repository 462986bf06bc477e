//! Per-snapshot facts the AuthZEN mapping needs and a [`Snapshot`] does not expose: the
//! attributes the schema declares (so that unknown properties and context keys can be ignored,
//! as AuthZEN requires of receivers) and the stored entities of each type, sorted (the search
//! candidates).
//!
//! [`IndexHook`] builds a [`SnapshotIndex`] when a snapshot is about to become active, on the
//! reload thread, so the request path only looks one up by version. It never refuses an
//! activation: a schema it cannot read only turns pruning off (Cedar still validates).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cedar_policy::{EntityId, EntityTypeName, EntityUid};
use serde_json::{Map, Value};

use crate::policy::{ActivationHook, FileKind, Snapshot, SourceFile};

/// How many recent indexes are kept: the active one, the one it replaced (requests in flight
/// may still hold that snapshot) and one spare.
const KEEP: usize = 3;

/// Entities (or actions) in a stable order: sorted by [`sort_key`]. Search pages continue after
/// a key, so a page token keeps its meaning across reloads.
pub(crate) type Candidates = Vec<EntityUid>;

/// The order of candidates: the uid's Cedar string form.
pub(crate) fn sort_key(uid: &EntityUid) -> String {
    uid.to_string()
}

/// What the AuthZEN endpoints know about one snapshot.
#[derive(Debug)]
pub(crate) struct SnapshotIndex {
    version: String,
    shapes: Option<Shapes>,
    by_type: HashMap<EntityTypeName, Candidates>,
    actions: Candidates,
}

/// Attribute declarations from the schema, with common types inlined.
#[derive(Debug, Default)]
struct Shapes {
    entities: HashMap<EntityTypeName, Value>,
    contexts: HashMap<EntityUid, Value>,
}

impl SnapshotIndex {
    pub(crate) fn build(snapshot: &Snapshot, sources: &[SourceFile]) -> Self {
        let shapes = sources.iter().find(|f| f.kind == FileKind::Schema).and_then(|f| {
            match cedar_policy::schema_str_to_json_with_resolved_types(&f.text) {
                Ok((json, _)) => Some(Shapes::from_schema_json(&json)),
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        "cannot read the schema's attribute declarations; AuthZEN properties and \
                         context keys are passed to Cedar unfiltered"
                    );
                    None
                }
            }
        });
        let mut by_type: HashMap<EntityTypeName, Candidates> = HashMap::new();
        for entity in snapshot.entities().iter() {
            let uid = entity.uid();
            by_type.entry(uid.type_name().clone()).or_default().push(uid);
        }
        for list in by_type.values_mut() {
            list.sort_by_cached_key(sort_key);
        }
        let mut actions: Candidates = match snapshot.schema() {
            Some(schema) => schema.actions().cloned().collect(),
            // Without a schema the actions that can matter are those policies name.
            None => snapshot
                .literal_uids
                .iter()
                .filter(|u| u.type_name().basename() == "Action")
                .cloned()
                .collect(),
        };
        actions.sort_by_cached_key(sort_key);
        actions.dedup();
        Self { version: snapshot.version().to_owned(), shapes, by_type, actions }
    }

    /// The stored entities of a type, sorted by key (empty for a type with none).
    pub(crate) fn entities_of(&self, ty: &EntityTypeName) -> &[EntityUid] {
        self.by_type.get(ty).map_or(&[], Vec::as_slice)
    }

    /// Every action the schema declares (or, without a schema, every action policies name).
    pub(crate) fn actions(&self) -> &[EntityUid] {
        &self.actions
    }

    /// Drops the properties the schema does not declare for entities of type `ty`. Without a
    /// schema, or for a type it does not declare, everything is kept (Cedar decides).
    pub(crate) fn prune_attributes(&self, ty: &EntityTypeName, attrs: &mut Map<String, Value>) {
        if let Some(shape) = self.shapes.as_ref().and_then(|s| s.entities.get(ty)) {
            prune_record(attrs, shape);
        }
    }

    /// Drops the context keys the schema does not declare for `action`.
    pub(crate) fn prune_context(&self, action: &EntityUid, context: &mut Map<String, Value>) {
        if let Some(shape) = self.shapes.as_ref().and_then(|s| s.contexts.get(action)) {
            prune_record(context, shape);
        }
    }
}

impl Shapes {
    fn from_schema_json(json: &Value) -> Self {
        let mut common: HashMap<String, Value> = HashMap::new();
        let namespaces = json.as_object().into_iter().flatten();
        for (ns, body) in namespaces.clone() {
            for (name, ty) in
                body.get("commonTypes").and_then(Value::as_object).into_iter().flatten()
            {
                common.insert(qualify(ns, name), ty.clone());
            }
        }
        let mut shapes = Shapes::default();
        for (ns, body) in namespaces {
            let entity_types = body.get("entityTypes").and_then(Value::as_object);
            for (name, decl) in entity_types.into_iter().flatten() {
                let Ok(tn) = EntityTypeName::from_str(&qualify(ns, name)) else { continue };
                let shape =
                    decl.get("shape").map_or_else(empty_record, |s| inline(s, ns, &common, 0));
                shapes.entities.insert(tn, shape);
            }
            let Ok(action_type) = EntityTypeName::from_str(&qualify(ns, "Action")) else {
                continue;
            };
            for (id, decl) in body.get("actions").and_then(Value::as_object).into_iter().flatten() {
                let uid = EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(id));
                let context = decl
                    .pointer("/appliesTo/context")
                    .map_or_else(empty_record, |c| inline(c, ns, &common, 0));
                shapes.contexts.insert(uid, context);
            }
        }
        shapes
    }
}

fn qualify(ns: &str, name: &str) -> String {
    if ns.is_empty() || name.contains("::") {
        name.to_owned()
    } else {
        format!("{ns}::{name}")
    }
}

fn empty_record() -> Value {
    serde_json::json!({"type": "Record", "attributes": {}})
}

/// Replaces references to common types by their definitions, recursively. Cedar rejects cyclic
/// common types, so the depth bound only guards against surprises.
fn inline(ty: &Value, ns: &str, common: &HashMap<String, Value>, depth: usize) -> Value {
    if depth > 32 {
        return ty.clone();
    }
    let kind = ty.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "Record" => {
            let mut out = ty.clone();
            if let Some(attrs) = out.get_mut("attributes").and_then(Value::as_object_mut) {
                for attr in attrs.values_mut() {
                    let required = attr.get("required").cloned();
                    *attr = inline(attr, ns, common, depth + 1);
                    if let (Some(r), Some(obj)) = (required, attr.as_object_mut()) {
                        obj.insert("required".into(), r);
                    }
                }
            }
            out
        }
        "Set" => {
            let mut out = ty.clone();
            if let Some(element) = ty.get("element") {
                out["element"] = inline(element, ns, common, depth + 1);
            }
            out
        }
        other => match common.get(&qualify(ns, other)).or_else(|| common.get(other)) {
            Some(def) => inline(def, ns, common, depth + 1),
            None => ty.clone(),
        },
    }
}

/// Keeps only what the record type declares, recursing into declared records and sets.
fn prune_record(values: &mut Map<String, Value>, record: &Value) {
    if record.get("type").and_then(Value::as_str) != Some("Record") {
        return;
    }
    let open = record.get("additionalAttributes").and_then(Value::as_bool).unwrap_or(false);
    let empty = Map::new();
    let declared = record.get("attributes").and_then(Value::as_object).unwrap_or(&empty);
    if !open {
        values.retain(|k, _| declared.contains_key(k));
    }
    for (k, v) in values.iter_mut() {
        if let Some(ty) = declared.get(k) {
            prune_value(v, ty);
        }
    }
}

fn prune_value(value: &mut Value, ty: &Value) {
    match (value, ty.get("type").and_then(Value::as_str)) {
        (Value::Object(map), Some("Record")) => prune_record(map, ty),
        (Value::Array(items), Some("Set")) => {
            if let Some(element) = ty.get("element") {
                items.iter_mut().for_each(|v| prune_value(v, element));
            }
        }
        _ => {}
    }
}

/// Builds a [`SnapshotIndex`] for every snapshot before it becomes active.
///
/// INVARIANT: registered as the *last* activation hook, so that when it runs no other hook can
/// refuse the activation any more: every active snapshot has its index here.
#[derive(Debug)]
pub struct IndexHook {
    recent: ArcSwap<Vec<Arc<SnapshotIndex>>>,
}

impl Default for IndexHook {
    fn default() -> Self {
        Self { recent: ArcSwap::from_pointee(Vec::new()) }
    }
}

impl IndexHook {
    /// The index of the snapshot with this version. One atomic load, no lock.
    pub(crate) fn get(&self, version: &str) -> Option<Arc<SnapshotIndex>> {
        self.recent.load().iter().rev().find(|i| i.version == version).cloned()
    }
}

impl ActivationHook for IndexHook {
    fn before_activate(&self, snapshot: &Snapshot, sources: &[SourceFile]) -> Result<(), String> {
        let index = Arc::new(SnapshotIndex::build(snapshot, sources));
        // Reloads are serialized by the store, so this read-modify-write does not race.
        let mut next: Vec<Arc<SnapshotIndex>> = self.recent.load().iter().cloned().collect();
        next.retain(|i| i.version != index.version);
        next.push(index);
        let excess = next.len().saturating_sub(KEEP);
        next.drain(..excess);
        self.recent.store(Arc::new(next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pruning_follows_declarations_and_inlines_common_types() {
        let schema = r#"
            namespace N {
              type Env = { now: String, risk?: Long };
              entity U = { role?: String, tags: Set<{ k: String }> };
              entity R;
              action a appliesTo { principal: [U], resource: [R], context: { env: Env, soft?: Bool } };
              action b appliesTo { principal: [U], resource: [R] };
            }"#;
        let (json, _) = cedar_policy::schema_str_to_json_with_resolved_types(schema).unwrap();
        let shapes = Shapes::from_schema_json(&json);
        let u = EntityTypeName::from_str("N::U").unwrap();
        let mut attrs = json!({"role": "x", "dept": "y", "tags": [{"k": "1", "junk": 2}]});
        prune_record(attrs.as_object_mut().unwrap(), &shapes.entities[&u]);
        assert_eq!(attrs, json!({"role": "x", "tags": [{"k": "1"}]}));

        let r = EntityTypeName::from_str("N::R").unwrap();
        let mut attrs = json!({"anything": 1});
        prune_record(attrs.as_object_mut().unwrap(), &shapes.entities[&r]);
        assert_eq!(attrs, json!({}));

        let a = EntityUid::from_str(r#"N::Action::"a""#).unwrap();
        let mut ctx = json!({"env": {"now": "t", "ip": "1.2.3.4"}, "soft": true, "time": "t"});
        prune_record(ctx.as_object_mut().unwrap(), &shapes.contexts[&a]);
        assert_eq!(ctx, json!({"env": {"now": "t"}, "soft": true}));

        let b = EntityUid::from_str(r#"N::Action::"b""#).unwrap();
        let mut ctx = json!({"time": "t"});
        prune_record(ctx.as_object_mut().unwrap(), &shapes.contexts[&b]);
        assert_eq!(ctx, json!({}));
    }

    #[test]
    fn open_records_keep_undeclared_keys() {
        let record = json!({"type": "Record", "additionalAttributes": true,
            "attributes": {"a": {"type": "Record", "attributes": {}}}});
        let mut v = json!({"a": {"x": 1}, "b": 2});
        prune_record(v.as_object_mut().unwrap(), &record);
        assert_eq!(v, json!({"a": {}, "b": 2}));
    }
}
