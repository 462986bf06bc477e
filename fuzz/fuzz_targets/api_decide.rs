//! Any bytes as the body of `POST /v1/decide` and `POST /v1/decide/batch`, through the real
//! router (access check, JSON guard, decoding, limits, evaluation): never a 5xx, always JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medpdp_fuzz::{check_answer, Harness};

fuzz_target!(|data: &[u8]| {
    let h = Harness::get();
    for path in ["/v1/decide", "/v1/decide/batch"] {
        let (status, body) = h.post(path, data);
        check_answer(path, data, status, &body);
    }
    // The same bytes as the one item of a batch, when they are JSON at all.
    if let Ok(item) = serde_json::from_slice::<serde_json::Value>(data) {
        let batch = serde_json::json!({"requests": [item]}).to_string();
        let (status, body) = h.post("/v1/decide/batch", batch.as_bytes());
        check_answer("/v1/decide/batch", batch.as_bytes(), status, &body);
    }
});
