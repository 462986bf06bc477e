//! Renderings of a test [`Report`]: human-readable text and JUnit XML. (The JSON rendering is
//! the report's `Serialize` form.) Rendering returns strings; printing is the CLI's job.

use std::fmt::Write as _;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::run::{code_name, decision, Actual, CaseResult, Report};

/// Text for a terminal: every failure with expected vs actual and the determining policies,
/// a line per file, the coverage, and the `N passed, M failed` summary as the last line.
pub fn render_human(report: &Report) -> String {
    let mut out = String::new();
    for file in &report.files {
        for case in file.cases.iter().filter(|c| !c.passed) {
            let _ = writeln!(out, "FAIL {}: {}", file.path, case.name);
            for m in &case.mismatches {
                let _ = writeln!(out, "    {m}");
            }
            let _ = writeln!(out, "    answer: {}", answer(case));
            out.push('\n');
        }
    }
    for file in &report.files {
        let failed = file.cases.iter().filter(|c| !c.passed).count();
        let passed = file.cases.len() - failed;
        let _ = writeln!(out, "{}: {passed} passed, {failed} failed", file.path);
    }
    let cov = &report.coverage;
    let total = cov.policies.len();
    let _ = writeln!(
        out,
        "policy coverage: {} of {total} policies made decisive by a passing case ({:.1}%)",
        total - cov.uncovered.len(),
        cov.percent()
    );
    for id in &cov.uncovered {
        let _ = writeln!(out, "    not covered: {id}");
    }
    let _ = writeln!(out, "{}", report.summary());
    out
}

/// What medpdp answered, in one line.
fn answer(case: &CaseResult) -> String {
    match &case.actual {
        Actual::Decided(o) => {
            let mut s = format!(
                "{}; determining policies: {}",
                decision(o.decision),
                join_or_none(o.reasons.iter().map(String::as_str))
            );
            if !o.obligations.is_empty() {
                let _ = write!(s, "; obligations: {}", o.obligations.join(", "));
            }
            for e in &o.errors {
                let _ = write!(s, "; error in {}: {}", e.policy, e.message);
            }
            s
        }
        Actual::Rejected(e) => {
            format!("rejected, `{}` at `{}`: {}", code_name(e.code), e.field, e.message)
        }
    }
}

fn join_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "none (default deny)".to_owned()
    } else {
        v.join(", ")
    }
}

/// JUnit XML, as CI systems read it: one `<testsuite>` per file with a `<testcase>` per case
/// (a `<failure>` for each failing one), and a `policy coverage` suite with one `<testcase>`
/// per policy, uncovered ones `<skipped>` (or `<failure>` when `coverage_required`).
pub fn render_junit(report: &Report, coverage_required: bool) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail; errors are ignored rather than unwrapped.
    let _ = write_junit(&mut w, report, coverage_required);
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

fn write_junit(
    w: &mut Writer<Vec<u8>>,
    report: &Report,
    coverage_required: bool,
) -> std::io::Result<()> {
    let cov = &report.coverage;
    let cov_failures = if coverage_required { cov.uncovered.len() } else { 0 };
    let cov_skipped = if coverage_required { 0 } else { cov.uncovered.len() };
    let cases = report.cases().count();
    let total_time: f64 = report.cases().map(|c| c.elapsed.as_secs_f64()).sum();

    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::Start(BytesStart::new("testsuites").with_attributes([
        ("name", "medpdp test"),
        ("tests", &(cases + cov.policies.len()).to_string()),
        ("failures", &(report.failed() + cov_failures).to_string()),
        ("errors", "0"),
        ("skipped", &cov_skipped.to_string()),
        ("time", &secs(total_time)),
    ])))?;
    for file in &report.files {
        let failed = file.cases.iter().filter(|c| !c.passed).count();
        let time: f64 = file.cases.iter().map(|c| c.elapsed.as_secs_f64()).sum();
        w.write_event(Event::Start(BytesStart::new("testsuite").with_attributes([
            ("name", xml_safe(&file.path).as_str()),
            ("tests", &file.cases.len().to_string()),
            ("failures", &failed.to_string()),
            ("errors", "0"),
            ("skipped", "0"),
            ("time", &secs(time)),
        ])))?;
        write_properties(w, &report.policy_version)?;
        for case in &file.cases {
            let start = BytesStart::new("testcase").with_attributes([
                ("name", xml_safe(&case.name).as_str()),
                ("classname", xml_safe(&file.path).as_str()),
                ("time", &secs(case.elapsed.as_secs_f64())),
            ]);
            if case.passed {
                w.write_event(Event::Empty(start))?;
                continue;
            }
            w.write_event(Event::Start(start))?;
            let message: Vec<String> = case.mismatches.iter().map(ToString::to_string).collect();
            let mut body = message.join("\n");
            let _ = write!(body, "\nanswer: {}", answer(case));
            w.create_element("failure")
                .with_attributes([
                    ("message", xml_safe(&message.join("; ")).as_str()),
                    ("type", "mismatch"),
                ])
                .write_text_content(BytesText::new(&xml_safe(&body)))?;
            w.write_event(Event::End(BytesEnd::new("testcase")))?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }

    w.write_event(Event::Start(BytesStart::new("testsuite").with_attributes([
        ("name", "policy coverage"),
        ("tests", &cov.policies.len().to_string()),
        ("failures", &cov_failures.to_string()),
        ("errors", "0"),
        ("skipped", &cov_skipped.to_string()),
        ("time", "0"),
    ])))?;
    write_properties(w, &report.policy_version)?;
    for (id, n) in &cov.policies {
        let start = BytesStart::new("testcase").with_attributes([
            ("name", xml_safe(id).as_str()),
            ("classname", "coverage"),
            ("time", "0"),
        ]);
        if *n > 0 {
            w.write_event(Event::Empty(start))?;
            continue;
        }
        w.write_event(Event::Start(start))?;
        let message = "no passing case made this policy decisive";
        let tag = if coverage_required { "failure" } else { "skipped" };
        w.create_element(tag).with_attribute(("message", message)).write_empty()?;
        w.write_event(Event::End(BytesEnd::new("testcase")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(())
}

fn write_properties(w: &mut Writer<Vec<u8>>, version: &str) -> std::io::Result<()> {
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    w.create_element("property")
        .with_attributes([("name", "policy_version"), ("value", xml_safe(version).as_str())])
        .write_empty()?;
    w.write_event(Event::End(BytesEnd::new("properties")))?;
    Ok(())
}

fn secs(s: f64) -> String {
    format!("{s:.6}")
}

/// Replaces characters XML 1.0 cannot carry at all, even escaped (most C0 controls, U+FFFE,
/// U+FFFF), with U+FFFD. Markup characters are escaped by the writer.
fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            _ => c,
        })
        .collect()
}
