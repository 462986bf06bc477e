//! The cases of the bad-input battery (`bad_input.rs`): generic JSON malformations applied to
//! every JSON endpoint, then what is wrong only for one endpoint (decision requests, entities,
//! batches, AuthZEN fields, CSRs and EST, CA administration, headers and methods).

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::bad_input::Battery;

/// Which listener and caller a case uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Via {
    /// The development listener; the caller is an administrator (may use every JSON API).
    Plain,
    /// The mTLS API listener with the demo gateway's certificate (EST re-enrollment).
    Gateway,
}

/// What the answer must be.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// This status (and, for errors, medpdp's JSON error body; plain text on EST).
    Status(u16),
    /// A batch answered 200 whose first item is denied with this error code.
    ItemError(&'static str),
}

#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) via: Via,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) content_type: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) expect: Expect,
}

fn case(name: impl Into<String>, path: &str, body: impl Into<Vec<u8>>, expect: u16) -> Case {
    Case {
        name: name.into(),
        via: Via::Plain,
        method: Method::POST,
        path: path.to_owned(),
        content_type: Some("application/json".into()),
        headers: Vec::new(),
        body: Some(body.into()),
        expect: Expect::Status(expect),
    }
}

const ENV: &str = r#"{"now": "2026-11-24T10:00:00Z", "risk_score": 10, "inside_geofence": true, "audit_available": true}"#;

/// A valid attach request of the pack.
pub(crate) fn attach_request(terminal: &str) -> Value {
    json!({
        "principal": {"type": "Med5G::Terminal", "id": terminal},
        "action": "Med5G::Action::\"attach\"",
        "resource": {"type": "Med5G::NetworkSlice", "id": "plmn-miot-health"},
        "context": {"env": serde_json::from_str::<Value>(ENV).unwrap(), "attested": true}
    })
}

fn authzen_request() -> Value {
    json!({
        "subject": {"type": "Terminal", "id": "t-ecg1"},
        "action": {"name": "attach"},
        "resource": {"type": "NetworkSlice", "id": "plmn-miot-health"},
        "context": {"env": serde_json::from_str::<Value>(ENV).unwrap(), "attested": true}
    })
}

/// The JSON endpoints with a body each accepts, to malform.
fn json_endpoints() -> Vec<(&'static str, Value)> {
    let search = json!({
        "subject": {"type": "Terminal", "id": "t-ecg1"},
        "action": {"name": "attach"},
        "resource": {"type": "NetworkSlice"},
        "context": {"env": serde_json::from_str::<Value>(ENV).unwrap(), "attested": true}
    });
    vec![
        ("/v1/decide", attach_request("t-ecg1")),
        ("/v1/decide/batch", json!({"requests": [attach_request("t-ecg1")]})),
        ("/access/v1/evaluation", authzen_request()),
        ("/access/v1/evaluations", json!({"evaluations": [authzen_request()]})),
        ("/access/v1/search/resource", search.clone()),
        ("/access/v1/search/subject", search.clone()),
        ("/access/v1/search/action", search),
        (
            "/v1/ca/certificates",
            json!({"csr": "AA==", "profile": "admin", "identity": "urn:medpdp:admin:x"}),
        ),
        ("/v1/ca/certificates/00/revoke", json!({"reason": "key-compromise"})),
    ]
}

