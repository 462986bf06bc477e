//! In-process decision benchmarks (criterion): `cargo bench --bench decide`.
//!
//! For the bundled pack (requests: its test cases) and for the generated large workspace
//! (`workload`, 10,000 requests), each over its distinct valid requests (every iteration takes
//! the next one):
//! - `cedar_full`: Cedar's `is_authorized` on the full policy set, request pre-built: the
//!   reference rate the service is compared with in BENCHMARKS.md;
//! - `cedar_sliced`: the same on the request's policy slice;
//! - `reference`: what evaluation cost before slicing and typed building: Cedar's generic JSON
//!   context parser, `Request::new` with the schema, `is_authorized` on the full set;
//! - `decide`: `medpdp::decide::decide` end to end (typed request, slice, fail-closed outcome);
//! - `parse_and_decide`: the request body parsed from JSON text, then `decide` (what one HTTP
//!   request costs minus HTTP).
//!
//! `store/*` compares `decide` on the large workspace with 1,000 and with 100,000 terminals.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark set-up fails loudly")]

mod generic;
mod workload;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use cedar_policy::{Authorizer, Context, Request};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use medpdp::decide::{decide, DecisionRequest};
use medpdp::policy::{load_workspace, Snapshot};

struct Case {
    snapshot: Snapshot,
    bodies: Vec<String>,
    requests: Vec<DecisionRequest>,
    cedar: Vec<Request>,
}

impl Case {
    /// Keeps the valid requests only (invalid ones measure error paths, not evaluation).
    fn new(snapshot: Snapshot, bodies: Vec<String>) -> Self {
        let mut case =
            Case { snapshot, bodies: Vec::new(), requests: Vec::new(), cedar: Vec::new() };
        for body in bodies {
            let req: DecisionRequest = serde_json::from_str(&body).unwrap();
            if let (Ok(_), Some(cedar)) =
                (decide(&case.snapshot, &req), generic_request(&case.snapshot, &req))
            {
                case.bodies.push(body);
                case.requests.push(req);
                case.cedar.push(cedar);
            }
        }
        assert!(case.requests.len() > 100, "too few valid requests");
        case
    }
}

/// Cedar's generic path: JSON context parsed by Cedar, request validated against the schema.
fn generic_request(snapshot: &Snapshot, req: &DecisionRequest) -> Option<Request> {
    let schema = snapshot.schema();
    let ctx = Context::from_json_value(req.context.clone()?, schema.map(|s| (s, req.action.uid())))
        .ok()?;
    Request::new(
        req.principal.uid().clone(),
        req.action.uid().clone(),
        req.resource.uid().clone(),
        ctx,
        schema,
    )
    .ok()
}

fn write_workspace(files: &[(String, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn large(terminals: usize) -> Case {
    let params = workload::Params { terminals, ..workload::Params::LARGE };
    let w = workload::generate(&params);
    let dir = write_workspace(&w.files);
    let snapshot = load_workspace(dir.path()).unwrap().snapshot;
    Case::new(snapshot, w.requests)
}

/// The bundled pack with its own test cases as requests (the scenarios it was written for),
/// or generated requests when it has none.
fn bundled() -> Case {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let snapshot = load_workspace(&dir).unwrap().snapshot;
    let cases: Vec<String> = generic::case_requests(&dir)
        .into_iter()
        .filter(|r| r.get("entities").is_none())
        .map(|r| r.to_string())
        .collect();
    if cases.len() > 100 {
        return Case::new(snapshot, cases);
    }
    let gen = generic::Generator::new(&snapshot);
    let mut rng = workload::Rng::new(0xb0b);
    let bodies = (0..5_000).map(|_| gen.valid(&mut rng).to_string()).collect();
    Case::new(snapshot, bodies)
}

/// Runs `f` on the next input each iteration.
fn rotating<T>(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    items: &[T],
    mut f: impl FnMut(&T),
) {
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % items.len();
            f(&items[i]);
        })
    });
}

fn evaluation(c: &mut Criterion, name: &str, case: &Case) {
    let s = &case.snapshot;
    let auth = Authorizer::new();
    let mut g = c.benchmark_group(name);
    rotating(&mut g, "cedar_full", &case.cedar, |r| {
        black_box(auth.is_authorized(r, s.policies(), s.entities()));
    });
    rotating(&mut g, "cedar_sliced", &case.cedar, |r| {
        let set =
            s.policies_for(r.principal().unwrap(), r.action().unwrap(), r.resource().unwrap());
        black_box(auth.is_authorized(r, set, s.entities()));
    });
    rotating(&mut g, "reference", &case.requests, |r| {
        let request = generic_request(s, r).unwrap();
        black_box(auth.is_authorized(&request, s.policies(), s.entities()));
    });
    rotating(&mut g, "decide", &case.requests, |r| {
        black_box(decide(s, r).unwrap());
    });
    rotating(&mut g, "parse_and_decide", &case.bodies, |body| {
        let r: DecisionRequest = serde_json::from_str(body).unwrap();
        black_box(decide(s, &r).unwrap());
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    evaluation(c, "bundled", &bundled());
    let large_1k = large(1_000);
    evaluation(c, "large", &large_1k);

    let large_100k = large(100_000);
    let mut g = c.benchmark_group("store");
    for (name, case) in [("decide_1k_terminals", &large_1k), ("decide_100k_terminals", &large_100k)]
    {
        rotating(&mut g, name, &case.requests, |r| {
            black_box(decide(&case.snapshot, r).unwrap());
        });
    }
    g.finish();
}

criterion_group! {
    name = decide_benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(decide_benches);

/// The allocator `medpdp serve` uses, for every figure alike (Cedar's own included).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
