//! Faults the service must ride out: a disk that refuses the decision log's writes, and
//! continuous policy and certificate reloads under mutual-TLS load.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use medpdp::audit::record::LoggedRecord;
use medpdp::audit::segment::{list_segments, LogReader};
use reqwest::StatusCode;
use serde_json::json;

use crate::cli::{medpdp, ServeProcess};
use crate::common::{attach, copy_dir, repo, TestServer};
use crate::metrics::metric;

fn prlimit_fsize(pid: u32, soft: &str) {
    let out = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={soft}:unlimited")])
        .output()
        .expect("prlimit (util-linux) is needed for this test");
    assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
}

fn curl(base: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let mut c = Command::new("curl");
    c.args(["-s", "-w", "\n%{http_code}", &format!("{base}{path}")]);
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    let out = String::from_utf8(c.output().unwrap().stdout).unwrap();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// The disk refuses the log's writes (a file size limit on the server process makes every
/// append fail, as a full disk does): decisions answer 503 and nothing is answered without a
/// record; readiness and metrics show it; once writes work again the service resumes by
/// itself, the log says when and why it had failed, and its chain verifies.
#[test]
fn a_disk_that_refuses_writes_fails_closed_and_the_service_resumes() {
    let workspace = tempfile::tempdir().unwrap();
    copy_dir(&repo("tests/fixtures/med5g-mini"), workspace.path());
    let data = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::spawn_with_data(workspace.path(), data.path(), &["--no-watch"]);
    let base = server.base.clone();
    let pid = server.child.id();
    let request = attach("t-ecg1", "plmn-miot-health").to_string();
    let mut answered = Vec::new();
    let (code, first) = curl(&base, "/v1/decide", Some(&request));
    assert_eq!(code, 200, "{first}");
    answered.push(first["decision_id"].as_str().unwrap().to_owned());

    let segment = list_segments(&data.path().join("audit")).unwrap().pop().unwrap();
    let size = std::fs::metadata(&segment).unwrap().len();
    prlimit_fsize(pid, &size.to_string());
    for _ in 0..5 {
        let (code, body) = curl(&base, "/v1/decide", Some(&request));
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["error"]["code"], "audit_unavailable");
    }
    let (code, ready) = curl(&base, "/health/ready", None);
    assert_eq!(code, 503, "{ready}");
    assert!(ready["reason"].as_str().unwrap().contains("cannot write"), "{ready}");
    let (_, status) = curl(&base, "/v1/status", None);
    assert!(status["audit"]["degraded"]["failed_commits"].as_u64().unwrap() >= 5, "{status}");
    let scrape = Command::new("curl").args(["-s", &format!("{base}/metrics")]).output().unwrap();
    let text = String::from_utf8(scrape.stdout).unwrap();
    assert_eq!(metric(&text, "medpdp_audit_healthy", &[]), Some(0.0), "{text}");
    let failures = [("reason", "write_failure")];
    let not_written = metric(&text, "medpdp_audit_records_not_written_total", &failures);
    assert!(not_written.unwrap() >= 5.0, "{text}");
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), size, "failed writes were rolled back");
    assert!(server.child.try_wait().unwrap().is_none(), "the process survives SIGXFSZ");

    // The disk recovers: the next decision is written and answered.
    prlimit_fsize(pid, "unlimited");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = curl(&base, "/v1/decide", Some(&request));
        if code == 200 {
            answered.push(body["decision_id"].as_str().unwrap().to_owned());
            break;
        }
        assert!(Instant::now() < deadline, "did not resume: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(curl(&base, "/health/ready", None).0, 200);

    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = medpdp().args(["audit", "verify", "--data"]).arg(data.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let logged: Vec<LoggedRecord> = LogReader::open(&data.path().join("audit"))
        .unwrap()
        .map(|l| serde_json::from_slice(&l.unwrap().bytes).unwrap())
        .collect();
    let ids: HashSet<&str> = logged.iter().filter_map(|r| r.decision_id.as_deref()).collect();
    assert_eq!(ids.len(), answered.len(), "only the answered decisions are in the log");
    assert!(answered.iter().all(|id| ids.contains(id.as_str())));
    let resumed = logged.iter().find(|r| r.event.as_deref() == Some("log_resumed")).unwrap();
    let details = resumed.details.as_ref().unwrap();
    assert!(details["last_error"].as_str().unwrap().contains("cannot write"), "{details}");
}

const GATEWAY: &str = "urn:medpdp:gateway:gw-load";
const FORBID_ECG: &str = r#"@id("toggle-forbid-ecg")
forbid (principal == Med5G::Terminal::"t-ecg1", action, resource);"#;

/// Policies, the server certificate and the CRL are replaced again and again while gateways
/// decide over mTLS, some on kept-alive connections and some on a new connection (a new
/// handshake with the current material) for every request: no request fails, and every
/// decision is the one of the policy version it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn continuous_policy_and_certificate_reloads_under_mtls_load_fail_nothing() {
    // Admin reloads only (no file watch), so every reload sees a finished rotation.
    let t = Arc::new(TestServer::start_tls(GATEWAY, |c| c.tls.watch = false).await);
    let admin = t.pki().http_client(Some(&t.pki().client("urn:medpdp:admin:ops1")));
    let reload = |admin: reqwest::Client, t: Arc<TestServer>| async move {
        let resp = admin.post(format!("{}/v1/admin/reload", t.base)).json(&json!({})).send();
        let resp = resp.await.unwrap();
        let status = resp.status();
        (status, resp.json::<serde_json::Value>().await.unwrap())
    };
    let version = async |admin: &reqwest::Client| {
        let (_, status) = t.call(admin, reqwest::Method::GET, "/v1/status", None).await;
        status["active"]["version"].as_str().unwrap().to_owned()
    };
    let allow_version = version(&admin).await;
    t.write("toggle.cedar", FORBID_ECG);
    assert_eq!(reload(admin.clone(), Arc::clone(&t)).await.0, StatusCode::OK);
    let deny_version = version(&admin).await;
    let expected: HashMap<String, &str> = [(allow_version, "allow"), (deny_version, "deny")].into();

    let gateway = t.pki().client(GATEWAY);
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..6 {
        let fresh_connections = i % 2 == 1;
        let config = t.pki().client_config(Some(&gateway), rustls::DEFAULT_VERSIONS);
        let mut builder = reqwest::Client::builder().use_preconfigured_tls(config);
        if fresh_connections {
            builder = builder.pool_max_idle_per_host(0);
        }
        let client = builder.timeout(Duration::from_secs(30)).build().unwrap();
        let (t, stop) = (Arc::clone(&t), Arc::clone(&stop));
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let body = attach("t-ecg1", "plmn-miot-health");
                let resp = client.post(format!("{}/v1/decide", t.base)).json(&body).send().await;
                let resp = resp.unwrap_or_else(|e| panic!("request failed: {e:?}"));
                assert_eq!(resp.status(), StatusCode::OK);
                let d: serde_json::Value = resp.json().await.unwrap();
                seen.push((
                    d["policy_version"].as_str().unwrap().to_owned(),
                    d["decision"].as_str().unwrap().to_owned(),
                ));
            }
            seen
        }));
    }
    let victim = t.pki().client("urn:medpdp:gateway:stolen");
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(3) || rounds < 12 {
        if rounds % 2 == 0 {
            std::fs::remove_file(t.workspace.path().join("toggle.cedar")).unwrap();
        } else {
            t.write("toggle.cedar", FORBID_ECG);
        }
        t.pki().rotate_server();
        if rounds == 5 {
            t.pki().revoke(&victim.serial);
        }
        let (status, body) = reload(admin.clone(), Arc::clone(&t)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut total, mut versions) = (0, HashSet::new());
    for c in clients {
        for (version, decision) in c.await.unwrap() {
            assert_eq!(expected.get(&version).copied(), Some(decision.as_str()), "{version}");
            versions.insert(version);
            total += 1;
        }
    }
    assert!(total > 100, "only {total} requests completed");
    assert_eq!(versions.len(), 2, "requests saw both versions");
    let (_, status) = t.call(&admin, reqwest::Method::GET, "/v1/status", None).await;
    assert!(status["tls"]["reloads"].as_u64().unwrap() >= 12, "{status}");
    assert_eq!(status["tls"]["reload_failures"], 0, "{status}");
    assert_eq!(status["reload_failures"], 0, "{status}");
    // The revocation took effect on the way.
    let stolen = t.pki().http_client(Some(&victim));
    assert!(stolen.get(format!("{}/health/live", t.base)).send().await.is_err());
    eprintln!("reloads under mTLS load: {rounds} rounds, {total} requests, 0 failed");
}
