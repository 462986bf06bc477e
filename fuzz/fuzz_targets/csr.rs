//! Any bytes as an EST body (base64, PEM) and as DER: decoding and parsing a PKCS#10 request
//! never panics, and an accepted request has a verified signature and a named key algorithm.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medpdp::ca::csr::{decode_base64, parse_csr};

fuzz_target!(|data: &[u8]| {
    for der in [decode_base64(data).ok(), Some(data.to_vec())].into_iter().flatten() {
        if let Ok(csr) = parse_csr(&der, 8192) {
            assert!(!csr.key_alg.name().is_empty());
        }
    }
});
