//! Certs-only PKCS#7 / CMS (RFC 5652 "degenerate" SignedData, RFC 7030 §4.1.3 and §4.2.3):
//! the format EST answers certificates in.
//!
//! Six ASN.1 nodes, written with `yasna` (already used by rcgen) rather than a CMS crate, so
//! no second crypto stack enters the build:
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
//! SignedData  ::= SEQUENCE { version 1, digestAlgorithms SET {}, encapContentInfo
//!                 SEQUENCE { id-data }, certificates [0] IMPLICIT SET OF Certificate,
//!                 signerInfos SET {} }
//! ```

use base64::Engine as _;
use yasna::models::ObjectIdentifier;
use yasna::Tag;

const ID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
const ID_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];

/// A certs-only SignedData holding `certs` (DER), as DER.
pub fn certs_only(certs: &[&[u8]]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_oid(&ObjectIdentifier::from_slice(ID_SIGNED_DATA));
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_set(|_| {});
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&ObjectIdentifier::from_slice(ID_DATA));
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            for cert in certs {
                                w.next().write_der(cert);
                            }
                        });
                    });
                    w.next().write_set(|_| {});
                });
            });
        });
    })
}

/// Base64 in lines of 64 characters, each ending in LF (what `base64 -d` and EST clients take; RFC 8951
/// lets them accept it with or without breaks).
pub fn base64_lines(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 32 + 2);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// The certificates of a certs-only SignedData (DER), in the order stored; for tests and for
/// clients written in Rust.
pub fn parse_certs_only(der: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let oid = r.next().read_oid()?;
            if oid != ObjectIdentifier::from_slice(ID_SIGNED_DATA) {
                return Err(yasna::ASN1Error::new(yasna::ASN1ErrorKind::Invalid));
            }
            r.next().read_tagged(Tag::context(0), |r| {
                r.read_sequence(|r| {
                    let _version = r.next().read_u8()?;
                    r.next().read_der()?;
                    r.next().read_der()?;
                    let certs = r.next().read_tagged_implicit(Tag::context(0), |r| {
                        let mut certs = Vec::new();
                        r.read_set_of(|r| {
                            certs.push(r.read_der()?);
                            Ok(())
                        })?;
                        Ok(certs)
                    })?;
                    r.next().read_der()?;
                    Ok(certs)
                })
            })
        })
    })
    .map_err(|e| format!("not a certs-only PKCS#7: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_breaks() {
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap().cert;
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap().cert;
        let p7 = certs_only(&[a.der(), b.der()]);
        let mut got = parse_certs_only(&p7).unwrap();
        got.sort();
        let mut want = vec![a.der().to_vec(), b.der().to_vec()];
        want.sort();
        assert_eq!(got, want);
        let text = base64_lines(&p7);
        assert!(text.lines().all(|l| l.trim_end().len() <= 64));
        assert!(parse_certs_only(b"\x30\x00").is_err());
    }
}
