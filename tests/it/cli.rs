//! The `medpdp` binary as users run it: exit codes, diagnostics, and `serve` with real signals.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{attach, copy_dir, repo};

pub(crate) fn medpdp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medpdp"));
    c.env_remove("MEDPDP_WORKSPACE").env_remove("MEDPDP_LISTEN").env_remove("MEDPDP_CONFIG");
    c.env_remove("MEDPDP_DATA");
    c.env("NO_COLOR", "1");
    c
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn fixture_copy() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&repo("tests/fixtures/med5g-mini"), d.path());
    d
}

#[test]
fn check_accepts_a_valid_workspace() {
    let out =
        run(medpdp().args(["check", "--workspace"]).arg(repo("tests/fixtures/med5g-mini")), None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("is valid: 9 policies"), "{stdout}");
    assert!(stdout.contains("sha256:"), "{stdout}");
}

#[test]
fn check_reports_every_broken_file_with_positions() {
    let d = fixture_copy();
    std::fs::write(d.path().join("broken.cedar"), "permit (principal, action resource);\n")
        .unwrap();
    let records = std::fs::read_to_string(d.path().join("records.cedar")).unwrap();
    std::fs::write(
        d.path().join("records.cedar"),
        records.replace("context.purpose", "context.purpse"),
    )
    .unwrap();
    std::fs::write(d.path().join("entities/extra.json"), "[{\"uid\": ").unwrap();
    let out = run(medpdp().args(["check", "-w"]).arg(d.path()), None);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in ["[broken.cedar:1:27]", "[records.cedar:", "[entities/extra.json:1:", "error(s)"]
    {
        assert!(stderr.contains(needle), "missing `{needle}` in:\n{stderr}");
    }
    // JSON output carries the same diagnostics for tools.
    let out = run(medpdp().args(["check", "--format", "json", "-w"]).arg(d.path()), None);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let files: Vec<&str> =
        v["diagnostics"].as_array().unwrap().iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert!(
        files.contains(&"broken.cedar")
            && files.contains(&"records.cedar")
            && files.contains(&"entities/extra.json"),
        "{files:?}"
    );
}

#[test]
fn decide_exit_codes_distinguish_allow_deny_and_errors() {
    let ws = repo("tests/fixtures/med5g-mini");
    let allow = attach("t-ecg1", "plmn-miot-health").to_string();
    let out = run(medpdp().arg("decide").arg("-w").arg(&ws), Some(&allow));
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "allow");

    let deny = attach("t-quar", "plmn-miot-health").to_string();
    let out = run(medpdp().arg("decide").arg("-w").arg(&ws), Some(&deny));
    assert_eq!(out.status.code(), Some(2));

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &allow).unwrap();
    let out = run(medpdp().arg("decide").arg("-w").arg(&ws).arg(file.path()), None);
    assert_eq!(out.status.code(), Some(0), "request from a file");

    let out = run(medpdp().arg("decide").arg("-w").arg(&ws), Some("{\"principal\": 1}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid request"));

    let d = fixture_copy();
    std::fs::write(d.path().join("broken.cedar"), "forbid (").unwrap();
    let out = run(medpdp().arg("decide").arg("-w").arg(d.path()), Some(&allow));
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn usage_and_config_errors_exit_before_anything_starts() {
    let out = run(medpdp().arg("frobnicate"), None);
    assert_eq!(out.status.code(), Some(64));
    let out = run(
        medpdp()
            .args(["serve", "--insecure-http", "0.0.0.0:8080", "-w"])
            .arg(repo("tests/fixtures/med5g-mini")),
        None,
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("insecure_http.listen"));
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), "[limits]\nmax_batch = \"many\"\n").unwrap();
    let out = run(medpdp().arg("serve").arg("--config").arg(cfg.path()), None);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_batch"));
    assert_eq!(run(medpdp().arg("--version"), None).status.code(), Some(0));
}

/// A `medpdp serve` child process, killed on drop. It runs in a temporary directory (where
/// its first run creates a development PKI for the TLS listener), and is driven over its
/// plain-HTTP development listener.
pub(crate) struct ServeProcess {
    pub(crate) child: Child,
    pub(crate) base: String,
    _data: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl ServeProcess {
    /// `medpdp serve` with a private data directory.
    pub(crate) fn spawn(workspace: &Path, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut p = Self::spawn_with_data(workspace, data.path(), extra);
        p._data = Some(data);
        p
    }

    /// `medpdp serve` with the data directory `data` (kept by the caller). It also runs in
    /// `data`, so a restart finds the development PKI (`certs/dev`) the first run created and
    /// that the CA's registry in `data` is bound to.
    pub(crate) fn spawn_with_data(workspace: &Path, data: &Path, extra: &[&str]) -> Self {
        let (tls, http) = (free_port(), free_port());
        let child = medpdp()
            .arg("serve")
            .arg("-w")
            .arg(workspace)
            .arg("--data")
            .arg(data)
            .arg("--access")
            .arg(repo("policies/access"))
            .args(["--listen", &format!("127.0.0.1:{tls}")])
            .args(["--insecure-http", &format!("127.0.0.1:{http}")])
            .args(extra)
            .current_dir(data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut s = Self { child, base: format!("http://127.0.0.1:{http}"), _data: None };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let stderr = self.child.stderr.take().map(std::io::read_to_string);
                panic!("medpdp serve exited with {status}: {stderr:?}");
            }
            if let Ok(out) =
                Command::new("curl").args(["-sf", &format!("{}/health/ready", self.base)]).output()
            {
                if out.status.success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("medpdp serve did not become ready");
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) fn curl_json(&self, path: &str, body: Option<&str>) -> Value {
        let mut c = Command::new("curl");
        c.args(["-s", &format!("{}{path}", self.base)]);
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        let out = c.output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let d = fixture_copy();
    let mut p = ServeProcess::spawn(d.path(), &["--no-watch"]);
    let req = attach("t-ecg1", "plmn-miot-health").to_string();
    assert_eq!(p.curl_json("/v1/decide", Some(&req))["decision"], "allow");
    std::fs::write(
        d.path().join("extra.cedar"),
        "@id(\"x\") forbid (principal == Med5G::Terminal::\"t-ecg1\", action, resource);",
    )
    .unwrap();
    // No watcher: nothing changes until SIGHUP.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(p.curl_json("/v1/decide", Some(&req))["decision"], "allow");
    p.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.curl_json("/v1/decide", Some(&req))["decision"] != "deny" {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.curl_json("/v1/status", None)["last_reload_error"], Value::Null);
    p.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = std::io::read_to_string(p.child.stderr.take().unwrap()).unwrap();
    assert!(stderr.contains("INSECURE plain-HTTP development listener"), "{stderr}");
}
