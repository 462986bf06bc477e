//! The fast path for building a Cedar `Request`: the context is converted from the request's
//! JSON straight into typed `RestrictedExpression`s, guided by the schema's declared shape.
//!
//! Cedar's generic path (`Context::from_json_value`) needs an owned copy of the JSON, goes
//! through its own JSON value model, evaluates, and then `Request::new` type-checks the result
//! against the schema by converting it back into expressions; together that is most of the cost
//! of a decision for our contexts. The fast path never has the last word on validity:
//! - it declines (returns `None`) whenever the JSON is not in the plain form it knows: escapes
//!   (`__entity`, `__extn`, `__expr`), `null`, numbers that are not 64-bit integers, a JSON kind
//!   that does not fit the declared shape, an undeclared attribute, a missing required one;
//! - it declines when Cedar rejects the context or the request for any reason.
//!
//! The caller then takes Cedar's generic path, which produces the answer or the exact error it
//! always did. Why an accepted fast result equals Cedar's: each JSON kind maps to one kind of
//! value (bool -> Bool, integer -> Long, array -> Set, object -> Record or entity reference,
//! string -> String or the declared extension type), the same mapping Cedar's schema-based
//! parser applies for a declared type of that kind. Without a schema Cedar's parser applies the
//! same mapping with strings, objects and arrays read as strings, records and sets, which is what
//! the unguided conversion does.
//!
//! Which check proves the value has the declared type:
//! - by default Cedar's own (`Request::new(…, Some(schema))`);
//! - for an action whose shape Cedar *verified* at load time ([`verify_action_shape`]) and a
//!   principal and resource of verified types, the construction itself: every value has the
//!   kind its (verified) shape says, every required attribute is present and no undeclared one,
//!   so Cedar's check could only agree, and is skipped.

use std::collections::HashSet;
use std::sync::LazyLock;

use cedar_policy::{
    Context, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression as Expr, Schema,
};
use cedar_policy_core::ast;
use serde_json::{json, Map, Value};

use super::DecisionRequest;
use crate::policy::{ActionShape, ExtensionType, RequestShapes, Shape};

/// Object keys Cedar's JSON format treats as escapes.
const ESCAPES: [&str; 3] = ["__entity", "__extn", "__expr"];

/// Builds the request on the fast path, or `None` to let Cedar's generic path decide.
pub(super) fn fast_request(
    req: &DecisionRequest,
    schema: Option<&Schema>,
    shapes: &RequestShapes,
) -> Option<Request> {
    let Some(Value::Object(ctx)) = &req.context else {
        return None;
    };
    let (principal, action, resource) = (req.principal.uid(), req.action.uid(), req.resource.uid());
    let (context, check_with) = match schema {
        Some(schema) => {
            let shape = shapes.action(action)?;
            let Shape::Record(attrs) = &shape.context else {
                return None;
            };
            let context = Context::from_pairs(record_pairs(ctx, attrs)?).ok()?;
            // INVARIANT: `verified` means Cedar accepted this shape as exactly the declared
            // context type and these types as valid, non-enumerated principal and resource
            // types of the action; the context was built to the shape. Cedar's check is then
            // redundant; in every other case it runs.
            let trusted = shape.verified
                && shape.principals.contains(principal.type_name())
                && shape.resources.contains(resource.type_name());
            (context, (!trusted).then_some(schema))
        }
        None => (Context::from_pairs(free_pairs(ctx)?).ok()?, None),
    };
    Request::new(principal.clone(), action.clone(), resource.clone(), context, check_with).ok()
}

/// The fields of a record, converted by their declared shapes; `None` for escapes, undeclared
/// attributes and missing required ones.
fn record_pairs(
    map: &Map<String, Value>,
    attrs: &std::collections::BTreeMap<String, (Shape, bool)>,
) -> Option<Vec<(String, Expr)>> {
    if map.keys().any(|k| ESCAPES.contains(&k.as_str())) {
        return None;
    }
    if attrs.iter().any(|(k, (_, required))| *required && !map.contains_key(k)) {
        return None;
    }
    map.iter().map(|(k, v)| Some((k.clone(), value(Some(&attrs.get(k)?.0), v)?))).collect()
}

