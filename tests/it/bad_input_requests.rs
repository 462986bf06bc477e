//! Battery cases for what is wrong inside a well-formed JSON request: decision requests and
//! their entities and context (single and in a batch), and AuthZEN fields.

use serde_json::{json, Value};

use crate::bad_input_cases::{attach_request, Case, Expect};

fn decide(name: &str, body: Value, status: u16) -> Case {
    Case {
        name: format!("decide: {name}"),
        via: crate::bad_input_cases::Via::Plain,
        method: reqwest::Method::POST,
        path: "/v1/decide".into(),
        content_type: Some("application/json".into()),
        headers: Vec::new(),
        body: Some(body.to_string().into_bytes()),
        expect: Expect::Status(status),
    }
}

/// The same bad request alone (a 400 with `code`) and as the first item of a batch (a 200
/// whose first item is denied with `code`).
fn both(out: &mut Vec<Case>, name: &str, body: Value, code: &'static str) {
    out.push(decide(name, body.clone(), 400));
    let mut batch = decide(name, json!({"requests": [body, attach_request("t-ecg1")]}), 200);
    batch.name = format!("batch item: {name}");
    batch.path = "/v1/decide/batch".into();
    batch.expect = Expect::ItemError(code);
    out.push(batch);
}

fn with(path: &[&str], value: Value) -> Value {
    let mut v = attach_request("t-ecg1");
    let mut target = &mut v;
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target[path[path.len() - 1]] = value;
    v
}

fn without(path: &[&str]) -> Value {
    let mut v = attach_request("t-ecg1");
    let mut target = &mut v;
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target.as_object_mut().unwrap().remove(path[path.len() - 1]);
    v
}

fn terminal(id: &str, parents: Value) -> Value {
    json!({
        "uid": {"type": "Med5G::Terminal", "id": id},
        "attrs": {
            "model": {"__entity": {"type": "Med5G::DeviceModel", "id": "m-ecg-patch"}},
            "kind": "wearable_ecg",
            "owner": {"__entity": {"type": "Med5G::Facility", "id": "hospA"}},
            "certified": true,
            "lifecycle": "active",
            "firmware_version": 10,
            "security_level": 2,
            "allowed_sst": [3]
        },
        "parents": parents
    })
}

fn with_entities(entities: Vec<Value>) -> Value {
    let mut v = attach_request("t-ecg1");
    v["entities"] = Value::Array(entities);
    v
}