/// Malformations of any JSON body: `(name, body, status on medpdp's API, status on AuthZEN)`.
fn generic(good: &Value) -> Vec<(String, Vec<u8>, u16)> {
    let text = good.to_string();
    let first_key = good.as_object().unwrap().keys().next().unwrap().clone();
    let first_val = good[&first_key].to_string();
    let dup_top = format!("{{\"{first_key}\": {first_val}, {}", &text[1..]);
    let deep = format!("{{\"{first_key}\": {}1{}}}", "[".repeat(40), "]".repeat(40));
    let mut out: Vec<(String, Vec<u8>, u16)> = vec![
        ("empty body".into(), Vec::new(), 400),
        ("whitespace only".into(), b"  \n\t ".to_vec(), 400),
        ("truncated".into(), text.as_bytes()[..text.len() / 2].to_vec(), 400),
        ("one brace".into(), b"{".to_vec(), 400),
        ("unquoted keys".into(), b"{principal: 1}".to_vec(), 400),
        ("single quotes".into(), b"{'a': 1}".to_vec(), 400),
        ("trailing comma".into(), b"{\"a\": 1,}".to_vec(), 400),
        ("trailing garbage".into(), format!("{text} xyz").into_bytes(), 400),
        ("two documents".into(), format!("{text}{text}").into_bytes(), 400),
        ("top-level array".into(), format!("[{text}]").into_bytes(), 400),
        ("top-level string".into(), b"\"hello\"".to_vec(), 400),
        ("top-level number".into(), b"42".to_vec(), 400),
        ("top-level null".into(), b"null".to_vec(), 400),
        ("number out of range".into(), b"1e999".to_vec(), 400),
        ("invalid UTF-8 in a string".into(), b"{\"a\": \"\xff\xfe\"}".to_vec(), 400),
        ("invalid UTF-8 in a key".into(), b"{\"\xc3\x28\": 1}".to_vec(), 400),
        ("byte-order mark".into(), [&b"\xef\xbb\xbf"[..], text.as_bytes()].concat(), 400),
        ("NaN literal".into(), b"{\"a\": NaN}".to_vec(), 400),
        ("raw control character".into(), b"{\"a\": \"x\x01y\"}".to_vec(), 400),
        ("lone surrogate escape".into(), br#"{"a": "\ud800"}"#.to_vec(), 400),
        ("bad escape".into(), br#"{"a": "\q"}"#.to_vec(), 400),
        ("nested 40 deep".into(), deep.into_bytes(), 400),
        ("nested 100000 deep".into(), "[".repeat(100_000).into_bytes(), 400),
        ("duplicate top-level key".into(), dup_top.into_bytes(), 400),
        ("NUL bytes".into(), vec![0u8; 64], 400),
        ("oversized body".into(), vec![b' '; 1024 * 1024 + 1], 413),
    ];
    // A huge number where the endpoint expects its first field.
    let mut huge = good.clone();
    huge[&first_key] = serde_json::from_str("123456789012345678901234567890").unwrap();
    out.push(("huge number for a field".into(), huge.to_string().into_bytes(), 400));
    let mut wrong = good.clone();
    wrong[&first_key] = json!(true);
    out.push(("wrong type for a field".into(), wrong.to_string().into_bytes(), 400));
    out
}

pub(crate) async fn all_cases(b: &Battery) -> Vec<Case> {
    let mut cases = Vec::new();
    for (path, good) in json_endpoints() {
        let authzen = path.starts_with("/access/");
        for (name, body, status) in generic(&good) {
            cases.push(case(format!("{path}: {name}"), path, body, status));
        }
        let content_types = [
            (None, "no content type"),
            (Some("text/plain"), "text/plain"),
            (Some("application/xml"), "application/xml"),
            (Some("application/x-www-form-urlencoded"), "a form"),
            (Some("multipart/form-data; boundary=x"), "multipart"),
            (Some("json"), "a malformed media type"),
        ];
        for (ct, name) in content_types {
            let mut c = case(format!("{path}: {name}"), path, good.to_string(), 415);
            c.content_type = ct.map(str::to_owned);
            if authzen {
                c.expect = Expect::Status(400); // the AuthZEN binding answers 400
            }
            cases.push(c);
        }
    }
    cases.extend(crate::bad_input_requests::decision_cases());
    cases.extend(crate::bad_input_requests::authzen_cases());
    cases.extend(ca_cases(b).await);
    cases.extend(http_cases());
    cases
}

/// Headers and methods.
fn http_cases() -> Vec<Case> {
    let good = attach_request("t-ecg1").to_string();
    let mut out = Vec::new();
    let mut many = case("150 headers", "/v1/decide", good.clone(), 431);
    many.headers = (0..150).map(|i| (format!("x-h{i}"), "v".into())).collect();
    out.push(many);
    let mut big = case("a 20 KiB header", "/v1/decide", good.clone(), 431);
    big.headers = vec![("x-big".into(), "a".repeat(20 * 1024))];
    out.push(big);
    for (method, path, status) in [
        (Method::GET, "/v1/decide", 405),
        (Method::PUT, "/v1/decide", 405),
        (Method::DELETE, "/v1/decide/batch", 405),
        (Method::GET, "/access/v1/evaluation", 405),
        (Method::PUT, "/access/v1/evaluations", 405),
        (Method::POST, "/v1/status", 405),
        (Method::POST, "/health/live", 405),
        (Method::GET, "/v1/admin/reload", 405),
        (Method::GET, "/v1/decide/nope", 404),
        (Method::GET, "/../etc/passwd", 404),
        (Method::GET, "/v1/ca/certificates/zz/revoke", 405),
    ] {
        let mut c = case(format!("{method} {path}"), path, good.clone(), status);
        c.method = method;
        out.push(c);
    }
    for (query, name) in [
        ("limit=abc", "non-numeric limit"),
        ("limit=-1", "negative limit"),
        ("status=bogus", "unknown status"),
        ("limit=99999999999999999999999", "huge limit"),
    ] {
        let mut c = case(
            format!("list certificates: {name}"),
            &format!("/v1/ca/certificates?{query}"),
            "",
            400,
        );
        c.method = Method::GET;
        c.content_type = None;
        c.body = None;
        out.push(c);
    }
    out
}

/// A base64 DER CSR made by `openssl req` with `newkey` arguments.
fn openssl_csr(dir: &std::path::Path, newkey: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl req -new {newkey} -nodes -keyout /dev/null -subj /CN=x -outform DER 2>/dev/null | base64 -w0"
        ))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success() && !out.stdout.is_empty(), "openssl req {newkey}");
    String::from_utf8(out.stdout).unwrap()
}

