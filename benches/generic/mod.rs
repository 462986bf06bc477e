//! Random decision requests for any loaded workspace, valid or adversarial, derived from what
//! the snapshot declares: the schema's actions and their principal/resource types, the context
//! shapes, the entities in the store (and, without a schema, every entity and action uid seen).
//!
//! Used by the benchmarks (valid requests for the bundled pack, whatever it contains) and by
//! the differential test (valid and adversarial requests for every workspace it checks).
//! Expects a sibling module `workload` (for its `Rng`).

#![allow(dead_code)] // each includer uses a different part

use std::collections::BTreeMap;

use medpdp::policy::{ExtensionType, Shape, Snapshot};
use serde_json::{json, Map, Value};

use super::workload::Rng;

/// What a request generator knows about a workspace.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    actions: Vec<Action>,
    /// Entity type -> ids in the store.
    ids: BTreeMap<String, Vec<String>>,
    /// Every entity type in the store or the schema, plus two that exist nowhere.
    types: Vec<String>,
    /// Strings worth sending: literals from the policies and a few others.
    strings: Vec<String>,
    schema: bool,
}

#[derive(Debug, Clone)]
struct Action {
    uid: String,
    principals: Vec<String>,
    resources: Vec<String>,
    context: Option<Shape>,
}

impl Generator {
    /// Reads what requests can name from `snapshot`.
    pub(crate) fn new(snapshot: &Snapshot) -> Self {
        let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in snapshot.entities().iter() {
            let uid = e.uid();
            ids.entry(uid.type_name().to_string())
                .or_default()
                .push(uid.id().unescaped().to_owned());
        }
        let mut types: Vec<String> = ids.keys().cloned().collect();
        types.extend(["Zed".to_owned(), "App::Ghost".to_owned()]);
        let mut strings: Vec<String> =
            ["", "x", "TREAT", "active", "TLS1.3", "2026-11-24T10:00:00Z"]
                .map(String::from)
                .to_vec();
        let mut actions = Vec::new();
        for p in snapshot.policies().policies() {
            if let Ok(j) = p.to_json() {
                collect_strings(&j, &mut strings);
            }
        }
        strings.sort();
        strings.dedup();
        match snapshot.schema() {
            Some(schema) => {
                for a in schema.actions() {
                    actions.push(Action {
                        uid: a.to_string(),
                        principals: schema
                            .principals_for_action(a)
                            .map(|i| i.map(ToString::to_string).collect())
                            .unwrap_or_default(),
                        resources: schema
                            .resources_for_action(a)
                            .map(|i| i.map(ToString::to_string).collect())
                            .unwrap_or_default(),
                        context: snapshot.request_shapes().context(a).cloned(),
                    });
                }
                for t in schema.entity_types() {
                    if !types.contains(&t.to_string()) {
                        types.push(t.to_string());
                    }
                }
            }
            None => {
                let mut uids: Vec<String> = Vec::new();
                for (ty, list) in &ids {
                    if ty == "Action" || ty.ends_with("::Action") {
                        uids.extend(list.iter().map(|id| uid_str(ty, id)));
                    }
                }
                for p in snapshot.policies().policies() {
                    match p.action_constraint() {
                        cedar_policy::ActionConstraint::Any => {}
                        cedar_policy::ActionConstraint::Eq(a) => uids.push(a.to_string()),
                        cedar_policy::ActionConstraint::In(l) => {
                            uids.extend(l.iter().map(ToString::to_string))
                        }
                    }
                }
                uids.sort();
                uids.dedup();
                actions = uids
                    .into_iter()
                    .map(|uid| Action {
                        uid,
                        principals: types.clone(),
                        resources: types.clone(),
                        context: None,
                    })
                    .collect();
            }
        }
        Self { actions, ids, types, strings, schema: snapshot.schema().is_some() }
    }

