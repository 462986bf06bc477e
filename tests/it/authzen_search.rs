//! The AuthZEN Search APIs over the real server: the certification scenario's search cases,
//! results equal to brute-force evaluation of every candidate, and paging (limits, the scan
//! bound, tokens bound to their request).

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::authzen::{cert, cert_with, EVALUATIONS};
use crate::common::{repo, TestServer};

const SUBJECT: &str = "/access/v1/search/subject";
const RESOURCE: &str = "/access/v1/search/resource";
const ACTION: &str = "/access/v1/search/action";

/// Ids of the fixture's stored entities of a type.
fn fixture_ids(file: &str, ty: &str) -> Vec<String> {
    let path = repo(&format!("tests/fixtures/authzen/entities/{file}"));
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["uid"]["type"] == ty)
        .map(|e| e["uid"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every result of a search, following `next_token` (checking each page's shape).
async fn search_all(t: &TestServer, path: &str, body: &Value, limit: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..1000 {
        let mut req = body.clone();
        req["page"] = json!({"limit": limit});
        if !token.is_empty() {
            req["page"]["token"] = json!(token);
        }
        let (s, page) = t.post(path, &req).await;
        assert_eq!(s, StatusCode::OK, "{req} -> {page}");
        let results = page["results"].as_array().unwrap();
        assert!(results.len() as u64 <= limit, "{page}");
        assert_eq!(page["page"]["count"], results.len(), "{page}");
        out.extend(results.iter().cloned());
        token = page["page"]["next_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            return out;
        }
    }
    panic!("paging did not end: {body}");
}

fn ids(results: &[Value]) -> BTreeSet<String> {
    results.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

fn names(results: &[Value]) -> BTreeSet<String> {
    results.iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

/// Which items of a batch (all sharing `defaults`) are permitted, by evaluation.
async fn permitted(
    t: &TestServer,
    defaults: Value,
    items: Vec<Value>,
    keys: &[String],
) -> BTreeSet<String> {
    let mut body = defaults;
    body["evaluations"] = Value::Array(items);
    let (s, out) = t.post(EVALUATIONS, &body).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let answers = out["evaluations"].as_array().unwrap();
    assert_eq!(answers.len(), keys.len());
    keys.iter()
        .zip(answers)
        .filter(|(_, a)| a["decision"] == true)
        .map(|(k, _)| k.clone())
        .collect()
}

#[tokio::test]
async fn certification_search_cases() {
    let t = cert().await;
    let user = |id: &str| json!({"type": "user", "id": id});
    let record = |id: &str| json!({"type": "record", "id": id});
    // c-4-2-1 (a subject id is ignored, c-4-2-3)
    for subject in [json!({"type": "user"}), json!({"type": "user", "id": "nobody"})] {
        let (s, out) = t.post(SUBJECT, &json!({"subject": subject, "action": {"name": "read"}, "resource": record("record-1")})).await;
        assert_eq!(s, StatusCode::OK);
        let found = out["results"].as_array().unwrap();
        assert!(found.iter().all(|r| r["type"] == "user"), "{out}");
        assert!(ids(found).is_superset(&["alice".into(), "bob".into()].into()), "{out}");
        assert!(!ids(found).contains("u09"), "the suspended user cannot read: {out}");
    }
    // c-4-2-2, c-4-2-4
    let (_, out) = t
        .post(
            SUBJECT,
            &json!({"subject": {"type": "user"}, "action": {"name": "write"},
        "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
        "context": {"time": "2025-06-27T18:03-07:00"}}),
        )
        .await;
    assert!(ids(out["results"].as_array().unwrap()).contains("bob"), "{out}");
    // c-4-3-1, c-4-3-3
    let (_, out) = t.post(RESOURCE, &json!({"subject": user("alice"), "action": {"name": "read"}, "resource": {"type": "record"}})).await;
    assert!(ids(out["results"].as_array().unwrap()).contains("record-1"), "{out}");
    assert!(out["results"].as_array().unwrap().iter().all(|r| r["type"] == "record"));
    let (_, out) = t
        .post(
            RESOURCE,
            &json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
        "action": {"name": "write"}, "resource": {"type": "record"}}),
        )
        .await;
    assert!(ids(out["results"].as_array().unwrap()).contains("record-2"), "{out}");
    // c-4-4-1, c-4-4-2, c-4-4-3
    let (_, out) = t.post(ACTION, &json!({"subject": user("alice"), "resource": record("record-1"), "context": {"ip": "10.0.0.1"}})).await;
    assert_eq!(
        names(out["results"].as_array().unwrap()),
        ["read".into(), "write".into()].into(),
        "{out}"
    );
    let (_, out) = t
        .post(
            ACTION,
            &json!({"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
        "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}),
        )
        .await;
    assert!(names(out["results"].as_array().unwrap()).contains("write"), "{out}");
    // c-4-5-1
    let (s, out) = t.post(SUBJECT, &json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": record("record-1"), "page": {"limit": 1}})).await;
    assert_eq!((s, out["results"].as_array().unwrap().len()), (StatusCode::OK, 1));
    assert!(!out["page"]["next_token"].as_str().unwrap().is_empty());
    // c-4-6: unknown ids and types find nothing (not an error).
    for (path, body) in [
        (ACTION, json!({"subject": user("nonexistent-user"), "resource": record("record-1")})),
        (
            SUBJECT,
            json!({"subject": {"type": "spaceship"}, "action": {"name": "read"}, "resource": record("record-1")}),
        ),
        (
            RESOURCE,
            json!({"subject": user("alice"), "action": {"name": "read"}, "resource": {"type": "spaceship"}}),
        ),
        (
            SUBJECT,
            json!({"subject": {"type": "user"}, "action": {"name": "teleport"}, "resource": record("record-1")}),
        ),
    ] {
        let (s, out) = t.post(path, &body).await;
        assert_eq!(
            (s, &out["results"], &out["page"]["next_token"]),
            (StatusCode::OK, &json!([]), &json!("")),
            "{body}"
        );
    }
    // c-4-7: missing required fields and sub-fields.
    for (path, body, field) in [
        (SUBJECT, json!({"subject": {"type": "user"}, "resource": record("record-1")}), "action"),
        (RESOURCE, json!({"action": {"name": "read"}, "resource": {"type": "record"}}), "subject"),
        (ACTION, json!({"subject": user("alice")}), "resource"),
        (
            SUBJECT,
            json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}}),
            "resource.id",
        ),
        (
            RESOURCE,
            json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record"}}),
            "subject.id",
        ),
        (
            SUBJECT,
            json!({"subject": {}, "action": {"name": "read"}, "resource": record("record-1")}),
            "subject.type",
        ),
    ] {
        let (s, out) = t.post(path, &body).await;
        assert_eq!(
            (s, out["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body} -> {out}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn searches_find_exactly_what_evaluation_permits() {
    let t = cert().await;
    let users = fixture_ids("people.json", "Cert::user");
    let records = fixture_ids("records.json", "Cert::record");
    assert!(users.len() > 10 && records.len() > 10);
    let user_items = |ids: &[String]| {
        ids.iter().map(|u| json!({"subject": {"type": "user", "id": u}})).collect::<Vec<_>>()
    };
    let record_items = |ids: &[String]| {
        ids.iter().map(|r| json!({"resource": {"type": "record", "id": r}})).collect::<Vec<_>>()
    };
    let mut non_empty = 0;
    for action in ["read", "write", "delete"] {
        for (i, record) in records.iter().enumerate() {
            let resource = json!({"type": "record", "id": record});
            let query = json!({"subject": {"type": "user"}, "action": {"name": action}, "resource": resource});
            let found = ids(&search_all(&t, SUBJECT, &query, 1 + (i as u64 % 4)).await);
            let expected = permitted(
                &t,
                json!({"action": {"name": action}, "resource": resource}),
                user_items(&users),
                &users,
            )
            .await;
            assert_eq!(found, expected, "who may {action} {record}");
            non_empty += usize::from(!found.is_empty());
        }
        for (i, user) in users.iter().enumerate() {
            let subject = json!({"type": "user", "id": user});
            let query = json!({"subject": subject, "action": {"name": action}, "resource": {"type": "record"}});
            let found = ids(&search_all(&t, RESOURCE, &query, 1 + (i as u64 % 5)).await);
            let expected = permitted(
                &t,
                json!({"subject": subject, "action": {"name": action}}),
                record_items(&records),
                &records,
            )
            .await;
            assert_eq!(found, expected, "what may {user} {action}");
        }
    }
    assert!(non_empty > 10, "the fixture gives searches something to find");
    // Action search, with and without a context that some actions need.
    let actions: Vec<String> = ["delete", "read", "write"].iter().map(|s| s.to_string()).collect();
    for user in &users {
        for record in ["record-1", "record-2", "r00", "r03", "r04"] {
            for context in [json!({}), json!({"soft": true})] {
                let fixed = json!({"subject": {"type": "user", "id": user}, "resource": {"type": "record", "id": record}, "context": context});
                let found = names(&search_all(&t, ACTION, &fixed, 2).await);
                let items = actions.iter().map(|a| json!({"action": {"name": a}})).collect();
                let expected = permitted(&t, fixed.clone(), items, &actions).await;
                assert_eq!(found, expected, "what may {user} do to {record} with {context}");
            }
        }
    }
    // With properties on the fixed side.
    let archived =
        json!({"type": "record", "id": "record-1", "properties": {"status": "archived"}});
    let query =
        json!({"subject": {"type": "user"}, "action": {"name": "write"}, "resource": archived});
    let found = ids(&search_all(&t, SUBJECT, &query, 3).await);
    let expected = permitted(
        &t,
        json!({"action": {"name": "write"}, "resource": archived}),
        user_items(&users),
        &users,
    )
    .await;
    assert_eq!(found, expected);
    assert!(found.contains("bob") && !found.contains("alice"), "{found:?}");
    t.stop().await;
}

#[tokio::test]
async fn pages_are_bounded_and_tokens_belong_to_their_request() {
    let t = cert_with(|c| c.authzen.search_scan_limit = 3).await;
    let query = json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    // At most three candidates per request, so a page can hold fewer results than its limit...
    let (_, first) = t
        .post(
            SUBJECT,
            &json!({"subject": {"type": "user"}, "action": {"name": "read"},
        "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 50}}),
        )
        .await;
    assert!(first["results"].as_array().unwrap().len() <= 3, "{first}");
    let token = first["page"]["next_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    // ... and following the tokens still finds everything, each once.
    let all = search_all(&t, SUBJECT, &query, 50).await;
    let unique = ids(&all);
    assert_eq!(unique.len(), all.len(), "no repeats");
    assert_eq!(
        unique.len(),
        fixture_ids("people.json", "Cert::user").len() - 1,
        "all but the suspended user"
    );
    // The same token gives the same page.
    let next = |tok: &str, limit: u64| {
        let mut q = query.clone();
        q["page"] = json!({"limit": limit, "token": tok});
        q
    };
    let (s1, a) = t.post(SUBJECT, &next(&token, 50)).await;
    let (s2, b) = t.post(SUBJECT, &next(&token, 50)).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a, b);
    // A token is refused with any other change to the request (the limit included), and a
    // token this service did not issue is refused.
    let mut changed = next(&token, 50);
    changed["action"]["name"] = json!("write");
    for (body, what) in [
        (changed, "another action"),
        (next(&token, 7), "another limit"),
        (next("bogus", 50), "a forged token"),
    ] {
        let (s, out) = t.post(SUBJECT, &body).await;
        assert_eq!(
            (s, out["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_page_token")),
            "{what}: {out}"
        );
    }
    let mut zero = query.clone();
    zero["page"] = json!({"limit": 0});
    let (s, out) = t.post(SUBJECT, &zero).await;
    assert_eq!((s, out["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("page.limit")));
    t.stop().await;
}

#[tokio::test]
async fn searches_follow_reloads_and_tokens_survive_them() {
    let t = cert().await;
    let query = json!({"subject": {"type": "user"}, "action": {"name": "read"},
                       "resource": {"type": "record", "id": "record-1"}, "page": {"limit": 2}});
    let (_, first) = t.post(SUBJECT, &query).await;
    let before = ids(first["results"].as_array().unwrap());
    let token = first["page"]["next_token"].as_str().unwrap().to_owned();
    // A new staff member who sorts first, and one who sorts last.
    t.write(
        "entities/new.json",
        r#"[{"uid": {"type": "Cert::user", "id": "aaron"}, "attrs": {}, "parents": [{"type": "Cert::Team", "id": "staff"}]},
            {"uid": {"type": "Cert::user", "id": "zoe"}, "attrs": {}, "parents": [{"type": "Cert::Team", "id": "staff"}]}]"#,
    );
    let (s, out) = t.post("/v1/admin/reload", &json!({})).await;
    assert_eq!((s, &out["outcome"]), (StatusCode::OK, &json!("activated")), "{out}");
    let all = ids(&search_all(&t, SUBJECT, &query, 2).await);
    assert!(all.contains("aaron") && all.contains("zoe"), "{all:?}");
    // The old token continues after the last entity it returned: nothing before it again.
    let mut rest = query.clone();
    rest["page"]["token"] = json!(token);
    let (s, next) = t.post(SUBJECT, &rest).await;
    assert_eq!(s, StatusCode::OK, "{next}");
    let next_ids = ids(next["results"].as_array().unwrap());
    assert!(next_ids.is_disjoint(&before) && !next_ids.contains("aaron"), "{next}");
    t.stop().await;
}

#[tokio::test]
async fn workspaces_without_a_schema_take_properties_and_context_as_given() {
    let t = TestServer::start_files(
        &[
            ("p.cedar", "@id(\"clearance\")\npermit (principal, action == Action::\"view\", resource)\nwhen { principal.level > context.min };\n@id(\"any\")\npermit (principal, action == Action::\"list\", resource);"),
            ("entities.json", r#"[{"uid": {"type": "User", "id": "a"}, "attrs": {"level": 1}, "parents": []}]"#),
        ],
        |c| c.authzen.namespace = String::new(),
    )
    .await;
    let ask = |level: Option<i64>| {
        let mut subject = json!({"type": "User", "id": "a"});
        if let Some(l) = level {
            subject["properties"] = json!({"level": l});
        }
        json!({"subject": subject, "action": {"name": "view"}, "resource": {"type": "Doc", "id": "d"},
               "context": {"min": 2}})
    };
    assert!(!crate::authzen::decide(&t, ask(None)).await);
    assert!(crate::authzen::decide(&t, ask(Some(3))).await);
    // Action search: the actions the policies name.
    let (_, out) = t
        .post(
            ACTION,
            &json!({"subject": {"type": "User", "id": "a", "properties": {"level": 3}},
        "resource": {"type": "Doc", "id": "d"}, "context": {"min": 2}}),
        )
        .await;
    assert_eq!(
        names(out["results"].as_array().unwrap()),
        ["list".into(), "view".into()].into(),
        "{out}"
    );
    t.stop().await;
}
