//! The AuthZEN Authorization API 1.0 over the real server, playing the certification scenario
//! (openid/authzen `certification/authorization-api-1_0-scenario.md`) against Cedar policies
//! written for it (`tests/fixtures/authzen`): the eight fixture decisions, every 400 rule,
//! headers, properties, the namespace default and the
//! metadata document. Batches are in `authzen_batch.rs`, searches in `authzen_search.rs`.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;

pub(crate) const EVALUATION: &str = "/access/v1/evaluation";
pub(crate) const EVALUATIONS: &str = "/access/v1/evaluations";

/// The certification fixture with `[authzen] namespace = "Cert"`.
pub(crate) async fn cert() -> TestServer {
    cert_with(|_| {}).await
}

pub(crate) async fn cert_with(tweak: impl FnOnce(&mut medpdp::config::Config)) -> TestServer {
    TestServer::start_fixture("tests/fixtures/authzen", |c| {
        c.authzen.namespace = "Cert".into();
        tweak(c);
    })
    .await
}

/// Sends a request with a raw body and extra headers.
pub(crate) async fn send(
    t: &TestServer,
    method: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut rb = t.client.request(method, format!("{}{path}", t.base));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.body(b.to_owned());
    }
    let resp = rb.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// POSTs JSON, asserts 200 and returns the decision.
pub(crate) async fn decide(t: &TestServer, body: Value) -> bool {
    let (s, out) = t.post(EVALUATION, &body).await;
    assert_eq!(s, StatusCode::OK, "{body} -> {out}");
    out["decision"].as_bool().unwrap_or_else(|| panic!("no boolean decision: {out}"))
}