pub(crate) fn decision_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let m = "malformed_request";
    for field in ["principal", "action", "resource"] {
        both(&mut out, &format!("no {field}"), without(&[field]), m);
        for (kind, value) in [
            ("a number", json!(7)),
            ("an array", json!(["Med5G::Terminal", "t-ecg1"])),
            ("null", Value::Null),
            ("a bare id", json!("t-ecg1")),
            ("an object without id", json!({"type": "Med5G::Terminal"})),
            ("an object without type", json!({"id": "t-ecg1"})),
            ("an invalid type name", json!({"type": "Med5G Terminal", "id": "x"})),
            ("a numeric id", json!({"type": "Med5G::Terminal", "id": 5})),
            ("an unterminated string form", json!("Med5G::Terminal::\"t-ecg1")),
        ] {
            both(&mut out, &format!("{field} is {kind}"), with(&[field], value), m);
        }
    }
    let t = "invalid_entity_type";
    both(
        &mut out,
        "unknown principal type",
        with(&["principal"], json!("Med5G::Spaceship::\"x\"")),
        t,
    );
    both(
        &mut out,
        "principal type not allowed for the action",
        with(&["principal"], json!("Med5G::Clinician::\"dr-li\"")),
        t,
    );
    both(&mut out, "unknown resource type", with(&["resource"], json!("Nope::Slice::\"x\"")), t);
    both(
        &mut out,
        "unknown action",
        with(&["action"], json!("Med5G::Action::\"teleport\"")),
        "unknown_action",
    );
    both(
        &mut out,
        "action of another namespace",
        with(&["action"], json!("Other::Action::\"attach\"")),
        "unknown_action",
    );
    both(
        &mut out,
        "action that is not an action",
        with(&["action"], json!("Med5G::Terminal::\"attach\"")),
        "unknown_action",
    );
    let c = "invalid_context";
    for (name, value, code) in [
        ("context is a string", json!("ctx"), m),
        ("context is an array", json!([1, 2]), m),
        ("context lacks env", json!({"attested": true}), c),
        (
            "context has an undeclared key",
            json!({"env": {"now": "2026-11-24T10:00:00Z", "risk_score": 1, "inside_geofence": true, "audit_available": true}, "attested": true, "extra": 1}),
            c,
        ),
        (
            "attested is a string",
            json!({"env": {"now": "2026-11-24T10:00:00Z", "risk_score": 1, "inside_geofence": true, "audit_available": true}, "attested": "yes"}),
            c,
        ),
        (
            "risk_score is a float",
            json!({"env": {"now": "2026-11-24T10:00:00Z", "risk_score": 1.5, "inside_geofence": true, "audit_available": true}, "attested": true}),
            c,
        ),
        (
            "risk_score beyond i64",
            json!({"env": {"now": "2026-11-24T10:00:00Z", "risk_score": 18446744073709551615u64, "inside_geofence": true, "audit_available": true}, "attested": true}),
            c,
        ),
        (
            "now is not a datetime",
            json!({"env": {"now": "yesterday", "risk_score": 1, "inside_geofence": true, "audit_available": true}, "attested": true}),
            c,
        ),
        (
            "now is a number",
            json!({"env": {"now": 17, "risk_score": 1, "inside_geofence": true, "audit_available": true}, "attested": true}),
            c,
        ),
        ("env is null", json!({"env": null, "attested": true}), c),
    ] {
        both(&mut out, name, with(&["context"], value), code);
    }
    let big: Vec<u32> = (0..5000).collect();
    both(
        &mut out,
        "context with 5000 values",
        with(&["context", "extra"], json!(big)),
        "limit_exceeded",
    );
    let mut dup = attach_request("t-ecg1").to_string();
    dup = dup.replacen("\"attested\":true", "\"attested\":true,\"attested\":false", 1);
    out.push(decide("duplicate key in the context (raw)", Value::Null, 400));
    out.last_mut().unwrap().body = Some(dup.into_bytes());

    let e = "invalid_entities";
    let fac = json!([{"type": "Med5G::Facility", "id": "hospA"}]);
    both(&mut out, "entities is an object", with(&["entities"], json!({"a": 1})), m);
    both(&mut out, "entities is a string", with(&["entities"], json!("x")), m);
    both(
        &mut out,
        "an entity without uid",
        with_entities(vec![json!({"attrs": {}, "parents": []})]),
        e,
    );
    both(
        &mut out,
        "an entity of an unknown type",
        with_entities(vec![
            json!({"uid": {"type": "Med5G::Ufo", "id": "u"}, "attrs": {}, "parents": []}),
        ]),
        e,
    );
    both(
        &mut out,
        "an entity with a wrongly typed attribute",
        with_entities(vec![{
            let mut t = terminal("t-new", fac.clone());
            t["attrs"]["firmware_version"] = json!("ten");
            t
        }]),
        e,
    );
    both(
        &mut out,
        "an entity missing an attribute",
        with_entities(vec![{
            let mut t = terminal("t-new", fac.clone());
            t["attrs"].as_object_mut().unwrap().remove("owner");
            t
        }]),
        e,
    );
    both(
        &mut out,
        "an entity with an undeclared attribute",
        with_entities(vec![{
            let mut t = terminal("t-new", fac.clone());
            t["attrs"]["colour"] = json!("red");
            t
        }]),
        e,
    );
    both(
        &mut out,
        "a parent of a type it may not have",
        with_entities(vec![terminal("t-new", json!([{"type": "Med5G::Patient", "id": "P1"}]))]),
        e,
    );
    both(
        &mut out,
        "the same entity twice",
        with_entities(vec![terminal("t-new", fac.clone()), terminal("t-new", fac.clone())]),
        e,
    );
    both(
        &mut out,
        "cyclic parents",
        with_entities(vec![
            json!({"uid": {"type": "Med5G::TerminalGroup", "id": "g1"}, "attrs": {}, "parents": []}),
            terminal("t-a", json!([{"type": "Med5G::Terminal", "id": "t-b"}])),
            terminal("t-b", json!([{"type": "Med5G::Terminal", "id": "t-a"}])),
        ]),
        e,
    );
    both(
        &mut out,
        "an entity that is its own parent",
        with_entities(vec![
            json!({"uid": {"type": "Med5G::TerminalGroup", "id": "g1"}, "attrs": {}, "parents": [{"type": "Med5G::TerminalGroup", "id": "g1"}]}),
        ]),
        e,
    );
    both(
        &mut out,
        "an action entity in the request",
        with_entities(vec![
            json!({"uid": {"type": "Med5G::Action", "id": "attach"}, "attrs": {}, "parents": []}),
        ]),
        e,
    );
    let chain: Vec<Value> = (0..1001)
        .map(|i| json!({"uid": {"type": "Med5G::TerminalGroup", "id": format!("g{i}")}, "attrs": {}, "parents": []}))
        .collect();
    both(&mut out, "1001 entities", with_entities(chain), "limit_exceeded");
    let many_parents: Vec<Value> =
        (0..3000).map(|i| json!({"type": "Med5G::Facility", "id": format!("f{i}")})).collect();
    both(
        &mut out,
        "an entity with 3000 parents",
        with_entities(vec![terminal("t-new", json!(many_parents))]),
        "limit_exceeded",
    );
    for (name, body) in [
        ("batch without requests", json!({})),
        ("requests is an object", json!({"requests": {"a": 1}})),
        ("requests is a string", json!({"requests": "all"})),
        ("101 requests (limit 100)", json!({"requests": vec![attach_request("t-ecg1"); 101]})),
    ] {
        let mut c = decide(name, body, 400);
        c.name = format!("batch: {name}");
        c.path = "/v1/decide/batch".into();
        out.push(c);
    }
    out
}

