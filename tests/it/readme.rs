//! The README's examples work as written: `medpdp serve` with its defaults in a copy of the
//! repository (so its first run creates the development PKI in `certs/`, as on a fresh clone),
//! then every `curl` block of the README, over mTLS with the demo certificates, compared with
//! the JSON block after it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::medpdp;
use crate::common::{copy_dir, repo};

/// `(kind, body)` of every fenced code block.
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(kind)) => current = Some((kind.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Pairs of (curl command, expected JSON answer).
pub(crate) fn curl_examples() -> Vec<(String, Value)> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let blocks = code_blocks(&readme);
    let mut out = Vec::new();
    for pair in blocks.windows(2) {
        let (cmd, expected) = (&pair[0], &pair[1]);
        if cmd.0 == "sh" && cmd.1.trim_start().starts_with("curl") && expected.0 == "json" {
            let expected: Value = serde_json::from_str(&expected.1).unwrap_or_else(|e| {
                panic!("README JSON block does not parse: {e}\n{}", expected.1)
            });
            out.push((cmd.1.clone(), expected));
        }
    }
    out
}

#[test]
fn quick_start_commands_are_the_ones_ci_runs() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let blocks = code_blocks(&readme);
    let sh: Vec<&str> = blocks.iter().filter(|b| b.0 == "sh").map(|b| b.1.trim()).collect();
    assert!(sh.contains(&"cargo run --release -- serve"), "{sh:?}");
    assert!(sh.contains(&"cargo test"), "{sh:?}");
    let ci = std::fs::read_to_string(repo(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run must run the README's test command"
    );
}

#[test]
fn readme_curl_examples_work_as_written() {
    let examples = curl_examples();
    assert!(examples.len() >= 2, "the README shows at least an allow and a deny");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo("policies"), &dir.path().join("policies"));
    // What a fresh clone has in certs/: the committed files, none of the generated ones.
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    for entry in std::fs::read_dir(repo("certs")).unwrap() {
        let path = entry.unwrap().path();
        let generated = path.extension().is_some_and(|e| e == "pem" || e == "key");
        if path.is_file() && !generated {
            std::fs::copy(&path, dir.path().join("certs").join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut child = medpdp()
        .arg("serve")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        stdout.lines().map_while(Result::ok).try_for_each(|l| lines_tx.send(l))
    });
    let ready = || {
        Command::new("curl")
            .args(["-sf", "--cacert", "certs/ca.pem", "--cert", "certs/demo-gateway.pem"])
            .args(["--key", "certs/demo-gateway.key", "https://localhost:8443/health/ready"])
            .current_dir(dir.path())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("medpdp serve did not start:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut decisions = Vec::new();
    for (cmd, expected) in &examples {
        let out = Command::new("sh").arg("-c").arg(cmd).current_dir(dir.path()).output().unwrap();
        let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("not JSON from:\n{cmd}\n{}", String::from_utf8_lossy(&out.stdout))
        });
        for key in ["decision", "reasons", "errors", "obligations"] {
            if let Some(want) = expected.get(key) {
                assert_eq!(&got[key], want, "`{key}` of:\n{cmd}\ngot {got}");
            }
        }
        if let Some(want) = expected.get("error") {
            for key in ["code", "message", "details"] {
                assert_eq!(got["error"][key], want[key], "`error.{key}` of:\n{cmd}\ngot {got}");
            }
        }
        decisions.push(got["decision"].clone());
    }
    assert!(decisions.contains(&Value::from("allow")) && decisions.contains(&Value::from("deny")));
    // The first run said where the PKI is, and the curl line it printed works.
    let printed: Vec<String> = lines.try_iter().collect();
    assert!(printed.iter().any(|l| l.contains("certs/demo-gateway.key")), "{printed:#?}");
    let line = printed.iter().map(|l| l.trim()).find(|l| l.starts_with("curl ")).unwrap();
    let out = Command::new("sh").arg("-c").arg(line).current_dir(dir.path()).output().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(status["service"], "medpdp", "`{line}` printed {status}");
    assert_eq!(
        status["tls"]["active"]["client_cas"][0]["subject"],
        "O=medpdp, CN=medpdp development CA"
    );
    #[cfg(unix)]
    for key in ["ca.key", "server.key", "demo-gateway.key", "demo-admin.key", "demo-auditor.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            std::fs::metadata(dir.path().join("certs").join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
}