pub(crate) fn decisions(out: &Value) -> Vec<bool> {
    out["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect()
}

#[tokio::test]
async fn certification_fixture_decisions() {
    let t = cert().await;
    let alice = json!({"type": "user", "id": "alice"});
    let bob = json!({"type": "user", "id": "bob"});
    let record1 = json!({"type": "record", "id": "record-1"});
    let archived2 =
        json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}});
    let ask = |s: &Value, a: Value, r: &Value| json!({"subject": s, "action": a, "resource": r});
    // Rules 1-4: identifiers only.
    assert!(decide(&t, ask(&alice, json!({"name": "read"}), &record1)).await);
    assert!(decide(&t, ask(&alice, json!({"name": "write"}), &record1)).await);
    assert!(decide(&t, ask(&bob, json!({"name": "read"}), &record1)).await);
    assert!(!decide(&t, ask(&bob, json!({"name": "write"}), &record1)).await);
    // Rules 5-8: properties.
    assert!(!decide(&t, ask(&alice, json!({"name": "write"}), &archived2)).await);
    let admin = json!({"type": "user", "id": "bob", "properties": {"role": "admin"}});
    assert!(decide(&t, ask(&admin, json!({"name": "write"}), &archived2)).await);
    let soft = |b: bool| json!({"name": "delete", "properties": {"soft": b}});
    assert!(decide(&t, ask(&alice, soft(true), &record1)).await);
    assert!(!decide(&t, ask(&alice, soft(false), &record1)).await);
    // c-2-2-3: an optional context the schema does not declare changes nothing.
    let mut with_ctx = ask(&alice, json!({"name": "read"}), &record1);
    with_ctx["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
    assert!(decide(&t, with_ctx).await);
    // c-2-2-8: more properties than the fixture needs, one of them (`owner`) undeclared.
    let extra = json!({
        "subject": {"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}},
        "action": {"name": "read", "properties": {"method": "GET"}},
        "resource": {"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}}
    });
    assert!(decide(&t, extra).await);
    // c-2-6: idempotent.
    for _ in 0..3 {
        assert!(!decide(&t, ask(&bob, json!({"name": "write"}), &record1)).await);
    }
    t.stop().await;
}

#[tokio::test]
async fn answers_carry_reasons_obligations_and_the_decision_record() {
    let t = cert().await;
    let (s, out) = t
        .post(
            EVALUATION,
            &json!({
                "subject": {"type": "user", "id": "alice"},
                "action": {"name": "delete", "properties": {"soft": true}},
                "resource": {"type": "record", "id": "record-1"}
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ctx = &out["context"];
    assert_eq!(ctx["reasons"], json!(["soft-delete-by-editor"]));
    assert_eq!(
        ctx["obligations"],
        json!([
            {"id": "audit", "type": "custom", "properties": {"vendor": "medpdp", "obligation": "audit"}},
            {"id": "retain:30d", "type": "custom", "properties": {"vendor": "medpdp", "obligation": "retain:30d"}}
        ])
    );
    let id = uuid::Uuid::parse_str(ctx["decision_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(ctx["policy_version"].as_str(), t.version().await.as_deref());
    // A deny names the forbid and still carries its obligation; a default deny has no reasons
    // and no obligations key.
    let (_, out) = t
        .post(
            EVALUATION,
            &json!({
                "subject": {"type": "user", "id": "bob"},
                "action": {"name": "delete"},
                "resource": {"type": "record", "id": "record-1"}
            }),
        )
        .await;
    assert_eq!(out["decision"], false);
    assert_eq!(out["context"]["reasons"], json!(["no-hard-delete"]));
    assert_eq!(out["context"]["obligations"][0]["id"], "audit");
    let (_, out) = t
        .post(
            EVALUATION,
            &json!({
                "subject": {"type": "user", "id": "bob"},
                "action": {"name": "write"},
                "resource": {"type": "record", "id": "record-1"}
            }),
        )
        .await;
    assert_eq!((&out["decision"], &out["context"]["reasons"]), (&json!(false), &json!([])));
    assert!(out["context"].get("obligations").is_none(), "{out}");
    t.stop().await;
}

#[tokio::test]
async fn every_bad_payload_is_a_400_with_a_message() {
    let t = cert().await;
    let ok = r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#;
    let json_ct = [("content-type", "application/json")];
    // (what, body, headers, the field the error names)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "missing subject",
            r#"{"action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject",
        ),
        (
            "missing action",
            r#"{"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "action",
        ),
        (
            "missing resource",
            r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}}"#,
            &json_ct,
            "resource",
        ),
        (
            "subject without type",
            r#"{"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject.type",
        ),
        (
            "subject without id",
            r#"{"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject.id",
        ),
        (
            "action without name",
            r#"{"subject": {"type": "user", "id": "alice"}, "action": {}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "action.name",
        ),
        (
            "resource without type",
            r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"id": "record-1"}}"#,
            &json_ct,
            "resource.type",
        ),
        (
            "resource without id",
            r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record"}}"#,
            &json_ct,
            "resource.id",
        ),
        (
            "subject is a string",
            r#"{"subject": "alice", "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject",
        ),
        (
            "action.name is a number",
            r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": 123}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "action.name",
        ),
        (
            "id is a number",
            r#"{"subject": {"type": "user", "id": 7}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject.id",
        ),
        (
            "properties is an array",
            r#"{"subject": {"type": "user", "id": "alice", "properties": []}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject.properties",
        ),
        (
            "context is a string",
            r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}, "context": "now"}"#,
            &json_ct,
            "context",
        ),
        (
            "a type that is not a Cedar name",
            r#"{"subject": {"type": "a user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject.type",
        ),
        (
            "an action the schema does not declare",
            r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "print"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "action.name",
        ),
        (
            "a mistyped declared property",
            r#"{"subject": {"type": "user", "id": "alice", "properties": {"role": 5}}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#,
            &json_ct,
            "subject.properties",
        ),
        ("a top-level array", r#"[{"subject": {"type": "user", "id": "alice"}}]"#, &json_ct, ""),
        ("a JSON string", r#""hello""#, &json_ct, ""),
        ("not JSON", "{subject: alice", &json_ct, ""),
        ("an empty body", "", &json_ct, ""),
        ("no content type", ok, &[], ""),
        ("text/plain", ok, &[("content-type", "text/plain")], ""),
        ("a form", ok, &[("content-type", "application/x-www-form-urlencoded")], ""),
        (
            "a charset other than UTF-8",
            ok,
            &[("content-type", "application/json; charset=iso-8859-1")],
            "",
        ),
    ];
    for path in [EVALUATION, EVALUATIONS] {
        for (what, body, headers, field) in &cases {
            let (s, _, out) = send(&t, Method::POST, path, Some(body), headers).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {what} -> {out}");
            let message = out["error"]["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{path}: {what}: no message in {out}");
            if !field.is_empty() {
                assert_eq!(out["error"]["field"], *field, "{path}: {what} -> {out}");
            }
        }
    }
    let (s, _, out) = send(
        &t,
        Method::POST,
        EVALUATION,
        Some(ok),
        &[("content-type", "application/json; charset=utf-8")],
    )
    .await;
    assert_eq!((s, &out["decision"]), (StatusCode::OK, &json!(true)), "charset=utf-8 is accepted");
    t.stop().await;
}

#[tokio::test]
async fn unknown_fields_are_ignored_everywhere() {
    let t = cert().await;
    let body = json!({
        "subject": {"type": "user", "id": "alice", "nickname": "al"},
        "action": {"name": "read", "verb": "GET"},
        "resource": {"type": "record", "id": "record-1", "etag": "x"},
        "foo": "bar",
        "futureField": {"nested": true}
    });
    assert!(decide(&t, body.clone()).await);
    let mut batch = body.clone();
    batch["evaluations"] =
        json!([{"resource": {"type": "record", "id": "record-2", "x": 1}, "y": 2}]);
    batch["options"] = json!({"evaluations_semantic": "execute_all", "another_option": "value"});
    let (s, out) = t.post(EVALUATIONS, &batch).await;
    assert_eq!((s, decisions(&out)), (StatusCode::OK, vec![true]), "{out}");
    t.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let t = cert().await;
    let ok = r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#;
    let ct = ("content-type", "application/json");
    let id = "bfe9eb29-ab87-4ca3-be83-a1d5d8305716";
    for (method, path, body) in [
        (Method::POST, EVALUATION, ok),
        (Method::POST, EVALUATIONS, ok),
        (Method::POST, EVALUATION, "[]"),
        (Method::GET, EVALUATION, ""),
        (Method::GET, "/.well-known/authzen-configuration", ""),
    ] {
        let (s, h, _) =
            send(&t, method.clone(), path, Some(body), &[ct, ("x-request-id", id)]).await;
        assert_eq!(h["x-request-id"], id, "{method} {path} -> {s}");
    }
    let (_, h, _) = send(&t, Method::POST, EVALUATION, Some(ok), &[ct]).await;
    let generated = uuid::Uuid::parse_str(h["x-request-id"].to_str().unwrap()).unwrap();
    assert_eq!(generated.get_version_num(), 7);
    t.stop().await;
}

#[tokio::test]
async fn only_post_reaches_the_evaluation_and_search_endpoints() {
    let t = cert().await;
    for path in [
        EVALUATION,
        EVALUATIONS,
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            let (s, h, out) = send(&t, method.clone(), path, None, &[]).await;
            assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(out["error"]["code"], "method_not_allowed");
            assert_eq!(h["allow"], "POST");
        }
    }
    t.stop().await;
}

