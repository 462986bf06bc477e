//! Caller identity: who is calling the API.
//!
//! INVARIANT: a [`Caller`] is only ever created from a verified client certificate (its URI SAN
//! `urn:medpdp:<kind>:<id>`) or, on the explicitly insecure development listener, from
//! configuration. Never from a header or a request body. Handlers read it from the request
//! extensions, where the connection layer put it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of API callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerKind {
    /// Administrators: reload policies, manage the CA.
    Admin,
    /// Auditors: read status and the decision log.
    Auditor,
    /// Gateways and network functions: ask for decisions.
    Gateway,
    /// Metrics scrapers.
    Scraper,
    /// Terminals: enroll and renew credentials.
    Terminal,
}

impl CallerKind {
    /// The lower-case name used in URNs and policies.
    pub fn as_str(self) -> &'static str {
        match self {
            CallerKind::Admin => "admin",
            CallerKind::Auditor => "auditor",
            CallerKind::Gateway => "gateway",
            CallerKind::Scraper => "scraper",
            CallerKind::Terminal => "terminal",
        }
    }
}

impl FromStr for CallerKind {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, IdentityError> {
        match s {
            "admin" => Ok(CallerKind::Admin),
            "auditor" => Ok(CallerKind::Auditor),
            "gateway" => Ok(CallerKind::Gateway),
            "scraper" => Ok(CallerKind::Scraper),
            "terminal" => Ok(CallerKind::Terminal),
            other => Err(IdentityError::UnknownKind(other.to_owned())),
        }
    }
}

/// An authenticated API caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Caller {
    /// What kind of caller.
    pub kind: CallerKind,
    /// Its id within the kind, e.g. `gw-ward3`.
    pub id: String,
}

/// Why a URN is not a caller identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not of the form `urn:medpdp:<kind>:<id>`.
    #[error("`{0}` is not a medpdp identity (expected `urn:medpdp:<kind>:<id>`)")]
    NotMedpdpUrn(String),
    /// The kind is not one of ours.
    #[error("unknown caller kind `{0}` (expected admin, auditor, gateway, scraper or terminal)")]
    UnknownKind(String),
    /// The id is empty or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid caller id `{0}`: use letters, digits, `.`, `_` and `-`")]
    InvalidId(String),
}

impl Caller {
    /// A caller of a kind with an id (checked as [`Caller::from_urn`] checks it).
    pub fn new(kind: CallerKind, id: &str) -> Result<Self, IdentityError> {
        let valid = !id.is_empty()
            && id.len() <= 128
            && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(IdentityError::InvalidId(id.to_owned()));
        }
        Ok(Self { kind, id: id.to_owned() })
    }

    /// Parses `urn:medpdp:<kind>:<id>`.
    pub fn from_urn(urn: &str) -> Result<Self, IdentityError> {
        let rest = urn
            .strip_prefix("urn:medpdp:")
            .ok_or_else(|| IdentityError::NotMedpdpUrn(urn.to_owned()))?;
        let (kind, id) =
            rest.split_once(':').ok_or_else(|| IdentityError::NotMedpdpUrn(urn.to_owned()))?;
        Self::new(kind.parse()?, id)
    }

    /// `urn:medpdp:<kind>:<id>`.
    pub fn urn(&self) -> String {
        format!("urn:medpdp:{}:{}", self.kind.as_str(), self.id)
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "urn:medpdp:{}:{}", self.kind.as_str(), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_round_trip() {
        let c = Caller::from_urn("urn:medpdp:gateway:gw-ward3").unwrap();
        assert_eq!(c.kind, CallerKind::Gateway);
        assert_eq!(c.id, "gw-ward3");
        assert_eq!(c.urn(), "urn:medpdp:gateway:gw-ward3");
    }

    #[test]
    fn bad_urns_are_rejected_with_a_reason() {
        assert!(matches!(Caller::from_urn("spiffe://x/y"), Err(IdentityError::NotMedpdpUrn(_))));
        assert!(matches!(
            Caller::from_urn("urn:medpdp:root:x"),
            Err(IdentityError::UnknownKind(_))
        ));
        assert!(matches!(Caller::from_urn("urn:medpdp:admin:"), Err(IdentityError::InvalidId(_))));
        assert!(matches!(
            Caller::from_urn("urn:medpdp:admin:a b"),
            Err(IdentityError::InvalidId(_))
        ));
    }
}