    /// A request that is valid for the schema (when there is one).
    pub(crate) fn valid(&self, rng: &mut Rng) -> Value {
        let Some(action) = self.pick_action(rng) else {
            return json!({"principal": "Zed::\"a\"", "action": "Action::\"none\"", "resource": "Zed::\"b\""});
        };
        let principal = self.entity_of(rng.pick_or(&action.principals, "Zed"), rng);
        let resource = self.entity_of(rng.pick_or(&action.resources, "Zed"), rng);
        let context = match &action.context {
            Some(shape) => self.value(shape, rng, 0),
            None => self.free_value(rng, 0, true),
        };
        json!({"principal": principal, "action": action.uid, "resource": resource, "context": context})
    }

    /// A valid request with, usually, one thing broken or unusual about it.
    pub(crate) fn adversarial(&self, rng: &mut Rng) -> Value {
        let mut req = self.valid(rng);
        let Value::Object(map) = &mut req else {
            return req;
        };
        match rng.below(14) {
            0 => {
                map.insert("principal".into(), self.any_entity(rng));
            }
            1 => {
                map.insert("resource".into(), self.any_entity(rng));
            }
            2 => {
                let a = if rng.chance(50) { "Action::\"nope\"" } else { "App::Action::\"all\"" };
                map.insert("action".into(), json!(a));
            }
            3 => {
                let other = self.pick_action(rng).map(|a| a.uid.clone());
                map.insert("action".into(), json!(other));
            }
            4 => {
                map.remove("context");
            }
            5 => {
                let bad = [
                    json!(null),
                    json!([]),
                    json!("ctx"),
                    json!({"__entity": {"type": "T", "id": "x"}}),
                ];
                map.insert("context".into(), rng.pick(&bad).clone());
            }
            6..=10 => {
                if let Some(ctx) = map.get_mut("context") {
                    self.mutate(ctx, rng, 0);
                }
            }
            11 => {
                map.insert(
                    "principal".into(),
                    json!(uid_str(rng.pick(&self.types).as_str(), "nobody")),
                );
            }
            _ => {}
        }
        req
    }

    fn pick_action(&self, rng: &mut Rng) -> Option<&Action> {
        (!self.actions.is_empty()).then(|| rng.pick(&self.actions))
    }

    fn entity_of(&self, ty: &str, rng: &mut Rng) -> Value {
        let id = match self.ids.get(ty) {
            Some(ids) if !rng.chance(3) => rng.pick(ids).clone(),
            _ => "ghost".to_owned(),
        };
        json!({"type": ty, "id": id})
    }

    fn any_entity(&self, rng: &mut Rng) -> Value {
        let ty = rng.pick(&self.types).clone();
        self.entity_of(&ty, rng)
    }

    fn value(&self, shape: &Shape, rng: &mut Rng, depth: usize) -> Value {
        match shape {
            Shape::Bool => json!(rng.chance(50)),
            Shape::Long => json!(rng.below(12) as i64 - 2),
            Shape::String => json!(rng.pick(&self.strings)),
            Shape::Extension(ext) => json!(extension(*ext, rng)),
            Shape::Set(e) => {
                Value::Array((0..rng.below(4)).map(|_| self.value(e, rng, depth + 1)).collect())
            }
            Shape::Record(attrs) => {
                let mut m = Map::new();
                for (k, (s, required)) in attrs {
                    if *required || rng.chance(50) {
                        m.insert(k.clone(), self.value(s, rng, depth + 1));
                    }
                }
                Value::Object(m)
            }
            Shape::Entity(_, ty) => {
                let e = self.entity_of(ty, rng);
                if rng.chance(10) {
                    json!({"__entity": e})
                } else {
                    e
                }
            }
            Shape::Unknown => self.free_value(rng, depth, false),
        }
    }

