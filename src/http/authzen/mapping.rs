//! AuthZEN requests as Cedar decision requests, and decisions as AuthZEN answers.
//!
//! - `subject`/`resource` `type` + `id` are entity uids; a `type` without `::` gets the
//!   configured namespace (`Terminal` is `Med5G::Terminal`).
//! - `action.name` is the action `<namespace>::Action::"<name>"`; a name that already is a
//!   Cedar entity uid (`Other::Action::"x"`) is taken as it is.
//! - `properties` of the subject and resource become request-scoped entities: the stored
//!   entity (attributes, parents, tags) with the properties laid over its attributes, for this
//!   request only. A property the schema does not declare for the type is ignored.
//! - `context` and `action.properties` together are the Cedar context (a key in both must have
//!   the same value); keys the schema does not declare for the action are ignored.
//!
//! Nothing here copies the entity store: at most the subject and resource entities are
//! serialized, and only when the request gives them properties.

use std::str::FromStr;

use axum::http::StatusCode;
use cedar_policy::{EntityId, EntityTypeName, EntityUid};
use serde_json::{json, Map, Value};

use super::index::SnapshotIndex;
use super::model::{
    Action, DecisionContext, Entity, EvaluationItem, EvaluationResponse, EvaluationsRequest,
    Obligation, PartialAction, PartialEntity,
};
use crate::decide::{Decision, DecisionRequest, EntityRef, RequestError, RequestErrorCode};
use crate::http::{ApiError, DecisionResponse};
use crate::policy::Snapshot;

/// One fully specified evaluation.
#[derive(Debug, Clone)]
pub(crate) struct Tuple {
    pub(crate) subject: Entity,
    pub(crate) action: Action,
    pub(crate) resource: Entity,
    pub(crate) context: Option<Map<String, Value>>,
}

/// An entity, the properties the request gives it, and the request field they came from.
pub(crate) type PropertiesOf<'a> = (&'a EntityUid, Option<&'a Map<String, Value>>, &'a str);

/// Maps against one snapshot and its index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mapper<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) index: &'a SnapshotIndex,
}

