//! The bad-input battery: hundreds of malformed requests across every endpoint. Each gets the
//! expected 4xx (or, for a bad batch item, a 200 with that item denied and its error), never a
//! 5xx; error answers are JSON (plain text on EST, as RFC 7030 clients expect); and after
//! every one the server still answers a good request correctly. The cases themselves are in
//! `bad_input_cases.rs`; slow and malformed HTTP (raw sockets) are at the end of this file.

use std::path::Path;
use std::time::Duration;

use medpdp::ca::{dev, Issued};
use medpdp::server::{start, Listeners, RunningServer};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bad_input_cases::{all_cases, Case, Expect, Via};
use crate::common::{pack_with_ca_config, pki};

/// The bundled pack with a development PKI and CA, on the plain development listener (caller:
/// an administrator) and the mTLS API listener.
pub(crate) struct Battery {
    server: Option<RunningServer>,
    pub(crate) dir: TempDir,
    pub(crate) plain: String,
    pub(crate) api: String,
    plain_client: reqwest::Client,
    gateway_client: reqwest::Client,
}

async fn start_battery() -> Battery {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = d.join("certs");
    let mut config = pack_with_ca_config(d);
    config.tls.watch = false;
    config.server.request_timeout_secs = 2;
    dev::ensure(&config.tls, &config.ca, &config.data.dir).unwrap().expect("created");
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listeners = Listeners { tls: Some(tls), insecure_http: Some(plain), est: None };
    let server = start(&config, listeners).await.unwrap();
    let api = format!("https://localhost:{}", server.tls_addr().unwrap().port());
    let plain = format!("http://{}", server.insecure_http_addr().unwrap());
    let gateway = Issued {
        cert_pem: std::fs::read_to_string(certs.join("demo-gateway.pem")).unwrap(),
        key_pem: std::fs::read_to_string(certs.join("demo-gateway.key")).unwrap(),
        serial: String::new(),
        not_after: time::OffsetDateTime::now_utc(),
    };
    let tls_config =
        pki::client_config(&certs.join("ca.pem"), Some(&gateway), rustls::DEFAULT_VERSIONS);
    let timeout = Duration::from_secs(20);
    let gateway_client = reqwest::Client::builder()
        .use_preconfigured_tls(tls_config)
        .timeout(timeout)
        .build()
        .unwrap();
    let plain_client = reqwest::Client::builder().timeout(timeout).build().unwrap();
    Battery { server: Some(server), dir, plain, api, plain_client, gateway_client }
}

impl Battery {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    async fn send(&self, case: &Case) -> (u16, String, Vec<u8>) {
        let (client, base) = match case.via {
            Via::Plain => (&self.plain_client, &self.plain),
            Via::Gateway => (&self.gateway_client, &self.api),
        };
        let mut rb = client.request(case.method.clone(), format!("{base}{}", case.path));
        if let Some(ct) = &case.content_type {
            rb = rb.header("content-type", ct.as_str());
        }
        for (k, v) in &case.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(body) = &case.body {
            rb = rb.body(body.clone());
        }
        let resp = rb.send().await.unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, resp.bytes().await.unwrap().to_vec())
    }

    /// A good decision still comes back right.
    async fn still_good(&self, after: &str) {
        let body = crate::bad_input_cases::attach_request("t-ecg1");
        let resp = self
            .plain_client
            .post(format!("{}/v1/decide", self.plain))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("after {after}: {e:?}"));
        assert_eq!(resp.status(), 200, "after {after}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["decision"], "allow", "after {after}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_malformed_inputs_get_clear_4xx_and_break_nothing() {
    let b = start_battery().await;
    let cases = all_cases(&b).await;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut failures = Vec::new();
    for case in &cases {
        let (status, ct, body) = b.send(case).await;
        *by_status.entry(status).or_default() += 1;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let problem = match &case.expect {
            Expect::Status(want) if status != *want => {
                Some(format!("status {status}, want {want}"))
            }
            Expect::Status(_) if case.path.starts_with("/.well-known/est/") => {
                (!ct.starts_with("text/plain")).then(|| format!("EST error as `{ct}`"))
            }
            Expect::Status(_) if status != 431 => match &json {
                Some(v) if v["error"]["code"].is_string() && v["error"]["message"].is_string() => {
                    None
                }
                _ => Some(format!("error body is not medpdp's JSON error: `{ct}`")),
            },
            Expect::Status(_) => None,
            Expect::ItemError(code) => match &json {
                Some(v) if status == 200 => {
                    let item = &v["results"][0];
                    let ok = item["decision"] == "deny" && item["error"]["code"] == *code;
                    (!ok).then(|| format!("item not denied with `{code}`: {item}"))
                }
                _ => Some(format!("status {status}, want 200 with an item error")),
            },
        };
        assert!(status < 500, "{}: server error {status}", case.name);
        if let Some(p) = problem {
            failures.push(format!(
                "{} ({} {}): {p}; body: {}",
                case.name,
                case.method,
                case.path,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
        b.still_good(&case.name).await;
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    eprintln!("bad-input battery: {} inputs, answers by status: {by_status:?}", cases.len());
    raw_http_abuse(&b).await;
    if let Some(s) = b.server {
        s.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

/// Reads whatever the server sends until it closes the connection or `limit` passes.
async fn read_answer(s: &mut tokio::net::TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Inputs only a raw socket can send: not HTTP at all, a malformed request line, a body that
/// trickles in slower than the request timeout, a lying Content-Length.
async fn raw_http_abuse(b: &Battery) {
    let addr = b.plain.trim_start_matches("http://").to_owned();
    let cases: [(&str, &[u8], &str); 4] = [
        ("not HTTP", b"\x16\x03\x01\x02\x00garbage\r\n\r\n", "HTTP/1.1 400"),
        ("malformed request line", b"POST /v1/decide HTTP/9.9 extra\r\n\r\n", "HTTP/1.1 400"),
        (
            "header without a colon",
            b"POST /v1/decide HTTP/1.1\r\nhost: x\r\nno-colon-here\r\n\r\n",
            "HTTP/1.1 400",
        ),
        (
            "invalid Content-Length",
            b"POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n",
            "HTTP/1.1 400",
        ),
    ];
    for (name, bytes, want) in cases {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let answer = read_answer(&mut s, Duration::from_secs(5)).await;
        assert!(answer.starts_with(want), "{name}: {answer:?}");
        b.still_good(name).await;
    }
    // A body promised but dripped one byte a second: 408 after `request_timeout_secs` (2 s).
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{").await.unwrap();
    let drip = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if s.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), drip).await;
    let answer = read_answer(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "slow-drip body: {answer:?}");
    b.still_good("slow-drip body").await;
}
