//! Any bytes as a decision-log segment: splitting lines, decoding records, verifying the chain
//! and signatures, and crash recovery (which truncates a torn tail) never panic; recovery
//! leaves a log that verification reads to its end.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use medpdp::audit::checkpoint::SigningKey;
use medpdp::audit::record::{canonical_hash, split_line, LoggedRecord};
use medpdp::audit::segment::recover;
use medpdp::audit::verify::verify_log;

struct Setup {
    dir: tempfile::TempDir,
    key: SigningKey,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = SigningKey::load_or_create(&dir.path().join("key.pk8")).expect("key");
        std::fs::create_dir_all(dir.path().join("log")).expect("log dir");
        Setup { dir, key }
    })
}

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        if let Some(split) = split_line(line) {
            let _ = canonical_hash(split.body_open);
        }
        let _ = serde_json::from_slice::<LoggedRecord>(line);
    }
    let s = setup();
    let log = s.dir.path().join("log");
    let segment = log.join("00000000000000000001.jsonl");
    std::fs::write(&segment, data).expect("write segment");
    let _ = verify_log(&log, &s.key.public_key(), None);
    if recover(&log).is_ok() {
        let _ = verify_log(&log, &s.key.public_key(), None);
    }
    let _ = std::fs::remove_file(&segment);
});
