//! The CA end to end with real clients: `openssl req` makes CSRs, `curl` posts them to EST,
//! `openssl pkcs7` decodes the answers, `openssl verify -crl_check` checks certificates against
//! the CRL, the issued certificates are used against the API, and `medpdp ca` (the binary)
//! makes tokens and lists the registry. The service runs the bundled Med5G pack, so issuance
//! is decided by its credential policies.

use std::path::{Path, PathBuf};
use std::process::Command;

use medpdp::ca::dev;
use medpdp::server::{start, Listeners, RunningServer};
use serde_json::Value;
use tempfile::TempDir;

use crate::common::pack_with_ca_config;

struct Ca {
    server: Option<RunningServer>,
    dir: TempDir,
    api: String,
    est: String,
}

impl Ca {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn certs(&self, name: &str) -> String {
        self.p("certs").join(name).display().to_string()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
        }
    }
}

/// The pack, a development PKI made by `ca::dev`, a manufacturer CA with one IDevID (subject
/// serialNumber `t-prov`), the API listener and the EST listener.
async fn start_ca() -> Ca {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = d.join("certs");
    let mut config = pack_with_ca_config(d);
    config.tls.debounce_ms = 50;
    dev::ensure(&config.tls, &config.ca, &config.data.dir).unwrap().expect("created");
    // A manufacturer CA and a device's factory certificate (IEEE 802.1AR IDevID).
    let (maker_pem, idevid_pem, idevid_key) =
        manufacturer("Acme Medical manufacturer CA", "t-prov");
    std::fs::write(certs.join("maker-ca.pem"), maker_pem).unwrap();
    std::fs::write(d.join("idevid.pem"), idevid_pem).unwrap();
    std::fs::write(d.join("idevid.key"), idevid_key).unwrap();
    let (_, other_pem, other_key) = manufacturer("Unknown maker CA", "t-prov");
    std::fs::write(d.join("other-idevid.pem"), other_pem).unwrap();
    std::fs::write(d.join("other-idevid.key"), other_key).unwrap();
    config.tls.bootstrap_cas = vec![certs.join("maker-ca.pem")];
    std::fs::write(
        d.join("medpdp.toml"),
        format!(
            "[data]\ndir = \"{}\"\n[ca]\ncert = \"{}\"\nkey = \"{}\"\ncrl = \"{}\"\nchain = \"{}\"\nprofiles = \"{}\"\n",
            config.data.dir.display(),
            config.ca.cert.display(),
            config.ca.key.display(),
            config.ca.crl.display(),
            config.ca.chain.display(),
            config.ca.profiles.display()
        ),
    )
    .unwrap();
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let est = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listeners = Listeners { tls: Some(tls), insecure_http: None, est: Some(est) };
    let server = start(&config, listeners).await.unwrap();
    let api = format!("https://localhost:{}", server.tls_addr().unwrap().port());
    let est = format!("https://localhost:{}", server.est_addr().unwrap().port());
    Ca { server: Some(server), dir, api, est }
}

