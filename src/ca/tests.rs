//! Unit tests of the CA primitives and the development PKI.

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

fn der(pem_text: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem_text.as_bytes()).unwrap().to_vec()
}

fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .expect("subject key identifier")
}

#[test]
fn a_new_ca_is_a_constrained_p256_ca() {
    let ca = CertificateAuthority::create("test CA", Duration::days(10)).unwrap();
    let d = der(ca.cert_pem());
    let (_, cert) = X509Certificate::from_der(&d).unwrap();
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    assert!(cert.verify_signature(None).is_ok(), "self-signed");
    assert_eq!(cert.raw_serial().len(), 16);
    assert_eq!(cert.raw_serial()[0] & 0x80, 0, "positive serial");
}

#[test]
fn leaves_carry_what_the_spec_says_and_verify_against_the_ca() {
    let ca = CertificateAuthority::create("test CA", Duration::days(10)).unwrap();
    let ca_der = der(ca.cert_pem());
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    let issued =
        ca.issue(&LeafSpec::client("gw1", "urn:medpdp:gateway:gw1", Duration::hours(24))).unwrap();
    let d = der(&issued.cert_pem);
    let (_, leaf) = X509Certificate::from_der(&d).unwrap();
    assert!(leaf.verify_signature(Some(ca_cert.public_key())).is_ok());
    assert_eq!(leaf.issuer(), ca_cert.subject());
    let sans = &leaf.subject_alternative_name().unwrap().unwrap().value.general_names;
    assert_eq!(sans, &vec![GeneralName::URI("urn:medpdp:gateway:gw1")]);
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        })
        .expect("authority key identifier");
    assert_eq!(aki, ski(&ca_cert).as_slice());
    let lifetime =
        leaf.validity().not_after.to_datetime() - leaf.validity().not_before.to_datetime();
    assert_eq!(lifetime, Duration::hours(24) + Duration::minutes(1));
    assert_eq!(issued.serial, hex::encode(leaf.raw_serial()));
    assert!(issued.key_pem.contains("PRIVATE KEY"));
}

#[test]
fn serials_are_random_even_for_the_same_key() {
    let ca = CertificateAuthority::create("test CA", Duration::days(10)).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let spec = LeafSpec::client("t", "urn:medpdp:terminal:t", Duration::hours(1));
    let (_, a) = ca.sign_leaf(&spec, &key).unwrap();
    let (_, b) = ca.sign_leaf(&spec, &key).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
}

