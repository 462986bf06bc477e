//! TLS material changes without a restart: a CRL update refuses the revoked certificate on its
//! next handshake, a rotated server certificate is used by new connections while established
//! ones keep working, and broken files keep the previous material.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::{Method, StatusCode};
use rustls::pki_types::ServerName;
use serde_json::json;

use crate::common::TestServer;

const GATEWAY: &str = "urn:medpdp:gateway:gw-ward3";
const ADMIN: &str = "urn:medpdp:admin:ops1";

/// Whether a brand-new connection with `client`'s certificate gets through.
async fn admitted(t: &TestServer, identity: &medpdp::ca::Issued) -> bool {
    let client = t.pki().http_client(Some(identity));
    client.get(format!("{}/health/live", t.base)).send().await.is_ok()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_after_the_crl_changes() {
    let t = TestServer::start_tls(ADMIN, |_| {}).await;
    let (victim, bystander) = (t.pki().client(GATEWAY), t.pki().client("urn:medpdp:gateway:gw2"));
    assert!(admitted(&t, &victim).await && admitted(&t, &bystander).await);
    t.pki().revoke(&victim.serial);
    // The watcher reloads the CRL; no restart, no admin call.
    eventually("the revoked certificate is refused", async || !admitted(&t, &victim).await).await;
    assert!(admitted(&t, &bystander).await, "other certificates keep working");
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["tls"]["active"]["crls"][0]["revoked"], 1, "{status}");
    assert_eq!(status["tls"]["reloads"], 1);
    t.stop().await;
}

#[tokio::test]
async fn the_admin_reload_applies_a_crl_when_files_are_not_watched() {
    let t = TestServer::start_tls(ADMIN, |c| c.tls.watch = false).await;
    let victim = t.pki().client(GATEWAY);
    t.pki().revoke(&victim.serial);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(admitted(&t, &victim).await, "not watched: nothing changes before a reload");
    let (s, out) = t.call(&t.client, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["tls"]["outcome"], "activated");
    assert!(!admitted(&t, &victim).await);
    t.stop().await;
}

/// A raw HTTP/1.1 keep-alive connection and the serial of the server certificate it got.
async fn connect(
    t: &TestServer,
    identity: &medpdp::ca::Issued,
) -> (SendRequest<Empty<Bytes>>, String) {
    let config = t.pki().client_config(Some(identity), rustls::DEFAULT_VERSIONS);
    let tcp = tokio::net::TcpStream::connect(t.tls_addr()).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let serial = hex::encode(cert.raw_serial());
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    (sender, serial)
}

async fn live(sender: &mut SendRequest<Empty<Bytes>>) -> u16 {
    sender.ready().await.unwrap();
    let req =
        hyper::Request::get("/health/live").header("host", "localhost").body(Empty::new()).unwrap();
    sender.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_rotated_server_certificate_serves_new_connections_and_spares_open_ones() {
    let t = TestServer::start_tls(ADMIN, |_| {}).await;
    let gw = t.pki().client(GATEWAY);
    let (mut open, old_serial) = connect(&t, &gw).await;
    assert_eq!(live(&mut open).await, 200);
    let new_serial = t.pki().rotate_server();
    assert_ne!(old_serial, new_serial);
    eventually("new connections get the new certificate", async || {
        connect(&t, &gw).await.1 == new_serial
    })
    .await;
    // The connection opened before the rotation is still served.
    assert_eq!(live(&mut open).await, 200);
    assert_eq!(live(&mut open).await, 200);
    let (_, status) = t.get("/v1/status").await;
    assert_eq!(status["tls"]["active"]["server_cert"]["serial"], new_serial);
    t.stop().await;
}

#[tokio::test]
async fn broken_tls_files_keep_the_previous_material() {
    let t = TestServer::start_tls(ADMIN, |c| c.tls.watch = false).await;
    let key = t.pki().path("server.key");
    let good = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let (s, out) = t.call(&t.client, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert_eq!(out["error"]["code"], "invalid_tls_material");
    assert!(
        out["error"]["details"]["tls"]["error"].as_str().unwrap().contains("server.key"),
        "{out}"
    );
    // Still serving with the old material; status says what failed.
    let (s, status) = t.get("/v1/status").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(status["tls"]["reload_failures"], 1);
    assert!(status["tls"]["last_reload_error"]["error"].as_str().unwrap().contains("server.key"));
    // A key that does not match the certificate is refused too.
    let other = t.pki().client(GATEWAY);
    std::fs::write(&key, &other.key_pem).unwrap();
    let (s, out) = t.call(&t.client, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    std::fs::write(&key, good).unwrap();
    let (s, out) = t.call(&t.client, Method::POST, "/v1/admin/reload", Some(&json!({}))).await;
    assert_eq!((s, out["tls"]["outcome"].as_str()), (StatusCode::OK, Some("unchanged")), "{out}");
    assert_eq!(t.get("/v1/status").await.1["tls"]["last_reload_error"], serde_json::Value::Null);
    t.stop().await;
}

#[tokio::test]
async fn unusable_tls_material_stops_the_start_with_the_file_named() {
    let pki = crate::common::pki::TestPki::new();
    std::fs::write(pki.path("ca.crl.pem"), "not a CRL").unwrap();
    let mut config = medpdp::config::Config::default();
    config.workspace.dir = crate::common::repo("tests/fixtures/med5g-mini");
    config.workspace.watch = false;
    config.data.dir = pki.path("data");
    config.tls = pki.tls_config();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listeners =
        medpdp::server::Listeners { tls: Some(listener), insecure_http: None, est: None };
    let e = medpdp::server::start(&config, listeners).await.unwrap_err().to_string();
    assert!(e.contains("ca.crl.pem"), "{e}");
    assert!(!pki.path("data").exists(), "nothing was opened before the TLS material loaded");
}
