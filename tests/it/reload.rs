//! Hot reload: good edits activate, broken edits keep the last good version, the watcher
//! notices changes, and requests during reloads are all answered consistently.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{attach, TestServer};

const FORBID_ECG: &str = r#"
@id("T1-no-ecg")
forbid (principal == Med5G::Terminal::"t-ecg1", action, resource);
"#;

#[tokio::test]
async fn a_good_edit_activates_a_new_version() {
    let t = TestServer::start().await;
    let v1 = t.version().await.unwrap();
    assert_eq!(
        t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await.1["decision"],
        "allow"
    );
    t.write("extra.cedar", FORBID_ECG);
    let (s, out) = t.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["outcome"], "activated");
    assert_eq!(out["previous"], v1.as_str());
    let v2 = t.version().await.unwrap();
    assert_ne!(v1, v2);
    let (_, d) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
    assert_eq!(
        (d["decision"].as_str(), d["policy_version"].as_str()),
        (Some("deny"), Some(v2.as_str()))
    );
    assert_eq!(d["reasons"], json!(["T1-no-ecg"]));
    // Reloading unchanged files changes nothing.
    let (_, out) = t.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(out["outcome"], "unchanged");
    t.stop().await;
}

#[tokio::test]
async fn a_broken_edit_keeps_the_last_good_version_and_reports_every_error() {
    let t = TestServer::start().await;
    let good = t.version().await.unwrap();
    t.write("broken.cedar", "permit (principal, action resource);");
    let transmission = t.read("transmission.cedar");
    t.write("transmission.cedar", &transmission.replace("context.tls.mutual", "context.tls.mutul"));
    let (s, out) = t.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(out["error"]["code"], "invalid_workspace");
    let diags = out["error"]["details"]["diagnostics"].as_array().unwrap();
    let files: Vec<&str> = diags.iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert!(files.contains(&"broken.cedar") && files.contains(&"transmission.cedar"), "{files:?}");
    assert!(diags
        .iter()
        .all(|d| d["line"].as_u64().unwrap() > 0 && d["column"].as_u64().unwrap() > 0));
    // Still serving the good version.
    assert_eq!(t.version().await.as_deref(), Some(good.as_str()));
    let (_, d) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
    assert_eq!(
        (d["decision"].as_str(), d["policy_version"].as_str()),
        (Some("allow"), Some(good.as_str()))
    );
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["reload_failures"], 1);
    assert_eq!(status["last_reload_error"]["trigger"], "admin");
    assert!(!status["last_reload_error"]["diagnostics"].as_array().unwrap().is_empty());
    assert_eq!(t.get("/health/ready").await.0, StatusCode::OK, "still ready on the last good set");
    // Undoing the edit clears the error.
    std::fs::remove_file(t.workspace.path().join("broken.cedar")).unwrap();
    t.write("transmission.cedar", &transmission);
    let (_, out) = t.post("/v1/admin/reload", &json!({})).await;
    assert_eq!(out["outcome"], "unchanged");
    assert_eq!(t.get("/v1/status").await.1["last_reload_error"], serde_json::Value::Null);
    t.stop().await;
}

#[tokio::test]
async fn the_file_watcher_reloads_after_an_edit() {
    let t = TestServer::start_fixture("tests/fixtures/med5g-mini", |c| {
        c.workspace.watch = true;
        c.workspace.debounce_ms = 50;
    })
    .await;
    let v1 = t.version().await.unwrap();
    t.write("extra.cedar", FORBID_ECG);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = t.version().await.unwrap();
        if v != v1 {
            break;
        }
        assert!(Instant::now() < deadline, "watcher did not reload within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, d) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
    assert_eq!(d["decision"], "deny");
    // A broken save is seen by the watcher too, and keeps the new good version.
    let v2 = t.version().await.unwrap();
    t.write("extra.cedar", "forbid (");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.get("/v1/status").await.1["last_reload_error"].is_null() {
        assert!(Instant::now() < deadline, "watcher did not report the broken edit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(t.version().await.unwrap(), v2);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_during_reloads_are_all_answered_consistently() {
    let t = Arc::new(TestServer::start().await);
    let allow_version = t.version().await.unwrap();
    // Learn the deny version once, then flip back.
    t.write("extra.cedar", FORBID_ECG);
    t.post("/v1/admin/reload", &json!({})).await;
    let deny_version = t.version().await.unwrap();
    let expected: HashMap<String, &str> =
        [(allow_version.clone(), "allow"), (deny_version.clone(), "deny")].into();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (t, stop) = (Arc::clone(&t), Arc::clone(&stop));
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, d) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
                assert_eq!(s, StatusCode::OK, "{d}");
                seen.push((
                    d["policy_version"].as_str().unwrap().to_owned(),
                    d["decision"].as_str().unwrap().to_owned(),
                ));
            }
            seen
        }));
    }
    for i in 0..20 {
        if i % 2 == 0 {
            std::fs::remove_file(t.workspace.path().join("extra.cedar")).unwrap();
        } else {
            t.write("extra.cedar", FORBID_ECG);
        }
        let (s, _) = t.post("/v1/admin/reload", &json!({})).await;
        assert_eq!(s, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut versions_seen = std::collections::HashSet::new();
    for c in clients {
        for (version, decision) in c.await.unwrap() {
            assert_eq!(
                expected.get(&version).copied(),
                Some(decision.as_str()),
                "version {version}"
            );
            versions_seen.insert(version);
            total += 1;
        }
    }
    assert!(total > 100, "only {total} requests completed");
    assert_eq!(versions_seen.len(), 2, "requests saw both versions");
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["reload_failures"], 0);
}
