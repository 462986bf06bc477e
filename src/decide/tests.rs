//! Unit tests for evaluation: small inline workspaces, one behaviour per test.

use serde_json::json;

use super::*;
use crate::policy::{load_workspace, Snapshot};

const SCHEMA: &str = r#"
namespace App {
  entity Group;
  entity User in [Group] = { level: Long, manager?: User };
  entity Doc = { owner: User, level: Long };
  action read appliesTo { principal: [User], resource: [Doc], context: { mfa: Bool } };
  action ping appliesTo { principal: [User], resource: [Doc] };
}
"#;

const ENTITIES: &str = r#"[
  {"uid": {"type": "App::Group", "id": "staff"}, "attrs": {}, "parents": []},
  {"uid": {"type": "App::User", "id": "alice"}, "attrs": {"level": 3}, "parents": [{"type": "App::Group", "id": "staff"}]},
  {"uid": {"type": "App::User", "id": "bob"}, "attrs": {"level": 1, "manager": {"type": "App::User", "id": "alice"}}, "parents": []},
  {"uid": {"type": "App::Doc", "id": "d1"}, "attrs": {"owner": {"type": "App::User", "id": "alice"}, "level": 2}, "parents": []}
]"#;

fn snapshot(files: &[(&str, &str)]) -> Snapshot {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    match load_workspace(dir.path()) {
        Ok(l) => l.snapshot,
        Err(e) => panic!("{:#?}", e.diagnostics),
    }
}

fn app(policies: &str) -> Snapshot {
    snapshot(&[("schema.cedarschema", SCHEMA), ("p.cedar", policies), ("entities.json", ENTITIES)])
}

fn req(v: serde_json::Value) -> DecisionRequest {
    serde_json::from_value(v).unwrap()
}

fn read(principal: &str, mfa: bool) -> DecisionRequest {
    req(json!({
        "principal": format!("App::User::\"{principal}\""),
        "action": "App::Action::\"read\"",
        "resource": {"type": "App::Doc", "id": "d1"},
        "context": {"mfa": mfa}
    }))
}

const STAFF_READ: &str = r#"
@id("staff-read")
permit (principal in App::Group::"staff", action == App::Action::"read", resource)
when { principal.level >= resource.level };
@id("need-mfa")
forbid (principal, action == App::Action::"read", resource) when { !context.mfa };
"#;

#[test]
fn allow_names_the_determining_permit() {
    let out = decide(&app(STAFF_READ), &read("alice", true)).unwrap();
    assert_eq!(out.decision, Decision::Allow);
    assert_eq!(out.reasons, vec!["staff-read"]);
    assert!(out.errors.is_empty());
}

#[test]
fn deny_by_forbid_names_the_forbid() {
    let out = decide(&app(STAFF_READ), &read("alice", false)).unwrap();
    assert_eq!(out.decision, Decision::Deny);
    assert_eq!(out.reasons, vec!["need-mfa"]);
}

#[test]
fn default_deny_has_no_reasons() {
    let out = decide(&app(STAFF_READ), &read("bob", true)).unwrap();
    assert_eq!(out.decision, Decision::Deny);
    assert!(out.reasons.is_empty());
}

#[test]
fn an_erroring_forbid_denies_instead_of_being_skipped() {
    // No schema, so the policy can read an attribute that does not exist: Cedar skips the
    // erroring forbid and would allow; medpdp must deny and report the error.
    let s = snapshot(&[(
        "p.cedar",
        r#"
        @id("all") permit (principal, action, resource);
        @id("risky") forbid (principal, action, resource) when { principal.risk > 5 };
        "#,
    )]);
    let r = req(json!({"principal": "U::\"x\"", "action": "A::\"a\"", "resource": "R::\"r\""}));
    let out = decide(&s, &r).unwrap();
    assert_eq!(out.decision, Decision::Deny);
    assert!(out.reasons.is_empty(), "the matched permit does not explain a deny");
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].policy, "risky");
    // Sanity check of the premise: Cedar alone would have allowed.
    let cedar = cedar_policy::Authorizer::new().is_authorized(
        &build_request(&s, &r).unwrap(),
        s.policies(),
        s.entities(),
    );
    assert_eq!(cedar.decision(), cedar_policy::Decision::Allow);
}

#[test]
fn unknown_action_is_a_request_error_listing_declared_actions() {
    let mut r = read("alice", true);
    r.action = serde_json::from_value(json!("App::Action::\"raed\"")).unwrap();
    let e = decide(&app(STAFF_READ), &r).unwrap_err();
    assert_eq!(e.code, RequestErrorCode::UnknownAction);
    assert_eq!(e.field, "action");
    assert!(e.message.contains("App::Action::\"read\""), "{}", e.message);
}

#[test]
fn undeclared_principal_type_names_the_field() {
    let mut r = read("alice", true);
    r.principal = serde_json::from_value(json!("App::Robot::\"r2\"")).unwrap();
    let e = decide(&app(STAFF_READ), &r).unwrap_err();
    assert_eq!(e.code, RequestErrorCode::InvalidEntityType);
    assert_eq!(e.field, "principal");
}