/// The fields of a record without a schema.
fn free_pairs(map: &Map<String, Value>) -> Option<Vec<(String, Expr)>> {
    if map.keys().any(|k| ESCAPES.contains(&k.as_str())) {
        return None;
    }
    map.iter().map(|(k, v)| Some((k.clone(), value(None, v)?))).collect()
}

/// Converts one JSON value; `shape` is `None` only when there is no schema.
fn value(shape: Option<&Shape>, v: &Value) -> Option<Expr> {
    match (shape, v) {
        (Some(Shape::Bool) | None, Value::Bool(b)) => Some(Expr::new_bool(*b)),
        (Some(Shape::Long) | None, Value::Number(n)) => n.as_i64().map(Expr::new_long),
        (Some(Shape::String) | None, Value::String(s)) => Some(Expr::new_string(s.clone())),
        (Some(Shape::Extension(ext)), Value::String(s)) => Some(extension_call(*ext, s)),
        (Some(Shape::Set(element)), Value::Array(items)) => items
            .iter()
            .map(|v| value(Some(element), v))
            .collect::<Option<Vec<_>>>()
            .map(Expr::new_set),
        (None, Value::Array(items)) => {
            items.iter().map(|v| value(None, v)).collect::<Option<Vec<_>>>().map(Expr::new_set)
        }
        (Some(Shape::Record(attrs)), Value::Object(map)) => {
            Expr::new_record(record_pairs(map, attrs)?).ok()
        }
        (None, Value::Object(map)) => Expr::new_record(free_pairs(map)?).ok(),
        (Some(Shape::Entity(ty, display)), Value::Object(map)) => {
            let map = match map.get("__entity") {
                Some(Value::Object(inner)) if map.len() == 1 => inner,
                _ => map,
            };
            if map.len() != 2 {
                return None;
            }
            let (Some(Value::String(t)), Some(Value::String(id))) =
                (map.get("type"), map.get("id"))
            else {
                return None;
            };
            // Only the declared type, spelled exactly as Cedar prints it, takes the fast path;
            // anything else is left to Cedar's parser and validation.
            (t == display).then(|| {
                Expr::new_entity_uid(EntityUid::from_type_name_and_id(
                    ty.clone(),
                    EntityId::new(id),
                ))
            })
        }
        _ => None,
    }
}

/// The id of the witness entities used to verify shapes.
const WITNESS_ID: &str = "medpdp-shape-witness";

/// Asks Cedar whether `shape` is exactly the context type the schema declares for `action`, and
/// which principal and resource types need no further check; records the answer in `shape`.
///
/// A *witness* context holds every attribute, one element in every set and a sample value of
/// every kind. Cedar must parse it into the very context the fast path builds from it, and
/// accept a request with it for a principal and resource of each (non-enumerated) type the
/// action allows; that pins the kind of every position and the type of every entity reference.
/// Then each attribute is removed in turn: Cedar must reject the witness exactly when the shape
/// says the attribute is required. Any disagreement leaves the action unverified (Cedar keeps
/// checking its requests).
pub(crate) fn verify_action_shape(
    schema: &Schema,
    enums: &HashSet<EntityTypeName>,
    action: &EntityUid,
    shape: &mut ActionShape,
) {
    shape.verified = false;
    shape.principals.clear();
    shape.resources.clear();
    let Shape::Record(attrs) = &shape.context else {
        return;
    };
    let Some(Value::Object(witness)) = witness(&shape.context) else {
        return;
    };
    let Some(mine) = record_pairs(&witness, attrs).and_then(|p| Context::from_pairs(p).ok()) else {
        return;
    };
    let cedar = Context::from_json_value(Value::Object(witness.clone()), Some((schema, action)));
    if cedar.ok().as_ref() != Some(&mine) {
        return;
    }
    let types =
        |it: Option<Box<dyn Iterator<Item = &EntityTypeName> + '_>>| -> Vec<EntityTypeName> {
            it.into_iter().flatten().filter(|t| !enums.contains(*t)).cloned().collect()
        };
    let principals = types(schema.principals_for_action(action).map(|i| Box::new(i) as _));
    let resources = types(schema.resources_for_action(action).map(|i| Box::new(i) as _));
    let (Some(p0), Some(r0)) = (principals.first(), resources.first()) else {
        return;
    };
    let uid =
        |t: &EntityTypeName| EntityUid::from_type_name_and_id(t.clone(), EntityId::new(WITNESS_ID));
    let accepts = |context: Context, p: &EntityTypeName, r: &EntityTypeName| {
        Request::new(uid(p), action.clone(), uid(r), context, Some(schema)).is_ok()
    };
    if !accepts(mine.clone(), p0, r0) {
        return;
    }
    for (path, required) in attribute_paths(&shape.context) {
        let mut without = Value::Object(witness.clone());
        remove(&mut without, &path);
        let accepted = Context::from_json_value(without, Some((schema, action)))
            .is_ok_and(|c| accepts(c, p0, r0));
        if accepted == required {
            return;
        }
    }
    shape.principals =
        principals.iter().filter(|p| accepts(mine.clone(), p, r0)).cloned().collect();
    shape.resources = resources.iter().filter(|r| accepts(mine.clone(), p0, r)).cloned().collect();
    shape.verified = true;
}

