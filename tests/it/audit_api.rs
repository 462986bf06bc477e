//! `GET /v1/audit/records`: auditors read decision records over mTLS, filtered and paged, each
//! exactly as stored (its hash checks out); nobody else may.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{attach, TestServer};

#[tokio::test]
async fn auditors_page_through_filtered_records_as_stored() {
    let t = TestServer::start_tls("urn:medpdp:auditor:a1", |_| {}).await;
    let gateway = t.pki().http_client(Some(&t.pki().client("urn:medpdp:gateway:gw1")));
    let mut ids = Vec::new();
    for terminal in ["t-ecg1", "t-quar", "t-ecg1", "t-quar", "t-quar"] {
        let (s, d) = t
            .call(&gateway, Method::POST, "/v1/decide", Some(&attach(terminal, "plmn-miot-health")))
            .await;
        assert_eq!(s, StatusCode::OK, "{d}");
        ids.push((
            d["decision_id"].as_str().unwrap().to_owned(),
            d["decision"].as_str().unwrap().to_owned(),
        ));
    }
    let denied: Vec<&str> =
        ids.iter().filter(|(_, d)| d == "deny").map(|(i, _)| i.as_str()).collect();

    let (s, page) = t.get("/v1/audit/records?decision=deny&limit=2").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let got = |page: &Value| -> Vec<String> {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["decision_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(got(&page), denied[..2]);
    let after = page["next_after"].as_u64().expect("more to come");
    let (_, next) = t.get(&format!("/v1/audit/records?decision=deny&limit=2&after={after}")).await;
    assert_eq!(got(&next), denied[2..]);
    assert_eq!(next["next_after"], Value::Null, "the end of the log");
    // Each record is the stored line, byte for byte: its hash is over the line without `hash`.
    let resp = t.client.get(format!("{}/v1/audit/records?after={after}&decision=deny", t.base));
    let text = resp.send().await.unwrap().text().await.unwrap();
    let start = text.find("[{").unwrap() + 1;
    let end = text[start..].find("}]").unwrap() + start + 1;
    let line = &text[start..end];
    let record: Value = serde_json::from_str(line).unwrap();
    let (body, _) = line.rsplit_once(",\"hash\":").unwrap();
    let ours = medpdp::audit::record::canonical_hash(body.as_bytes());
    assert_eq!(record["hash"], ours, "{line}");
    let stored = std::fs::read_to_string(
        medpdp::audit::segment::list_segments(&t.data.path().join("audit")).unwrap()[0].clone(),
    )
    .unwrap();
    assert!(stored.lines().any(|l| l == line), "served exactly as stored");
    assert_eq!(record["caller"], "urn:medpdp:gateway:gw1");

    let (_, by_principal) =
        t.get("/v1/audit/records?principal=Med5G::Terminal::%22t-ecg1%22").await;
    assert_eq!(by_principal["records"].as_array().unwrap().len(), 2);
    let (s, bad) = t.get("/v1/audit/records?decision=maybe").await;
    assert_eq!((s, bad["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("decision")));
    let (s, _) = t.get("/v1/audit/records?since=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t.get("/v1/audit/records?limit=x").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Gateways and administrators do not read the log.
    let (s, _) = t.call(&gateway, Method::GET, "/v1/audit/records", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let admin = t.pki().http_client(Some(&t.pki().client("urn:medpdp:admin:ops1")));
    let (s, _) = t.call(&admin, Method::GET, "/v1/audit/records", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    t.stop().await;
}