fn authzen(path: &str, name: &str, body: Value, status: u16) -> Case {
    let mut c = decide(name, body, status);
    c.name = format!("{path}: {name}");
    c.path = path.to_owned();
    c
}

pub(crate) fn authzen_cases() -> Vec<Case> {
    let base = json!({
        "subject": {"type": "Terminal", "id": "t-ecg1"},
        "action": {"name": "attach"},
        "resource": {"type": "NetworkSlice", "id": "plmn-miot-health"},
        "context": {"env": {"now": "2026-11-24T10:00:00Z", "risk_score": 10, "inside_geofence": true, "audit_available": true}, "attested": true}
    });
    let set = |path: &[&str], value: Option<Value>| {
        let mut v = base.clone();
        let mut target = &mut v;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        let last = path[path.len() - 1];
        match value {
            Some(value) => target[last] = value,
            None => {
                target.as_object_mut().unwrap().remove(last);
            }
        }
        v
    };
    let eval = "/access/v1/evaluation";
    let mut out = Vec::new();
    for (name, body) in [
        ("no subject", set(&["subject"], None)),
        ("no action", set(&["action"], None)),
        ("no resource", set(&["resource"], None)),
        ("subject without type", set(&["subject", "type"], None)),
        ("subject without id", set(&["subject", "id"], None)),
        ("subject id is a number", set(&["subject", "id"], Some(json!(1)))),
        ("subject is a string", set(&["subject"], Some(json!("Terminal:t-ecg1")))),
        ("action without name", set(&["action", "name"], None)),
        ("action name is an array", set(&["action", "name"], Some(json!(["attach"])))),
        ("resource type is null", set(&["resource", "type"], Some(Value::Null))),
        ("subject properties is an array", set(&["subject", "properties"], Some(json!([1])))),
        ("context is a string", set(&["context"], Some(json!("ctx")))),
        ("action properties is a number", set(&["action", "properties"], Some(json!(3)))),
        ("an unknown subject type", set(&["subject", "type"], Some(json!("Ufo")))),
        ("an invalid type name", set(&["subject", "type"], Some(json!("a b")))),
        ("an unknown action", set(&["action", "name"], Some(json!("teleport")))),
        ("a context that does not match", set(&["context", "attested"], Some(json!("yes")))),
        (
            "a property of the wrong type",
            set(&["subject", "properties"], Some(json!({"firmware_version": "new"}))),
        ),
        (
            "context and action properties disagree",
            set(&["action", "properties"], Some(json!({"attested": false}))),
        ),
    ] {
        out.push(authzen(eval, name, body, 400));
    }
    let evals = "/access/v1/evaluations";
    for (name, body) in [
        ("evaluations is an object", json!({"evaluations": {"a": base.clone()}})),
        ("evaluations is a string", json!({"evaluations": "all"})),
        (
            "unknown semantic",
            json!({"evaluations": [base.clone()], "options": {"evaluations_semantic": "best_effort"}}),
        ),
        (
            "semantic is a number",
            json!({"evaluations": [base.clone()], "options": {"evaluations_semantic": 1}}),
        ),
        ("options is a string", json!({"evaluations": [base.clone()], "options": "fast"})),
        ("101 items (limit 100)", json!({"evaluations": vec![base.clone(); 101]})),
        ("no items and no defaults", json!({"evaluations": []})),
    ] {
        out.push(authzen(evals, name, body, 400));
    }
    let search = "/access/v1/search/resource";
    let mut s = base.clone();
    s["resource"] = json!({"type": "NetworkSlice"});
    for (name, page) in [
        ("page is a string", json!("next")),
        ("negative page limit", json!({"limit": -1})),
        ("page limit is a string", json!({"limit": "ten"})),
        ("a forged page token", json!({"token": "forged"})),
        ("page token is a number", json!({"token": 5})),
    ] {
        let mut body = s.clone();
        body["page"] = page;
        out.push(authzen(search, name, body, 400));
    }
    let mut no_type = s.clone();
    no_type["resource"] = json!({});
    out.push(authzen(search, "searched resource without a type", no_type, 400));
    out
}
