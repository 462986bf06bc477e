//! Benchmark helper for `scripts/bench-http.sh` (not part of the product).
//!
//! - `workload write OUT [--terminals N] [--requests N]` writes the generated large workspace to
//!   `OUT/workspace/` and one request body per line to `OUT/requests.jsonl`;
//! - `workload bodies WORKSPACE OUT [--requests N]` writes N valid request bodies for any
//!   workspace (generated from its schema and entities) to `OUT`, one per line;
//! - `workload inprocess WORKSPACE REQUESTS [--secs S] [--only full|sliced|reference|decide]` measures, on one thread, the rate of
//!   Cedar's `is_authorized` on the full policy set (the reference the service is compared
//!   with), on the policy slices, of the pre-optimisation path (`reference`: Cedar's JSON
//!   context parser and the full set) and of `medpdp::decide::decide` end to end, and the time
//!   to load the workspace. Each rate is a tight loop over all requests without per-call timers.

#![allow(clippy::print_stdout)] // a command-line helper: stdout is its output

#[path = "../benches/generic/mod.rs"]
mod generic;
#[path = "../benches/workload/mod.rs"]
mod workload;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, Request};
use medpdp::decide::{decide, Decision, DecisionRequest};
use medpdp::policy::{load_workspace, Snapshot};

