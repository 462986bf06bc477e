//! The Search APIs: which stored subjects, which stored resources, which actions would be
//! permitted, with the rest of the request fixed.
//!
//! Answered by brute force, so a search result is exactly what an evaluation would decide:
//! every stored entity of the searched type (every action, for an action search) is evaluated
//! in a stable order through [`crate::http::evaluate`] (each is a logged decision). One request
//! evaluates at most `[authzen] search_scan_limit` candidates and at most `page.limit` results;
//! when candidates remain, `page.next_token` continues after the last one evaluated. A page may
//! then hold fewer results than the limit, even none.
//!
//! The page token is opaque to PEPs: the key of the last candidate evaluated and a fingerprint
//! of the request without its token. Keys are the candidates' Cedar uids, so a token keeps its
//! meaning across reloads; a token with a changed request is refused, as the spec asks.

use std::fmt::Write as _;

use axum::extract::State;
use axum::{Extension, Json};
use cedar_policy::EntityUid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::index::sort_key;
use super::mapping::{action_name, Mapper};
use super::model::{Action, AuthzenBody, Entity};
use super::{parse, AuthzenApi, RequestIdOf};
use crate::decide::{Decision, DecisionRequest, EntityRef, RequestErrorCode};
use crate::http::{
    evaluate_deferred, ApiError, AppState, DecisionSource, ErrorEnvelope, EvaluateError,
};
use crate::identity::Caller;

/// Results per page when the request does not say.
const DEFAULT_LIMIT: usize = 100;
/// Most results one page returns, whatever `page.limit` asks.
const MAX_LIMIT: usize = 1000;

/// The searched entity: only `type` counts; `id` and `properties` are ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct SearchedEntity {
    /// The type to search (namespace default applies).
    #[serde(rename = "type")]
    pub(crate) ty: String,
}

/// Paging of a search request.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub(crate) struct PageRequest {
    /// `next_token` of the previous answer; the rest of the request must be unchanged.
    pub(crate) token: Option<String>,
    /// Most results to return (default 100, at most 1000).
    pub(crate) limit: Option<u64>,
}

/// `POST /access/v1/search/subject`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct SubjectSearchRequest {
    /// The subject type searched.
    pub(crate) subject: SearchedEntity,
    /// The action.
    pub(crate) action: Action,
    /// The resource.
    pub(crate) resource: Entity,
    /// The environment.
    #[schema(value_type = Option<Object>)]
    pub(crate) context: Option<Map<String, Value>>,
    /// Paging.
    pub(crate) page: Option<PageRequest>,
}

/// `POST /access/v1/search/resource`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct ResourceSearchRequest {
    /// The subject.
    pub(crate) subject: Entity,
    /// The action.
    pub(crate) action: Action,
    /// The resource type searched.
    pub(crate) resource: SearchedEntity,
    /// The environment.
    #[schema(value_type = Option<Object>)]
    pub(crate) context: Option<Map<String, Value>>,
    /// Paging.
    pub(crate) page: Option<PageRequest>,
}

/// `POST /access/v1/search/action`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct ActionSearchRequest {
    /// The subject.
    pub(crate) subject: Entity,
    /// The resource.
    pub(crate) resource: Entity,
    /// The environment.
    #[schema(value_type = Option<Object>)]
    pub(crate) context: Option<Map<String, Value>>,
    /// Paging.
    pub(crate) page: Option<PageRequest>,
}

/// Paging of a search answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PageResponse {
    /// Empty when there is nothing more; else send it as `page.token` for the next page.
    pub(crate) next_token: String,
    /// Results in this answer.
    pub(crate) count: usize,
}

/// A subject or resource found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FoundEntity {
    /// The type, as the request named it.
    #[serde(rename = "type")]
    pub(crate) ty: String,
    /// The id.
    pub(crate) id: String,
}

/// An action found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FoundAction {
    /// The action name (the Cedar uid when outside the configured namespace).
    pub(crate) name: String,
}

/// The answer of a subject or resource search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EntitySearchResponse {
    /// Paging.
    pub(crate) page: PageResponse,
    /// Permitted entities of the searched type.
    pub(crate) results: Vec<FoundEntity>,
}

/// The answer of an action search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ActionSearchResponse {
    /// Paging.
    pub(crate) page: PageResponse,
    /// Permitted actions.
    pub(crate) results: Vec<FoundAction>,
}

