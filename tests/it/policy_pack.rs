//! The bundled Med5G policy pack (`policies/`): it validates strictly without warnings, every
//! case in `policies/tests/` passes, every policy is covered, the 50 research scenarios are
//! all there, and the demo data is exactly what its generator writes. Also `medpdp test` as
//! users run it: exit codes, failure reports, JUnit.

use std::collections::BTreeMap;
use std::process::Command;

use medpdp::policy::{load_workspace, Effect, Snapshot};
use medpdp::policytest::{self, load_test_files, render_human, TestFile};
use serde_json::Value;

use crate::cli::medpdp;
use crate::common::repo;

fn pack() -> (Snapshot, Vec<TestFile>) {
    let snapshot = load_workspace(&repo("policies")).unwrap().snapshot;
    let files = load_test_files(&[repo("policies/tests")])
        .unwrap_or_else(|errors| panic!("test files do not load: {errors:#?}"));
    (snapshot, files)
}

#[test]
fn every_pack_case_passes_and_every_policy_is_covered() {
    let (snapshot, files) = pack();
    let report = policytest::run(&snapshot, &files);
    let text = render_human(&report);
    assert_eq!(report.failed(), 0, "{text}");
    assert!(report.coverage.complete(), "{text}");
    assert_eq!(report.coverage.policies.len(), snapshot.meta().policy_count);
    assert!(report.passed() >= 150, "{text}");
}

#[test]
fn the_50_research_scenarios_are_cases() {
    let (_, files) = pack();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for case in files.iter().flat_map(|f| &f.cases) {
        let id = case.name.split(' ').next().unwrap_or_default();
        let Some((family, number)) = id.split_at_checked(1) else { continue };
        let numbered = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit());
        if "ACFXRH".contains(family) && numbered {
            *seen.entry(id.to_owned()).or_default() += 1;
        }
    }
    let mut expected = Vec::new();
    for (family, n) in [('A', 10), ('C', 7), ('F', 7), ('X', 17), ('R', 3), ('H', 6)] {
        expected.extend((1..=n).map(|i| format!("{family}{i}")));
    }
    assert_eq!(expected.len(), 50);
    for id in &expected {
        assert_eq!(seen.get(id), Some(&1), "scenario {id} must be exactly one case");
    }
    assert_eq!(seen.len(), 50, "unexpected scenario ids: {seen:?}");
}

#[test]
fn check_validates_the_pack_strictly_with_no_warnings() {
    let out =
        medpdp().args(["check", "--deny-warnings", "-w"]).arg(repo("policies")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("0 warnings, schema validated (strict)"), "{stdout}");
    let (snapshot, _) = pack();
    assert!(snapshot.meta().warnings.is_empty(), "{:#?}", snapshot.meta().warnings);
    assert!(snapshot.meta().entity_count > 500, "a realistic demo network");
}

#[test]
fn every_policy_has_an_id_a_cited_rule_and_known_obligations() {
    let (snapshot, _) = pack();
    for info in snapshot.policy_infos() {
        let id = &info.id;
        assert!(
            id.starts_with('P') && id[1..].starts_with(|c: char| c.is_ascii_digit()),
            "`{id}` ({}) needs an explicit @id(\"Pnn-…\")",
            info.file
        );
        let description = info.description.as_deref().unwrap_or_default();
        // A rule and the standard it comes from: "<rule>. <sources>".
        assert!(description.len() > 60 && description.contains(". "), "`{id}`: {description}");
        for o in &info.obligations {
            assert!(o == "audit" || o.starts_with("notify:"), "`{id}`: unknown obligation `{o}`");
        }
        if !info.obligations.is_empty() {
            assert_eq!(info.effect, Effect::Permit, "`{id}`: obligations belong on permits");
        }
    }
    let break_glass = snapshot
        .policy_infos()
        .into_iter()
        .find(|i| i.id == "P29-break-glass-read")
        .map(|i| i.obligations.clone());
    assert_eq!(break_glass, Some(vec!["audit".to_owned(), "notify:privacy-officer".to_owned()]));
}