/// CSRs that must be refused, as base64: `(name, base64, status)`.
fn bad_csrs(dir: &std::path::Path) -> Vec<(String, String, u16)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let good = openssl_csr(dir, "-newkey ec -pkeyopt ec_paramgen_curve:P-256");
    let der = b64.decode(&good).unwrap();
    let mut bad_sig = der.clone();
    let last = bad_sig.len() - 3;
    bad_sig[last] ^= 0x5a;
    let mut bad_version = der.clone();
    bad_version[7] ^= 0x01;
    vec![
        ("not base64".into(), "!!!not base64!!!".into(), 400),
        ("base64 of text".into(), b64.encode("hello, CA"), 400),
        ("truncated DER".into(), b64.encode(&der[..der.len() / 2]), 400),
        ("DER with trailing bytes".into(), b64.encode([&der[..], b"xx"].concat()), 400),
        ("signature does not verify".into(), b64.encode(&bad_sig), 400),
        ("a flipped byte in the request info".into(), b64.encode(&bad_version), 400),
        (
            "an X.509 certificate, not a CSR".into(),
            b64.encode(pem_der(&dir.join("certs/ca.pem"))),
            400,
        ),
        ("RSA 1024".into(), openssl_csr(dir, "-newkey rsa:1024"), 400),
        ("P-521".into(), openssl_csr(dir, "-newkey ec -pkeyopt ec_paramgen_curve:P-521"), 400),
        (
            "secp256k1".into(),
            openssl_csr(dir, "-newkey ec -pkeyopt ec_paramgen_curve:secp256k1"),
            400,
        ),
        ("empty".into(), String::new(), 400),
        ("20 KiB of base64".into(), b64.encode(vec![0x30u8; 15_000]), 413),
    ]
}

fn pem_der(path: &std::path::Path) -> Vec<u8> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(path).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