/// Which side of the request the candidates fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Subject,
    Resource,
    Action,
}

/// A search, ready to run: `template` with the searched side replaced per candidate.
struct Search {
    side: Side,
    template: DecisionRequest,
    /// For action search the context is pruned per action.
    raw_context: Option<Map<String, Value>>,
    api: AuthzenApi,
}

#[utoipa::path(
    post,
    path = "/access/v1/search/subject",
    tag = "authzen",
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed in the answer; generated when absent")),
    request_body = SubjectSearchRequest,
    responses(
        (status = 200, description = "Stored subjects of the type that would be permitted", body = EntitySearchResponse),
        (status = 400, description = "Invalid request or page token", body = ErrorEnvelope),
        (status = 503, description = "No valid policy set is active", body = ErrorEnvelope),
    )
)]
pub(super) async fn search_subject(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    RequestIdOf(request_id): RequestIdOf,
    AuthzenBody(body): AuthzenBody,
) -> Result<Json<EntitySearchResponse>, ApiError> {
    let fingerprint = fingerprint(&body);
    let req: SubjectSearchRequest = parse(Value::Object(body), "")?;
    let run = |m: Mapper<'_>| -> Result<_, ApiError> {
        let resource = m.entity_uid(&req.resource.ty, &req.resource.id, "", "resource")?;
        let action = m.action_uid(&req.action.name, "")?;
        let searched = m.type_name(&req.subject.ty, "", "subject")?;
        // The searched side is a placeholder, replaced by each candidate.
        let template = DecisionRequest {
            principal: EntityRef(resource.clone()),
            action: EntityRef(action.clone()),
            resource: EntityRef(resource.clone()),
            context: m.context(
                req.context.as_ref(),
                req.action.properties.as_ref(),
                &action,
                "",
            )?,
            entities: m.request_entities(
                &[(&resource, req.resource.properties.as_ref(), "resource")],
                "",
            )?,
        };
        let search = Search {
            side: Side::Subject,
            template,
            raw_context: None,
            api: AuthzenApi::SearchSubject,
        };
        Ok((search, m.index.entities_of(&searched).to_vec()))
    };
    let (found, page) =
        run_search(&state, caller, request_id, req.page.as_ref(), &fingerprint, run).await?;
    let results = found
        .iter()
        .map(|uid| FoundEntity { ty: req.subject.ty.clone(), id: uid.id().unescaped().to_owned() })
        .collect();
    Ok(Json(EntitySearchResponse { page, results }))
}

#[utoipa::path(
    post,
    path = "/access/v1/search/resource",
    tag = "authzen",
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed in the answer; generated when absent")),
    request_body = ResourceSearchRequest,
    responses(
        (status = 200, description = "Stored resources of the type that would be permitted", body = EntitySearchResponse),
        (status = 400, description = "Invalid request or page token", body = ErrorEnvelope),
        (status = 503, description = "No valid policy set is active", body = ErrorEnvelope),
    )
)]
pub(super) async fn search_resource(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    RequestIdOf(request_id): RequestIdOf,
    AuthzenBody(body): AuthzenBody,
) -> Result<Json<EntitySearchResponse>, ApiError> {
    let fingerprint = fingerprint(&body);
    let req: ResourceSearchRequest = parse(Value::Object(body), "")?;
    let run = |m: Mapper<'_>| -> Result<_, ApiError> {
        let subject = m.entity_uid(&req.subject.ty, &req.subject.id, "", "subject")?;
        let action = m.action_uid(&req.action.name, "")?;
        let searched = m.type_name(&req.resource.ty, "", "resource")?;
        // The searched side is a placeholder, replaced by each candidate.
        let template = DecisionRequest {
            principal: EntityRef(subject.clone()),
            action: EntityRef(action.clone()),
            resource: EntityRef(subject.clone()),
            context: m.context(
                req.context.as_ref(),
                req.action.properties.as_ref(),
                &action,
                "",
            )?,
            entities: m
                .request_entities(&[(&subject, req.subject.properties.as_ref(), "subject")], "")?,
        };
        let search = Search {
            side: Side::Resource,
            template,
            raw_context: None,
            api: AuthzenApi::SearchResource,
        };
        Ok((search, m.index.entities_of(&searched).to_vec()))
    };
    let (found, page) =
        run_search(&state, caller, request_id, req.page.as_ref(), &fingerprint, run).await?;
    let results = found
        .iter()
        .map(|uid| FoundEntity { ty: req.resource.ty.clone(), id: uid.id().unescaped().to_owned() })
        .collect();
    Ok(Json(EntitySearchResponse { page, results }))
}