#[test]
fn demo_entities_are_what_the_generator_writes() {
    let out = Command::new("python3")
        .arg(repo("scripts/gen-demo-entities.py"))
        .arg("--check")
        .output()
        .expect("python3 runs the entity generator");
    assert!(
        out.status.success(),
        "policies/entities/ is stale: run `python3 scripts/gen-demo-entities.py`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn medpdp_test_passes_on_the_pack_in_every_format() {
    let human = medpdp()
        .args(["test", "--coverage-required", "-w"])
        .arg(repo("policies"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert_eq!(human.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&human.stderr));
    assert!(text.lines().last().unwrap().ends_with(" passed, 0 failed"), "{text}");
    assert!(text.contains("(100.0%)"), "{text}");

    let junit =
        medpdp().args(["test", "--format", "junit", "-w"]).arg(repo("policies")).output().unwrap();
    assert_eq!(junit.status.code(), Some(0));
    let xml = String::from_utf8(junit.stdout).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("<testsuites name=\"medpdp test\"") && xml.contains("failures=\"0\""));

    let json =
        medpdp().args(["test", "--format", "json", "-w"]).arg(repo("policies")).output().unwrap();
    assert_eq!(json.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["coverage"]["uncovered"], serde_json::json!([]));
    assert!(report["files"].as_array().unwrap().len() >= 6);
}

#[test]
fn medpdp_test_reports_failures_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"cases": [{
          "name": "quarantined monitor attaches (wrong on purpose)",
          "request": {"principal": "Med5G::Terminal::\"t-quar\"", "action": "Med5G::Action::\"attach\"",
                      "resource": "Med5G::NetworkSlice::\"plmn-miot-health\"",
                      "context": {"env": {"now": "2026-03-10T19:30:00Z", "risk_score": 10, "inside_geofence": true, "audit_available": true}, "attested": true}},
          "expect": {"decision": "allow", "reasons": ["P01-attach-certified-terminal"]}
        }]}"#,
    )
    .unwrap();
    let out = medpdp().args(["test", "-w"]).arg(repo("policies")).arg(&wrong).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("FAIL ") && text.contains("quarantined monitor attaches"), "{text}");
    assert!(text.contains("decision: expected allow, got deny"), "{text}");
    assert!(
        text.contains(
            "reasons: expected P01-attach-certified-terminal, got P06-revoked-or-quarantined-device"
        ),
        "{text}"
    );
    assert!(text.contains("answer: deny; determining policies: P06-revoked-or-quarantined-device"));
    assert_eq!(text.lines().last(), Some("0 passed, 1 failed"));

    // A passing case alone leaves policies uncovered: fine by default, a failure on request.
    let right = dir.path().join("right.json");
    std::fs::write(
        &right,
        std::fs::read_to_string(&wrong).unwrap().replace(
            r#""expect": {"decision": "allow", "reasons": ["P01-attach-certified-terminal"]}"#,
            r#""expect": {"decision": "deny", "reasons": ["P06-revoked-or-quarantined-device"]}"#,
        ),
    )
    .unwrap();
    let ok = medpdp().args(["test", "-w"]).arg(repo("policies")).arg(&right).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    let strict = medpdp()
        .args(["test", "--coverage-required", "-w"])
        .arg(repo("policies"))
        .arg(&right)
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("--coverage-required"));

    // A test file that cannot be used is an error (1), with its position.
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        "{\"cases\": [{\"name\": \"x\", \"expect\": {\"decison\": \"allow\"}}]}",
    )
    .unwrap();
    let bad = medpdp().args(["test", "-w"]).arg(repo("policies")).arg(&broken).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("broken.json`:1:") && stderr.contains("unknown field `decison`"),
        "{stderr}"
    );
}