#[test]
fn wrong_resource_type_for_the_action_names_the_field() {
    let mut r = read("alice", true);
    r.resource = serde_json::from_value(json!("App::User::\"bob\"")).unwrap();
    let e = decide(&app(STAFF_READ), &r).unwrap_err();
    assert_eq!(e.field, "resource");
}

#[test]
fn context_type_mismatch_names_the_attribute() {
    let r = req(json!({
        "principal": "App::User::\"alice\"", "action": "App::Action::\"read\"",
        "resource": "App::Doc::\"d1\"", "context": {"mfa": "yes"}
    }));
    let e = decide(&app(STAFF_READ), &r).unwrap_err();
    assert_eq!(e.code, RequestErrorCode::InvalidContext);
    assert!(e.message.contains("mfa"), "{}", e.message);
}

#[test]
fn missing_and_extra_context_attributes_are_errors() {
    let r = req(json!({
        "principal": "App::User::\"alice\"", "action": "App::Action::\"read\"",
        "resource": "App::Doc::\"d1\"", "context": {}
    }));
    assert_eq!(decide(&app(STAFF_READ), &r).unwrap_err().field, "context");
    let r = req(json!({
        "principal": "App::User::\"alice\"", "action": "App::Action::\"read\"",
        "resource": "App::Doc::\"d1\"", "context": {"mfa": true, "extra": 1}
    }));
    assert_eq!(decide(&app(STAFF_READ), &r).unwrap_err().field, "context");
}

#[test]
fn non_object_context_is_malformed() {
    let mut r = read("alice", true);
    r.context = Some(json!([1, 2]));
    assert_eq!(decide(&app(STAFF_READ), &r).unwrap_err().code, RequestErrorCode::Malformed);
}

#[test]
fn request_entities_override_stored_ones_for_that_request_only() {
    let s = app(STAFF_READ);
    let mut r = read("alice", true);
    r.entities = Some(vec![json!({
        "uid": {"type": "App::User", "id": "alice"}, "attrs": {"level": 0},
        "parents": [{"type": "App::Group", "id": "staff"}]
    })]);
    assert_eq!(decide(&s, &r).unwrap().decision, Decision::Deny);
    // The stored entity is untouched.
    assert_eq!(decide(&s, &read("alice", true)).unwrap().decision, Decision::Allow);
}

#[test]
fn request_entities_reach_stored_entities_through_attributes_and_parents() {
    // A new user whose parent is the stored group and whose manager is a stored user.
    let policies = r#"
    @id("managed-staff")
    permit (principal in App::Group::"staff", action == App::Action::"read", resource)
    when { principal has manager && principal.manager.level >= resource.level };
    "#;
    let mut r = read("carol", true);
    r.entities = Some(vec![json!({
        "uid": {"type": "App::User", "id": "carol"},
        "attrs": {"level": 0, "manager": {"type": "App::User", "id": "alice"}},
        "parents": [{"type": "App::Group", "id": "staff"}]
    })]);
    let out = decide(&app(policies), &r).unwrap();
    assert_eq!(out.decision, Decision::Allow, "{out:?}");
}

#[test]
fn invalid_request_entities_are_rejected() {
    let mut r = read("alice", true);
    r.entities = Some(vec![json!({
        "uid": {"type": "App::User", "id": "zed"}, "attrs": {"level": "high"}, "parents": []
    })]);
    let e = decide(&app(STAFF_READ), &r).unwrap_err();
    assert_eq!(e.code, RequestErrorCode::InvalidEntities);
    assert_eq!(e.field, "entities");
}

#[test]
fn cyclic_request_entities_do_not_panic() {
    let s = snapshot(&[("p.cedar", "@id(\"all\") permit (principal, action, resource);")]);
    let r = req(json!({
        "principal": "G::\"a\"", "action": "A::\"x\"", "resource": "R::\"r\"",
        "entities": [
            {"uid": {"type": "G", "id": "a"}, "attrs": {}, "parents": [{"type": "G", "id": "b"}]},
            {"uid": {"type": "G", "id": "b"}, "attrs": {}, "parents": [{"type": "G", "id": "a"}]}
        ]
    }));
    // Either answer is acceptable as long as it is an answer, not a panic.
    let _ = decide(&s, &r);
}

#[test]
fn obligations_come_from_determining_policies() {
    let policies = r#"
    @id("audited") @obligation("audit; notify:dpo")
    permit (principal, action == App::Action::"read", resource) when { context.mfa };
    "#;
    let out = decide(&app(policies), &read("bob", true)).unwrap();
    assert_eq!(out.decision, Decision::Allow);
    assert_eq!(out.obligations, vec!["audit", "notify:dpo"]);
}

#[test]
fn templates_linked_from_links_json_decide() {
    let s = snapshot(&[
        ("schema.cedarschema", SCHEMA),
        ("entities.json", ENTITIES),
        (
            "t.cedar",
            r#"@id("owner-read") permit (principal == ?principal, action == App::Action::"read", resource == ?resource);"#,
        ),
        (
            "links.json",
            r#"[{"template_id": "owner-read", "link_id": "bob-d1",
                 "args": {"?principal": "App::User::\"bob\"", "?resource": {"type": "App::Doc", "id": "d1"}}}]"#,
        ),
    ]);
    let out = decide(&s, &read("bob", true)).unwrap();
    assert_eq!(out.reasons, vec!["bob-d1"]);
}
