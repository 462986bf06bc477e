//! The TLS listener with a rustls client: who gets in (a valid certificate from the configured
//! CA, with `clientAuth`, in its validity period), who is refused at the handshake, and how the
//! caller identity in the certificate meets the access policies.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::common::pki::TestPki;
use crate::common::{attach, TestServer};
use medpdp::ca::{LeafSpec, SubjectAltName, Usage};

const GATEWAY: &str = "urn:medpdp:gateway:gw-ward3";
const ADMIN: &str = "urn:medpdp:admin:ops1";

/// Sends one request with a fresh client; `Err` is the connection/handshake error text.
async fn try_get(
    t: &TestServer,
    client: &reqwest::Client,
    path: &str,
) -> Result<StatusCode, String> {
    match client.get(format!("{}{path}", t.base)).send().await {
        Ok(r) => Ok(r.status()),
        Err(e) => Err(format!("{e:?}")),
    }
}

#[tokio::test]
async fn a_gateway_certificate_gets_decisions() {
    let t = TestServer::start_tls(GATEWAY, |_| {}).await;
    let (status, body) = t.post("/v1/decide", &attach("t-ecg1", "plmn-miot-health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "allow");
    let (status, body) = t.post("/v1/decide", &attach("t-quar", "plmn-miot-health")).await;
    assert_eq!((status, body["decision"].as_str()), (StatusCode::OK, Some("deny")));
    t.stop().await;
}

#[tokio::test]
async fn handshakes_without_a_good_client_certificate_fail() {
    let t = TestServer::start_tls(GATEWAY, |_| {}).await;
    let pki = t.pki();
    let other = TestPki::new();
    let now = OffsetDateTime::now_utc();
    let expired = LeafSpec {
        not_before: now - Duration::days(10),
        not_after: now - Duration::days(1),
        ..LeafSpec::client("old", GATEWAY, Duration::days(1))
    };
    let not_yet = LeafSpec {
        not_before: now + Duration::days(1),
        not_after: now + Duration::days(2),
        ..LeafSpec::client("early", GATEWAY, Duration::days(1))
    };
    let server_auth_only = LeafSpec {
        usages: vec![Usage::ServerAuth],
        ..LeafSpec::client("srv", GATEWAY, Duration::days(1))
    };
    let cases: Vec<(&str, reqwest::Client)> = vec![
        ("no certificate", pki.http_client(None)),
        ("another CA", pki.http_client(Some(&other.client(GATEWAY)))),
        ("expired", pki.http_client(Some(&pki.issue(expired)))),
        ("not yet valid", pki.http_client(Some(&pki.issue(not_yet)))),
        ("without clientAuth", pki.http_client(Some(&pki.issue(server_auth_only)))),
    ];
    for (case, client) in cases {
        let result = try_get(&t, &client, "/health/live").await;
        assert!(result.is_err(), "{case}: expected a failed handshake, got {result:?}");
    }
    // The listener is unharmed.
    assert_eq!(try_get(&t, &t.client, "/health/live").await, Ok(StatusCode::OK));
    t.stop().await;
}

#[tokio::test]
async fn a_certificate_without_exactly_one_medpdp_identity_is_forbidden() {
    let t = TestServer::start_tls(GATEWAY, |_| {}).await;
    let pki = t.pki();
    let with_sans = |sans: Vec<SubjectAltName>| {
        let spec = LeafSpec { sans, ..LeafSpec::client("x", GATEWAY, Duration::days(1)) };
        pki.http_client(Some(&pki.issue(spec)))
    };
    let cases = [
        (vec![SubjectAltName::Dns("gw.example".into())], "no URI subject alternative name"),
        (
            vec![
                SubjectAltName::Uri(GATEWAY.into()),
                SubjectAltName::Uri("urn:medpdp:admin:x".into()),
            ],
            "2 URI subject alternative names",
        ),
        (vec![SubjectAltName::Uri("spiffe://hospital/gw".into())], "not a medpdp identity"),
    ];
    for (sans, why) in cases {
        let client = with_sans(sans);
        for path in ["/health/live", "/v1/status"] {
            let (status, body) = t.call(&client, Method::GET, path, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
            assert_eq!(body["error"]["code"], "forbidden");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(why), "{message}");
        }
    }
    t.stop().await;
}

#[tokio::test]
async fn callers_get_what_the_access_policies_give_their_kind() {
    let t = TestServer::start_tls(GATEWAY, |_| {}).await;
    let pki = t.pki();
    let as_ = |urn: &str| pki.http_client(Some(&pki.client(urn)));
    let (admin, auditor, terminal) =
        (as_(ADMIN), as_("urn:medpdp:auditor:aud1"), as_("urn:medpdp:terminal:pump-0042"));
    let decide = attach("t-ecg1", "plmn-miot-health");

    // A gateway may decide but not reload: a 403 naming the reason, and nothing reloaded.
    let (s, body) = t.call(&t.client, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        body["error"]["message"],
        format!("`{GATEWAY}` may not `reload`"),
        "the message names caller and action"
    );
    assert_eq!(body["error"]["details"]["reasons"], json!([]), "default deny: no policy matched");
    assert_eq!(t.call(&t.client, Method::GET, "/v1/status", None).await.0, StatusCode::FORBIDDEN);

    let (s, body) = t.call(&admin, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (body["outcome"].as_str(), body["access"]["outcome"].as_str()),
        (Some("unchanged"), Some("unchanged"))
    );
    assert_eq!(body["tls"]["outcome"], "unchanged");
    let (s, status) = t.call(&auditor, Method::GET, "/v1/status", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(status["access"]["active"]["version"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(status["tls"]["active"]["min_version"], "1.2");
    assert_eq!(
        t.call(&auditor, Method::POST, "/v1/decide", Some(&decide)).await.0,
        StatusCode::FORBIDDEN
    );

    // A terminal may only enroll: no decisions, no status; health checks are open to it.
    let (s, body) = t.call(&terminal, Method::POST, "/v1/decide", Some(&decide)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(t.call(&terminal, Method::GET, "/health/live", None).await.0, StatusCode::OK);
    // AuthZEN search is for gateways and administrators; API descriptions are open.
    let search = json!({"subject": {"type": "Terminal"}, "action": {"name": "attach"},
        "resource": {"type": "NetworkSlice", "id": "plmn-miot-health"},
        "context": decide["context"]});
    let searched = t.call(&auditor, Method::POST, "/access/v1/search/subject", Some(&search)).await;
    assert_eq!(searched.0, StatusCode::FORBIDDEN, "{}", searched.1);
    let searched =
        t.call(&t.client, Method::POST, "/access/v1/search/subject", Some(&search)).await;
    assert_eq!(searched.0, StatusCode::OK, "{}", searched.1);
    assert_eq!(t.call(&terminal, Method::GET, "/openapi.json", None).await.0, StatusCode::OK);
    // Unknown paths are 404 for an authenticated caller.
    assert_eq!(t.call(&terminal, Method::GET, "/v2/nothing", None).await.0, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn access_policies_reload_and_a_broken_set_fails_closed() {
    let t = TestServer::start_tls(GATEWAY, |_| {}).await;
    let admin = t.pki().http_client(Some(&t.pki().client(ADMIN)));
    let decide = attach("t-ecg1", "plmn-miot-health");
    assert_eq!(t.post("/v1/decide", &decide).await.0, StatusCode::OK);
    // Suspend this gateway by data alone.
    t.write(
        "access/entities.json",
        r#"[{"uid": {"type": "MedpdpApi::Group", "id": "suspended"}, "attrs": {}, "parents": []},
            {"uid": {"type": "MedpdpApi::Gateway", "id": "gw-ward3"}, "attrs": {},
             "parents": [{"type": "MedpdpApi::Group", "id": "suspended"}]}]"#,
    );
    let (s, out) = t.call(&admin, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!(
        (s, out["access"]["outcome"].as_str()),
        (StatusCode::OK, Some("activated")),
        "{out}"
    );
    let (s, body) = t.post("/v1/decide", &decide).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["details"]["reasons"], json!(["A10-suspended-callers"]));
    // A broken edit keeps the last good set (422 names it) ...
    t.write("access/policies.cedar", "permit (principal, action, resource");
    let (s, out) = t.call(&admin, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(out["error"]["code"], "invalid_access_policies");
    assert_eq!(out["error"]["details"]["outcome"], "unchanged", "the domain workspace is fine");
    assert_eq!(out["error"]["details"]["access"]["outcome"], "failed");
    assert_eq!(t.post("/v1/decide", &decide).await.0, StatusCode::FORBIDDEN);
    let (_, status) = t.call(&admin, Method::GET, "/v1/status", None).await;
    assert_eq!(status["access"]["reload_failures"], 1);
    t.stop().await;

    // ... and a server that starts without a valid set refuses all but health checks.
    let t = TestServer::start_tls(ADMIN, |c| c.access.dir = c.workspace.dir.join("missing")).await;
    let (s, body) = t.get("/v1/status").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"].as_str().unwrap().contains("no valid access policy set"));
    assert_eq!(t.post("/v1/decide", &decide).await.0, StatusCode::FORBIDDEN);
    assert_eq!(t.get("/health/ready").await.0, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn tls_1_2_is_accepted_unless_the_floor_is_1_3() {
    let t = TestServer::start_tls(GATEWAY, |_| {}).await;
    let pki = t.pki();
    let gw = pki.client(GATEWAY);
    let tls12 = |pki: &TestPki| {
        let config = pki.client_config(Some(&gw), &[&rustls::version::TLS12]);
        reqwest::Client::builder().use_preconfigured_tls(config).build().unwrap()
    };
    assert_eq!(try_get(&t, &tls12(pki), "/health/live").await, Ok(StatusCode::OK));
    t.stop().await;

    let t = TestServer::start_tls(GATEWAY, |c| c.tls.min_version = medpdp::tls::TlsVersion::Tls13)
        .await;
    let gw = t.pki().client(GATEWAY);
    let config = t.pki().client_config(Some(&gw), &[&rustls::version::TLS12]);
    let client = reqwest::Client::builder().use_preconfigured_tls(config).build().unwrap();
    assert!(try_get(&t, &client, "/health/live").await.is_err());
    assert_eq!(try_get(&t, &t.client, "/health/live").await, Ok(StatusCode::OK));
    t.stop().await;
}

#[tokio::test]
async fn identity_headers_are_ignored() {
    let t = TestServer::start_tls(GATEWAY, |_| {}).await;
    let resp = t
        .client
        .get(format!("{}/v1/status", t.base))
        .header("x-medpdp-caller", ADMIN)
        .header("x-forwarded-client-cert", format!("URI={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains(GATEWAY), "{body}");
    t.stop().await;
}

#[test]
fn the_bundled_access_policies_pass_their_cases_and_know_every_route() {
    use medpdp::http::access::{RouteAccess, ROUTE_ACCESS};
    use medpdp::policytest::{self, load_test_files, render_human};
    let snapshot =
        medpdp::policy::load_workspace(&crate::common::repo("policies/access")).unwrap().snapshot;
    let files = load_test_files(&[crate::common::repo("policies/access/tests")]).unwrap();
    let report = policytest::run(&snapshot, &files);
    assert_eq!(report.failed(), 0, "{}", render_human(&report));
    assert!(report.coverage.complete(), "{}", render_human(&report));
    let schema = snapshot.schema().unwrap();
    let declared: Vec<String> = schema.actions().map(ToString::to_string).collect();
    for (route, access) in ROUTE_ACCESS {
        if let RouteAccess::Action(a) = access {
            let uid = format!("MedpdpApi::Action::\"{a}\"");
            assert!(declared.contains(&uid), "{route} needs {uid}, which the schema lacks");
        }
    }
}

#[test]
fn every_route_has_exactly_one_access_rule() {
    use medpdp::http::access::ROUTE_ACCESS;
    let table: Vec<&str> = ROUTE_ACCESS.iter().map(|(r, _)| *r).collect();
    for (method, path) in medpdp::http::ROUTES {
        let rules = table.iter().filter(|r| *r == path).count();
        assert_eq!(rules, 1, "{method} {path} needs exactly one entry in ROUTE_ACCESS");
    }
    for route in table {
        assert!(
            medpdp::http::ROUTES.iter().any(|(_, p)| *p == route),
            "ROUTE_ACCESS names `{route}`, which is not routed"
        );
    }
}