impl Mapper<'_> {
    /// The decision request for `t`; errors name the AuthZEN field (after `prefix`).
    pub(crate) fn request(&self, t: &Tuple, prefix: &str) -> Result<DecisionRequest, ApiError> {
        let principal = self.entity_uid(&t.subject.ty, &t.subject.id, prefix, "subject")?;
        let resource = self.entity_uid(&t.resource.ty, &t.resource.id, prefix, "resource")?;
        let action = self.action_uid(&t.action.name, prefix)?;
        let context =
            self.context(t.context.as_ref(), t.action.properties.as_ref(), &action, prefix)?;
        let entities = self.request_entities(
            &[
                (&principal, t.subject.properties.as_ref(), "subject"),
                (&resource, t.resource.properties.as_ref(), "resource"),
            ],
            prefix,
        )?;
        Ok(DecisionRequest {
            principal: EntityRef(principal),
            action: EntityRef(action),
            resource: EntityRef(resource),
            context,
            entities,
        })
    }

    /// `type` with the namespace default applied.
    pub(crate) fn type_name(
        &self,
        ty: &str,
        prefix: &str,
        field: &str,
    ) -> Result<EntityTypeName, ApiError> {
        let full = if self.namespace.is_empty() || ty.contains("::") {
            ty.to_owned()
        } else {
            format!("{}::{ty}", self.namespace)
        };
        EntityTypeName::from_str(&full).map_err(|_| {
            ApiError::bad_request(
                "invalid_entity_type",
                format!("`{ty}` is not a valid entity type name (a Cedar name such as `Terminal`)"),
            )
            .with_field(format!("{prefix}{field}.type"))
        })
    }

    pub(crate) fn entity_uid(
        &self,
        ty: &str,
        id: &str,
        prefix: &str,
        field: &str,
    ) -> Result<EntityUid, ApiError> {
        let tn = self.type_name(ty, prefix, field)?;
        Ok(EntityUid::from_type_name_and_id(tn, EntityId::new(id)))
    }

    pub(crate) fn action_uid(&self, name: &str, prefix: &str) -> Result<EntityUid, ApiError> {
        if name.contains("::\"") {
            if let Ok(uid) = EntityUid::from_str(name) {
                return Ok(uid);
            }
        }
        let tn = EntityTypeName::from_str(&action_type(self.namespace)).map_err(|_| {
            ApiError::bad_request("invalid_action", format!("cannot name action `{name}`"))
                .with_field(format!("{prefix}action.name"))
        })?;
        Ok(EntityUid::from_type_name_and_id(tn, EntityId::new(name)))
    }

    pub(crate) fn context(
        &self,
        context: Option<&Map<String, Value>>,
        action_properties: Option<&Map<String, Value>>,
        action: &EntityUid,
        prefix: &str,
    ) -> Result<Option<Value>, ApiError> {
        let mut ctx = context.cloned().unwrap_or_default();
        for (k, v) in action_properties.into_iter().flatten() {
            match ctx.get(k) {
                Some(existing) if existing != v => {
                    return Err(ApiError::bad_request(
                        "conflicting_context",
                        format!(
                            "`{k}` is in both `action.properties` and `context`, with different \
                             values; both become the Cedar context"
                        ),
                    )
                    .with_field(format!("{prefix}action.properties.{k}")));
                }
                _ => {
                    ctx.insert(k.clone(), v.clone());
                }
            }
        }
        self.index.prune_context(action, &mut ctx);
        Ok((!ctx.is_empty()).then_some(Value::Object(ctx)))
    }

    /// Request-scoped entities for the entities given properties (`None` when there are none).
    pub(crate) fn request_entities(
        &self,
        sides: &[PropertiesOf<'_>],
        prefix: &str,
    ) -> Result<Option<Vec<Value>>, ApiError> {
        let mut overlays: Vec<(&EntityUid, Map<String, Value>, &str)> = Vec::new();
        for (uid, props, field) in sides {
            let Some(props) = props else { continue };
            let mut props = (*props).clone();
            self.index.prune_attributes(uid.type_name(), &mut props);
            if props.is_empty() {
                continue;
            }
            // Subject and resource may be the same entity: one entity with both overlays.
            if let Some((_, existing, _)) = overlays.iter_mut().find(|(u, _, _)| u == uid) {
                for (k, v) in props {
                    if existing.get(&k).is_some_and(|e| e != &v) {
                        return Err(ApiError::bad_request(
                            "conflicting_properties",
                            format!(
                                "subject and resource are the same entity but disagree on `{k}`"
                            ),
                        )
                        .with_field(format!("{prefix}{field}.properties.{k}")));
                    }
                    existing.insert(k, v);
                }
            } else {
                overlays.push((uid, props, field));
            }
        }
        if overlays.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(overlays.len());
        for (uid, props, _) in overlays {
            let mut entity = match self.snapshot.entities().get(uid) {
                Some(stored) => stored.to_json_value().map_err(|e| {
                    tracing::error!(%uid, error = %e, "cannot serialize a stored entity");
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
                })?,
                None => json!({
                    "uid": {"type": uid.type_name().to_string(), "id": uid.id().unescaped()},
                    "attrs": {},
                    "parents": []
                }),
            };
            if let Some(attrs) = entity.get_mut("attrs").and_then(Value::as_object_mut) {
                attrs.extend(props);
            }
            out.push(entity);
        }
        Ok(Some(out))
    }
}

/// The Cedar type of actions named without one.
fn action_type(namespace: &str) -> String {
    if namespace.is_empty() {
        "Action".to_owned()
    } else {
        format!("{namespace}::Action")
    }
}

/// How an action is named in answers: the bare name in the default namespace, else the uid.
pub(crate) fn action_name(namespace: &str, uid: &EntityUid) -> String {
    if uid.type_name().to_string() == action_type(namespace) {
        uid.id().unescaped().to_owned()
    } else {
        uid.to_string()
    }
}

/// A top-level field with a batch item's override: the item's object replaces the default as a
/// whole, except that required sub-fields it lacks (`type`, `id`) come from the default.
fn merge_entity(
    default: Option<&PartialEntity>,
    item: Option<&PartialEntity>,
    prefix: &str,
    field: &str,
) -> Result<Entity, ApiError> {
    let chosen = item.or(default).ok_or_else(|| missing(prefix, field))?;
    let fallback = if item.is_some() { default } else { None };
    let ty = chosen.ty.clone().or_else(|| fallback.and_then(|d| d.ty.clone()));
    let id = chosen.id.clone().or_else(|| fallback.and_then(|d| d.id.clone()));
    Ok(Entity {
        ty: ty.ok_or_else(|| missing(prefix, &format!("{field}.type")))?,
        id: id.ok_or_else(|| missing(prefix, &format!("{field}.id")))?,
        properties: chosen.properties.clone(),
    })
}

