//! The JSON body extractor used by every endpoint that takes a body.
//!
//! It differs from `axum::Json` in what it answers for bad input: a JSON error body naming the
//! problem (and the field, via `serde_path_to_error`), 415 for a missing or wrong content type,
//! 413 when the body exceeds the configured limit, 400 for everything else, including bodies
//! that nest too deeply or repeat a key ([`super::json_guard`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::json_guard::{self, GuardError};
use super::Limits;

/// A JSON request body deserialized into `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_content_type(&req)?;
        let limits = limits_of(&req);
        let bytes = read_body(req, state).await?;
        decode(&bytes, &limits).map(JsonBody)
    }
}

/// The limits the router attached to the request (the defaults if none, e.g. in unit tests).
pub(crate) fn limits_of(req: &Request) -> Limits {
    req.extensions().get::<Limits>().copied().unwrap_or_default()
}

/// Checks the body's structure against `limits`, then deserializes it.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], limits: &Limits) -> Result<T, ApiError> {
    guard(bytes, limits)?;
    parse_json(bytes)
}

/// The structural check of [`super::json_guard`] as an API error (400 naming the field).
pub(crate) fn guard(bytes: &[u8], limits: &Limits) -> Result<(), ApiError> {
    json_guard::check(bytes, limits.max_json_depth).map_err(|e| match &e {
        GuardError::Syntax(m) => ApiError::bad_request("invalid_json", m.clone()),
        GuardError::TooDeep { path, .. } => {
            ApiError::bad_request("too_deep", e.to_string()).with_field(path.clone())
        }
        GuardError::DuplicateKey { path } => {
            ApiError::bad_request("duplicate_key", e.to_string()).with_field(path.clone())
        }
    })
}

/// Reads the whole body, answering 413 past the configured limit.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body exceeds the configured limit (limits.max_body_bytes)",
            )
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })
}

/// Accepts `application/json` and `application/*+json`, with parameters such as `charset`.
pub(crate) fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let unsupported = |msg: String| {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", msg)
    };
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(unsupported(
            "missing content type: send `Content-Type: application/json`".into(),
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !json {
        return Err(unsupported(format!(
            "unsupported content type `{value}`: send `Content-Type: application/json`"
        )));
    }
    Ok(())
}

/// Deserializes JSON bytes, naming the failing field in the error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Valid bodies take serde_json's direct path; tracking the field path costs about as much
    // as the parse itself, so only a failed parse is repeated with it, for the message.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let err = ApiError::bad_request(
            if inner.is_syntax() || inner.is_eof() { "invalid_json" } else { "malformed_request" },
            &message,
        );
        match field_path(&path, &message) {
            Some(field) => err.with_field(field),
            None => err,
        }
    })?;
    de.end().map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    Ok(value)
}

/// Deserializes a JSON value; on failure, the field it is about (see [`field_path`]) and serde's
/// message. The path-tracking pass runs only on failure (see [`parse_json`]).
pub(crate) fn from_value<T: DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, (Option<String>, String)> {
    if let Ok(parsed) = T::deserialize(value) {
        return Ok(parsed);
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        (field_path(&path, &message), message)
    })
}

/// The field a deserialization error is about: the path serde reached, extended with the name
/// of a missing field (serde reports those at the parent's path).
pub(crate) fn field_path(path: &str, message: &str) -> Option<String> {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .filter(|f| !f.is_empty());
    let top = path.is_empty() || path == ".";
    match (path, missing) {
        (_, Some(f)) if top => Some(f.to_owned()),
        (_, None) if top => None,
        (p, Some(f)) => Some(format!("{p}.{f}")),
        (p, None) => Some(p.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(field_path(".", "missing field `action` at line 1").as_deref(), Some("action"));
        assert_eq!(field_path("a.b", "missing field `id`").as_deref(), Some("a.b.id"));
        assert_eq!(field_path("context", "invalid type").as_deref(), Some("context"));
        assert_eq!(field_path(".", "trailing characters"), None);
    }
}
