//! `medpdp ca` at the command line, as an administrator uses it: `init` (P-256 and Ed25519,
//! key mode 0600, never over an existing CA), `issue` gated by the pack's policies, `list`,
//! `revoke`, `crl`, and `import` of an intermediate under a hospital root made by `openssl`.
//! Every certificate is checked with `openssl verify`, the CRL with `openssl crl`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{copy_dir, repo};

const CONFIG: &str = "[data]\ndir = \"data\"\n[ca]\ncert = \"pki/ca.pem\"\nkey = \"pki/ca.key\"\n\
                      crl = \"pki/ca.crl.pem\"\nchain = \"pki/ca-chain.pem\"\n";

fn ca(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medpdp"))
        .args(["ca", "-c", "medpdp.toml"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn sh(dir: &Path, script: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo("policies"), &dir.path().join("ws"));
    std::fs::write(dir.path().join("medpdp.toml"), CONFIG).unwrap();
    let (ok, text) = sh(
        dir.path(),
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout t.key \
         -out t.csr -subj '/CN=urn:medpdp:admin:wish'",
    );
    assert!(ok, "{text}");
    dir
}

fn list(dir: &Path) -> Vec<Value> {
    let out = ca(dir, &["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn init_issue_list_revoke_crl() {
    let dir = workdir();
    let d = dir.path();
    let out = ca(d, &["init", "--name", "Ward CA"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(d.join("pki/ca.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (ok, text) = sh(d, "openssl x509 -in pki/ca.pem -noout -text");
    assert!(ok && text.contains("prime256v1") && text.contains("CA:TRUE"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PRIVATE KEY"), "key never printed");
    // A second init never replaces the CA.
    let key = std::fs::read(d.join("pki/ca.key")).unwrap();
    let out = ca(d, &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refusing to replace a CA"), "{}", stderr(&out));
    assert_eq!(std::fs::read(d.join("pki/ca.key")).unwrap(), key);

    // Issuance is a policy decision: the monitor gets a certificate whose SAN the profile
    // wrote (the CSR asked for an admin name), the quarantined terminal gets nothing.
    let issue = |who: &str, out: &str| {
        ca(
            d,
            &["issue", "-w", "ws", "--profile", "terminal-mtls", "--identity", who]
                .into_iter()
                .chain(["--csr", "t.csr", "--out", out])
                .collect::<Vec<_>>(),
        )
    };
    let out = issue("urn:medpdp:terminal:t-mon1", "t.pem");
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, text) = sh(d, "openssl verify -CAfile pki/ca.pem t.pem");
    assert!(ok, "{text}");
    let (_, text) = sh(d, "openssl x509 -in t.pem -noout -text");
    assert!(text.contains("URI:urn:medpdp:terminal:t-mon1"), "{text}");
    assert!(!text.contains("admin:wish") && text.contains("TLS Web Client Authentication"));
    let out = issue("urn:medpdp:terminal:t-quar", "q.pem");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("P06-revoked-or-quarantined-device"), "{}", stderr(&out));
    assert!(!d.join("q.pem").exists());
    // A CSR that is not one: a clear error, nothing issued.
    std::fs::write(d.join("junk.csr"), "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n").unwrap();
    let out = ca(
        d,
        &["issue", "-w", "ws", "--profile", "terminal-mtls", "--identity"]
            .into_iter()
            .chain(["urn:medpdp:terminal:t-mon1", "--csr", "junk.csr"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = list(d);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "valid");
    assert_eq!(rows[0]["issued_via"], "cli");
    let serial = rows[0]["serial"].as_str().unwrap().to_owned();
    assert!(serial.len() >= 16, "at least 64 random bits: {serial}");

    // Revocation: the registry and the published CRL say so; twice is an error.
    let out = ca(d, &["revoke", &serial, "--reason", "key-compromise"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(list(d)[0]["status"], "revoked");
    let out = ca(d, &["revoke", &serial, "--reason", "key-compromise"]);
    assert!(stderr(&out).contains("already revoked"), "{}", stderr(&out));
    let out = ca(d, &["revoke", "00ff", "--reason", "superseded"]);
    assert!(stderr(&out).contains("no certificate with serial"), "{}", stderr(&out));
    let out = ca(d, &["crl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, text) = sh(d, "openssl crl -in pki/ca.crl.pem -noout -text");
    assert!(ok && text.to_lowercase().contains(&serial), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    let (ok, text) = sh(
        d,
        "cat pki/ca.pem pki/ca.crl.pem > ca+crl.pem && openssl verify -crl_check -CAfile ca+crl.pem t.pem",
    );
    assert!(!ok && text.contains("certificate revoked"), "{text}");
}

#[test]
fn an_ed25519_ca_and_an_imported_intermediate() {
    let dir = workdir();
    let d = dir.path();
    let out = ca(d, &["init", "--key-alg", "ed25519"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, text) = sh(d, "openssl x509 -in pki/ca.pem -noout -text");
    assert!(text.contains("ED25519"), "{text}");

    // A hospital root made with openssl signs an intermediate; medpdp imports it and issues
    // leaves that verify up to the root.
    let dir = workdir();
    let d = dir.path();
    let (ok, text) = sh(
        d,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
           -out root.pem -days 30 -subj '/CN=Hospital root' \
         && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key \
           -out int.csr -subj '/CN=Hospital medpdp intermediate' \
         && printf 'basicConstraints=critical,CA:TRUE,pathlen:0\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > ext.cnf \
         && openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 \
           -extfile ext.cnf -out int.pem",
    );
    assert!(ok, "{text}");
    let out = ca(d, &["import", "--cert", "int.pem", "--key", "int.key", "--chain", "root.pem"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(d.join("pki/ca.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = ca(
        d,
        &["issue", "-w", "ws", "--profile", "gateway-mtls", "--identity"]
            .into_iter()
            .chain(["urn:medpdp:gateway:g-cpe1", "--csr", "t.csr", "--out", "g.pem"])
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, text) = sh(d, "openssl verify -CAfile root.pem -untrusted pki/ca.pem g.pem");
    assert!(ok, "{text}");
    // A key that does not belong to the certificate is refused.
    let dir2 = workdir();
    let d2 = dir2.path();
    std::fs::copy(d.join("int.pem"), d2.join("int.pem")).unwrap();
    std::fs::copy(d.join("root.key"), d2.join("root.key")).unwrap();
    let out = ca(d2, &["import", "--cert", "int.pem", "--key", "root.key"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!d2.join("pki/ca.key").exists());
}
