//! `GET /openapi.json` stays in step with the router: the served document, the hand-kept route
//! list (`medpdp::http::ROUTES`) and the routes the server really answers must all agree, and
//! every schema the document references exists.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::authzen::{cert, send};
use crate::common::repo;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.to_uppercase().as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// True when the router itself refused the request (no route, or not this method), as opposed
/// to a handler answering it.
fn unrouted(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && body["error"]["message"] == "no such endpoint")
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes() {
    let t = cert().await;
    let (s, doc) = t.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "medpdp");
    let listed: BTreeSet<(String, String)> =
        medpdp::http::ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(listed.len(), medpdp::http::ROUTES.len(), "ROUTES has duplicates");
    let in_doc = documented(&doc);
    assert_eq!(
        in_doc.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but missing from medpdp::http::ROUTES"
    );
    assert_eq!(
        listed.difference(&in_doc).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in ROUTES but not documented: annotate the handler and register it with routes!"
    );
    assert_eq!(doc, serde_json::to_value(medpdp::http::openapi_document()).unwrap());
    t.stop().await;
}

#[tokio::test]
async fn every_documented_route_is_routed_and_nothing_else_on_its_path() {
    let t = cert().await;
    let (_, doc) = t.get("/openapi.json").await;
    let in_doc = documented(&doc);
    let paths: BTreeSet<&String> = in_doc.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let ct = [("content-type", "application/json")];
            let (s, _, body) = send(&t, m, path, Some("{}"), &ct).await;
            let is_documented = in_doc.contains(&(method.to_owned(), path.clone()));
            assert_eq!(
                !unrouted(s, &body),
                is_documented,
                "{method} {path} answered {s} {body}; documented: {is_documented}"
            );
        }
    }
    let (s, _, body) = send(&t, Method::GET, "/v1/not-a-route", None, &[]).await;
    assert!(unrouted(s, &body));
    t.stop().await;
}

#[tokio::test]
async fn every_operation_is_described_and_every_reference_resolves() {
    let t = cert().await;
    let (_, doc) = t.get("/openapi.json").await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let name =
            target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target}"));
        assert!(schemas.contains_key(name), "dangling reference {target}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.contains_key("200") || responses.contains_key("201"),
                "{method} {path} documents no success answer"
            );
            for (code, r) in responses {
                // EST (RFC 7030), the CRL and metrics are not JSON: PKCS#7, PKCS#10, DER,
                // Prometheus and plain text.
                let binary = path.starts_with("/.well-known/est/")
                    || path == "/v1/ca/crl"
                    || path == "/metrics";
                let typed = r["content"]
                    .as_object()
                    .is_some_and(|c| !c.is_empty() && c.values().all(|m| m["schema"].is_object()));
                assert!(
                    r["content"]["application/json"]["schema"].is_object() || (binary && typed),
                    "{method} {path} {code} has no JSON schema"
                );
                let json_error = r["content"]["application/json"].is_object();
                if json_error
                    && (code.starts_with('4') || (code == "503" && path != "/health/ready"))
                {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorEnvelope",
                        "{method} {path} {code}"
                    );
                }
            }
            if method == "post" && path.starts_with("/.well-known/est/") {
                assert!(
                    op["requestBody"]["content"]["application/pkcs10"]["schema"].is_object(),
                    "{method} {path}"
                );
            } else if method == "post" && path != "/v1/admin/reload" {
                assert!(
                    op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                    "{method} {path}"
                );
            }
        }
    }
    for name in [
        "ErrorEnvelope",
        "DecisionRequest",
        "DecisionResponse",
        "EvaluationRequest",
        "EvaluationsRequest",
        "EvaluationResponse",
        "PdpMetadata",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    t.stop().await;
}

/// Routes added with plain axum calls would bypass the document: only `routes!` may add them.
#[test]
fn routes_are_only_added_through_the_documented_router() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo("src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for call in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                "routing::get",
                "routing::post",
            ] {
                assert!(
                    !code.contains(call),
                    "{}:{}: `{call}` bypasses the OpenAPI document; use `routes!`",
                    file.display(),
                    i + 1
                );
            }
        }
    }
}
