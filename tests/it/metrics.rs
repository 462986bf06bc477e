//! `GET /metrics`: what Prometheus scrapes, who may scrape it, and that the figures follow what
//! the service did (decisions, errors, latency, reloads, the decision log, TLS handshakes).

use reqwest::{Method, StatusCode};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::common::pki::TestPki;
use crate::common::{attach, TestServer};
use medpdp::ca::{CertificateAuthority, LeafSpec};

/// The value of the series `name{labels…}` in a text exposition (labels in any order).
pub(crate) fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        let label_text = rest.strip_suffix('}')?;
        let all = labels.iter().all(|(k, v)| {
            let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
            label_text.contains(&format!("{k}=\"{escaped}\""))
        });
        (n == name && all).then(|| value.parse().ok()).flatten()
    })
}

async fn scrape(t: &TestServer, client: &reqwest::Client) -> (StatusCode, String, String) {
    let resp = client.get(format!("{}/metrics", t.base)).send().await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn the_figures_follow_decisions_errors_reloads_and_the_log() {
    // The development listener's caller is an administrator, who may scrape.
    let t = TestServer::start().await;
    let attach_action = "Med5G::Action::\"attach\"";
    assert_eq!(
        t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await.1["decision"],
        "allow"
    );
    assert_eq!(
        t.post("/v1/decide", &attach("t-quar", "plmn-miot-health")).await.1["decision"],
        "deny"
    );
    assert_eq!(
        t.post("/v1/decide", &attach("t-quar", "plmn-miot-health")).await.1["decision"],
        "deny"
    );
    let mut bad = attach("t-ecg1", "plmn-miot-health");
    bad["action"] = json!("Med5G::Action::\"teleport\"");
    assert_eq!(t.post("/v1/decide", &bad).await.0, StatusCode::BAD_REQUEST);
    t.write("extra.cedar", "permit (principal, action, resource) when { false };");
    assert_eq!(t.post("/v1/admin/reload", &json!({})).await.0, StatusCode::OK);
    let version = t.version().await.unwrap();

    let (status, ct, text) = scrape(&t, &t.client).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    let m = |name: &str, labels: &[(&str, &str)]| {
        metric(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    let decisions = "medpdp_decisions_total";
    assert_eq!(m(decisions, &[("action", attach_action), ("decision", "allow")]), 1.0);
    assert_eq!(m(decisions, &[("action", attach_action), ("decision", "deny")]), 2.0);
    assert_eq!(m("medpdp_request_errors_total", &[("code", "unknown_action")]), 1.0);
    assert_eq!(m("medpdp_decision_evaluation_seconds_count", &[]), 3.0);
    let decide_2xx = [("route", "/v1/decide"), ("status", "2xx")];
    assert_eq!(m("medpdp_http_request_duration_seconds_count", &decide_2xx), 3.0);
    let decide_4xx = [("route", "/v1/decide"), ("status", "4xx")];
    assert_eq!(m("medpdp_http_request_duration_seconds_count", &decide_4xx), 1.0);
    assert_eq!(m("medpdp_policy_version_info", &[("store", "domain"), ("version", &version)]), 1.0);
    assert_eq!(m("medpdp_policy_active", &[("store", "access")]), 1.0);
    assert_eq!(m("medpdp_reloads_total", &[("store", "domain"), ("result", "ok")]), 2.0);
    assert_eq!(m("medpdp_reloads_total", &[("store", "domain"), ("result", "failed")]), 0.0);
    assert_eq!(m("medpdp_audit_healthy", &[]), 1.0);
    assert!(m("medpdp_audit_records_written_total", &[]) >= 5.0, "{text}");
    assert!(m("medpdp_audit_fsync_seconds_count", &[]) >= 1.0, "{text}");
    assert_eq!(m("medpdp_audit_records_not_written_total", &[("reason", "lost")]), 0.0);
    assert_eq!(m("medpdp_audit_queue_depth", &[]), 0.0);
    assert!(m("medpdp_connections_open", &[("listener", "insecure_http")]) >= 1.0);
    // Every family has its help and type.
    for name in ["medpdp_decisions_total", "medpdp_audit_fsync_seconds", "medpdp_reloads_total"] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
    }
    t.stop().await;
}

#[tokio::test]
async fn scrapers_and_admins_scrape_gateways_do_not_and_failed_handshakes_are_counted() {
    let t = TestServer::start_tls("urn:medpdp:scraper:prom1", |_| {}).await;
    let pki = t.pki();
    let (status, _, text) = scrape(&t, &t.client).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metric(&text, "medpdp_tls_handshake_failures_total", &[]), None, "none yet");
    let gateway = pki.http_client(Some(&pki.client("urn:medpdp:gateway:gw1")));
    let (status, body) = t.call(&gateway, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The scraper may not do anything else.
    let (status, _) = t.call(&t.client, Method::GET, "/v1/status", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let other = TestPki::new();
    let now = OffsetDateTime::now_utc();
    let expired = LeafSpec {
        not_before: now - Duration::days(10),
        not_after: now - Duration::days(1),
        ..LeafSpec::client("old", "urn:medpdp:gateway:gw1", Duration::days(1))
    };
    let stranger = CertificateAuthority::create("a stranger's CA", Duration::days(30)).unwrap();
    let from_stranger =
        |urn| stranger.issue(&LeafSpec::client("x", urn, Duration::days(1))).unwrap();
    let refused = [
        pki.http_client(None),
        pki.http_client(Some(&from_stranger("urn:medpdp:gateway:gw1"))),
        pki.http_client(Some(&from_stranger("urn:medpdp:gateway:gw2"))),
        // Another CA with the same name as ours: found by name, refused by signature.
        pki.http_client(Some(&other.client("urn:medpdp:gateway:gw1"))),
        pki.http_client(Some(&pki.issue(expired))),
    ];
    for client in &refused {
        assert!(client.get(format!("{}/health/live", t.base)).send().await.is_err());
    }
    let admin = pki.http_client(Some(&pki.client("urn:medpdp:admin:ops1")));
    let (status, _, text) = scrape(&t, &admin).await;
    assert_eq!(status, StatusCode::OK);
    let failures = |reason| {
        metric(
            &text,
            "medpdp_tls_handshake_failures_total",
            &[("listener", "api"), ("reason", reason)],
        )
    };
    assert_eq!(failures("no_certificate"), Some(1.0), "{text}");
    assert_eq!(failures("unknown_ca"), Some(2.0), "{text}");
    assert_eq!(failures("bad_certificate"), Some(1.0), "{text}");
    assert_eq!(failures("expired"), Some(1.0), "{text}");
    let forbidden = [("route", "/metrics"), ("status", "4xx")];
    assert_eq!(metric(&text, "medpdp_http_request_duration_seconds_count", &forbidden), Some(1.0));
    t.stop().await;
}
