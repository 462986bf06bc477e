//! Certificates issued per second over EST: CSR in, PKCS#7 out, end to end.
//!
//! Starts the real service in process (the bundled Med5G pack, a fresh CA made by the
//! development-PKI code, the decision log in `sync` mode, the SQLite registry with
//! `synchronous = FULL`) on 127.0.0.1, pre-generates P-256 CSRs, and has `CONCURRENCY` HTTPS
//! clients presenting a manufacturer (IDevID) certificate post them to
//! `/.well-known/est/simpleenroll` (each a Cedar decision, a signature, a registry commit and an
//! audit event). Every answer is decoded as certs-only PKCS#7 and counted.
//!
//! Run with `cargo run --release --example est_bench -- [COUNT] [CONCURRENCY]` (defaults 1000
//! 8), or `scripts/bench-est.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, reason = "benchmark")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use medpdp::ca::{dev, pkcs7, CaConfig};
use medpdp::config::Config;
use medpdp::server::{start, Listeners};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&root.join("policies"), &d.join("ws"));
    let certs = d.join("certs");
    let mut config = Config::default();
    config.workspace.dir = d.join("ws");
    config.workspace.watch = false;
    config.access.dir = d.join("ws/access");
    config.data.dir = d.join("data");
    config.log.filter = "warn".into();
    config.ca = CaConfig {
        cert: certs.join("ca.pem"),
        key: certs.join("ca.key"),
        chain: certs.join("ca-chain.pem"),
        crl: certs.join("ca.crl.pem"),
        profiles: root.join("certs/profiles.toml"),
        ..CaConfig::default()
    };
    config.tls.cert = certs.join("server.pem");
    config.tls.key = certs.join("server.key");
    config.tls.client_ca = certs.join("ca.pem");
    config.tls.crls = vec![certs.join("ca.crl.pem")];
    config.tls.watch = false;
    dev::ensure(&config.tls, &config.ca, &config.data.dir).unwrap();

    // A manufacturer CA and one device's IDevID (serialNumber t-prov, a provisioning monitor).
    let maker_key = rcgen::KeyPair::generate().unwrap();
    let mut maker = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    maker.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    maker.distinguished_name.push(rcgen::DnType::CommonName, "bench manufacturer");
    let maker_cert = maker.self_signed(&maker_key).unwrap();
    std::fs::write(certs.join("maker.pem"), maker_cert.pem()).unwrap();
    let maker = rcgen::Issuer::new(maker, maker_key);
    let dev_key = rcgen::KeyPair::generate().unwrap();
    let mut idevid = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    idevid.distinguished_name.push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]), "t-prov");
    let idevid = idevid.signed_by(&dev_key, &maker).unwrap();
    config.tls.bootstrap_cas = vec![certs.join("maker.pem")];

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = start(&config, Listeners { tls: Some(listener), insecure_http: None, est: None })
        .await
        .unwrap();
    let url = format!(
        "https://localhost:{}/.well-known/est/simpleenroll",
        server.tls_addr().unwrap().port()
    );

    // Client: trusts the CA, presents the IDevID.
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![idevid.der().clone()],
        PrivateKeyDer::from_pem_slice(dev_key.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    println!("generating {count} P-256 CSRs ...");
    let csrs: Vec<String> = (0..count)
        .map(|_| {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            let der = params.serialize_request(&key).unwrap().der().to_vec();
            base64::engine::general_purpose::STANDARD.encode(der)
        })
        .collect();
    let queue = Arc::new(std::sync::Mutex::new(csrs));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, queue) = (client.clone(), url.clone(), Arc::clone(&queue));
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            loop {
                let Some(csr) = queue.lock().unwrap().pop() else { return ok };
                let resp = client
                    .post(&url)
                    .header("content-type", "application/pkcs10")
                    .body(csr)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
                let body = resp.text().await.unwrap();
                let der = medpdp::ca::csr::decode_base64(body.as_bytes()).unwrap();
                assert_eq!(pkcs7::parse_certs_only(&der).unwrap().len(), 1);
                ok += 1;
            }
        }));
    }
    let mut issued = 0;
    for t in tasks {
        issued += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "issued {issued} certificates over EST in {secs:.2} s with {concurrency} clients: {:.0} certificates/s ({:.2} ms each at this concurrency)",
        issued as f64 / secs,
        secs * 1000.0 * concurrency as f64 / issued as f64
    );
    server.shutdown(Duration::from_secs(5)).await.unwrap();
}
