//! Crash safety: the real `medpdp serve` under concurrent load is killed with SIGKILL (and its
//! last write torn), restarted on the same data directory; `audit verify` passes and every
//! decision id a client received is in the log.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medpdp::audit::record::LoggedRecord;
use medpdp::audit::segment::{list_segments, LogReader};
use serde_json::{json, Value};

use crate::audit::{mixed_request, Lcg};
use crate::cli::{medpdp, ServeProcess};
use crate::common::{copy_dir, repo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_answered_decision() {
    let workspace = tempfile::tempdir().unwrap();
    copy_dir(&repo("tests/fixtures/med5g-mini"), workspace.path());
    let data = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::spawn_with_data(workspace.path(), data.path(), &["--no-watch"]);
    let client = reqwest::Client::new();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let (client, base) = (client.clone(), server.base.clone());
        let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(t);
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let (path, body) = if t % 4 == 0 {
                    let items: Vec<Value> = (0..5).map(|_| mixed_request(&mut rng)).collect();
                    ("/v1/decide/batch", json!({"requests": items}))
                } else {
                    ("/v1/decide", mixed_request(&mut rng))
                };
                let Ok(resp) = client.post(format!("{base}{path}")).json(&body).send().await else {
                    break;
                };
                let Ok(v) = resp.json::<Value>().await else {
                    break;
                };
                let mut ids = received.lock().unwrap();
                match v.get("results") {
                    Some(items) => ids.extend(
                        items
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|i| i["decision_id"].as_str().unwrap().to_owned()),
                    ),
                    None => ids.extend(v["decision_id"].as_str().map(str::to_owned)),
                }
            }
        }));
    }
    // Let the load run, then kill the server mid-flight.
    let started = Instant::now();
    while received.lock().unwrap().len() < 1500 && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let received: Vec<String> = received.lock().unwrap().clone();
    assert!(received.len() > 200, "load ran: {}", received.len());

    // A power loss could also leave a torn record at the end. The kill itself may already have
    // torn one (a write cut short), so the tail to drop runs from the last complete line.
    let seg = list_segments(&data.path().join("audit")).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(b"{\"seq\":999999,\"prev\":\"0000");
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = (bytes.len() - complete) as u64;
    std::fs::write(&seg, bytes).unwrap();

    let server = ServeProcess::spawn_with_data(workspace.path(), data.path(), &["--no-watch"]);
    let status = server.curl_json("/v1/status", None);
    assert_eq!(status["audit"]["recovered"][0]["bytes"], torn, "{status}");
    assert_eq!(status["audit"]["recovered"][0]["offset"], complete as u64, "{status}");
    let after = server.curl_json("/v1/decide", Some(&mixed_request(&mut Lcg(77)).to_string()));
    let after_id = after["decision_id"].as_str().unwrap().to_owned();
    server.signal("TERM");
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = medpdp().args(["audit", "verify", "--data"]).arg(data.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let logged: Vec<LoggedRecord> = LogReader::open(&data.path().join("audit"))
        .unwrap()
        .map(|l| serde_json::from_slice(&l.unwrap().bytes).unwrap())
        .collect();
    let ids: HashSet<&str> = logged.iter().filter_map(|r| r.decision_id.as_deref()).collect();
    let missing: Vec<&String> = received.iter().filter(|id| !ids.contains(id.as_str())).collect();
    assert!(
        missing.is_empty(),
        "{} answered decisions are not in the log, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(ids.contains(after_id.as_str()));
    let reopened =
        logged.iter().filter(|r| r.event.as_deref() == Some("log_opened")).nth(1).unwrap();
    let details = reopened.details.as_ref().unwrap();
    assert_eq!(details["clean_stop"], false, "the kill left no final checkpoint");
    assert_eq!(details["truncated"][0]["bytes"], torn);
}