#[utoipa::path(
    post,
    path = "/access/v1/search/action",
    tag = "authzen",
    params(("X-Request-ID" = Option<String>, Header, description = "Echoed in the answer; generated when absent")),
    request_body = ActionSearchRequest,
    responses(
        (status = 200, description = "Actions that would be permitted", body = ActionSearchResponse),
        (status = 400, description = "Invalid request or page token", body = ErrorEnvelope),
        (status = 503, description = "No valid policy set is active", body = ErrorEnvelope),
    )
)]
pub(super) async fn search_action(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    RequestIdOf(request_id): RequestIdOf,
    AuthzenBody(body): AuthzenBody,
) -> Result<Json<ActionSearchResponse>, ApiError> {
    let fingerprint = fingerprint(&body);
    let req: ActionSearchRequest = parse(Value::Object(body), "")?;
    let namespace = state.authzen.namespace.clone();
    let run = |m: Mapper<'_>| -> Result<_, ApiError> {
        let subject = m.entity_uid(&req.subject.ty, &req.subject.id, "", "subject")?;
        let resource = m.entity_uid(&req.resource.ty, &req.resource.id, "", "resource")?;
        // The searched side is a placeholder, replaced by each candidate.
        let template = DecisionRequest {
            principal: EntityRef(subject.clone()),
            action: EntityRef(subject.clone()),
            resource: EntityRef(resource.clone()),
            context: None,
            entities: m.request_entities(
                &[
                    (&subject, req.subject.properties.as_ref(), "subject"),
                    (&resource, req.resource.properties.as_ref(), "resource"),
                ],
                "",
            )?,
        };
        let search = Search {
            side: Side::Action,
            template,
            raw_context: req.context.clone(),
            api: AuthzenApi::SearchAction,
        };
        Ok((search, m.index.actions().to_vec()))
    };
    let (found, page) =
        run_search(&state, caller, request_id, req.page.as_ref(), &fingerprint, run).await?;
    let results =
        found.iter().map(|uid| FoundAction { name: action_name(&namespace, uid) }).collect();
    Ok(Json(ActionSearchResponse { page, results }))
}