/// A JSON value of `shape` with every attribute present and one element in every set.
fn witness(shape: &Shape) -> Option<Value> {
    Some(match shape {
        Shape::Bool => json!(true),
        Shape::Long => json!(0),
        Shape::String => json!(""),
        Shape::Extension(ExtensionType::Datetime) => json!("1970-01-01"),
        Shape::Extension(ExtensionType::Duration) => json!("1ms"),
        Shape::Extension(ExtensionType::Decimal) => json!("0.0"),
        Shape::Extension(ExtensionType::Ipaddr) => json!("127.0.0.1"),
        Shape::Set(element) => json!([witness(element)?]),
        Shape::Record(attrs) => Value::Object(
            attrs
                .iter()
                .map(|(k, (s, _))| Some((k.clone(), witness(s)?)))
                .collect::<Option<_>>()?,
        ),
        Shape::Entity(_, display) => json!({"type": display, "id": WITNESS_ID}),
        Shape::Unknown => return None,
    })
}

/// Every attribute reachable in `shape` (through records and set elements), with whether it is
/// required. A path is a list of keys; `None` steps into a set's (only) witness element.
fn attribute_paths(shape: &Shape) -> Vec<(Vec<Option<String>>, bool)> {
    let mut out = Vec::new();
    fn walk(
        shape: &Shape,
        prefix: &mut Vec<Option<String>>,
        out: &mut Vec<(Vec<Option<String>>, bool)>,
    ) {
        match shape {
            Shape::Record(attrs) => {
                for (k, (s, required)) in attrs {
                    prefix.push(Some(k.clone()));
                    out.push((prefix.clone(), *required));
                    walk(s, prefix, out);
                    prefix.pop();
                }
            }
            Shape::Set(element) => {
                prefix.push(None);
                walk(element, prefix, out);
                prefix.pop();
            }
            _ => {}
        }
    }
    walk(shape, &mut Vec::new(), &mut out);
    out
}

fn remove(v: &mut Value, path: &[Option<String>]) {
    match (path, v) {
        ([Some(last)], Value::Object(m)) => {
            m.remove(last);
        }
        ([Some(k), rest @ ..], Value::Object(m)) => {
            if let Some(inner) = m.get_mut(k) {
                remove(inner, rest);
            }
        }
        ([None, rest @ ..], Value::Array(items)) => {
            if let Some(inner) = items.first_mut() {
                remove(inner, rest);
            }
        }
        _ => {}
    }
}

/// The extension constructors' names, parsed once.
///
/// `RestrictedExpression::new_datetime` and its siblings run Cedar's full parser on the
/// constructor's name at every call, which costs more than the rest of a typical context. The
/// expression built here is the one they build (`ast::RestrictedExpr::call_extension_fn` with the
/// same name and a string literal, see the test); only the name is parsed once. This is the one
/// place that uses `cedar-policy-core` directly (pinned to the exact version `cedar-policy` pins).
static EXTENSION_NAMES: LazyLock<Option<[ast::Name; 4]>> = LazyLock::new(|| {
    let name = |n: &str| n.parse().ok().map(ast::Name::unqualified_name);
    Some([name("datetime")?, name("duration")?, name("decimal")?, name("ip")?])
});

