//! Any bytes as the body of every AuthZEN endpoint (evaluation, evaluations, the three
//! searches), through the real router: never a 5xx, always JSON, and a 200 evaluation always
//! has a boolean `decision`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medpdp_fuzz::{check_answer, Harness};

const PATHS: [&str; 5] = [
    "/access/v1/evaluation",
    "/access/v1/evaluations",
    "/access/v1/search/subject",
    "/access/v1/search/resource",
    "/access/v1/search/action",
];

fuzz_target!(|data: &[u8]| {
    let h = Harness::get();
    for path in PATHS {
        let (status, body) = h.post(path, data);
        check_answer(path, data, status, &body);
        if status == 200 && path == "/access/v1/evaluation" {
            let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            assert!(v["decision"].is_boolean(), "{v}");
        }
    }
});
