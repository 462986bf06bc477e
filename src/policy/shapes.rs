//! The shape the schema declares for each action's request context, read once at load time so
//! that request contexts can be built from typed values instead of Cedar's generic JSON parser.
//!
//! Cedar does not expose resolved context types, so they are read from the schema's JSON form
//! (`SchemaFragment::to_json_value`) and type names are resolved the way Cedar resolves them:
//! a common type of the current namespace, then an entity type of it, then the same in the
//! empty namespace, then a built-in type.
//!
//! Shapes only *guide* the fast context builder; they never decide whether a request is valid.
//! Every context built from them is still validated by Cedar against the schema, and anything
//! they cannot express (or get wrong) sends the request down Cedar's own parser. A mistake here
//! can therefore cost speed, never change an answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, SchemaFragment};
use serde_json::{Map, Value};

/// The type of a context value, as far as the fast context builder needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `Bool`.
    Bool,
    /// `Long`.
    Long,
    /// `String`.
    String,
    /// An extension type written as a string in JSON.
    Extension(ExtensionType),
    /// `Set<element>`.
    Set(Box<Shape>),
    /// A record: attribute name -> (shape, required).
    Record(BTreeMap<String, (Shape, bool)>),
    /// A reference to an entity of this type (its display form is kept for cheap comparison).
    Entity(EntityTypeName, String),
    /// Something the fast builder does not handle.
    Unknown,
}

/// Cedar's extension types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionType {
    /// `datetime`.
    Datetime,
    /// `duration`.
    Duration,
    /// `decimal`.
    Decimal,
    /// `ipaddr`.
    Ipaddr,
}

/// What the fast request path knows about one action.
#[derive(Debug, Clone)]
pub struct ActionShape {
    /// The declared context shape.
    pub context: Shape,
    /// Principal types whose requests need no further schema check (see `verified`).
    pub(crate) principals: HashSet<EntityTypeName>,
    /// Resource types, likewise.
    pub(crate) resources: HashSet<EntityTypeName>,
    /// Whether Cedar confirmed at load time that `context` is exactly the declared context
    /// type (`crate::decide::verify_action_shape`). Only then may a request built from it skip
    /// Cedar's own schema check.
    pub(crate) verified: bool,
}

/// Context shapes by action uid.
#[derive(Debug, Clone, Default)]
pub struct RequestShapes {
    actions: HashMap<EntityUid, ActionShape>,
    /// Enumerated entity types (their ids are fixed by the schema).
    enums: HashSet<EntityTypeName>,
}

impl RequestShapes {
    /// Reads the context shapes of every action declared in `schema_text` (Cedar schema syntax),
    /// unverified. An unreadable schema gives no shapes (every request then takes Cedar's
    /// parser).
    pub fn from_cedarschema(schema_text: &str) -> Self {
        let json = SchemaFragment::from_cedarschema_str(schema_text)
            .ok()
            .and_then(|(fragment, _)| fragment.to_json_value().ok());
        match json {
            Some(Value::Object(namespaces)) => Self::from_json(&namespaces),
            _ => Self::default(),
        }
    }

    /// Verifies every action's shape against `schema` (see [`ActionShape::verified`]).
    pub(crate) fn verify(mut self, schema: &cedar_policy::Schema) -> Self {
        for (action, shape) in &mut self.actions {
            crate::decide::verify_action_shape(schema, &self.enums, action, shape);
        }
        self
    }

    /// The declared context shape of `action`.
    pub fn context(&self, action: &EntityUid) -> Option<&Shape> {
        self.actions.get(action).map(|a| &a.context)
    }

    /// Everything known about `action`.
    pub(crate) fn action(&self, action: &EntityUid) -> Option<&ActionShape> {
        self.actions.get(action)
    }

    /// Whether `action`'s shape was verified against the schema.
    pub fn is_verified(&self, action: &EntityUid) -> bool {
        self.actions.get(action).is_some_and(|a| a.verified)
    }

    fn from_json(namespaces: &Map<String, Value>) -> Self {
        let mut names = Names::default();
        for (ns, body) in namespaces {
            for (kind, set) in
                [("commonTypes", &mut names.common), ("entityTypes", &mut names.entity)]
            {
                if let Some(Value::Object(types)) = body.get(kind) {
                    for (name, def) in types {
                        set.insert(qualify(ns, name), def.clone());
                    }
                }
            }
        }
        let names = Names { entity_set: names.entity.keys().cloned().collect(), ..names };
        let enums = names
            .entity
            .iter()
            .filter(|(_, def)| def.get("enum").is_some())
            .filter_map(|(name, _)| EntityTypeName::from_str(name).ok())
            .collect();
        let mut actions = HashMap::new();
        for (ns, body) in namespaces {
            let Some(Value::Object(declared)) = body.get("actions") else {
                continue;
            };
            let Ok(action_type) = EntityTypeName::from_str(&qualify(ns, "Action")) else {
                continue;
            };
            for (id, def) in declared {
                let uid = EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(id));
                let context = match def.pointer("/appliesTo/context") {
                    Some(ty) => names.shape(ns, ty, 0),
                    None => Shape::Record(BTreeMap::new()),
                };
                let shape = ActionShape {
                    context,
                    principals: HashSet::new(),
                    resources: HashSet::new(),
                    verified: false,
                };
                actions.insert(uid, shape);
            }
        }
        Self { actions, enums }
    }
}

#[derive(Default)]
struct Names {
    /// Qualified common type name -> definition.
    common: BTreeMap<String, Value>,
    /// Qualified entity type name -> definition.
    entity: BTreeMap<String, Value>,
    entity_set: HashSet<String>,
}