async fn ca_cases(b: &Battery) -> Vec<Case> {
    let dir = b.path().to_owned();
    let csrs = tokio::task::spawn_blocking(move || bad_csrs(&dir)).await.unwrap();
    let mut out = Vec::new();
    for (name, csr, status) in &csrs {
        // EST re-enrollment with the demo gateway's own certificate.
        out.push(Case {
            name: format!("simplereenroll: {name}"),
            via: Via::Gateway,
            content_type: Some("application/pkcs10".into()),
            body: Some(csr.clone().into_bytes()),
            ..case("", "/.well-known/est/simplereenroll", "", *status)
        });
        // The administrator's issuance API.
        let body = json!({"csr": csr, "profile": "admin", "identity": "urn:medpdp:admin:ops9"});
        let status = if *status == 413 { 400 } else { *status };
        out.push(case(format!("issue: {name}"), "/v1/ca/certificates", body.to_string(), status));
    }
    let good = openssl_csr(b.path(), "-newkey ec -pkeyopt ec_paramgen_curve:P-256");
    for (ct, name, status) in [
        (None, "no content type", 415),
        (Some("application/json"), "JSON content type", 415),
        (Some("application/pkcs7-mime"), "PKCS#7 content type", 415),
    ] {
        out.push(Case {
            name: format!("simplereenroll: {name}"),
            via: Via::Gateway,
            content_type: ct.map(str::to_owned),
            body: Some(good.clone().into_bytes()),
            ..case("", "/.well-known/est/simplereenroll", "", status)
        });
    }
    out.push(Case {
        name: "simpleenroll by an operational certificate".into(),
        via: Via::Gateway,
        content_type: Some("application/pkcs10".into()),
        body: Some(good.clone().into_bytes()),
        ..case("", "/.well-known/est/simpleenroll", "", 403)
    });
    let issue = |name: &str, body: Value, status| {
        case(format!("issue: {name}"), "/v1/ca/certificates", body.to_string(), status)
    };
    out.extend([
        issue("unknown profile", json!({"csr": good, "profile": "nope", "identity": "urn:medpdp:admin:x"}), 400),
        issue("no profile", json!({"csr": good, "identity": "urn:medpdp:admin:x"}), 400),
        issue("no CSR", json!({"profile": "admin", "identity": "urn:medpdp:admin:x"}), 400),
        issue("identity not a URN", json!({"csr": good, "profile": "admin", "identity": "ops1"}), 400),
        issue("identity of another kind", json!({"csr": good, "profile": "admin", "identity": "urn:medpdp:gateway:x"}), 400),
        issue("identity with two colons too many", json!({"csr": good, "profile": "admin", "identity": "urn:medpdp:admin:a:b"}), 400),
        issue("validity not a duration", json!({"csr": good, "profile": "admin", "identity": "urn:medpdp:admin:x", "validity": "forever"}), 400),
        issue("validity beyond the profile", json!({"csr": good, "profile": "admin", "identity": "urn:medpdp:admin:x", "validity": "9999d"}), 400),
        issue("negative validity", json!({"csr": good, "profile": "admin", "identity": "urn:medpdp:admin:x", "validity": "-1d"}), 400),
        issue("server profile without names", json!({"csr": good, "profile": "server"}), 400),
        issue("server profile with a bad IP", json!({"csr": good, "profile": "server", "ips": ["999.1.1.1"]}), 400),
        issue("terminal without a device entity", json!({"csr": good, "profile": "terminal-mtls", "identity": "urn:medpdp:terminal:nobody"}), 403),
    ]);
    let revoke = |name: &str, serial: &str, body: Value, status| {
        case(
            format!("revoke: {name}"),
            &format!("/v1/ca/certificates/{serial}/revoke"),
            body.to_string(),
            status,
        )
    };
    out.extend([
        revoke("unknown serial", "0123456789abcdef", json!({"reason": "key-compromise"}), 404),
        revoke("serial not hex", "not-hex", json!({"reason": "key-compromise"}), 400),
        revoke("unknown reason", "0123456789abcdef", json!({"reason": "boredom"}), 400),
        revoke("reason not a string", "0123456789abcdef", json!({"reason": 7}), 400),
        revoke("no reason", "0123456789abcdef", json!({}), 400),
    ]);
    out
}