#[test]
fn a_reloaded_ca_issues_certificates_that_chain_to_the_original() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = (d.path().join("ca.pem"), d.path().join("ca.key"));
    let ca = CertificateAuthority::create("test CA", Duration::days(10)).unwrap();
    ca.save_new(&cert, &key).unwrap();
    assert!(ca.save_new(&cert, &key).is_err(), "never overwrites");
    let loaded = CertificateAuthority::load(&cert, &key).unwrap();
    let issued = loaded
        .issue(&LeafSpec::server(
            "localhost",
            vec![SubjectAltName::Dns("localhost".into())],
            Duration::days(1),
        ))
        .unwrap();
    let ca_der = der(ca.cert_pem());
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    let leaf_der = der(&issued.cert_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    assert!(leaf.verify_signature(Some(ca_cert.public_key())).is_ok());
    assert_eq!(leaf.issuer(), ca_cert.subject());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn crls_list_the_revoked_serials() {
    let ca = CertificateAuthority::create("test CA", Duration::days(10)).unwrap();
    let issued =
        ca.issue(&LeafSpec::client("a", "urn:medpdp:gateway:a", Duration::hours(1))).unwrap();
    let now = OffsetDateTime::now_utc();
    let pem_text = ca
        .sign_crl(
            7,
            &[Revoked {
                serial: issued.serial.clone(),
                at: now,
                reason: RevocationReason::KeyCompromise,
            }],
            now + Duration::hours(1),
        )
        .unwrap();
    use rustls::pki_types::pem::PemObject;
    let d = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(pem_text.as_bytes())
        .unwrap();
    let (_, crl) = x509_parser::parse_x509_crl(&d).unwrap();
    let serials: Vec<String> =
        crl.iter_revoked_certificates().map(|r| hex::encode(r.raw_serial())).collect();
    assert_eq!(serials, vec![issued.serial]);
    assert!(ca
        .sign_crl(
            8,
            &[Revoked { serial: "zz".into(), at: now, reason: RevocationReason::Unspecified }],
            now
        )
        .is_err());
}

#[test]
fn the_dev_pki_is_created_once_and_never_over_leftovers() {
    let d = tempfile::tempdir().unwrap();
    let certs = d.path().join("certs");
    let tls = crate::tls::TlsConfig {
        cert: certs.join("server.pem"),
        key: certs.join("server.key"),
        client_ca: certs.join("ca.pem"),
        crls: vec![certs.join("ca.crl.pem")],
        ..crate::tls::TlsConfig::default()
    };
    let ca = dev_ca_config(&certs);
    let data = d.path().join("data");
    let pki = dev::ensure(&tls, &ca, &data).unwrap().expect("created");
    assert_eq!(pki.clients.len(), dev::DEMO_CLIENTS.len());
    for path in [&pki.ca_cert, &pki.ca_key, &pki.server_cert, &pki.server_key] {
        assert!(path.is_file(), "{}", path.display());
    }
    #[cfg(unix)]
    for key in [&pki.ca_key, &pki.server_key, &pki.clients[0].key] {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The demo certificates are ordinary registry entries, and the CRL is the CA's.
    let authority = Authority::open(&ca, &data).unwrap().expect("configured");
    let listed = authority.registry().list(&registry::ListFilter::default()).unwrap();
    assert_eq!(listed.len(), 1 + dev::DEMO_CLIENTS.len());
    assert!(listed.iter().any(|r| r.identity == "urn:medpdp:gateway:demo-gateway"
        && r.profile == "gateway-mtls"
        && r.issued_via == "dev-pki"));
    assert!(!authority.crl_due(time::OffsetDateTime::now_utc()));
    assert!(dev::ensure(&tls, &ca, &data).unwrap().is_none(), "a second run creates nothing");
    std::fs::remove_file(&pki.ca_cert).unwrap();
    let e = dev::ensure(&tls, &ca, &data).unwrap_err().to_string();
    assert!(e.contains("exists but its CA"), "{e}");
}

fn dev_ca_config(certs: &std::path::Path) -> CaConfig {
    CaConfig {
        cert: certs.join("ca.pem"),
        key: certs.join("ca.key"),
        chain: certs.join("ca-chain.pem"),
        crl: certs.join("ca.crl.pem"),
        profiles: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/profiles.toml"),
        ..CaConfig::default()
    }
}

#[test]
fn an_ed25519_ca_and_an_imported_intermediate_issue_verifiable_leaves() {
    let d = tempfile::tempdir().unwrap();
    let ed = setup::init(
        &dev_ca_config(&d.path().join("ed")),
        &d.path().join("ed-data"),
        CaKeyAlg::Ed25519,
        "ed CA",
        Duration::days(1),
    )
    .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(ed.chain()[0].as_slice()).unwrap();
    assert_eq!(cert.signature_algorithm.algorithm, x509_parser::oid_registry::OID_SIG_ED25519);

    // A hospital root signs an intermediate; medpdp imports the intermediate with the root as
    // its chain.
    let root_key = rcgen::KeyPair::generate().unwrap();
    let mut root_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    root_params.distinguished_name.push(rcgen::DnType::CommonName, "hospital root");
    let root_cert = root_params.self_signed(&root_key).unwrap();
    let root = rcgen::Issuer::new(root_params, root_key);
    let inter_key = rcgen::KeyPair::generate().unwrap();
    let mut inter_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    inter_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    inter_params.key_usages =
        vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    inter_params.distinguished_name.push(rcgen::DnType::CommonName, "medpdp issuing CA");
    let inter_cert = inter_params.signed_by(&inter_key, &root).unwrap();

    let config = dev_ca_config(&d.path().join("inter"));
    let bad_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let e = setup::import(&config, d.path(), &inter_cert.pem(), &bad_key, "").unwrap_err();
    assert!(e.to_string().contains("is not the key"), "{e}");
    let e = setup::import(&config, d.path(), &root_cert.pem(), &inter_key.serialize_pem(), "")
        .unwrap_err();
    assert!(e.to_string().contains("is not the key"), "{e}");
    let authority = setup::import(
        &config,
        &d.path().join("inter-data"),
        &inter_cert.pem(),
        &inter_key.serialize_pem(),
        &root_cert.pem(),
    )
    .unwrap();
    assert_eq!(authority.chain().len(), 2, "intermediate then root");
    let p7 = pkcs7::parse_certs_only(&authority.cacerts_pkcs7()).unwrap();
    assert_eq!(p7.len(), 2);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let rec = authority
        .issue(&authority::IssueRequest {
            subject: authority::Subject::Caller(
                crate::identity::Caller::from_urn("urn:medpdp:admin:a1").unwrap(),
            ),
            profile: authority.profiles().get("admin").unwrap(),
            public_key: &leaf_key,
            key_alg: "ECDSA-P256".into(),
            validity: None,
            via: "cli",
            decision_id: None,
            effect: registry::IssueEffect::None,
        })
        .unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(&rec.der).unwrap();
    let (_, inter) = x509_parser::parse_x509_certificate(inter_cert.der()).unwrap();
    assert!(leaf.verify_signature(Some(inter.public_key())).is_ok());
    assert_eq!(leaf.issuer(), inter.subject());
    assert!(authority.chain_pem_for_leaf().contains("BEGIN CERTIFICATE"), "intermediate sent");
}
