//! Differential test: `decide` (typed request building, policy slices) against the reference
//! path, Cedar's generic JSON context parser and `Authorizer::is_authorized` on the *full*
//! policy set, with the fail-closed rule re-implemented here from Cedar's answer alone.
//!
//! Decisions, reasons, errors and obligations must be identical, and so must every request
//! error (code, field and message). Workspaces: the bundled pack (its test cases, then generated
//! requests), the generated Med5G workload
//! (scaled down) and random workspaces with and without a schema; requests: valid ones and
//! adversarial ones (undeclared types and actions, broken contexts, escapes, action groups
//! changed by request entities). The generators are the ones the benchmarks use.

#[path = "../../../benches/generic/mod.rs"]
mod generic;
#[path = "../../../benches/workload/mod.rs"]
mod workload;
mod workspaces;

use std::path::Path;

use cedar_policy::{Authorizer, Context, PolicySet, Request, Response};
use serde_json::Value;

use super::*;
use crate::policy::{load_workspace, Snapshot};
use workload::Rng;

/// Counts of what the requests exercised, so the test fails if it stops exercising something.
#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    malformed: usize,
    allowed: usize,
    denied_by_forbid: usize,
    evaluation_errors: usize,
    request_errors: usize,
    fast_path: usize,
    fast_unchecked: usize,
    sliced: usize,
}

/// The request as Cedar's generic JSON path builds it: the code `decide` used before it had a
/// fast path, kept verbatim as the reference.
fn reference_request(snapshot: &Snapshot, req: &DecisionRequest) -> Result<Request, RequestError> {
    let action = req.action.uid();
    let schema = snapshot.schema();
    if let Some(schema) = schema {
        if !schema.actions().any(|a| a == action) {
            return Err(unknown_action(snapshot, req));
        }
    }
    let context = match &req.context {
        None | Some(Value::Null) => Context::empty(),
        Some(v @ Value::Object(_)) => {
            Context::from_json_value(v.clone(), schema.map(|s| (s, action))).map_err(|e| {
                RequestError::new(RequestErrorCode::InvalidContext, "context", e.to_string())
            })?
        }
        Some(_) => {
            return Err(RequestError::new(
                RequestErrorCode::Malformed,
                "context",
                "context must be a JSON object",
            ))
        }
    };
    Request::new(
        req.principal.uid().clone(),
        action.clone(),
        req.resource.uid().clone(),
        context,
        schema,
    )
    .map_err(request_validation_error)
}

/// The fail-closed rule, from Cedar's response and the policies' own effects and annotations.
fn reference_outcome(full: &PolicySet, response: &Response) -> Outcome {
    let d = response.diagnostics();
    let mut errors: Vec<EvaluationError> = d
        .errors()
        .map(|e| match e {
            cedar_policy::AuthorizationError::PolicyEvaluationError(pe) => EvaluationError {
                policy: pe.policy_id().to_string(),
                message: pe.inner().to_string(),
            },
        })
        .collect();
    errors.sort_by(|a, b| a.policy.cmp(&b.policy));
    let allow = response.decision() == cedar_policy::Decision::Allow && errors.is_empty();
    let mut reasons: Vec<String> = d
        .reason()
        .filter(|id| allow || full.policy(id).unwrap().effect() == cedar_policy::Effect::Forbid)
        .map(ToString::to_string)
        .collect();
    reasons.sort();
    let mut obligations: Vec<String> = Vec::new();
    for r in &reasons {
        let annotation =
            full.policy(&cedar_policy::PolicyId::new(r)).unwrap().annotation("obligation");
        for o in annotation.unwrap_or("").split(';').map(str::trim).filter(|o| !o.is_empty()) {
            if !obligations.iter().any(|x| x == o) {
                obligations.push(o.to_owned());
            }
        }
    }
    let decision = if allow { Decision::Allow } else { Decision::Deny };
    Outcome { decision, reasons, errors, obligations }
}

fn reference(snapshot: &Snapshot, req: &DecisionRequest) -> Result<Outcome, RequestError> {
    let request = reference_request(snapshot, req)?;
    let full = snapshot.policies();
    let response = match req.entities.as_deref() {
        Some(extra) if !extra.is_empty() => {
            let entities =
                slice::request_entities(snapshot, extra, &request, req.context.as_ref())?;
            Authorizer::new().is_authorized(&request, full, &entities)
        }
        _ => Authorizer::new().is_authorized(&request, full, snapshot.entities()),
    };
    Ok(reference_outcome(full, &response))
}