#[tokio::test]
async fn properties_are_merged_over_stored_entities_for_one_request_only() {
    let t = cert().await;
    let ask = |subject: Value, action: &str, resource: Value| json!({"subject": subject, "action": {"name": action}, "resource": resource});
    let alice = json!({"type": "user", "id": "alice"});
    let record1 = json!({"type": "record", "id": "record-1"});
    // record-1 is active and alice edits it; a property says it is archived for this request.
    let archived1 =
        json!({"type": "record", "id": "record-1", "properties": {"status": "archived"}});
    assert!(!decide(&t, ask(alice.clone(), "write", archived1)).await);
    assert!(
        decide(&t, ask(alice.clone(), "write", record1.clone())).await,
        "stored data unchanged"
    );
    // Unset attributes come from the store: `editors` still names alice, so only `status`
    // changed; the admin role granted by a property is gone in the next request.
    let admin_alice = json!({"type": "user", "id": "alice", "properties": {"role": "admin"}});
    let record2 = json!({"type": "record", "id": "record-2"});
    assert!(decide(&t, ask(admin_alice, "write", record2.clone())).await);
    assert!(!decide(&t, ask(alice.clone(), "write", record2)).await);
    // Parents are kept: u09 is in the suspended team, whatever its properties say.
    let u09 = json!({"type": "user", "id": "u09", "properties": {"department": "Radiology"}});
    assert!(!decide(&t, ask(u09, "read", record1.clone())).await);
    // An entity the store does not have is built from its properties alone.
    let ghost = json!({"type": "record", "id": "ghost", "properties": {"status": "active", "editors": [{"type": "Cert::user", "id": "alice"}]}});
    assert!(decide(&t, ask(alice.clone(), "write", ghost)).await);
    let (s, out) = t
        .post(
            EVALUATION,
            &ask(
                alice,
                "write",
                json!({"type": "record", "id": "ghost", "properties": {"status": "active"}}),
            ),
        )
        .await;
    assert_eq!(
        (s, out["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("resource.properties")),
        "{out}"
    );
    t.stop().await;
}

#[tokio::test]
async fn the_namespace_default_applies_only_to_bare_names() {
    let t = cert().await;
    let body = json!({
        "subject": {"type": "Cert::user", "id": "alice"},
        "action": {"name": "Cert::Action::\"read\""},
        "resource": {"type": "record", "id": "record-1"}
    });
    assert!(decide(&t, body).await, "qualified types and action uids are taken as they are");
    t.stop().await;
    // Without a namespace, bare names are Cedar names in the root namespace.
    let t = cert_with(|c| c.authzen.namespace = String::new()).await;
    let bare = json!({
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "record", "id": "record-1"}
    });
    let (s, out) = t.post(EVALUATION, &bare).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{out}");
    let qualified = json!({
        "subject": {"type": "Cert::user", "id": "alice"},
        "action": {"name": "Cert::Action::\"read\""},
        "resource": {"type": "Cert::record", "id": "record-1"}
    });
    assert!(decide(&t, qualified).await);
    t.stop().await;
}

#[tokio::test]
async fn action_properties_and_context_form_the_cedar_context() {
    let t = cert().await;
    let ask = |action: Value, context: Value| {
        json!({"subject": {"type": "user", "id": "alice"}, "action": action,
               "resource": {"type": "record", "id": "record-1"}, "context": context})
    };
    assert!(decide(&t, ask(json!({"name": "delete"}), json!({"soft": true}))).await);
    assert!(
        decide(
            &t,
            ask(json!({"name": "delete", "properties": {"soft": true}}), json!({"soft": true}))
        )
        .await
    );
    assert!(
        !decide(&t, ask(json!({"name": "delete"}), json!({"soft": false, "reason": "cleanup"})))
            .await
    );
    let (s, out) = t
        .post(
            EVALUATION,
            &ask(json!({"name": "delete", "properties": {"soft": true}}), json!({"soft": false})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(out["error"]["code"], "conflicting_context");
    assert_eq!(out["error"]["field"], "action.properties.soft");
    let (s, out) =
        t.post(EVALUATION, &ask(json!({"name": "delete"}), json!({"soft": "yes"}))).await;
    assert_eq!(
        (s, out["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("context")),
        "{out}"
    );
    t.stop().await;
}

#[tokio::test]
async fn the_metadata_document_names_the_served_endpoints() {
    let t = cert().await;
    let (s, h, doc) = send(&t, Method::GET, "/.well-known/authzen-configuration", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(doc["policy_decision_point"], t.base.as_str(), "the base URL actually served");
    for (key, path) in [
        ("access_evaluation_endpoint", EVALUATION),
        ("access_evaluations_endpoint", EVALUATIONS),
        ("search_subject_endpoint", "/access/v1/search/subject"),
        ("search_resource_endpoint", "/access/v1/search/resource"),
        ("search_action_endpoint", "/access/v1/search/action"),
    ] {
        let url = doc[key].as_str().unwrap();
        assert_eq!(url, format!("{}{path}", t.base));
        // Each announced endpoint answers (a 400 for an empty object, not a 404).
        let resp = t.client.post(url).json(&json!({})).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{url}");
    }
    assert_eq!(doc["supported_obligations"], json!(["custom"]));
    t.stop().await;
    let t = cert_with(|c| c.authzen.base_url = Some("https://pdp.hospital.example/".into())).await;
    let (_, doc) = t.get("/.well-known/authzen-configuration").await;
    assert_eq!(doc["policy_decision_point"], "https://pdp.hospital.example");
    assert_eq!(
        doc["access_evaluation_endpoint"],
        "https://pdp.hospital.example/access/v1/evaluation"
    );
    t.stop().await;
}
