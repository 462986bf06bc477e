//! The decision request as callers send it, and entity references in both accepted forms.
//!
//! An entity reference is either the Cedar string form `Med5G::Terminal::"t-ecg1"` or an object
//! `{"type": "Med5G::Terminal", "id": "t-ecg1"}` (Cedar's `{"__entity": {…}}` escape is accepted
//! too). Requests serialize back with the string form, which is what the decision log records.

use std::fmt;
use std::str::FromStr;

use cedar_policy::{EntityId, EntityTypeName, EntityUid};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One authorization question: may `principal` do `action` on `resource`?
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DecisionRequest {
    /// Who asks (e.g. a terminal or a clinician).
    pub principal: EntityRef,
    /// What they want to do (an action entity, e.g. `Med5G::Action::"attach"`).
    pub action: EntityRef,
    /// What they want to do it to.
    pub resource: EntityRef,
    /// The request context, a JSON object shaped as the schema declares for the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Extra entities in Cedar's JSON entity format, merged over the stored ones for this request
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<Value>>,
}

/// A reference to a Cedar entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityRef(pub EntityUid);

impl EntityRef {
    /// The Cedar entity uid.
    pub fn uid(&self) -> &EntityUid {
        &self.0
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for EntityRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

const EXPECTED: &str =
    "an entity reference: `Type::\"id\"` or {\"type\": \"Type\", \"id\": \"id\"}";

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl<'de> Visitor<'de> for RefVisitor {
            type Value = EntityRef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<EntityRef, E> {
                parse_uid_str(v).map(EntityRef).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EntityRef, A::Error> {
                let mut ty: Option<String> = None;
                let mut id: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "type" => ty = Some(map.next_value()?),
                        "id" => id = Some(map.next_value()?),
                        "__entity" => return map.next_value::<EntityRef>(),
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                let ty = ty.ok_or_else(|| de::Error::missing_field("type"))?;
                let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                uid_from_parts(&ty, &id).map(EntityRef).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(RefVisitor)
    }
}

/// Parses an entity reference from a JSON value in either accepted form.
pub fn parse_entity_ref(v: &Value) -> Result<EntityUid, String> {
    EntityRef::deserialize(v).map(|r| r.0).map_err(|e| e.to_string())
}

/// Builds a uid from a type name and an id, with a message naming what is wrong.
pub fn uid_from_parts(ty: &str, id: &str) -> Result<EntityUid, String> {
    let tn = EntityTypeName::from_str(ty).map_err(|_| {
        format!("invalid entity type name `{ty}`: expected a Cedar name such as `Med5G::Terminal`")
    })?;
    Ok(EntityUid::from_type_name_and_id(tn, EntityId::new(id)))
}

fn parse_uid_str(v: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(v)
        .map_err(|_| format!("invalid entity reference `{v}`: expected {EXPECTED}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_give_the_same_uid() {
        let a: EntityRef = serde_json::from_value(json!("Med5G::Terminal::\"t1\"")).unwrap();
        let b: EntityRef =
            serde_json::from_value(json!({"type": "Med5G::Terminal", "id": "t1"})).unwrap();
        let c: EntityRef =
            serde_json::from_value(json!({"__entity": {"type": "Med5G::Terminal", "id": "t1"}}))
                .unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(serde_json::to_value(&a).unwrap(), json!("Med5G::Terminal::\"t1\""));
    }

    #[test]
    fn bad_references_say_what_was_expected() {
        let e = serde_json::from_value::<EntityRef>(json!("t1")).unwrap_err().to_string();
        assert!(e.contains("invalid entity reference `t1`"), "{e}");
        let e = serde_json::from_value::<EntityRef>(json!({"id": "x"})).unwrap_err().to_string();
        assert!(e.contains("missing field `type`"), "{e}");
        let e = serde_json::from_value::<EntityRef>(json!({"type": "a b", "id": "x"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid entity type name `a b`"), "{e}");
        let e = serde_json::from_value::<EntityRef>(json!(42)).unwrap_err().to_string();
        assert!(e.contains("entity reference"), "{e}");
    }

    #[test]
    fn ids_may_contain_quotes_and_unicode() {
        let r: EntityRef = serde_json::from_value(json!({"type": "T", "id": "a\"b 医院"})).unwrap();
        let s = serde_json::to_value(&r).unwrap();
        let back: EntityRef = serde_json::from_value(s).unwrap();
        assert_eq!(r, back);
    }
}