/// Common types may refer to each other; Cedar forbids cycles, this bounds them anyway.
const MAX_DEPTH: usize = 32;

impl Names {
    fn shape(&self, ns: &str, ty: &Value, depth: usize) -> Shape {
        if depth > MAX_DEPTH {
            return Shape::Unknown;
        }
        let name = ty.get("name").and_then(Value::as_str);
        match ty.get("type").and_then(Value::as_str) {
            Some("Boolean") => Shape::Bool,
            Some("Long") => Shape::Long,
            Some("String") => Shape::String,
            Some("Set") => match ty.get("element") {
                Some(e) => Shape::Set(Box::new(self.shape(ns, e, depth + 1))),
                None => Shape::Unknown,
            },
            Some("Record") => {
                let mut attrs = BTreeMap::new();
                if let Some(Value::Object(a)) = ty.get("attributes") {
                    for (k, v) in a {
                        let required = v.get("required").and_then(Value::as_bool).unwrap_or(true);
                        attrs.insert(k.clone(), (self.shape(ns, v, depth + 1), required));
                    }
                }
                Shape::Record(attrs)
            }
            Some("Entity") => name.map_or(Shape::Unknown, |n| self.entity(ns, n)),
            Some("Extension") => name.map_or(Shape::Unknown, builtin),
            Some("EntityOrCommon") => name.map_or(Shape::Unknown, |n| self.resolve(ns, n, depth)),
            Some(other) => self.resolve(ns, other, depth),
            None => Shape::Unknown,
        }
    }

    /// Resolves a type name written in namespace `ns`.
    fn resolve(&self, ns: &str, name: &str, depth: usize) -> Shape {
        let candidates: Vec<String> = if name.contains("::") {
            vec![name.to_owned()]
        } else {
            vec![qualify(ns, name), name.to_owned()]
        };
        for q in &candidates {
            if let Some(def) = self.common.get(q) {
                let def_ns = q.rsplit_once("::").map_or("", |(n, _)| n);
                return self.shape(def_ns, def, depth + 1);
            }
            if self.entity_set.contains(q) {
                return self.entity_shape(q);
            }
        }
        builtin(name.strip_prefix("__cedar::").unwrap_or(name))
    }

    fn entity(&self, ns: &str, name: &str) -> Shape {
        let q = qualify(ns, name);
        if !name.contains("::") && self.entity_set.contains(&q) {
            return self.entity_shape(&q);
        }
        self.entity_shape(name)
    }

    /// An entity reference; references to enumerated entity types (whose ids the schema fixes)
    /// are left to Cedar.
    fn entity_shape(&self, name: &str) -> Shape {
        if self.entity.get(name).is_some_and(|def| def.get("enum").is_some()) {
            return Shape::Unknown;
        }
        match EntityTypeName::from_str(name) {
            Ok(t) => {
                let display = t.to_string();
                Shape::Entity(t, display)
            }
            Err(_) => Shape::Unknown,
        }
    }
}

fn builtin(name: &str) -> Shape {
    match name {
        "Bool" | "Boolean" => Shape::Bool,
        "Long" => Shape::Long,
        "String" => Shape::String,
        "datetime" => Shape::Extension(ExtensionType::Datetime),
        "duration" => Shape::Extension(ExtensionType::Duration),
        "decimal" => Shape::Extension(ExtensionType::Decimal),
        "ipaddr" => Shape::Extension(ExtensionType::Ipaddr),
        _ => Shape::Unknown,
    }
}

fn qualify(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_owned()
    } else {
        format!("{ns}::{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        type Top = { flag: Bool };
        namespace App {
          type Env = { now: datetime, tags: Set<String>, top: Top };
          entity User;
          action read appliesTo {
            principal: [User], resource: [User],
            context: { env: Env, who?: User, n: Long, ip: ipaddr, d: __cedar::Bool }
          };
          action ping appliesTo { principal: [User], resource: [User] };
        }
    "#;

    fn action(id: &str) -> EntityUid {
        EntityUid::from_str(&format!("App::Action::\"{id}\"")).unwrap()
    }

    #[test]
    fn context_shapes_resolve_names_like_cedar() {
        let _ = cedar_policy::Schema::from_cedarschema_str(SCHEMA).unwrap();
        let shapes = RequestShapes::from_cedarschema(SCHEMA);
        let Some(Shape::Record(ctx)) = shapes.context(&action("read")) else {
            panic!("{shapes:?}");
        };
        let Shape::Record(env) = &ctx["env"].0 else { panic!("{ctx:?}") };
        assert_eq!(env["now"].0, Shape::Extension(ExtensionType::Datetime));
        assert_eq!(env["tags"].0, Shape::Set(Box::new(Shape::String)));
        assert!(matches!(&env["top"].0, Shape::Record(t) if t["flag"].0 == Shape::Bool));
        assert!(matches!(&ctx["who"], (Shape::Entity(_, n), false) if n == "App::User"));
        assert_eq!(ctx["n"].0, Shape::Long);
        assert_eq!(ctx["d"].0, Shape::Bool);
        assert_eq!(ctx["ip"].0, Shape::Extension(ExtensionType::Ipaddr));
        assert_eq!(shapes.context(&action("ping")), Some(&Shape::Record(BTreeMap::new())));
    }

    #[test]
    fn a_broken_schema_gives_no_shapes() {
        assert!(RequestShapes::from_cedarschema("entity").context(&action("read")).is_none());
    }
}