/// Evaluates candidates from the page position on; returns the permitted ones and the page.
async fn run_search<F>(
    state: &AppState,
    caller: Option<Extension<Caller>>,
    request_id: String,
    page: Option<&PageRequest>,
    fingerprint: &str,
    prepare: F,
) -> Result<(Vec<EntityUid>, PageResponse), ApiError>
where
    F: FnOnce(Mapper<'_>) -> Result<(Search, Vec<EntityUid>), ApiError>,
{
    let limit = match page.and_then(|p| p.limit) {
        None => DEFAULT_LIMIT,
        Some(0) => {
            return Err(ApiError::bad_request("invalid_page", "`page.limit` must be at least 1")
                .with_field("page.limit"))
        }
        Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
    };
    let after = match page.and_then(|p| p.token.as_deref()).filter(|t| !t.is_empty()) {
        Some(token) => Some(decode_token(token, fingerprint)?),
        None => None,
    };
    let snapshot = state.store.current().ok_or_else(ApiError::no_policy)?;
    let index = state.authzen.index_for(&snapshot)?;
    let mapper = Mapper { namespace: &state.authzen.namespace, snapshot: &snapshot, index: &index };
    let (search, candidates) = prepare(mapper)?;
    let start = after.map_or(0, |key| candidates.partition_point(|u| sort_key(u) <= key));
    let caller = caller.map(|Extension(c)| c);
    let scan_limit = state.authzen.search_scan_limit;
    let mut found = Vec::new();
    let mut recorded = Vec::new();
    let mut next = start;
    for (i, uid) in candidates.iter().enumerate().skip(start) {
        if found.len() == limit || i - start == scan_limit {
            break;
        }
        next = i + 1;
        let mut req = search.template.clone();
        match search.side {
            Side::Subject => req.principal = EntityRef(uid.clone()),
            Side::Resource => req.resource = EntityRef(uid.clone()),
            Side::Action => {
                req.action = EntityRef(uid.clone());
                req.context = mapper.context(search.raw_context.as_ref(), None, uid, "")?;
            }
        }
        let source = DecisionSource::Authzen {
            api: search.api,
            request_id: request_id.clone(),
            index: Some(i),
        };
        // Every candidate's decision is recorded; their durability is awaited once, below.
        match evaluate_deferred(state, &snapshot, caller.as_ref(), &source, &req).await {
            Ok(r) => {
                if r.response().decision == Decision::Allow {
                    found.push(uid.clone());
                }
                recorded.push(r);
            }
            Err(e @ EvaluateError::Audit(_)) => return Err(e.into()),
            Err(EvaluateError::Request(e)) => match (search.side, e.code) {
                // What the model cannot ask (an undeclared type or action, or a type the action
                // does not apply to) is never permitted. For subject and resource searches it
                // is the same for every candidate: nothing can be found.
                (Side::Subject | Side::Resource, RequestErrorCode::InvalidEntityType)
                | (Side::Subject | Side::Resource, RequestErrorCode::UnknownAction) => {
                    next = candidates.len();
                    break;
                }
                // For an action search it depends on the action (its context shape too).
                (
                    Side::Action,
                    RequestErrorCode::InvalidEntityType
                    | RequestErrorCode::UnknownAction
                    | RequestErrorCode::InvalidContext,
                ) => {}
                _ => {
                    let field = match e.field.as_str() {
                        "principal" => "subject".to_owned(),
                        "entities" => "properties".to_owned(),
                        other => other.to_owned(),
                    };
                    return Err(ApiError::from(e).with_field(field));
                }
            },
        }
    }
    for r in recorded {
        r.durable().await?;
    }
    let next_token = match candidates.get(next.wrapping_sub(1)) {
        Some(last) if next < candidates.len() => encode_token(&sort_key(last), fingerprint),
        _ => String::new(),
    };
    let count = found.len();
    Ok((found, PageResponse { next_token, count }))
}

/// A digest of the request without `page.token`, in canonical form (object keys sorted).
fn fingerprint(body: &Map<String, Value>) -> String {
    let mut body = body.clone();
    if let Some(Value::Object(page)) = body.get_mut("page") {
        page.remove("token");
    }
    let mut text = String::new();
    canonical(&Value::Object(body), &mut text);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    hex::encode(&digest.as_ref()[..8])
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:", Value::String(k.clone()));
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

fn encode_token(after_key: &str, fingerprint: &str) -> String {
    format!("1.{}.{fingerprint}", hex::encode(after_key))
}

fn decode_token(token: &str, fingerprint: &str) -> Result<String, ApiError> {
    let bad = |m: &str| ApiError::bad_request("invalid_page_token", m).with_field("page.token");
    let mut parts = token.split('.');
    let (Some("1"), Some(key), Some(fp), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("`page.token` is not a token this service issued"));
    };
    if fp != fingerprint {
        return Err(bad(
            "the request differs from the one that returned this `page.token`: only the token may change between pages",
        ));
    }
    hex::decode(key)
        .ok()
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(|| bad("`page.token` is not a token this service issued"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprints_ignore_key_order_and_the_token_only() {
        let a = json!({"subject": {"type": "user"}, "page": {"limit": 2, "token": "x"}});
        let b = json!({"page": {"token": "y", "limit": 2}, "subject": {"type": "user"}});
        let c = json!({"page": {"limit": 3}, "subject": {"type": "user"}});
        let f = |v: &Value| fingerprint(v.as_object().unwrap());
        assert_eq!(f(&a), f(&b));
        assert_ne!(f(&a), f(&c));
    }

    #[test]
    fn tokens_round_trip_and_bind_to_the_request() {
        let t = encode_token("Cert::user::\"a.b\"", "00ff");
        assert_eq!(decode_token(&t, "00ff").unwrap(), "Cert::user::\"a.b\"");
        assert_eq!(decode_token(&t, "0000").unwrap_err().code(), "invalid_page_token");
        assert!(decode_token("garbage", "00ff").is_err());
        assert!(decode_token("1.zz.00ff", "00ff").is_err());
    }
}
