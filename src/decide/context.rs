//! The fast path for building a Cedar `Request`: the context is converted from the request's
//! JSON straight into typed `RestrictedExpression`s, guided by the schema's declared shape, and
//! Cedar validates the result against the schema (`Request::new(…, Some(schema))`).
//!
//! Cedar's generic path (`Context::from_json_value`) needs an owned copy of the JSON, goes
//! through its own JSON value model and then evaluates; it costs about twice as much for our
//! contexts. The fast path never has the last word:
//! - it declines (returns `None`) whenever the JSON is not in the plain form it knows: escapes
//!   (`__entity`, `__extn`, `__expr`), `null`, numbers that are not 64-bit integers, a JSON kind
//!   that does not fit the declared shape, an attribute the shape does not declare;
//! - it declines when Cedar rejects the context or the request for any reason.
//!
//! The caller then takes Cedar's generic path, which produces the answer or the exact error it
//! always did. Why an accepted fast result equals Cedar's: each JSON kind maps to one kind of
//! value (bool -> Bool, integer -> Long, array -> Set, object -> Record or entity reference,
//! string -> String or the declared extension type), the same mapping Cedar's schema-based
//! parser applies for a declared type of that kind; Cedar's validation then proves that the
//! value has the declared type at every position, so the kinds, and therefore the values, agree.
//! Without a schema Cedar's parser applies the same mapping with strings, objects and arrays
//! read as strings, records and sets, which is what the unguided conversion does.

use std::sync::LazyLock;

use cedar_policy::{Context, EntityId, EntityUid, Request, RestrictedExpression as Expr, Schema};
use cedar_policy_core::ast;
use serde_json::{Map, Value};

use super::DecisionRequest;
use crate::policy::{ExtensionType, RequestShapes, Shape};

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
    let action = req.action.uid();
    let context = match schema {
        Some(_) => match shapes.context(action)? {
            Shape::Record(attrs) => top_level(ctx, |k, v| value(Some(&attrs.get(k)?.0), v))?,
            _ => return None,
        },
        None => top_level(ctx, |_, v| value(None, v))?,
    };
    let (principal, resource) = (req.principal.uid().clone(), req.resource.uid().clone());
    Request::new(principal, action.clone(), resource, context, schema).ok()
}

fn top_level(
    ctx: &Map<String, Value>,
    convert: impl Fn(&str, &Value) -> Option<Expr>,
) -> Option<Context> {
    if ctx.keys().any(|k| ESCAPES.contains(&k.as_str())) {
        return None;
    }
    let mut out = Vec::with_capacity(ctx.len());
    for (k, v) in ctx {
        out.push((k.clone(), convert(k, v)?));
    }
    Context::from_pairs(out).ok()
}

/// Converts one JSON value; `shape` is `None` only when there is no schema.
fn value(shape: Option<&Shape>, v: &Value) -> Option<Expr> {
    match (shape, v) {
        (Some(Shape::Bool) | None, Value::Bool(b)) => Some(Expr::new_bool(*b)),
        (Some(Shape::Long) | None, Value::Number(n)) => n.as_i64().map(Expr::new_long),
        (Some(Shape::String) | None, Value::String(s)) => Some(Expr::new_string(s.clone())),
        (Some(Shape::Extension(ext)), Value::String(s)) => Some(extension_call(*ext, s)),
        (Some(Shape::Set(element)), Value::Array(items)) => set(items, |v| value(Some(element), v)),
        (None, Value::Array(items)) => set(items, |v| value(None, v)),
        (Some(Shape::Record(attrs)), Value::Object(map)) => {
            record(map, |k, v| value(Some(&attrs.get(k)?.0), v))
        }
        (None, Value::Object(map)) => record(map, |_, v| value(None, v)),
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

fn set(items: &[Value], convert: impl Fn(&Value) -> Option<Expr>) -> Option<Expr> {
    let converted: Option<Vec<Expr>> = items.iter().map(convert).collect();
    converted.map(Expr::new_set)
}

fn record(
    map: &Map<String, Value>,
    convert: impl Fn(&str, &Value) -> Option<Expr>,
) -> Option<Expr> {
    if map.keys().any(|k| ESCAPES.contains(&k.as_str())) {
        return None;
    }
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        out.push((k.clone(), convert(k, v)?));
    }
    Expr::new_record(out).ok()
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
    use super::*;

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