fn check(snapshot: &Snapshot, body: &Value, tally: &mut Tally) {
    tally.requests += 1;
    let Ok(req) = serde_json::from_value::<DecisionRequest>(body.clone()) else {
        tally.malformed += 1;
        return;
    };
    let got = decide(snapshot, &req);
    let want = reference(snapshot, &req);
    assert_eq!(got, want, "request: {body}");

    // The fast path, when taken, builds exactly the request Cedar's parser builds.
    if let Some(fast) = context::fast_request(&req, snapshot.schema(), snapshot.request_shapes()) {
        tally.fast_path += 1;
        let shape = snapshot.request_shapes().action(req.action.uid());
        if shape.is_some_and(|s| {
            s.verified
                && s.principals.contains(req.principal.uid().type_name())
                && s.resources.contains(req.resource.uid().type_name())
        }) {
            tally.fast_unchecked += 1;
        }
        let slow =
            reference_request(snapshot, &req).expect("the fast path accepted what Cedar rejects");
        assert_eq!(fast.context(), slow.context(), "request: {body}");
        assert_eq!(
            (fast.principal(), fast.action(), fast.resource()),
            (slow.principal(), slow.action(), slow.resource())
        );
    }
    let sliced = snapshot.policies_for(req.principal.uid(), req.action.uid(), req.resource.uid());
    if sliced.policies().count() < snapshot.policies().policies().count() {
        tally.sliced += 1;
    }
    match got {
        Err(_) => tally.request_errors += 1,
        Ok(o) if !o.errors.is_empty() => tally.evaluation_errors += 1,
        Ok(o) if o.decision == Decision::Allow => tally.allowed += 1,
        Ok(o) if !o.reasons.is_empty() => tally.denied_by_forbid += 1,
        Ok(_) => {}
    }
}

fn load(files: &[(String, String)]) -> (tempfile::TempDir, Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    match load_workspace(dir.path()) {
        Ok(l) => (dir, l.snapshot),
        Err(e) => panic!("generated workspace does not load: {:#?}\n{files:#?}", e.diagnostics),
    }
}

/// Valid and adversarial generated requests, plus (without a schema) requests whose own
/// entities move their action into another action group.
fn run_generated(snapshot: &Snapshot, rng: &mut Rng, n: usize, tally: &mut Tally) {
    let gen = generic::Generator::new(snapshot);
    for i in 0..n {
        let mut body = if i % 2 == 0 { gen.valid(rng) } else { gen.adversarial(rng) };
        if snapshot.schema().is_none() && rng.chance(8) {
            let action = body["action"].clone();
            let group = *rng.pick(&["readers", "all", "read"]);
            body["entities"] = serde_json::json!([{
                "uid": {"__entity": action_ref(&action)},
                "attrs": {},
                "parents": [{"type": "App::Action", "id": group}]
            }]);
        }
        check(snapshot, &body, tally);
    }
}

fn action_ref(action: &Value) -> Value {
    let uid: Option<cedar_policy::EntityUid> = action.as_str().and_then(|s| s.parse().ok());
    match uid {
        Some(u) => serde_json::json!({"type": u.type_name().to_string(), "id": u.id().unescaped()}),
        None => serde_json::json!({"type": "Action", "id": "ping"}),
    }
}

#[test]
fn decide_equals_cedar_on_the_full_set() {
    let mut tally = Tally::default();
    let mut rng = Rng::new(0xd1ff);

    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let bundled = load_workspace(&pack).unwrap().snapshot;
    let cases = generic::case_requests(&pack);
    assert!(cases.len() >= 100, "the pack's test cases: {}", cases.len());
    for body in &cases {
        check(&bundled, body, &mut tally);
    }
    run_generated(&bundled, &mut rng, 2_400, &mut tally);

    let params = workload::Params {
        terminals: 150,
        clinicians: 60,
        patients: 200,
        requests: 1_200,
        seed: 7,
    };
    let med5g = workload::generate(&params);
    let (_dir, large) = load(&med5g.files);
    for body in &med5g.requests {
        check(&large, &serde_json::from_str(body).unwrap(), &mut tally);
    }
    run_generated(&large, &mut rng, 800, &mut tally);

    for seed in 0..16u64 {
        let (_dir, snapshot) = load(&workspaces::random_workspace(seed, seed % 2 == 0));
        run_generated(&snapshot, &mut rng, 400, &mut tally);
    }

    eprintln!("{tally:#?}");
    assert!(tally.requests - tally.malformed >= 10_000, "{tally:?}");
    // Every kind of answer was compared, and both fast paths were taken often.
    assert!(tally.allowed >= 500, "{tally:?}");
    assert!(tally.denied_by_forbid >= 500, "{tally:?}");
    assert!(tally.evaluation_errors >= 200, "{tally:?}");
    assert!(tally.request_errors >= 500, "{tally:?}");
    assert!(tally.fast_path >= 4_000, "{tally:?}");
    assert!(tally.fast_unchecked >= 2_000, "{tally:?}");
    assert!(tally.sliced >= 5_000, "{tally:?}");
}