/// A manufacturer CA (PEM) and an IDevID for `serial` signed by it (cert PEM, key PEM).
fn manufacturer(name: &str, serial: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "Acme pump");
    leaf.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 5]), serial);
    // A manufacturer could write anything; it must never become an operational identity.
    leaf.subject_alt_names =
        vec![rcgen::SanType::URI("urn:medpdp:admin:evil".to_owned().try_into().unwrap())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Runs a shell command in the test directory; `(status ok, stdout, stderr)`.
async fn sh(dir: &Path, script: &str) -> (bool, String, String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).current_dir(dir).env("MEDPDP", env!("CARGO_BIN_EXE_medpdp"));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A new key and a base64 DER CSR: `<name>.key`, `<name>.csr.b64`.
async fn csr(dir: &Path, name: &str, newkey: &str) {
    let script = format!(
        "openssl req -new {newkey} -nodes -keyout {name}.key -subj '/CN=anything/O=ignored' \
         -addext 'subjectAltName=URI:urn:medpdp:admin:wish' -addext 'basicConstraints=critical,CA:TRUE' \
         -outform DER -out {name}.csr.der 2>/dev/null && base64 {name}.csr.der > {name}.csr.b64"
    );
    let (ok, _, err) = sh(dir, &script).await;
    assert!(ok, "openssl req: {err}");
}

const P256: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256";

/// POSTs a CSR file with curl; `(HTTP status, body)`.
async fn post_csr(c: &Ca, url: &str, file: &str, extra: &str) -> (String, String) {
    let script = format!(
        "curl -s -o body.out -w '%{{http_code}}' --cacert {} {extra} -H 'Content-Type: application/pkcs10' \
         --data-binary @{file} {url}; cat body.out > body.last",
        c.certs("ca.pem")
    );
    let (_, status, _) = sh(c.dir.path(), &script).await;
    let body = std::fs::read_to_string(c.p("body.out")).unwrap_or_default();
    (status, body)
}

/// Decodes a base64 PKCS#7 answer into `<name>.pem` with openssl.
async fn save_cert(c: &Ca, body: &str, name: &str) {
    std::fs::write(c.p(&format!("{name}.p7.b64")), body).unwrap();
    let (ok, _, err) = sh(
        c.dir.path(),
        &format!(
            "base64 -d {name}.p7.b64 | openssl pkcs7 -inform DER -print_certs -out {name}.pem"
        ),
    )
    .await;
    assert!(ok, "openssl pkcs7: {err}");
}

async fn cert_text(c: &Ca, name: &str) -> String {
    sh(c.dir.path(), &format!("openssl x509 -in {name}.pem -noout -text")).await.1
}

async fn token(c: &Ca, identity: &str, extra: &str) -> String {
    let (ok, out, err) =
        sh(c.dir.path(), &format!("$MEDPDP ca -c medpdp.toml token --identity {identity} {extra}"))
            .await;
    assert!(ok, "medpdp ca token: {err}");
    out.trim().to_owned()
}

async fn registry(c: &Ca, identity: &str) -> Vec<Value> {
    let (ok, out, err) =
        sh(c.dir.path(), &format!("$MEDPDP ca -c medpdp.toml list --json --identity {identity}"))
            .await;
    assert!(ok, "medpdp ca list: {err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// curl with a client certificate: `(HTTP status or "000" on a failed handshake, body)`.
async fn curl_as(c: &Ca, cert: &str, key: &str, args: &str) -> (String, String) {
    let script = format!(
        "curl -s -o body.out -w '%{{http_code}}' --cacert {} --cert {cert} --key {key} {args}",
        c.certs("ca.pem")
    );
    let (_, status, _) = sh(c.dir.path(), &script).await;
    (status, std::fs::read_to_string(c.p("body.out")).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_enrollment_renewal_revocation_with_real_clients() {
    let c = start_ca().await;
    let d = c.dir.path();
    // cacerts: anyone, even without a certificate, on the EST listener.
    let (ok, out, err) = sh(
        d,
        &format!(
            "curl -sf --cacert {} {}/.well-known/est/cacerts | base64 -d | openssl pkcs7 -inform DER -print_certs",
            c.certs("ca.pem"),
            c.est
        ),
    )
    .await;
    assert!(ok && out.contains("medpdp development CA"), "{out}{err}");

    // A gateway enrolls with a one-time token.
    let tok = token(&c, "urn:medpdp:gateway:g-cpe1", "").await;
    csr(d, "gw", P256).await;
    let url = format!("{}/.well-known/est/simpleenroll", c.est);
    let (status, _) = post_csr(&c, &url, "gw.csr.b64", "").await;
    assert_eq!(status, "401", "no credential");
    let (status, body) = post_csr(&c, &url, "gw.csr.b64", &format!("-u {tok}")).await;
    assert_eq!(status, "200", "{body}");
    save_cert(&c, &body, "gw").await;
    let text = cert_text(&c, "gw").await;
    assert!(text.contains("URI:urn:medpdp:gateway:g-cpe1"), "{text}");
    assert!(!text.contains("urn:medpdp:admin:wish") && !text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    let (ok, out, _) = sh(d, &format!("openssl verify -CAfile {} gw.pem", c.certs("ca.pem"))).await;
    assert!(ok, "{out}");
    // The token was consumed with the issuance: a second use is refused, nothing issued.
    let (status, body) = post_csr(&c, &url, "gw.csr.b64", &format!("-u {tok}")).await;
    assert_eq!(status, "401", "{body}");
    assert!(body.contains("already used"), "{body}");
    assert_eq!(registry(&c, "urn:medpdp:gateway:g-cpe1").await.len(), 1);

    // The gateway certificate gets decisions on the API listener.
    let attach = crate::common::attach("t-ecg1", "plmn-miot-health");
    std::fs::write(c.p("attach.json"), attach.to_string()).unwrap();
    let decide = format!("{}/v1/decide -H 'Content-Type: application/json' -d @attach.json", c.api);
    let (status, body) = curl_as(&c, "gw.pem", "gw.key", &decide).await;
    assert_eq!(status, "200", "{body}");

    // Re-enrollment with the current certificate: a new certificate, the old one superseded.
    csr(d, "gw2", P256).await;
    let reenroll = format!("{}/.well-known/est/simplereenroll", c.api);
    let args =
        format!("-H 'Content-Type: application/pkcs10' --data-binary @gw2.csr.b64 {reenroll}");
    let (status, body) = curl_as(&c, "gw.pem", "gw.key", &args).await;
    assert_eq!(status, "200", "{body}");
    save_cert(&c, &body, "gw2").await;
    let rows = registry(&c, "urn:medpdp:gateway:g-cpe1").await;
    assert_eq!(rows.len(), 2);
    let old = rows.iter().find(|r| r["status"] == "superseded").expect("old superseded");
    let new = rows.iter().find(|r| r["status"] == "valid").expect("new valid");
    assert_eq!(old["superseded_by"], new["serial"]);
    assert!(new["decision_id"].is_string(), "renewal was a policy decision: {new}");
    // The old certificate cannot renew again.
    let (status, body) = curl_as(&c, "gw.pem", "gw.key", &args).await;
    assert_eq!(status, "403", "{body}");
    assert!(body.contains("already renewed"), "{body}");

    // An administrator revokes the new certificate: the CRL says so and the listener refuses
    // it at once.
    let serial = new["serial"].as_str().unwrap();
    let revoke = format!(
        "{}/v1/ca/certificates/{serial}/revoke -H 'Content-Type: application/json' -d '{{\"reason\": \"key-compromise\"}}'",
        c.api
    );
    let (status, body) =
        curl_as(&c, &c.certs("demo-admin.pem"), &c.certs("demo-admin.key"), &revoke).await;
    assert_eq!(status, "200", "{body}");
    let (status, _) = curl_as(&c, "gw2.pem", "gw2.key", &decide).await;
    assert_eq!(status, "000", "a revoked certificate fails the handshake");
    let (status, _) = curl_as(&c, "gw2.pem", "gw2.key", &args.replace("gw2.csr", "gw.csr")).await;
    assert_eq!(status, "000", "and cannot re-enroll");
    let crl = format!("{}/v1/ca/crl -o crl.der", c.api);
    let script = format!(
        "curl -sf --cacert {ca} --cert {ac} --key {ak} {crl} && openssl crl -inform DER -in crl.der -out crl.pem \
         && cat {ca} crl.pem > ca+crl.pem && openssl verify -crl_check -CAfile ca+crl.pem gw2.pem",
        ca = c.certs("ca.pem"),
        ac = c.certs("demo-admin.pem"),
        ak = c.certs("demo-admin.key"),
    );
    let (ok, out, err) = sh(d, &script).await;
    assert!(!ok && (out + &err).contains("certificate revoked"), "openssl verify -crl_check");
    let (ok, out, err) = sh(d, "openssl verify -crl_check -CAfile ca+crl.pem gw.pem").await;
    assert!(ok, "the superseded, unrevoked certificate is not on the CRL: {out}{err}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_enrollment_and_every_refusal() {
    let c = start_ca().await;
    let d = c.dir.path();
    let enroll = format!("{}/.well-known/est/simpleenroll", c.api);
    let post = |file: &str| {
        format!("-H 'Content-Type: application/pkcs10' --data-binary @{file} {enroll}")
    };

    // A device with its manufacturer certificate enrolls on the API listener as
    // `urn:medpdp:terminal:<serialNumber>`; its URI SAN (`admin:evil`) means nothing.
    csr(d, "t", P256).await;
    let (status, body) = curl_as(&c, "idevid.pem", "idevid.key", &post("t.csr.b64")).await;
    assert_eq!(status, "200", "{body}");
    save_cert(&c, &body, "t").await;
    let text = cert_text(&c, "t").await;
    assert!(text.contains("URI:urn:medpdp:terminal:t-prov"), "{text}");
    assert!(text.contains("1.2.840.10004.20701.1.1"), "SDC key purpose of terminal-mtls: {text}");
    let rows = registry(&c, "urn:medpdp:terminal:t-prov").await;
    assert_eq!((rows.len(), rows[0]["profile"].as_str()), (1, Some("terminal-mtls")));
    assert_eq!(rows[0]["issued_via"], "est-idevid");
    // The bootstrap certificate reaches nothing else, whatever its SAN says.
    for path in ["/v1/status", "/v1/ca/certificates", "/health/live"] {
        let (status, body) =
            curl_as(&c, "idevid.pem", "idevid.key", &format!("{}{path}", c.api)).await;
        assert_eq!(status, "403", "{path}: {body}");
    }
    // The terminal's operational certificate may enroll only: no decisions.
    let (status, _) = curl_as(&c, "t.pem", "t.key", &format!("{}/v1/status", c.api)).await;
    assert_eq!(status, "403");
    // A manufacturer CA that is not configured: the handshake fails.
    let (status, _) = curl_as(&c, "other-idevid.pem", "other-idevid.key", &post("t.csr.b64")).await;
    assert_eq!(status, "000");
    // The EST listener serves EST only.
    let (status, _) = sh(
        d,
        &format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --cacert {} {}/v1/status",
            c.certs("ca.pem"),
            c.est
        ),
    )
    .await
    .1
    .parse::<u16>()
    .map(|s| (s, ()))
    .unwrap();
    assert_eq!(status, 404);

    // Refusals over the EST listener with tokens; each leaves the registry unchanged.
    let url = format!("{}/.well-known/est/simpleenroll", c.est);
    let quarantined = token(&c, "urn:medpdp:terminal:t-quar", "").await;
    let (status, body) = post_csr(&c, &url, "t.csr.b64", &format!("-u {quarantined}")).await;
    assert_eq!(status, "403", "{body}");
    assert!(
        body.contains("P06-revoked-or-quarantined-device") && body.contains("decision"),
        "{body}"
    );
    assert!(registry(&c, "urn:medpdp:terminal:t-quar").await.is_empty());

    let tok = token(&c, "urn:medpdp:terminal:t-robot1", "").await;
    // A tampered CSR (one byte of the signed part flipped): no proof of possession.
    let (ok, _, err) = sh(d, "cp t.csr.der bad.csr.der && printf 'X' | dd of=bad.csr.der bs=1 seek=40 conv=notrunc 2>/dev/null && base64 bad.csr.der > bad.csr.b64").await;
    assert!(ok, "{err}");
    let (status, body) = post_csr(&c, &url, "bad.csr.b64", &format!("-u {tok}")).await;
    assert_eq!(status, "400", "{body}");
    assert!(body.contains("bad CSR"), "{body}");
    // Not base64, wrong content type.
    std::fs::write(c.p("junk.b64"), "%%% not base64 %%%").unwrap();
    let (status, _) = post_csr(&c, &url, "junk.b64", &format!("-u {tok}")).await;
    assert_eq!(status, "400");
    let (_, status, _) = sh(d, &format!("curl -s -o /dev/null -w '%{{http_code}}' --cacert {} -u {tok} -H 'Content-Type: text/plain' --data-binary @t.csr.b64 {url}", c.certs("ca.pem"))).await;
    assert_eq!(status, "415");
    // A key type the profile does not allow (terminal-mtls: ECDSA-P256 only).
    csr(d, "rsa", "-newkey rsa:2048").await;
    let (status, body) = post_csr(&c, &url, "rsa.csr.b64", &format!("-u {tok}")).await;
    assert_eq!(status, "400", "{body}");
    assert!(body.contains("does not allow RSA-2048"), "{body}");
    assert!(registry(&c, "urn:medpdp:terminal:t-robot1").await.is_empty());
    // The token was not used up by the refusals: the robot enrolls.
    let (status, body) = post_csr(&c, &url, "t.csr.b64", &format!("-u {tok}")).await;
    assert_eq!(status, "200", "{body}");
    // An expired token.
    let expired = token(&c, "urn:medpdp:terminal:t-mon1", "--ttl 1s").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) = post_csr(&c, &url, "t.csr.b64", &format!("-u {expired}")).await;
    assert_eq!(status, "401");

    // rcgen#448 regression: a P-384 key in a CSR signed with SHA-256 (OpenSSL's default)
    // gives a certificate whose key is on P-384.
    let gw = token(&c, "urn:medpdp:gateway:g-cpe1", "").await;
    csr(d, "p384", "-newkey ec -pkeyopt ec_paramgen_curve:P-384 -sha256").await;
    let (status, body) = post_csr(&c, &url, "p384.csr.b64", &format!("-u {gw}")).await;
    assert_eq!(status, "200", "{body}");
    save_cert(&c, &body, "p384").await;
    let text = cert_text(&c, "p384").await;
    assert!(text.contains("secp384r1") || text.contains("P-384"), "{text}");
    let (ok, out, err) =
        sh(d, "openssl x509 -in p384.pem -noout -pubkey | openssl pkey -pubin -noout -text").await;
    assert!(ok && out.contains("384 bit"), "{out}{err}");
    c.stop().await;
}
