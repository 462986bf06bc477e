//! Shared helpers: start the real server on 127.0.0.1:0 against a private copy of a fixture
//! workspace (and of the access policies), and talk to it with a real HTTP client.
//!
//! By default the server runs only its plain-HTTP development listener (the caller is the
//! development identity `urn:medpdp:admin:dev`), for tests where TLS is irrelevant;
//! [`TestServer::start_tls`] runs the TLS listener with a test PKI ([`pki::TestPki`]).

#![allow(dead_code, reason = "each test module uses a different subset")]

pub mod pki;

use std::path::{Path, PathBuf};
use std::time::Duration;

use medpdp::config::Config;
use medpdp::server::{start, Listeners, RunningServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;

/// A path inside the repository.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Copies a directory tree.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// A configuration for the bundled pack copied into `dir/ws` (watching off), with the CA, the
/// server certificate and the client trust in `dir/certs` and state in `dir/data`. The caller
/// adjusts it, then makes the development PKI with `medpdp::ca::dev::ensure`.
pub fn pack_with_ca_config(dir: &Path) -> Config {
    copy_dir(&repo("policies"), &dir.join("ws"));
    let certs = dir.join("certs");
    let mut config = Config::default();
    config.workspace.dir = dir.join("ws");
    config.workspace.watch = false;
    config.access.dir = dir.join("ws/access");
    config.data.dir = dir.join("data");
    config.ca = medpdp::ca::CaConfig {
        cert: certs.join("ca.pem"),
        key: certs.join("ca.key"),
        chain: certs.join("ca-chain.pem"),
        crl: certs.join("ca.crl.pem"),
        profiles: repo("certs/profiles.toml"),
        ..medpdp::ca::CaConfig::default()
    };
    config.tls.cert = certs.join("server.pem");
    config.tls.key = certs.join("server.key");
    config.tls.client_ca = certs.join("ca.pem");
    config.tls.crls = vec![certs.join("ca.crl.pem")];
    config
}

/// A running server with its own workspace copy.
pub struct TestServer {
    pub server: Option<RunningServer>,
    /// The domain workspace; the access policies are in its `access/` subdirectory.
    pub workspace: TempDir,
    /// The data directory (decision log, keys, versions archive).
    pub data: TempDir,
    pub base: String,
    pub client: reqwest::Client,
    /// The test PKI, in TLS mode.
    pub pki: Option<pki::TestPki>,
}

impl TestServer {
    /// The Med5G mini fixture, watcher off (tests reload explicitly).
    pub async fn start() -> Self {
        Self::start_fixture("tests/fixtures/med5g-mini", |_| {}).await
    }

    /// A fixture directory, with a hook to adjust the configuration.
    pub async fn start_fixture(fixture: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let workspace = tempfile::tempdir().unwrap();
        copy_dir(&repo(fixture), workspace.path());
        Self::start_in(workspace, tweak).await
    }

    /// Files written into an empty workspace.
    pub async fn start_files(files: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> Self {
        let workspace = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = workspace.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Self::start_in(workspace, tweak).await
    }

    async fn start_in(workspace: TempDir, tweak: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Self::config(&workspace, &data);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listeners = Listeners { tls: None, insecure_http: Some(listener), est: None };
        let server = start(&config, listeners).await.unwrap();
        let base = format!("http://{}", server.insecure_http_addr().unwrap());
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { server: Some(server), workspace, data, base, client, pki: None }
    }

    /// The TLS listener with a fresh test PKI and the Med5G mini fixture; `client` presents
    /// `client_identity`'s certificate. TLS files are watched (debounce 50 ms).
    pub async fn start_tls(client_identity: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let workspace = tempfile::tempdir().unwrap();
        copy_dir(&repo("tests/fixtures/med5g-mini"), workspace.path());
        let pki = pki::TestPki::new();
        let data = tempfile::tempdir().unwrap();
        let mut config = Self::config(&workspace, &data);
        config.tls = pki.tls_config();
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listeners = Listeners { tls: Some(listener), insecure_http: None, est: None };
        let server = start(&config, listeners).await.unwrap();
        let base = format!("https://{}", server.tls_addr().unwrap());
        let client = pki.http_client(Some(&pki.client(client_identity)));
        Self { server: Some(server), workspace, data, base, client, pki: Some(pki) }
    }

    /// Test defaults: watcher off (tests reload explicitly), a private data directory, a
    /// private copy of the bundled access policies in `<workspace>/access`.
    fn config(workspace: &TempDir, data: &TempDir) -> Config {
        let access = workspace.path().join("access");
        copy_dir(&repo("policies/access"), &access);
        let mut config = Config::default();
        config.workspace.dir = workspace.path().to_owned();
        config.workspace.watch = false;
        config.data.dir = data.path().to_owned();
        config.access.dir = access;
        config
    }

    /// The test PKI (TLS mode only).
    pub fn pki(&self) -> &pki::TestPki {
        self.pki.as_ref().expect("started with start_tls")
    }

    /// The TLS listener's address (TLS mode only).
    pub fn tls_addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().and_then(RunningServer::tls_addr).expect("TLS listener")
    }

    /// A request with another client, returning status and JSON body.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut rb = client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Writes a file into the workspace.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.workspace.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Reads a file of the workspace.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.workspace.path().join(rel)).unwrap()
    }

    /// POSTs JSON, returns status and JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let resp =
            self.client.post(format!("{}{path}", self.base)).json(body).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs raw bytes with a content type (or none).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut rb = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GETs JSON.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The active policy version according to `/v1/status`.
    pub async fn version(&self) -> Option<String> {
        let (_, s) = self.get("/v1/status").await;
        s["active"]["version"].as_str().map(str::to_owned)
    }

    /// Shuts down gracefully; returns the data directory (the log is complete and closed).
    pub async fn stop(mut self) -> TempDir {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_secs(5)).await.unwrap();
        }
        self.data
    }
}

/// An attach request for a terminal onto a slice (Med5G fixture).
pub fn attach(terminal: &str, slice: &str) -> Value {
    json!({
        "principal": {"type": "Med5G::Terminal", "id": terminal},
        "action": "Med5G::Action::\"attach\"",
        "resource": format!("Med5G::NetworkSlice::\"{slice}\""),
        "context": {
            "env": {
                "now": "2026-11-24T10:00:00Z",
                "risk_score": 10,
                "inside_geofence": true,
                "audit_available": true
            },
            "attested": true
        }
    })
}
