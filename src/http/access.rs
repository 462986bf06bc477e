//! Who may call which endpoint: every request's caller is checked against the access policy
//! set (`policies/access/`, namespace `MedpdpApi`) before its handler runs.
//!
//! The route a request matched is mapped to an access action by [`ROUTE_ACCESS`], the single
//! table of what each endpoint needs; the question `MedpdpApi::<Kind>::"<id>"` may do
//! `MedpdpApi::Action::"<action>"` on `MedpdpApi::Route::"<path>"` is evaluated with the same
//! fail-closed [`crate::decide::decide`] as domain decisions, against the access snapshot.
//! A deny is a 403 naming the reason, and the handler (hence any domain decision) never runs.
//!
//! Fail closed throughout: no caller identity, no valid access policy set, a route missing from
//! the table, or an evaluation error all refuse. Only the health checks and the public
//! descriptions of the API (OpenAPI document, AuthZEN metadata) skip the policy, and even they
//! need an authenticated caller; EST `cacerts` is public (RFC 7030 §4.1.1).
//!
//! Besides callers (operational certificates), two principals exist only for enrollment: a
//! device with a manufacturer certificate is `MedpdpApi::Bootstrap::"<serialNumber>"`, and a
//! client without a certificate on the EST listener is `MedpdpApi::Anonymous::"anonymous"`.
//! Neither is a `Caller`, so no route but those the policies open to them (`enroll`) answers
//! them, and `Open` routes refuse them. On the EST listener only `/.well-known/est/` routes
//! exist (others are 404).

use std::sync::{Arc, LazyLock, Mutex, Weak};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cedar_policy::{EntityId, EntityTypeName, EntityUid};
use serde_json::json;

use super::{ApiError, AppState};
use crate::decide::{decide, Decision, DecisionRequest, EntityRef};
use crate::identity::{Caller, CallerKind};
use crate::policy::{PolicyStore, Snapshot};
use crate::tls::{Anonymous, BootstrapPeer, EstListener, PeerIdentityError};

/// The Cedar namespace of the access policy set.
pub const NAMESPACE: &str = "MedpdpApi";

/// What an endpoint needs from the access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Anyone who completed the TLS handshake, even without a certificate (EST `cacerts`).
    Public,
    /// Any authenticated caller (health checks, API descriptions).
    Open,
    /// Permission for an access action: `MedpdpApi::Action::"<name>"`.
    Action(&'static str),
}

/// Every route and what it needs.
///
/// INVARIANT: every route of [`super::router`] is listed here. A matched route that is not is
/// refused for every caller (and logged as a bug), so a forgotten entry can only lock an
/// endpoint, never open it.
pub const ROUTE_ACCESS: &[(&str, RouteAccess)] = &[
    ("/v1/decide", RouteAccess::Action("decide")),
    ("/v1/decide/batch", RouteAccess::Action("decide")),
    ("/v1/status", RouteAccess::Action("read_status")),
    ("/v1/admin/reload", RouteAccess::Action("reload")),
    ("/health/live", RouteAccess::Open),
    ("/health/ready", RouteAccess::Open),
    ("/metrics", RouteAccess::Action("scrape_metrics")),
    ("/v1/audit/records", RouteAccess::Action("read_log")),
    ("/openapi.json", RouteAccess::Open),
    (super::authzen::EVALUATION_PATH, RouteAccess::Action("decide")),
    (super::authzen::EVALUATIONS_PATH, RouteAccess::Action("decide")),
    (super::authzen::SEARCH_SUBJECT_PATH, RouteAccess::Action("search")),
    (super::authzen::SEARCH_RESOURCE_PATH, RouteAccess::Action("search")),
    (super::authzen::SEARCH_ACTION_PATH, RouteAccess::Action("search")),
    (super::authzen::METADATA_PATH, RouteAccess::Open),
    (super::ca::EST_CACERTS, RouteAccess::Public),
    (super::ca::EST_SIMPLEENROLL, RouteAccess::Action("enroll")),
    (super::ca::EST_SIMPLEREENROLL, RouteAccess::Action("enroll")),
    ("/v1/ca/certificates", RouteAccess::Action("manage_ca")),
    ("/v1/ca/certificates/{serial}/revoke", RouteAccess::Action("manage_ca")),
    ("/v1/ca/crl", RouteAccess::Open),
];

