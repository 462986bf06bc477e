//! The TLS listener with the clients operators use: `curl` (OpenSSL) for requests and
//! `openssl s_client` for protocol versions, cipher suites and resumption.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::common::{attach, TestServer};
use medpdp::ca::LeafSpec;

const GATEWAY: &str = "urn:medpdp:gateway:gw-ward3";
const ADMIN: &str = "urn:medpdp:admin:ops1";

/// Runs a command off the runtime's threads (the server under test runs on them).
async fn run(mut cmd: Command, stdin: &'static str) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// `curl` against the server as `name` (`<name>.pem`/`.key` in the PKI directory, if given):
/// returns the HTTP status (0 when there was no HTTP exchange) and the body.
async fn curl(
    t: &TestServer,
    name: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let dir = t.pki().dir.path();
    let port = t.tls_addr().port();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-w", "\n%{http_code}", "-X", method])
        .arg("--cacert")
        .arg(dir.join("ca.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if let Some(name) = name {
        cmd.arg("--cert").arg(dir.join(format!("{name}.pem")));
        cmd.arg("--key").arg(dir.join(format!("{name}.key")));
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
    }
    cmd.arg(format!("https://localhost:{port}{path}"));
    let out = run(cmd, "").await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_client_certificates() {
    let t = TestServer::start_tls(ADMIN, |c| c.tls.watch = false).await;
    let pki = t.pki();
    pki.write_client("gateway", &pki.client(GATEWAY));
    pki.write_client("admin", &pki.client(ADMIN));
    let now = OffsetDateTime::now_utc();
    let expired = LeafSpec {
        not_before: now - Duration::days(3),
        not_after: now - Duration::days(1),
        ..LeafSpec::client("old", GATEWAY, Duration::days(1))
    };
    pki.write_client("expired", &pki.issue(expired));
    pki.write_client("stranger", &crate::common::pki::TestPki::new().client(GATEWAY));
    let revoked = pki.client("urn:medpdp:gateway:gw-stolen");
    pki.write_client("revoked", &revoked);

    let (code, body) = curl(
        &t,
        Some("gateway"),
        "POST",
        "/v1/decide",
        Some(&attach("t-ecg1", "plmn-miot-health")),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["decision"], "allow");
    for refused in [None, Some("expired"), Some("stranger")] {
        assert_eq!(curl(&t, refused, "GET", "/health/live", None).await.0, 0, "{refused:?}");
    }
    let (code, body) = curl(&t, Some("gateway"), "POST", "/v1/admin/reload", None).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "forbidden");

    // Revoke, reload as an administrator: the next connection with that certificate fails.
    assert_eq!(curl(&t, Some("revoked"), "GET", "/health/live", None).await.0, 200);
    pki.revoke(&revoked.serial);
    let (code, body) = curl(&t, Some("admin"), "POST", "/v1/admin/reload", None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(curl(&t, Some("revoked"), "GET", "/health/live", None).await.0, 0);
    assert_eq!(curl(&t, Some("gateway"), "GET", "/health/live", None).await.0, 200);
    t.stop().await;
}

/// `openssl s_client` with extra arguments, presenting the gateway certificate.
async fn s_client(t: &TestServer, dir: &Path, args: &[&str], stdin: &'static str) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &t.tls_addr().to_string(), "-servername", "localhost"])
        .arg("-CAfile")
        .arg(dir.join("ca.pem"))
        .arg("-cert")
        .arg(dir.join("gateway.pem"))
        .arg("-key")
        .arg(dir.join("gateway.key"))
        .args(args);
    let out = run(cmd, stdin).await;
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const GET_LIVE: &str = "GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_sees_only_modern_protocols_and_aead_suites() {
    let t = TestServer::start_tls(ADMIN, |_| {}).await;
    let pki = t.pki();
    pki.write_client("gateway", &pki.client(GATEWAY));
    let dir = pki.dir.path();

    let out = s_client(&t, dir, &["-tls1_3", "-ign_eof"], GET_LIVE).await;
    assert!(out.contains("New, TLSv1.3"), "{out}");
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");
    assert!(!out.contains("Session Ticket"), "no TLS 1.3 tickets: {out}");
    let out = s_client(
        &t,
        dir,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-ign_eof"],
        GET_LIVE,
    )
    .await;
    assert!(out.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "{out}");
    assert!(out.contains("HTTP/1.1 200 OK"), "{out}");

    // Refused: TLS 1.1 (even when the client allows it), CBC and other non-AEAD suites.
    let refused: [&[&str]; 3] = [
        &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA"],
    ];
    for args in refused {
        let out = s_client(&t, dir, args, "").await;
        assert!(out.contains("Cipher is (NONE)") && out.contains("alert"), "{args:?}: {out}");
    }

    // No client certificate: TLS 1.3 reports the refusal after the client's handshake
    // messages, and no request is ever answered.
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &t.tls_addr().to_string(), "-tls1_3", "-ign_eof"])
        .arg("-CAfile")
        .arg(dir.join("ca.pem"));
    let out = run(cmd, GET_LIVE).await;
    let out =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.contains("certificate required"), "{out}");
    assert!(!out.contains("HTTP/1.1"), "{out}");

    // No resumption: TLS 1.2 gives no session id, so there is no session to save.
    let sess = dir.join("session.pem");
    let sess_arg = sess.to_string_lossy().into_owned();
    let out = s_client(&t, dir, &["-tls1_2", "-sess_out", &sess_arg], "").await;
    assert!(out.contains("New, TLSv1.2"), "{out}");
    assert!(!sess.exists(), "a resumable session was offered: {out}");
    t.stop().await;
}