fn merge_action(
    default: Option<&PartialAction>,
    item: Option<&PartialAction>,
    prefix: &str,
) -> Result<Action, ApiError> {
    let chosen = item.or(default).ok_or_else(|| missing(prefix, "action"))?;
    let fallback = if item.is_some() { default } else { None };
    let name = chosen.name.clone().or_else(|| fallback.and_then(|d| d.name.clone()));
    Ok(Action {
        name: name.ok_or_else(|| missing(prefix, "action.name"))?,
        properties: chosen.properties.clone(),
    })
}

fn missing(prefix: &str, field: &str) -> ApiError {
    let message = if prefix.is_empty() {
        format!("missing required field `{field}`")
    } else {
        format!(
            "missing required field `{prefix}{field}` (not in the item, and no top-level default)"
        )
    };
    ApiError::bad_request("malformed_request", message).with_field(format!("{prefix}{field}"))
}

/// The evaluation an item describes, after defaults; `item: None` is the top level alone.
pub(crate) fn resolve(
    defaults: &EvaluationsRequest,
    item: Option<&EvaluationItem>,
    prefix: &str,
) -> Result<Tuple, ApiError> {
    let item_or_empty = item.cloned().unwrap_or_default();
    Ok(Tuple {
        subject: merge_entity(
            defaults.subject.as_ref(),
            item_or_empty.subject.as_ref(),
            prefix,
            "subject",
        )?,
        action: merge_action(defaults.action.as_ref(), item_or_empty.action.as_ref(), prefix)?,
        resource: merge_entity(
            defaults.resource.as_ref(),
            item_or_empty.resource.as_ref(),
            prefix,
            "resource",
        )?,
        context: item_or_empty.context.or_else(|| defaults.context.clone()),
    })
}

/// A core request error with AuthZEN field names.
pub(crate) fn request_error(e: RequestError, prefix: &str, t: &Tuple) -> ApiError {
    let field = match (e.code, e.field.as_str()) {
        (_, "principal") => "subject".to_owned(),
        (_, "action") => "action.name".to_owned(),
        (RequestErrorCode::InvalidEntities, _) => {
            match (t.subject.properties.is_some(), t.resource.properties.is_some()) {
                (true, false) => "subject.properties".to_owned(),
                (false, true) => "resource.properties".to_owned(),
                _ => "properties".to_owned(),
            }
        }
        (_, other) => other.to_owned(),
    };
    ApiError::from(e).with_field(format!("{prefix}{field}"))
}

impl EvaluationResponse {
    /// A decision as AuthZEN answers it.
    pub(crate) fn decided(r: DecisionResponse) -> Self {
        Self {
            decision: r.decision == Decision::Allow,
            context: Some(DecisionContext {
                decision_id: Some(r.decision_id),
                policy_version: Some(r.policy_version),
                reasons: Some(r.reasons),
                obligations: r.obligations.iter().map(|o| Obligation::custom(o)).collect(),
                errors: r.errors,
                ..DecisionContext::default()
            }),
        }
    }

    /// A batch item that could not be evaluated: denied, with the error.
    pub(crate) fn failed(e: &ApiError) -> Self {
        Self {
            decision: false,
            context: Some(DecisionContext { error: Some(e.to_json()), ..Default::default() }),
        }
    }

    /// Marks the item that ended a short-circuiting batch.
    pub(crate) fn ended_by(mut self, semantic: &str) -> Self {
        self.context.get_or_insert_with(DecisionContext::default).reason =
            Some(semantic.to_owned());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(ty: Option<&str>, id: Option<&str>, prop: Option<Value>) -> PartialEntity {
        PartialEntity {
            ty: ty.map(Into::into),
            id: id.map(Into::into),
            properties: prop.and_then(|p| p.as_object().cloned()),
        }
    }

    #[test]
    fn items_replace_defaults_whole_but_keep_required_fields() {
        let default = partial(Some("record"), None, Some(json!({"status": "archived"})));
        let item = partial(None, Some("record-1"), None);
        let e = merge_entity(Some(&default), Some(&item), "", "resource").unwrap();
        assert_eq!((e.ty.as_str(), e.id.as_str()), ("record", "record-1"));
        assert!(e.properties.is_none(), "properties are not merged from the default");
        let e = merge_entity(Some(&default), None, "evaluations[0].", "resource").unwrap_err();
        assert_eq!(e.message(), "missing required field `evaluations[0].resource.id` (not in the item, and no top-level default)");
        let e = merge_entity(None, None, "", "subject").unwrap_err();
        assert_eq!(e.message(), "missing required field `subject`");
    }
}