/// Who asks, as the access policies see it.
#[derive(Debug, Clone, Copy)]
pub enum AccessPrincipal<'a> {
    /// An operational certificate's caller.
    Caller(&'a Caller),
    /// A manufacturer (bootstrap) certificate, by its serialNumber.
    Bootstrap(&'a str),
    /// No certificate (EST listener).
    Anonymous,
}

impl std::fmt::Display for AccessPrincipal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessPrincipal::Caller(c) => write!(f, "`{c}`"),
            AccessPrincipal::Bootstrap(id) => write!(f, "bootstrap device `{id}`"),
            AccessPrincipal::Anonymous => f.write_str("anonymous client"),
        }
    }
}

/// The Cedar entity type of a caller kind, e.g. `MedpdpApi::Gateway`.
pub fn principal_type(kind: CallerKind) -> &'static str {
    match kind {
        CallerKind::Admin => "MedpdpApi::Admin",
        CallerKind::Auditor => "MedpdpApi::Auditor",
        CallerKind::Gateway => "MedpdpApi::Gateway",
        CallerKind::Scraper => "MedpdpApi::Scraper",
        CallerKind::Terminal => "MedpdpApi::Terminal",
    }
}

const KINDS: [CallerKind; 5] = [
    CallerKind::Admin,
    CallerKind::Auditor,
    CallerKind::Gateway,
    CallerKind::Scraper,
    CallerKind::Terminal,
];

/// Cedar names parsed once: per request only the caller's id is new.
struct Names {
    kinds: Vec<(CallerKind, EntityTypeName)>,
    bootstrap: EntityTypeName,
    anonymous: EntityTypeName,
    /// `(route, action uid, resource uid)` for every route that needs an action.
    routes: Vec<(&'static str, EntityUid, EntityUid)>,
}

static NAMES: LazyLock<Result<Names, String>> = LazyLock::new(|| {
    let parse = |s: &str| s.parse::<EntityTypeName>().map_err(|e| format!("`{s}`: {e}"));
    let kinds = KINDS
        .iter()
        .map(|k| Ok((*k, parse(principal_type(*k))?)))
        .collect::<Result<Vec<_>, String>>()?;
    let action_type = parse("MedpdpApi::Action")?;
    let route_type = parse("MedpdpApi::Route")?;
    let routes = ROUTE_ACCESS
        .iter()
        .filter_map(|(route, access)| match access {
            RouteAccess::Open | RouteAccess::Public => None,
            RouteAccess::Action(a) => Some((
                *route,
                EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(a)),
                EntityUid::from_type_name_and_id(route_type.clone(), EntityId::new(route)),
            )),
        })
        .collect();
    Ok(Names {
        kinds,
        bootstrap: parse("MedpdpApi::Bootstrap")?,
        anonymous: parse("MedpdpApi::Anonymous")?,
        routes,
    })
});

/// The middleware: identify, look up the route, ask the access policy.
pub(super) async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let verdict = {
        let ext = req.extensions();
        let route = ext.get::<MatchedPath>().map(MatchedPath::as_str);
        if ext.get::<EstListener>().is_some()
            && !route.is_some_and(|r| r.starts_with(super::ca::EST_PREFIX))
        {
            return ApiError::not_found().into_response();
        }
        // A method the route does not have: the router answers 405 and no handler runs, so
        // there is nothing to authorize (HEAD is served by GET handlers: it counts as GET).
        let method = match req.method().as_str() {
            "HEAD" => "GET",
            m => m,
        };
        if route.is_some_and(|r| !super::ROUTES.iter().any(|(m, p)| *p == r && *m == method)) {
            return next.run(req).await;
        }
        let public = route.is_some_and(|r| {
            ROUTE_ACCESS.iter().any(|(p, a)| *p == r && *a == RouteAccess::Public)
        });
        let principal = if let Some(caller) = ext.get::<Caller>() {
            tracing::Span::current().record("caller", tracing::field::display(caller));
            AccessPrincipal::Caller(caller)
        } else if let Some(b) = ext.get::<BootstrapPeer>() {
            AccessPrincipal::Bootstrap(&b.serial_number)
        } else if ext.get::<Anonymous>().is_some() || public {
            AccessPrincipal::Anonymous
        } else {
            let why = ext
                .get::<PeerIdentityError>()
                .map_or_else(|| "no authenticated caller".to_owned(), ToString::to_string);
            tracing::info!(reason = %why, "request refused: no caller identity");
            return forbidden(format!("access denied: {why}"), &[]).into_response();
        };
        // No matched route: the 404/405 fallbacks answer, and they reveal nothing.
        route.map(|route| match ext.get::<ConnectionAccess>() {
            Some(cache) => cache.check(&state.access, principal, route),
            None => check_principal(&state.access, principal, route),
        })
    };
    match verdict {
        None | Some(Ok(())) => next.run(req).await,
        Some(Err(e)) => e.into_response(),
    }
}

