//! The entity store for a request that brings its own entities.
//!
//! Merging request entities into the resident store would mean copying the store on every such
//! request (cost growing with the store). Instead we build a small store holding exactly the
//! entities evaluation can reach: the principal, action and resource, entities named in the
//! context or literally in policies, every request entity, and, transitively, every entity named
//! in an attribute or tag of an entity already included. Cedar can only reach an entity through
//! one of those paths, so evaluating against this slice gives the decision the merged store
//! would give.
//!
//! Merge rule: a request entity replaces the stored entity with the same uid (attributes and
//! parents) for this request only. Its ancestors are computed through the stored hierarchy;
//! stored entities keep the ancestry they were loaded with.

use std::collections::HashSet;

use cedar_policy::{Entities, Entity, EntityUid, EvalResult, Request};
use serde_json::Value;

use super::{RequestError, RequestErrorCode};
use crate::policy::Snapshot;

pub(super) fn request_entities(
    snapshot: &Snapshot,
    extra: &[Value],
    request: &Request,
    context: Option<&Value>,
) -> Result<Entities, RequestError> {
    check_uids(extra)?;
    let extra = Entities::from_json_value(Value::Array(extra.to_vec()), snapshot.schema())
        .map_err(|e| {
            RequestError::new(RequestErrorCode::InvalidEntities, "entities", e.to_string())
        })?;
    let store = snapshot.entities();

    let mut queue: Vec<EntityUid> = Vec::new();
    queue.extend(request.principal().cloned());
    queue.extend(request.action().cloned());
    queue.extend(request.resource().cloned());
    if let Some(ctx) = context {
        collect_json_uids(ctx, &mut queue);
    }
    queue.extend(snapshot.literal_uids.iter().cloned());
    for e in extra.iter() {
        let uid = e.uid();
        // Parents of request entities may be stored entities; include them so the closure
        // computed below reaches the stored ancestors.
        queue.extend(extra.ancestors(&uid).into_iter().flatten().cloned());
        queue.push(uid);
    }

    let mut seen: HashSet<EntityUid> = HashSet::new();
    let mut slice: Vec<Entity> = Vec::new();
    while let Some(uid) = queue.pop() {
        if !seen.insert(uid.clone()) {
            continue;
        }
        let Some(entity) = extra.get(&uid).or_else(|| store.get(&uid)) else {
            continue;
        };
        for (_, value) in entity.attrs() {
            if let Ok(v) = value {
                collect_value_uids(&v, &mut queue);
            }
        }
        for (_, value) in entity.tags() {
            if let Ok(v) = value {
                collect_value_uids(&v, &mut queue);
            }
        }
        slice.push(entity.clone());
    }
    Entities::from_entities(slice, None).map_err(|e| {
        RequestError::new(RequestErrorCode::InvalidEntities, "entities", e.to_string())
    })
}

/// Refuses what Cedar's entity parser would let through silently: the same entity twice (two
/// parsers could keep different copies) and action entities (actions and their groups are
/// defined by the workspace; a request redefining them could change what `action in` means).
fn check_uids(extra: &[Value]) -> Result<(), RequestError> {
    let mut seen = HashSet::with_capacity(extra.len());
    for (i, entity) in extra.iter().enumerate() {
        // An unreadable uid is left to Cedar's parser, which names the problem.
        let Some(Ok(uid)) = entity.get("uid").map(super::parse_entity_ref) else {
            continue;
        };
        let invalid = |message: String| {
            RequestError::new(
                RequestErrorCode::InvalidEntities,
                format!("entities[{i}].uid"),
                message,
            )
        };
        if uid.type_name().basename() == "Action" {
            return Err(invalid(format!(
                "`{uid}` is an action: actions are defined by the workspace, not by requests"
            )));
        }
        if !seen.insert(uid.clone()) {
            return Err(invalid(format!("`{uid}` appears more than once")));
        }
    }
    Ok(())
}

fn collect_value_uids(v: &EvalResult, out: &mut Vec<EntityUid>) {
    match v {
        EvalResult::EntityUid(uid) => out.push(uid.clone()),
        EvalResult::Set(set) => set.iter().for_each(|v| collect_value_uids(v, out)),
        EvalResult::Record(rec) => rec.iter().for_each(|(_, v)| collect_value_uids(v, out)),
        _ => {}
    }
}

/// Entity references in request JSON: `{"type", "id"}` objects and `__entity` escapes. Taking a
/// few false positives (a record that merely looks like a reference) only adds entities.
fn collect_json_uids(v: &Value, out: &mut Vec<EntityUid>) {
    match v {
        Value::Object(map) => {
            if let (Some(Value::String(ty)), Some(Value::String(id))) =
                (map.get("type"), map.get("id"))
            {
                if let Ok(uid) = super::uid_from_parts(ty, id) {
                    out.push(uid);
                }
            }
            map.values().for_each(|v| collect_json_uids(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_json_uids(v, out)),
        _ => {}
    }
}