fn extension_call(ext: ExtensionType, arg: &str) -> Expr {
    let index = match ext {
        ExtensionType::Datetime => 0,
        ExtensionType::Duration => 1,
        ExtensionType::Decimal => 2,
        ExtensionType::Ipaddr => 3,
    };
    match EXTENSION_NAMES.as_ref().and_then(|names| names.get(index)) {
        Some(name) => Expr::from(ast::RestrictedExpr::call_extension_fn(
            name.clone(),
            [ast::RestrictedExpr::val(arg)],
        )),
        None => match ext {
            ExtensionType::Datetime => Expr::new_datetime(arg),
            ExtensionType::Duration => Expr::new_duration(arg),
            ExtensionType::Decimal => Expr::new_decimal(arg),
            ExtensionType::Ipaddr => Expr::new_ip(arg),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use super::*;

    const SCHEMA: &str = r#"
        namespace App {
          entity User;
          entity Doc;
          entity Color enum ["red", "green"];
          type Env = { now: datetime, tags: Set<{ k: String, v?: Long }> };
          action read appliesTo {
            principal: [User, Color], resource: [Doc],
            context: { env: Env, who?: User, n: Long, ip: ipaddr }
          };
        }
    "#;

    fn verified(shape: &mut ActionShape) -> bool {
        let schema = Schema::from_str(SCHEMA).unwrap();
        let enums = HashSet::from([EntityTypeName::from_str("App::Color").unwrap()]);
        let action = EntityUid::from_str(r#"App::Action::"read""#).unwrap();
        verify_action_shape(&schema, &enums, &action, shape);
        shape.verified
    }

    fn declared() -> ActionShape {
        let action = EntityUid::from_str(r#"App::Action::"read""#).unwrap();
        let shapes = RequestShapes::from_cedarschema(SCHEMA);
        shapes.action(&action).unwrap().clone()
    }

    fn attrs(shape: &mut ActionShape) -> &mut BTreeMap<String, (Shape, bool)> {
        match &mut shape.context {
            Shape::Record(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_declared_shape_verifies_and_enumerated_types_are_left_to_cedar() {
        let mut shape = declared();
        assert!(verified(&mut shape));
        let names: Vec<String> = shape.principals.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["App::User"]);
    }

    #[test]
    fn a_wrong_type_or_requiredness_does_not_verify() {
        let mut wrong_kind = declared();
        attrs(&mut wrong_kind).insert("n".into(), (Shape::String, true));
        assert!(!verified(&mut wrong_kind));

        let mut wrong_ext = declared();
        attrs(&mut wrong_ext).insert("ip".into(), (Shape::Extension(ExtensionType::Decimal), true));
        assert!(!verified(&mut wrong_ext));

        let mut optional_made_required = declared();
        attrs(&mut optional_made_required).get_mut("who").unwrap().1 = true;
        assert!(!verified(&mut optional_made_required));

        let mut required_made_optional = declared();
        attrs(&mut required_made_optional).get_mut("n").unwrap().1 = false;
        assert!(!verified(&mut required_made_optional));

        let mut nested = declared();
        let Shape::Record(env) = &mut attrs(&mut nested).get_mut("env").unwrap().0 else {
            panic!()
        };
        let Shape::Set(element) = &mut env.get_mut("tags").unwrap().0 else { panic!() };
        let Shape::Record(tag) = element.as_mut() else { panic!() };
        tag.get_mut("v").unwrap().1 = true;
        assert!(!verified(&mut nested));

        let mut undeclared = declared();
        attrs(&mut undeclared).insert("extra".into(), (Shape::Bool, false));
        assert!(!verified(&mut undeclared));

        let mut wrong_entity = declared();
        let doc = EntityTypeName::from_str("App::Doc").unwrap();
        attrs(&mut wrong_entity)
            .insert("who".into(), (Shape::Entity(doc, "App::Doc".into()), false));
        assert!(!verified(&mut wrong_entity));
    }

    #[test]
    fn extension_calls_are_the_ones_cedar_builds() {
        for arg in ["2026-11-24T10:00:00Z", "1h", "1.5", "10.0.0.1", "not valid"] {
            assert_eq!(extension_call(ExtensionType::Datetime, arg), Expr::new_datetime(arg));
            assert_eq!(extension_call(ExtensionType::Duration, arg), Expr::new_duration(arg));
            assert_eq!(extension_call(ExtensionType::Decimal, arg), Expr::new_decimal(arg));
            assert_eq!(extension_call(ExtensionType::Ipaddr, arg), Expr::new_ip(arg));
        }
    }
}