    /// Any JSON value Cedar may accept without a schema.
    fn free_value(&self, rng: &mut Rng, depth: usize, record: bool) -> Value {
        let kind = if record { 5 } else { rng.below(if depth > 2 { 4 } else { 7 }) };
        match kind {
            0 => json!(rng.chance(50)),
            1 => json!(rng.below(10) as i64 - 3),
            2 | 3 => json!(rng.pick(&self.strings)),
            4 => Value::Array(
                (0..rng.below(3)).map(|_| self.free_value(rng, depth + 1, false)).collect(),
            ),
            5 => {
                let keys = ["mfa", "n", "level", "tags", "who", "env", "risk", "zone"];
                let mut m = Map::new();
                for _ in 0..rng.below(5) {
                    m.insert(rng.pick(&keys).to_string(), self.free_value(rng, depth + 1, false));
                }
                Value::Object(m)
            }
            _ => {
                let e = self.any_entity(rng);
                if rng.chance(50) {
                    json!({"__entity": e})
                } else {
                    json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}})
                }
            }
        }
    }

    /// Breaks or perturbs one value somewhere inside `v`.
    fn mutate(&self, v: &mut Value, rng: &mut Rng, depth: usize) {
        if let Value::Object(m) = v {
            if !m.is_empty() && depth < 3 && rng.chance(60) {
                let keys: Vec<String> = m.keys().cloned().collect();
                let k = rng.pick(&keys).clone();
                if let Some(inner) = m.get_mut(&k) {
                    return self.mutate(inner, rng, depth + 1);
                }
            }
            if rng.chance(30) && !m.is_empty() {
                let keys: Vec<String> = m.keys().cloned().collect();
                m.remove(rng.pick(&keys));
                return;
            }
        }
        let replacements = [
            json!(null),
            json!(1.5),
            json!(9_223_372_036_854_775_808u64),
            json!("not a date"),
            json!(true),
            json!(7),
            json!(["x", 1]),
            json!({"unexpected": 1}),
            json!({"__extn": {"fn": "datetime", "arg": "2026-11-24T10:00:00Z"}}),
            json!({"__extn": {"fn": "decimal", "arg": "1.5"}}),
            json!({"type": "Zed", "id": "q"}),
            json!({"__entity": {"type": "Zed", "id": "q"}}),
        ];
        match v {
            Value::Object(m) if rng.chance(40) => {
                m.insert("extra".into(), json!(1));
            }
            _ => *v = rng.pick(&replacements).clone(),
        }
    }
}

fn extension(ext: ExtensionType, rng: &mut Rng) -> String {
    match ext {
        ExtensionType::Datetime => format!(
            "2026-{:02}-{:02}T{:02}:00:00Z",
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24)
        ),
        ExtensionType::Duration => rng.pick(&["1h", "30d", "-2h30m", "90m"]).to_string(),
        ExtensionType::Decimal => rng.pick(&["1.5", "0.0001", "-3.25"]).to_string(),
        ExtensionType::Ipaddr => rng.pick(&["10.0.0.1", "192.168.1.0/24", "::1"]).to_string(),
    }
}

/// The requests of a workspace's own test cases (`tests/*.json`, the `medpdp test` format), each
/// with its defaults merged in; empty when there are none.
pub(crate) fn case_requests(workspace: &std::path::Path) -> Vec<Value> {
    let dir = workspace.join("tests");
    if !dir.is_dir() {
        return Vec::new();
    }
    medpdp::policytest::load_test_files(&[dir])
        .map(|files| {
            files
                .iter()
                .flat_map(|f| f.cases.iter().map(|c| c.expanded_request(&f.defaults)))
                .collect()
        })
        .unwrap_or_default()
}

/// `Type::"id"` with the id escaped as Cedar expects.
pub(crate) fn uid_str(ty: &str, id: &str) -> String {
    format!("{ty}::{}", serde_json::to_string(id).unwrap_or_default())
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(s)) = m.get("Value") {
                out.push(s.clone());
            }
            m.values().for_each(|v| collect_strings(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
