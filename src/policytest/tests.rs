//! Tests of the policy test runner on a tiny workspace: passing and failing cases are told
//! apart, coverage counts only passing cases, and the renderings say what failed.

use std::path::Path;

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use serde_json::json;

use super::*;
use crate::policy::load_workspace;

const POLICIES: &str = r#"
@id("allow-read")
@obligation("audit")
permit (principal, action == Action::"read", resource);

@id("deny-secret")
forbid (principal, action, resource == Doc::"secret");

@id("never-used")
forbid (principal, action == Action::"nuke", resource);

@id("errs")
forbid (principal, action == Action::"touch", resource) when { resource.missing == 1 };
"#;

const CASES: &str = r#"{
  "description": "runner self-test",
  "defaults": {"request": {"principal": {"type": "User", "id": "alice"}, "action": "Action::\"read\""}},
  "cases": [
    {"name": "read is allowed", "request": {"resource": "Doc::\"a\""},
     "expect": {"decision": "allow", "reasons": ["allow-read"], "obligations": ["audit"]}},
    {"name": "secret is forbidden", "request": {"resource": "Doc::\"secret\""},
     "expect": {"decision": "deny", "reasons": ["deny-secret"], "obligations": []}},
    {"name": "wrong decision <&\"'\u0001>", "request": {"resource": "Doc::\"b\""},
     "expect": {"decision": "deny"}},
    {"name": "misspelt reason", "request": {"resource": "Doc::\"c\""},
     "expect": {"decision": "allow", "reasons": ["allow-reed"]}},
    {"name": "a failing case covers nothing", "request": {"action": "Action::\"nuke\"", "resource": "Doc::\"a\""},
     "expect": {"decision": "allow"}},
    {"name": "an erroring forbid fails closed", "request": {"action": "Action::\"touch\"", "resource": "Doc::\"a\""},
     "expect": {"decision": "deny", "reasons": [], "errors": ["errs"]}},
    {"name": "bad reference is rejected", "request": {"principal": "alice", "resource": "Doc::\"a\""},
     "expect": {"request_error": "malformed"}},
    {"name": "rejection expected but decided", "request": {"resource": "Doc::\"a\""},
     "expect": {"request_error": "invalid_context"}}
  ]
}"#;

fn fixture() -> (tempfile::TempDir, crate::policy::Snapshot, TestFile) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policies.cedar"), POLICIES).unwrap();
    let snapshot = load_workspace(dir.path()).unwrap().snapshot;
    let file = parse_test_file("tests/self.json", CASES).unwrap();
    (dir, snapshot, file)
}

fn case<'a>(report: &'a Report, name: &str) -> &'a CaseResult {
    report.cases().find(|c| c.name.starts_with(name)).unwrap()
}

#[test]
fn passing_and_failing_cases_are_told_apart() {
    let (_dir, snapshot, file) = fixture();
    let report = run(&snapshot, &[file]);
    assert_eq!((report.passed(), report.failed()), (4, 4), "{report:#?}");
    assert_eq!(report.summary(), "4 passed, 4 failed");

    assert!(case(&report, "read is allowed").passed);
    assert!(case(&report, "an erroring forbid fails closed").passed);
    assert!(case(&report, "bad reference is rejected").passed);

    let wrong = case(&report, "wrong decision");
    assert!(!wrong.passed);
    assert_eq!(
        wrong.mismatches,
        vec![Mismatch::Decision {
            expected: crate::decide::Decision::Deny,
            actual: crate::decide::Decision::Allow
        }]
    );
    let typo = case(&report, "misspelt reason");
    assert_eq!(
        typo.mismatches,
        vec![Mismatch::Reasons {
            expected: vec!["allow-reed".into()],
            actual: vec!["allow-read".into()],
            unknown: vec!["allow-reed".into()],
        }]
    );
    let decided = case(&report, "rejection expected but decided");
    assert_eq!(
        decided.mismatches,
        vec![Mismatch::RequestError { expected: Some("invalid_context".into()), actual: None }]
    );
}

#[test]
fn coverage_counts_policies_decisive_in_passing_cases_only() {
    let (_dir, snapshot, file) = fixture();
    let report = run(&snapshot, &[file]);
    let cov = &report.coverage;
    assert_eq!(cov.policies.len(), 4);
    // `allow-read` decides "read is allowed" (passing) and two failing cases: only 1 counts.
    assert_eq!(cov.policies["allow-read"], 1);
    assert_eq!(cov.policies["deny-secret"], 1);
    // `never-used` decided only a failing case; `errs` raised an error, which decides nothing.
    assert_eq!(cov.uncovered, vec!["errs".to_owned(), "never-used".to_owned()]);
    assert!((cov.percent() - 50.0).abs() < 1e-9);
    assert!(!cov.complete());
}

#[test]
fn human_report_shows_expected_actual_and_determining_policies() {
    let (_dir, snapshot, file) = fixture();
    let text = render_human(&run(&snapshot, &[file]));
    assert!(text.contains("FAIL tests/self.json: wrong decision"), "{text}");
    assert!(text.contains("decision: expected deny, got allow"), "{text}");
    assert!(text.contains("answer: allow; determining policies: allow-read; obligations: audit"));
    assert!(text.contains("(not policies of this workspace: allow-reed)"), "{text}");
    assert!(text.contains("answer: deny; determining policies: never-used"), "{text}");
    assert!(text.contains("tests/self.json: 4 passed, 4 failed"), "{text}");
    assert!(text.contains("policy coverage: 2 of 4 policies"), "{text}");
    assert!(text.contains("not covered: never-used"), "{text}");
    assert_eq!(text.lines().last(), Some("4 passed, 4 failed"));
    assert!(!text.contains("FAIL tests/self.json: read is allowed"));
}