/// The allocator `medpdp serve` uses, so that in-process rates compare with the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("write") if args.len() >= 2 => write(Path::new(&args[1]), &args[2..]),
        Some("bodies") if args.len() >= 3 => {
            bodies(Path::new(&args[1]), Path::new(&args[2]), &args[3..])
        }
        Some("inprocess") if args.len() >= 3 => {
            inprocess(Path::new(&args[1]), Path::new(&args[2]), &args[3..])
        }
        _ => Err("usage: workload write OUT [--terminals N] [--requests N] | \
                  workload bodies WORKSPACE OUT [--requests N] | \
                  workload inprocess WORKSPACE REQUESTS [--secs S] [--only full|sliced|reference|decide]"
            .to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag(rest: &[String], name: &str, default: usize) -> Result<usize, String> {
    match rest.iter().position(|a| a == name) {
        Some(i) => rest
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

fn write(out: &Path, rest: &[String]) -> Result<(), String> {
    let mut params = workload::Params::LARGE;
    params.terminals = flag(rest, "--terminals", params.terminals)?;
    params.requests = flag(rest, "--requests", params.requests)?;
    let w = workload::generate(&params);
    let root = out.join("workspace");
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| e.to_string())?;
    }
    for (path, text) in &w.files {
        let p = root.join(path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let mut lines = w.requests.join("\n");
    lines.push('\n');
    std::fs::write(out.join("requests.jsonl"), lines).map_err(|e| e.to_string())?;
    println!(
        "wrote {} ({} entities) and {} requests",
        root.display(),
        w.entity_count,
        w.requests.len()
    );
    Ok(())
}

fn bodies(root: &Path, out: &Path, rest: &[String]) -> Result<(), String> {
    let n = flag(rest, "--requests", 10_000)?;
    let snapshot = load_workspace(root).map_err(|e| format!("{e}: {:?}", e.diagnostics))?.snapshot;
    let gen = generic::Generator::new(&snapshot);
    let mut rng = workload::Rng::new(0xb0d1e5);
    let mut lines = String::new();
    let (mut written, mut tries) = (0, 0);
    while written < n && tries < n * 20 {
        tries += 1;
        let body = gen.valid(&mut rng);
        let valid = serde_json::from_value::<DecisionRequest>(body.clone())
            .is_ok_and(|r| decide(&snapshot, &r).is_ok());
        if valid {
            lines.push_str(&body.to_string());
            lines.push('\n');
            written += 1;
        }
    }
    std::fs::write(out, lines).map_err(|e| e.to_string())?;
    println!("wrote {written} valid request bodies to {}", out.display());
    Ok(())
}

fn inprocess(root: &Path, requests: &Path, rest: &[String]) -> Result<(), String> {
    let secs = Duration::from_secs(flag(rest, "--secs", 3)? as u64);
    let started = Instant::now();
    let snapshot = load_workspace(&PathBuf::from(root))
        .map_err(|e| format!("{e}: {:?}", e.diagnostics))?
        .snapshot;
    let load = started.elapsed();
    let text = std::fs::read_to_string(requests).map_err(|e| e.to_string())?;
    let reqs: Vec<DecisionRequest> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let cedar: Vec<Request> = reqs.iter().filter_map(|r| cedar_request(&snapshot, r)).collect();
    let (slices, largest) = snapshot.slice_stats();
    println!(
        "workspace: {} policies, {} entities, {} distinct slices (largest {largest}), loaded in {:.3} s",
        snapshot.meta().policy_count,
        snapshot.meta().entity_count,
        slices,
        load.as_secs_f64()
    );
    let outcomes: Vec<_> = reqs.iter().map(|r| decide(&snapshot, r)).collect();
    let allowed =
        outcomes.iter().filter(|o| matches!(o, Ok(o) if o.decision == Decision::Allow)).count();
    let errors = outcomes.iter().filter(|o| o.is_err()).count();
    println!(
        "requests: {} ({allowed} allowed, {errors} rejected as invalid), {} built by Cedar",
        reqs.len(),
        cedar.len()
    );
    let only = rest.iter().position(|a| a == "--only").and_then(|i| rest.get(i + 1));
    let runs = |name: &str| only.is_none_or(|o| o == name);
    let secs_for = |name: &str| if runs(name) { secs } else { Duration::ZERO };
    let auth = Authorizer::new();
    let (full, _) = rate(secs_for("full"), cedar.len(), |i| {
        black_box(auth.is_authorized(&cedar[i], snapshot.policies(), snapshot.entities()));
    });
    let (sliced, _) = rate(secs_for("sliced"), cedar.len(), |i| {
        let r = &cedar[i];
        let (Some(p), Some(a), Some(res)) = (r.principal(), r.action(), r.resource()) else {
            return;
        };
        let set = snapshot.policies_for(p, a, res);
        black_box(auth.is_authorized(r, set, snapshot.entities()));
    });
    // What a decision cost before slicing and typed building: Cedar's generic JSON path and
    // the full set (the fail-closed mapping of the answer left out).
    let (reference, reference_calls) = rate(secs_for("reference"), reqs.len(), |i| {
        if let Some(r) = cedar_request(&snapshot, &reqs[i]) {
            black_box(auth.is_authorized(&r, snapshot.policies(), snapshot.entities()));
        }
    });
    let (end_to_end, decide_calls) = rate(secs_for("decide"), reqs.len(), |i| {
        let _ = black_box(decide(&snapshot, &reqs[i]));
    });
    println!("cedar_full_rps {full:.0}");
    println!("cedar_sliced_rps {sliced:.0}");
    println!("reference_rps {reference:.0}");
    println!("reference_calls {reference_calls}");
    println!("decide_rps {end_to_end:.0}");
    println!("decide_calls {decide_calls}");
    println!("load_secs {:.3}", load.as_secs_f64());
    Ok(())
}

/// The request as Cedar's JSON path builds it (the reference the service is compared with).
fn cedar_request(snapshot: &Snapshot, r: &DecisionRequest) -> Option<Request> {
    let schema = snapshot.schema();
    let ctx = cedar_policy::Context::from_json_value(
        r.context.clone().unwrap_or_default(),
        schema.map(|s| (s, r.action.uid())),
    )
    .ok()?;
    Request::new(
        r.principal.uid().clone(),
        r.action.uid().clone(),
        r.resource.uid().clone(),
        ctx,
        schema,
    )
    .ok()
}

/// Calls per second of `f` over `n` inputs, cycling, for about `secs` (after a short warm-up).
fn rate(secs: Duration, n: usize, mut f: impl FnMut(usize)) -> (f64, usize) {
    if n == 0 || secs.is_zero() {
        return (0.0, 0);
    }
    for i in 0..n.min(2_000) {
        f(i);
    }
    let started = Instant::now();
    let mut calls = 0usize;
    while started.elapsed() < secs {
        for _ in 0..1_000 {
            f(calls % n);
            calls += 1;
        }
    }
    (calls as f64 / started.elapsed().as_secs_f64(), calls)
}
