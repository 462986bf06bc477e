//! AuthZEN Access Evaluations (`POST /access/v1/evaluations`) over the real server, with the
//! certification scenario's batch cases: defaults and their whole-object replacement, request
//! order, per-item failures, the three evaluation semantics and their short-circuits, and
//! batches without items.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::authzen::{cert, cert_with, decisions, EVALUATIONS};

#[tokio::test]
async fn batches_answer_in_order_with_defaults() {
    let t = cert().await;
    let cases = [
        // c-3-2-1
        (
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                "evaluations": [{"resource": {"type": "record", "id": "record-1"}},
                                {"resource": {"type": "record", "id": "record-2"}}]}),
            vec![true, true],
        ),
        // c-3-2-2: ordering
        (
            json!({"subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "record-1"},
                "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "write"}}]}),
            vec![true, false],
        ),
        // c-3-2-3: properties per item
        (
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
                "evaluations": [{"resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}}},
                                {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}]}),
            vec![true, false],
        ),
        // c-3-2-4: subject properties per item
        (
            json!({"action": {"name": "write"}, "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
                "evaluations": [{"subject": {"type": "user", "id": "alice"}},
                                {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}}]}),
            vec![false, true],
        ),
        // c-3-2-5: no defaults
        (
            json!({"evaluations": [
                {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}},
                {"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"}, "resource": {"type": "record", "id": "record-1"}}]}),
            vec![true, false],
        ),
        // c-3-2-6: context default and override
        (
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "context": {"time": "2025-06-27T18:03-07:00"},
                "evaluations": [{"resource": {"type": "record", "id": "record-1"}},
                                {"resource": {"type": "record", "id": "record-2"}, "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}}]}),
            vec![true, true],
        ),
        // c-3-2-7: an item's resource replaces the default, but its missing `type` falls back
        (
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"}, "resource": {"type": "record"},
                "evaluations": [{"resource": {"id": "record-1", "properties": {"status": "active"}}},
                                {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}}]}),
            vec![true, false],
        ),
        // Whole-object replacement: the default's properties do not leak into an item's resource.
        (
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
                "resource": {"type": "record", "id": "record-1", "properties": {"status": "archived"}},
                "evaluations": [{}, {"resource": {"type": "record", "id": "record-1"}}]}),
            vec![false, true],
        ),
        // Context default for delete, replaced (not merged) by the item's.
        (
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "delete"}, "resource": {"type": "record", "id": "record-1"},
                "context": {"soft": true},
                "evaluations": [{}, {"context": {"note": "no soft flag here"}}]}),
            vec![true, false],
        ),
    ];
    for (body, want) in cases {
        let (s, out) = t.post(EVALUATIONS, &body).await;
        assert_eq!(s, StatusCode::OK, "{body} -> {out}");
        assert_eq!(decisions(&out), want, "{body} -> {out}");
        assert!(out.get("decision").is_none(), "top-level decision omitted: {out}");
    }
    t.stop().await;
}