/// Whether `caller` may use `route` under the active access policy set.
pub fn check(access: &PolicyStore, caller: &Caller, route: &str) -> Result<(), ApiError> {
    check_principal(access, AccessPrincipal::Caller(caller), route)
}

/// The access decisions already allowed on one connection (whose caller never changes), valid
/// for one access snapshot. A gateway on a kept-alive connection thus pays for the access
/// check once per route, not per request.
///
/// INVARIANT: only allows are kept, keyed by the snapshot that decided them; `decide` is pure
/// and the access request has no context, so a hit is exactly what evaluating again would
/// answer. A reload (a new snapshot) empties the cache at its next use.
#[derive(Debug, Clone, Default)]
pub struct ConnectionAccess(Arc<Mutex<Allowed>>);

#[derive(Debug, Default)]
struct Allowed {
    /// The snapshot the routes were allowed under; a `Weak` keeps its allocation (not its
    /// contents) alive, so the address cannot be reused by a later snapshot.
    snapshot: Weak<Snapshot>,
    /// Indices into [`ROUTE_ACCESS`].
    routes: Vec<usize>,
}

impl ConnectionAccess {
    /// [`check_principal`], remembering allows for this connection.
    pub fn check(
        &self,
        access: &PolicyStore,
        principal: AccessPrincipal<'_>,
        route: &str,
    ) -> Result<(), ApiError> {
        let (Some(snapshot), Some(index)) =
            (access.current(), ROUTE_ACCESS.iter().position(|(r, _)| *r == route))
        else {
            return check_principal(access, principal, route);
        };
        let mut allowed = match self.0.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        if std::ptr::eq(allowed.snapshot.as_ptr(), Arc::as_ptr(&snapshot)) {
            if allowed.routes.contains(&index) {
                return Ok(());
            }
        } else {
            allowed.snapshot = Arc::downgrade(&snapshot);
            allowed.routes.clear();
        }
        decide_access(Some(snapshot), principal, route)?;
        allowed.routes.push(index);
        Ok(())
    }
}

/// Whether `principal` may use `route` under the active access policy set.
pub fn check_principal(
    access: &PolicyStore,
    principal: AccessPrincipal<'_>,
    route: &str,
) -> Result<(), ApiError> {
    decide_access(access.current(), principal, route)
}

