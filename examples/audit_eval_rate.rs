//! In-process evaluation rate over the requests of a decision log: the reference that
//! `scripts/audit-bench.sh` divides `medpdp audit replay`'s rate by.
//!
//! Reads every replayable decision record of `<data>/audit` into memory first (so reading and
//! parsing are not timed), loads the archived versions, then times only `decide` over all of
//! them on `threads` threads (default: one per core, as replay uses), and on one thread over
//! the first 20,000.
//!
//! Usage: `cargo run --release --example audit_eval_rate -- <data dir> [threads]`
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool"
)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use medpdp::audit::archive::VersionArchive;
use medpdp::audit::record::{LoggedRecord, RecordKind};
use medpdp::audit::segment::LogReader;
use medpdp::decide::{decide, DecisionRequest};
use medpdp::policy::Snapshot;

/// The allocator `medpdp audit replay` uses, so the two rates compare.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().expect("usage: audit_eval_rate <data dir> [threads]"));
    let threads: usize = args
        .next()
        .map(|t| t.parse().expect("threads is a number"))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let archive = VersionArchive::new(data.join("versions"));
    let mut snapshots: HashMap<String, Arc<Snapshot>> = HashMap::new();
    let mut work: Vec<(Arc<Snapshot>, DecisionRequest)> = Vec::new();
    for line in LogReader::open(&data.join("audit")).expect("a decision log") {
        let rec: LoggedRecord = serde_json::from_slice(&line.unwrap().bytes).unwrap();
        if rec.kind != RecordKind::Decision || !rec.masked.is_empty() || rec.request_error.is_some()
        {
            continue;
        }
        let version = rec.policy_version.unwrap();
        let snapshot = snapshots
            .entry(version.clone())
            .or_insert_with(|| Arc::new(archive.load(&version).unwrap()))
            .clone();
        work.push((snapshot, serde_json::from_value(rec.request.unwrap()).unwrap()));
    }
    let work = Arc::new(work);
    for t in [threads, 1] {
        let started = Instant::now();
        let handles: Vec<_> = (0..t)
            .map(|i| {
                let work = Arc::clone(&work);
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    let limit = if t == 1 { 20_000 } else { usize::MAX };
                    for (snapshot, req) in work.iter().take(limit).skip(i).step_by(t) {
                        let _ = std::hint::black_box(decide(snapshot, req));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let n: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "in-process decide: {n} decisions in {secs:.2} s = {:.0} decisions/s ({t} threads)",
            n as f64 / secs
        );
    }
}
