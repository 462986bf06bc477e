//! Certificate profiles (`certs/profiles.toml`): what each kind of certificate says.
//!
//! A profile fixes everything a certificate carries besides the public key: the identity kind
//! written as the one URI SAN `urn:medpdp:<kind>:<id>` (or DNS/IP names for `server`), the
//! lifetime, the key algorithms accepted from a CSR, and the extended key usages. A request
//! chooses at most the profile and the identity it was authenticated as; it never contributes
//! a name or an extension.
//!
//! Profiles of kind `terminal` and `gateway` are *policy-gated*: each issuance and renewal is a
//! Cedar decision (`request_credential` / `renew_credential`) on the entity
//! `<namespace>::CertificateProfile::"<profile name>"`, so their names must be the names of the
//! pack's `CertificateProfile` entities. The other kinds (admin, auditor, scraper, server) are
//! issued only by administrators.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::Duration;

use super::csr::KeyAlg;
use super::{CaError, Usage};
use crate::identity::CallerKind;

/// What a profile's certificates identify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileKind {
    /// Medical terminals (`urn:medpdp:terminal:<id>`); policy-gated.
    Terminal,
    /// Gateways and network functions (`urn:medpdp:gateway:<id>`); policy-gated.
    Gateway,
    /// Administrators (`urn:medpdp:admin:<id>`).
    Admin,
    /// Auditors (`urn:medpdp:auditor:<id>`).
    Auditor,
    /// Metrics scrapers (`urn:medpdp:scraper:<id>`).
    Scraper,
    /// TLS servers: DNS names and IP addresses, no identity URN.
    Server,
}

impl ProfileKind {
    /// The caller kind written into the URI SAN (`None` for servers).
    pub fn caller_kind(self) -> Option<CallerKind> {
        match self {
            ProfileKind::Terminal => Some(CallerKind::Terminal),
            ProfileKind::Gateway => Some(CallerKind::Gateway),
            ProfileKind::Admin => Some(CallerKind::Admin),
            ProfileKind::Auditor => Some(CallerKind::Auditor),
            ProfileKind::Scraper => Some(CallerKind::Scraper),
            ProfileKind::Server => None,
        }
    }

    /// Whether issuing and renewing is a Cedar decision (terminals and gateways).
    pub fn policy_gated(self) -> bool {
        matches!(self, ProfileKind::Terminal | ProfileKind::Gateway)
    }
}

/// An extended key usage a profile may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eku {
    /// `clientAuth`.
    ClientAuth,
    /// `serverAuth`.
    ServerAuth,
    /// IEEE 11073-20701 SDC service provider.
    SdcProvider,
    /// IEEE 11073-20701 SDC service consumer.
    SdcConsumer,
}

impl Eku {
    fn usage(self) -> Usage {
        match self {
            Eku::ClientAuth => Usage::ClientAuth,
            Eku::ServerAuth => Usage::ServerAuth,
            Eku::SdcProvider => Usage::SdcProvider,
            Eku::SdcConsumer => Usage::SdcConsumer,
        }
    }
}

/// One profile as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    kind: ProfileKind,
    lifetime: String,
    #[serde(default)]
    max_lifetime: Option<String>,
    key_algs: Vec<String>,
    eku: Vec<Eku>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    profiles: BTreeMap<String, ProfileFile>,
}

/// A checked profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Its name (for policy-gated kinds, the `CertificateProfile` entity id).
    pub name: String,
    /// What it identifies.
    pub kind: ProfileKind,
    /// Validity of a certificate unless a shorter or longer one (up to `max_lifetime`) is asked.
    pub lifetime: Duration,
    /// The longest validity an administrator may ask for.
    pub max_lifetime: Duration,
    /// Key algorithms accepted (`ECDSA-P256`, `ECDSA-P384`, `Ed25519`, `RSA-2048`, …).
    pub key_algs: Vec<String>,
    /// Extended key usages written.
    pub eku: Vec<Eku>,
    /// What it is for.
    pub description: String,
}

impl Profile {
    /// Whether a CSR key algorithm is allowed.
    pub fn allows(&self, alg: KeyAlg) -> bool {
        let name = alg.name();
        self.key_algs.contains(&name)
    }

    /// The usages for a [`super::LeafSpec`].
    pub fn usages(&self) -> Vec<Usage> {
        self.eku.iter().map(|e| e.usage()).collect()
    }
}