fn decide_access(
    snapshot: Option<Arc<Snapshot>>,
    principal: AccessPrincipal<'_>,
    route: &str,
) -> Result<(), ApiError> {
    let action = match ROUTE_ACCESS.iter().find(|(r, _)| *r == route) {
        Some((_, RouteAccess::Public)) => return Ok(()),
        Some((_, RouteAccess::Open)) => {
            return match principal {
                AccessPrincipal::Caller(_) => Ok(()),
                _ => Err(forbidden(format!("{principal} may only enroll"), &[])),
            };
        }
        Some((_, RouteAccess::Action(a))) => *a,
        None => {
            tracing::error!(%route, "route missing from the access table; refusing");
            return Err(forbidden(format!("route `{route}` has no access rule"), &[]));
        }
    };
    let names = NAMES.as_ref().map_err(|e| {
        tracing::error!(error = %e, "access names do not parse; refusing");
        forbidden("access policy unavailable".into(), &[])
    })?;
    let Some(snapshot) = snapshot else {
        return Err(forbidden(
            "no valid access policy set is active; see /v1/status for the load errors".into(),
            &[],
        ));
    };
    let principal_uid = match principal {
        AccessPrincipal::Caller(caller) => {
            names.kinds.iter().find(|(k, _)| *k == caller.kind).map(|(_, t)| {
                EntityUid::from_type_name_and_id(t.clone(), EntityId::new(&caller.id))
            })
        }
        AccessPrincipal::Bootstrap(id) => {
            Some(EntityUid::from_type_name_and_id(names.bootstrap.clone(), EntityId::new(id)))
        }
        AccessPrincipal::Anonymous => Some(EntityUid::from_type_name_and_id(
            names.anonymous.clone(),
            EntityId::new("anonymous"),
        )),
    };
    let route_uids = names.routes.iter().find(|(r, ..)| *r == route);
    let (Some(principal_uid), Some((_, action_uid, resource_uid))) = (principal_uid, route_uids)
    else {
        return Err(forbidden("access policy unavailable".into(), &[]));
    };
    let request = DecisionRequest {
        principal: EntityRef(principal_uid),
        action: EntityRef(action_uid.clone()),
        resource: EntityRef(resource_uid.clone()),
        context: None,
        entities: None,
    };
    match decide(&snapshot, &request) {
        Ok(outcome) if outcome.decision == Decision::Allow => Ok(()),
        Ok(outcome) => {
            tracing::info!(%principal, action, reasons = ?outcome.reasons, "access denied");
            let mut reasons = outcome.reasons;
            reasons.extend(outcome.errors.into_iter().map(|e| e.policy));
            Err(forbidden(format!("{principal} may not `{action}`"), &reasons))
        }
        Err(e) => {
            tracing::warn!(%principal, action, error = %e, "access request rejected by the access schema");
            Err(forbidden(format!("{principal} may not `{action}`: {e}"), &[]))
        }
    }
}

fn forbidden(message: String, reasons: &[String]) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
        .with_details(json!({"reasons": reasons}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_access_name_parses() {
        let names = NAMES.as_ref().unwrap();
        assert_eq!(names.kinds.len(), KINDS.len());
        let actions =
            ROUTE_ACCESS.iter().filter(|(_, a)| matches!(a, RouteAccess::Action(_))).count();
        assert_eq!(names.routes.len(), actions);
    }

    #[tokio::test]
    async fn a_connection_keeps_allows_only_for_the_snapshot_that_decided_them() {
        let dir = tempfile::tempdir().unwrap();
        let access = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/access");
        for f in ["schema.cedarschema", "entities.json", "policies.cedar"] {
            std::fs::copy(access.join(f), dir.path().join(f)).unwrap();
        }
        let store = PolicyStore::new(dir.path(), Vec::new());
        store.reload(crate::policy::ReloadTrigger::Startup).await;
        let cache = ConnectionAccess::default();
        let gw = Caller::from_urn("urn:medpdp:gateway:g1").unwrap();
        let who = || AccessPrincipal::Caller(&gw);
        assert!(cache.check(&store, who(), "/v1/decide").is_ok());
        assert!(cache.check(&store, who(), "/v1/decide").is_ok(), "from the cache");
        assert!(cache.check(&store, who(), "/v1/status").is_err(), "denials are decided");
        assert!(cache.check(&store, who(), "/v1/status").is_err(), "and never kept");
        // The gateway is suspended: the next request on the same connection is refused.
        let mut policies = std::fs::read_to_string(dir.path().join("policies.cedar")).unwrap();
        policies.push_str(
            "\n@id(\"stop\") forbid (principal == MedpdpApi::Gateway::\"g1\", action, resource);\n",
        );
        std::fs::write(dir.path().join("policies.cedar"), policies).unwrap();
        store.reload(crate::policy::ReloadTrigger::Admin).await;
        let e = cache.check(&store, who(), "/v1/decide").unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn unknown_routes_and_missing_policies_refuse() {
        let store = PolicyStore::new("/nonexistent", Vec::new());
        let c = Caller::from_urn("urn:medpdp:admin:a").unwrap();
        assert!(check(&store, &c, "/health/live").is_ok(), "health needs no policy");
        let e = check(&store, &c, "/v1/status").unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(e.message().contains("no valid access policy"), "{}", e.message());
        let e = check(&store, &c, "/v1/new-endpoint").unwrap_err();
        assert!(e.message().contains("no access rule"), "{}", e.message());
    }
}