/// `(element name, attributes)` of every start or empty element, after a full parse that
/// fails on any well-formedness error (bad syntax, mismatched or unclosed elements).
fn xml_elements(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    let mut depth = 0usize;
    loop {
        let event = reader.read_event().unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}"));
        let element = match event {
            Event::Start(e) => {
                depth += 1;
                e
            }
            Event::Empty(e) => e,
            Event::End(_) => {
                depth -= 1;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = element.name().as_ref().to_owned();
        let attrs = element
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                let key = a.key.as_ref().to_owned();
                (key, a.normalized_value(XmlVersion::Explicit1_0).unwrap().into_owned())
            })
            .collect();
        out.push((name, attrs));
    }
    assert_eq!(depth, 0, "unclosed elements:\n{xml}");
    out
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> &'a str {
    attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap()
}

#[test]
fn junit_output_is_well_formed_and_counts_right() {
    let (_dir, snapshot, file) = fixture();
    let report = run(&snapshot, &[file]);
    for required in [false, true] {
        let xml = render_junit(&report, required);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"), "{xml}");
        let elements = xml_elements(&xml);
        let root = &elements[0];
        assert_eq!(root.0, "testsuites");
        // 8 cases + 4 coverage entries.
        assert_eq!(attr(&root.1, "tests"), "12");
        let expected_failures = if required { "6" } else { "4" };
        assert_eq!(attr(&root.1, "failures"), expected_failures);
        let count = |n: &str| elements.iter().filter(|e| e.0 == n).count();
        assert_eq!(count("testsuite"), 2);
        assert_eq!(count("testcase"), 12);
        assert_eq!(count("failure"), if required { 6 } else { 4 });
        assert_eq!(count("skipped"), if required { 0 } else { 2 });
        let names: Vec<&str> =
            elements.iter().filter(|e| e.0 == "testcase").map(|e| attr(&e.1, "name")).collect();
        assert!(names.contains(&"wrong decision <&\"'\u{fffd}>"), "{names:?}");
        let failure = elements.iter().find(|e| e.0 == "failure").unwrap();
        assert_eq!(attr(&failure.1, "message"), "decision: expected deny, got allow");
    }
}

#[test]
fn test_file_mistakes_are_reported_with_their_place() {
    let typo = r#"{"cases": [
      {"name": "a", "request": {}, "expect": {"decision": "allow", "reason": ["x"]}}
    ]}"#;
    let e = parse_test_file("t.json", typo).unwrap_err().to_string();
    assert!(e.starts_with("`t.json`:2:"), "{e}");
    assert!(e.contains("cases[0].expect.reason: unknown field `reason`, expected one of"), "{e}");
    assert!(!e.contains(" at line "), "the position is given once: {e}");

    let bad_decision = r#"{"cases": [{"name": "a", "expect": {"decision": "permit"}}]}"#;
    let e = parse_test_file("t.json", bad_decision).unwrap_err().to_string();
    assert!(e.contains("cases[0].expect.decision: unknown variant `permit`"), "{e}");

    let dup = r#"{"cases": [{"name": "a", "expect": {"decision": "allow"}},
                            {"name": "a", "expect": {"decision": "deny"}}]}"#;
    let e = parse_test_file("t.json", dup).unwrap_err().to_string();
    assert!(e.contains("cases[1] (`a`): duplicate case name"), "{e}");

    let nothing = r#"{"cases": [{"name": "a", "expect": {}}]}"#;
    let e = parse_test_file("t.json", nothing).unwrap_err().to_string();
    assert!(e.contains("needs a `decision`"), "{e}");

    let both = r#"{"cases": [{"name": "a", "expect": {"decision": "deny", "request_error": "malformed"}}]}"#;
    assert!(parse_test_file("t.json", both).unwrap_err().to_string().contains("both"));

    let missing = find_test_files(&[Path::new("/nonexistent/medpdp-tests").to_owned()]);
    assert!(missing.unwrap_err().to_string().contains("cannot read `/nonexistent/medpdp-tests`"));
    let empty = tempfile::tempdir().unwrap();
    let e = find_test_files(&[empty.path().to_owned()]).unwrap_err().to_string();
    assert!(e.contains("no test files"), "{e}");
}

#[test]
fn merge_patch_follows_rfc_7386() {
    // Examples from RFC 7386 Appendix A.
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
        (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
        (json!(["a", "b"]), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
    ];
    for (mut target, patch, want) in cases {
        merge_patch(&mut target, &patch);
        assert_eq!(target, want);
    }
}

#[test]
fn a_case_request_is_merged_over_the_defaults_and_gets_its_entities() {
    let file = parse_test_file(
        "t.json",
        r#"{"defaults": {"request": {"action": "A::\"x\"", "context": {"env": {"now": 1, "risk": 2}, "k": true}}},
            "cases": [{"name": "c", "request": {"context": {"env": {"risk": 9}, "k": null}, "entities": [1]},
                       "entities": [2], "expect": {"decision": "deny"}}]}"#,
    )
    .unwrap();
    let req = file.cases[0].expanded_request(&file.defaults);
    assert_eq!(
        req,
        json!({"action": "A::\"x\"", "context": {"env": {"now": 1, "risk": 9}}, "entities": [1, 2]})
    );
}