#[tokio::test]
async fn batch_semantics_and_short_circuits() {
    let t = cert().await;
    let batch = |semantic: Option<&str>, actions: &[&str]| {
        let items: Vec<Value> =
            actions
                .iter()
                .map(|a| {
                    if a.is_empty() {
                        json!({"action": {}})
                    } else {
                        json!({"action": {"name": a}})
                    }
                })
                .collect();
        let mut b = json!({"subject": {"type": "user", "id": "bob"},
                           "resource": {"type": "record", "id": "record-1"}, "evaluations": items});
        if let Some(s) = semantic {
            b["options"] = json!({"evaluations_semantic": s});
        }
        b
    };
    // execute_all (the default): every item answered; a failing item is a false with its error.
    for semantic in [None, Some("execute_all")] {
        let (s, out) = t.post(EVALUATIONS, &batch(semantic, &["read", "", "write", "read"])).await;
        assert_eq!((s, decisions(&out)), (StatusCode::OK, vec![true, false, false, true]), "{out}");
        let err = &out["evaluations"][1]["context"]["error"];
        assert_eq!(
            (err["status"].as_u64(), err["field"].as_str()),
            (Some(400), Some("evaluations[1].action.name"))
        );
        assert!(err["message"].as_str().unwrap().contains("missing"), "{err}");
        assert!(out["evaluations"][2]["context"].get("error").is_none());
    }
    // deny_on_first_deny: answers stop at the first deny, which says why.
    let (_, out) =
        t.post(EVALUATIONS, &batch(Some("deny_on_first_deny"), &["read", "write", "read"])).await;
    assert_eq!(decisions(&out), vec![true, false], "{out}");
    assert_eq!(out["evaluations"][1]["context"]["reason"], "deny_on_first_deny");
    assert!(out["evaluations"][0]["context"].get("reason").is_none());
    // ... and a failing item counts as a deny.
    let (_, out) = t.post(EVALUATIONS, &batch(Some("deny_on_first_deny"), &["", "read"])).await;
    assert_eq!(decisions(&out), vec![false], "{out}");
    assert_eq!(out["evaluations"][0]["context"]["reason"], "deny_on_first_deny");
    assert_eq!(out["evaluations"][0]["context"]["error"]["status"], 400);
    // All permitted: nothing short-circuits.
    let (_, out) = t.post(EVALUATIONS, &batch(Some("deny_on_first_deny"), &["read", "read"])).await;
    assert_eq!(decisions(&out), vec![true, true]);
    // permit_on_first_permit: answers stop at the first permit.
    let (_, out) = t
        .post(
            EVALUATIONS,
            &batch(Some("permit_on_first_permit"), &["write", "delete", "read", "write"]),
        )
        .await;
    assert_eq!(decisions(&out), vec![false, false, true], "{out}");
    assert_eq!(out["evaluations"][2]["context"]["reason"], "permit_on_first_permit");
    let (_, out) =
        t.post(EVALUATIONS, &batch(Some("permit_on_first_permit"), &["write", "", "delete"])).await;
    assert_eq!(decisions(&out), vec![false, false, false], "none permitted: all answered");
    // An unknown semantic is a payload error.
    let (s, out) = t.post(EVALUATIONS, &batch(Some("sometimes"), &["read"])).await;
    assert_eq!(
        (s, out["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("options.evaluations_semantic"))
    );
    t.stop().await;
}

#[tokio::test]
async fn batches_without_items_are_single_evaluations() {
    let t = cert().await;
    let top = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                     "resource": {"type": "record", "id": "record-1"}});
    for items in [None, Some(json!([]))] {
        let mut body = top.clone();
        if let Some(i) = items {
            body["evaluations"] = i;
        }
        let (s, out) = t.post(EVALUATIONS, &body).await;
        assert_eq!((s, &out["decision"]), (StatusCode::OK, &json!(true)), "{out}");
        assert!(out.get("evaluations").is_none());
        assert_eq!(out["context"]["reasons"], json!(["read-records"]));
    }
    // Then the top level must be complete, and its errors are the request's.
    let (s, out) = t
        .post(
            EVALUATIONS,
            &json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}}),
        )
        .await;
    assert_eq!((s, out["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("resource")));
    t.stop().await;
}

#[tokio::test]
async fn batch_payload_errors_are_400s() {
    let t = cert_with(|c| c.limits.max_batch = 2).await;
    let item = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}});
    for (body, field) in [
        (json!({"evaluations": {"0": item}}), "evaluations"),
        (json!({"subject": "alice", "evaluations": [item]}), "subject"),
        (json!({"options": "fast", "evaluations": [item]}), "options"),
        (json!({"evaluations": [item, item, item]}), "evaluations"),
    ] {
        let (s, out) = t.post(EVALUATIONS, &body).await;
        assert_eq!(
            (s, out["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body} -> {out}"
        );
    }
    // A malformed item is not a payload error.
    let (s, out) = t.post(EVALUATIONS, &json!({"evaluations": [item, 42]})).await;
    assert_eq!((s, decisions(&out)), (StatusCode::OK, vec![true, false]), "{out}");
    t.stop().await;
}
