//! The decision API through the real server: allow, deny, batch, fail-closed, and a clear 4xx
//! for each kind of bad request.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{attach, TestServer};

#[tokio::test]
async fn allow_carries_reasons_id_and_version() {
    let t = TestServer::start().await;
    let (status, body) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "allow");
    assert_eq!(body["reasons"], json!(["P01-attach-certified-terminal"]));
    assert_eq!(body["errors"], json!([]));
    let id = uuid::Uuid::parse_str(body["decision_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "decision ids are time-ordered UUIDv7");
    assert_eq!(body["policy_version"].as_str(), t.version().await.as_deref());
    t.stop().await;
}

#[tokio::test]
async fn deny_names_the_forbid() {
    let t = TestServer::start().await;
    let (status, body) = t.post("/v1/decide", &attach("t-quar", "plmn-miot-health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["reasons"], json!(["P06-revoked-or-quarantined-terminal"]));
    // A slice the terminal's model does not allow: default deny, no reasons.
    let (_, body) = t.post("/v1/decide", &attach("t-ecg1", "npn-urllc-hospA")).await;
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["reasons"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn decision_ids_are_unique_and_increasing() {
    let t = TestServer::start().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (_, body) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
        ids.push(body["decision_id"].as_str().unwrap().to_owned());
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids);
    t.stop().await;
}

#[tokio::test]
async fn batch_answers_in_order_and_isolates_a_bad_item() {
    let t = TestServer::start().await;
    let body = json!({"requests": [
        attach("t-ecg1", "plmn-miot-health"),
        {"principal": "Med5G::Terminal::\"t-ecg1\""},
        attach("t-quar", "plmn-miot-health"),
        attach("t-ecg1", "plmn-embb-public"),
    ]});
    let (status, out) = t.post("/v1/decide/batch", &body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["decision"], "allow");
    assert_eq!(results[1]["decision"], "deny");
    assert_eq!(results[1]["error"]["status"], 400);
    assert_eq!(results[1]["error"]["field"], "requests[1].action");
    assert_eq!(results[2]["decision"], "deny");
    assert_eq!(results[3]["decision"], "allow");
    let mut ids: Vec<&str> = results.iter().map(|r| r["decision_id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each item has its own decision id");
    t.stop().await;
}

#[tokio::test]
async fn batch_cap_is_configurable() {
    let t =
        TestServer::start_fixture("tests/fixtures/med5g-mini", |c| c.limits.max_batch = 2).await;
    let req = attach("t-ecg1", "plmn-miot-health");
    let (status, out) = t.post("/v1/decide/batch", &json!({"requests": [req, req, req]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(out["error"]["code"], "batch_too_large");
    assert!(out["error"]["message"].as_str().unwrap().contains("limit is 2"));
    let (status, _) = t.post("/v1/decide/batch", &json!({"requests": [req, req]})).await;
    assert_eq!(status, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn an_erroring_forbid_fails_closed() {
    let t = TestServer::start_files(
        &[(
            "p.cedar",
            r#"
            @id("allow-all") permit (principal, action, resource);
            @id("block-risky") forbid (principal, action, resource) when { principal.risk > 5 };
            "#,
        )],
        |_| {},
    )
    .await;
    let req = json!({"principal": "User::\"nobody\"", "action": "Action::\"read\"", "resource": "Doc::\"d\""});
    let (status, body) = t.post("/v1/decide", &req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["errors"][0]["policy"], "block-risky");
    assert!(!body["errors"][0]["message"].as_str().unwrap().is_empty(), "{body}");
    t.stop().await;
}

async fn expect_error(
    t: &TestServer,
    body: Value,
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    let (s, out) = t.post("/v1/decide", &body).await;
    assert_eq!(s, status, "{body} -> {out}");
    assert_eq!(out["error"]["code"], code, "{out}");
    assert!(!out["error"]["message"].as_str().unwrap_or_default().is_empty());
    if let Some(f) = field {
        assert_eq!(out["error"]["field"], f, "{out}");
    }
}

#[tokio::test]
async fn bad_requests_get_400_naming_the_field() {
    let t = TestServer::start().await;
    let ok = attach("t-ecg1", "plmn-miot-health");
    let with = |ptr: &str, v: Value| {
        let mut b = ok.clone();
        match b.pointer_mut(ptr) {
            Some(slot) => *slot = v,
            None => {
                b[ptr.trim_start_matches('/')] = v;
            }
        }
        b
    };
    let without = |key: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    let bad = StatusCode::BAD_REQUEST;
    expect_error(&t, without("principal"), bad, "malformed_request", Some("principal")).await;
    expect_error(&t, with("/principal", json!(42)), bad, "malformed_request", Some("principal"))
        .await;
    expect_error(
        &t,
        with("/principal", json!("t-ecg1")),
        bad,
        "malformed_request",
        Some("principal"),
    )
    .await;
    expect_error(
        &t,
        with("/action", json!("Med5G::Action::\"teleport\"")),
        bad,
        "unknown_action",
        Some("action"),
    )
    .await;
    expect_error(
        &t,
        with("/principal", json!("Med5G::Toaster::\"t1\"")),
        bad,
        "invalid_entity_type",
        Some("principal"),
    )
    .await;
    expect_error(
        &t,
        with("/resource", json!("Med5G::Facility::\"hospA\"")),
        bad,
        "invalid_entity_type",
        Some("resource"),
    )
    .await;
    expect_error(
        &t,
        with("/context/attested", json!("yes")),
        bad,
        "invalid_context",
        Some("context"),
    )
    .await;
    expect_error(
        &t,
        with("/context/env/now", json!("not a date")),
        bad,
        "invalid_context",
        Some("context"),
    )
    .await;
    expect_error(&t, with("/context", json!([])), bad, "malformed_request", Some("context")).await;
    expect_error(
        &t,
        with("/entities", json!([{"uid": 7}])),
        bad,
        "invalid_entities",
        Some("entities"),
    )
    .await;
    t.stop().await;
}

#[tokio::test]
async fn transport_level_errors_are_json_too() {
    let t = TestServer::start().await;
    let (s, out) = t.post_raw("/v1/decide", "{not json", Some("application/json")).await;
    assert_eq!((s, out["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
    let (s, out) = t.post_raw("/v1/decide", "{}{}", Some("application/json")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{out}");
    let (s, out) = t.post_raw("/v1/decide", vec![b'"', 0xff, b'"'], Some("application/json")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{out}");
    let (s, out) = t.post_raw("/v1/decide", "{}", Some("text/plain")).await;
    assert_eq!(
        (s, out["error"]["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let (s, _) = t.post_raw("/v1/decide", "{}", None).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body = serde_json::to_vec(&attach("t-ecg1", "plmn-miot-health")).unwrap();
    let (s, out) = t.post_raw("/v1/decide", body, Some("application/json; charset=utf-8")).await;
    assert_eq!(s, StatusCode::OK, "charset parameter accepted: {out}");
    let (s, out) = t.get("/v1/decide").await;
    assert_eq!(
        (s, out["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let (s, out) = t.get("/v1/nothing-here").await;
    assert_eq!((s, out["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    t.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let t =
        TestServer::start_fixture("tests/fixtures/med5g-mini", |c| c.limits.max_body_bytes = 4096)
            .await;
    let mut big = attach("t-ecg1", "plmn-miot-health");
    big["padding"] = json!("x".repeat(8192));
    let (s, out) = t.post("/v1/decide", &big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(out["error"]["code"], "body_too_large");
    // The server is fine afterwards.
    let (s, _) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
    assert_eq!(s, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn health_and_status() {
    let t = TestServer::start().await;
    assert_eq!(t.get("/health/live").await.0, StatusCode::OK);
    let (s, ready) = t.get("/health/ready").await;
    assert_eq!(s, StatusCode::OK);
    let (s, status) = t.get("/v1/status").await;
    assert_eq!(s, StatusCode::OK);
    let active = &status["active"];
    assert_eq!(ready["policy_version"], active["version"]);
    assert_eq!(active["policy_count"], 9);
    assert_eq!(active["entity_count"], 28);
    assert!(active["loaded_at"].as_str().unwrap().contains('T'));
    assert!(active["entities_version"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(status["last_reload_error"], Value::Null);
    t.stop().await;
}

#[tokio::test]
async fn a_server_started_on_a_broken_workspace_is_unready_and_denies_nothing_through() {
    let t = TestServer::start_files(&[("p.cedar", "permit (principal, action, resource)")], |_| {})
        .await;
    assert_eq!(t.get("/health/live").await.0, StatusCode::OK);
    assert_eq!(t.get("/health/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let req = json!({"principal": "U::\"a\"", "action": "A::\"b\"", "resource": "R::\"c\""});
    let (s, out) = t.post("/v1/decide", &req).await;
    assert_eq!(
        (s, out["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("no_policy"))
    );
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["last_reload_error"]["diagnostics"][0]["file"], "p.cedar");
    // Fixing the file and reloading makes it ready.
    t.write("p.cedar", "permit (principal, action, resource);");
    let (s, _) = t.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t.get("/health/ready").await.0, StatusCode::OK);
    assert_eq!(t.post("/v1/decide", &req).await.1["decision"], "allow");
    t.stop().await;
}