/// Every profile, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// Reads and checks a profiles file.
    pub fn load(path: &Path) -> Result<Self, CaError> {
        let text = super::files::read(path)?;
        Self::parse(&text).map_err(|m| CaError::Invalid(format!("`{}`: {m}", path.display())))
    }

    /// The profiles file as committed (`certs/profiles.toml`), built into the binary: used
    /// when the configured file does not exist (e.g. `medpdp` installed outside the repository).
    pub fn builtin() -> Result<Self, CaError> {
        Self::parse(include_str!("../../certs/profiles.toml"))
            .map_err(|m| CaError::Invalid(format!("built-in profiles: {m}")))
    }

    /// Reads the profiles file, or the built-in profiles when it does not exist.
    pub fn load_or_builtin(path: &Path) -> Result<Self, CaError> {
        if path.exists() {
            Self::load(path)
        } else {
            tracing::info!(file = %path.display(), "no profiles file: using the built-in profiles");
            Self::builtin()
        }
    }

    /// Parses and checks profiles TOML.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_name = BTreeMap::new();
        for (name, p) in file.profiles {
            let at = |m: String| format!("profile `{name}`: {m}");
            let valid_name = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_name {
                return Err(at("use letters, digits, `-`, `_` and `.` in names".into()));
            }
            let lifetime = parse_duration(&p.lifetime).map_err(|m| at(format!("lifetime: {m}")))?;
            let max_lifetime = match &p.max_lifetime {
                Some(m) => parse_duration(m).map_err(|e| at(format!("max_lifetime: {e}")))?,
                None => lifetime,
            };
            if max_lifetime < lifetime {
                return Err(at("max_lifetime is shorter than lifetime".into()));
            }
            if p.key_algs.is_empty() {
                return Err(at("key_algs is empty: nothing could be certified".into()));
            }
            for alg in &p.key_algs {
                if !is_known_alg(alg) {
                    return Err(at(format!(
                        "unknown key algorithm `{alg}` (ECDSA-P256, ECDSA-P384, Ed25519, \
                         RSA-2048, RSA-3072, RSA-4096)"
                    )));
                }
            }
            let needs = match p.kind {
                ProfileKind::Server => Eku::ServerAuth,
                _ => Eku::ClientAuth,
            };
            if !p.eku.contains(&needs) {
                return Err(at(format!("a `{:?}` profile needs the `{needs:?}` EKU", p.kind)));
            }
            let profile = Profile {
                name: name.clone(),
                kind: p.kind,
                lifetime,
                max_lifetime,
                key_algs: p.key_algs,
                eku: p.eku,
                description: p.description,
            };
            by_name.insert(name, profile);
        }
        Ok(Self { by_name })
    }

    /// The profile named `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    /// Every profile, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }

    /// The profiles of a kind, by name.
    pub fn of_kind(&self, kind: ProfileKind) -> Vec<&Profile> {
        self.by_name.values().filter(|p| p.kind == kind).collect()
    }
}

fn is_known_alg(alg: &str) -> bool {
    matches!(alg, "ECDSA-P256" | "ECDSA-P384" | "Ed25519")
        || alg
            .strip_prefix("RSA-")
            .and_then(|b| b.parse::<u32>().ok())
            .is_some_and(|b| (2048..=16384).contains(&b))
}

/// Parses `90s`, `15m`, `24h`, `90d` (one number, one unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("`{s}` is not a duration such as `24h`"))?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("`{s}`: the unit must be s, m, h or d")),
    };
    if d <= Duration::ZERO || d > Duration::days(20 * 365) {
        return Err(format!("`{s}` must be positive and at most 20 years"));
    }
    Ok(d)
}

/// A duration as Cedar writes it (`86400s`), for decision contexts.
pub fn cedar_duration(d: Duration) -> String {
    format!("{}s", d.whole_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_profiles_file_is_valid() {
        let p = Profiles::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/profiles.toml"))
            .unwrap();
        let t = p.get("terminal-mtls").unwrap();
        assert_eq!(t.kind, ProfileKind::Terminal);
        assert_eq!(t.lifetime, Duration::hours(24));
        assert!(t.allows(KeyAlg::EcdsaP256) && !t.allows(KeyAlg::Rsa(2048)));
        for kind in [ProfileKind::Admin, ProfileKind::Auditor, ProfileKind::Server] {
            assert!(!p.of_kind(kind).is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn bad_profiles_are_refused_with_the_reason() {
        let bad = |t: &str| Profiles::parse(t).unwrap_err();
        let base = "kind = \"terminal\"\nkey_algs = [\"ECDSA-P256\"]\neku = [\"client_auth\"]\n";
        assert!(bad(&format!("[profiles.a]\nlifetime = \"1y\"\n{base}")).contains("unit"));
        assert!(bad(&format!("[profiles.a]\nlifetime = \"0h\"\n{base}")).contains("positive"));
        assert!(bad("[profiles.a]\nkind = \"terminal\"\nlifetime = \"1h\"\nkey_algs = [\"DSA\"]\neku = [\"client_auth\"]\n").contains("DSA"));
        assert!(bad("[profiles.a]\nkind = \"server\"\nlifetime = \"1h\"\nkey_algs = [\"Ed25519\"]\neku = [\"client_auth\"]\n").contains("ServerAuth"));
        assert!(bad(&format!("[profiles.a]\nlifetime = \"1h\"\nmax_lifetime = \"1m\"\n{base}"))
            .contains("shorter"));
        assert!(
            bad(&format!("[profiles.a]\nlifetime = \"1h\"\ncolour = 1\n{base}")).contains("colour")
        );
        assert_eq!(parse_duration("90d").unwrap(), Duration::days(90));
        assert_eq!(cedar_duration(Duration::hours(24)), "86400s");
    }
}
