//! The registry of everything the CA issued, revoked and of one-time enrollment tokens: an
//! SQLite database under the data directory (`<data>/ca/registry.sqlite3`).
//!
//! Durability: WAL journal with `synchronous = FULL`, so a transaction is on disk when
//! `commit` returns. [`Registry::record_issued`] commits the certificate row (and, in the same
//! transaction, consumes the token or marks the renewed certificate superseded) before the
//! certificate is handed to anyone: nothing issued is lost on a crash, and a token cannot be
//! used twice even by two simultaneous requests.
//!
//! Times are stored as Unix seconds (UTC). Serials are lower-case hex and the primary key, so a
//! serial can never be recorded twice. The connection is behind a mutex: issuance is not a hot
//! path, and SQLite serializes writers anyway. Other processes (the `medpdp ca` CLI while the
//! service runs) share the file safely; `busy_timeout` makes them wait for each other.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use time::OffsetDateTime;

use super::RevocationReason;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// SQLite failed (I/O, corruption, lock timeout).
    #[error("certificate registry `{path}`: {message}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// No certificate with this serial.
    #[error("no certificate with serial `{0}`")]
    UnknownSerial(String),
    /// The certificate is already revoked.
    #[error("certificate `{0}` is already revoked")]
    AlreadyRevoked(String),
    /// The token does not exist, was used, or expired (one message: do not tell which).
    #[error("enrollment token unknown, already used or expired")]
    TokenUnusable,
    /// The registry was made for another CA.
    #[error(
        "certificate registry `{0}` belongs to another CA; move it away to start a new registry"
    )]
    OtherCa(PathBuf),
    /// A renewal raced another renewal of the same certificate.
    #[error("certificate `{0}` was already renewed")]
    AlreadySuperseded(String),
}

/// The state of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// Issued and neither renewed nor revoked (it may have expired: see `not_after`).
    Valid,
    /// Renewed: `superseded_by` names the new certificate.
    Superseded,
    /// Revoked.
    Revoked,
}

impl CertStatus {
    fn as_str(self) -> &'static str {
        match self {
            CertStatus::Valid => "valid",
            CertStatus::Superseded => "superseded",
            CertStatus::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "superseded" => CertStatus::Superseded,
            "revoked" => CertStatus::Revoked,
            _ => CertStatus::Valid,
        }
    }
}

/// One issued certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertRecord {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The identity (URI SAN) or, for servers, the first DNS name.
    pub identity: String,
    /// The profile.
    pub profile: String,
    /// The key algorithm, e.g. `ECDSA-P256`.
    pub key_alg: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Valid, superseded or revoked.
    pub status: CertStatus,
    /// The certificate that renewed this one.
    pub superseded_by: Option<String>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why.
    pub revocation_reason: Option<RevocationReason>,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// How the request was authenticated: `est-idevid`, `est-token`, `est-reenroll`,
    /// `admin-api`, `cli`, `dev-pki`.
    pub issued_via: String,
    /// The decision that allowed it (policy-gated profiles).
    pub decision_id: Option<String>,
    /// The certificate (DER); not serialized.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// A one-time enrollment token as stored (only a hash of its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    /// The token id (the HTTP Basic user name).
    pub id: String,
    /// The identity it enrolls, `urn:medpdp:<kind>:<id>`.
    pub identity: String,
    /// The profile it is limited to, if any.
    pub profile: Option<String>,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was used.
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub(super) secret_sha256: Vec<u8>,
}

/// Filters for [`Registry::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this identity.
    pub identity: Option<String>,
    /// Only this status.
    pub status: Option<CertStatus>,
    /// At most this many (newest first); `None`: all.
    pub limit: Option<usize>,
}

/// What [`Registry::record_issued`] does besides inserting the row, atomically with it.
#[derive(Debug, Clone, Copy)]
pub enum IssueEffect<'a> {
    /// Nothing else.
    None,
    /// Consume this enrollment token (fails if used or expired).
    ConsumeToken(&'a str),
    /// Mark this certificate superseded by the new one (fails if it is not valid any more).
    Supersede(&'a str),
}

/// The SQLite registry.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS certificates (
    serial            TEXT PRIMARY KEY NOT NULL,
    identity          TEXT NOT NULL,
    profile           TEXT NOT NULL,
    key_alg           TEXT NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('valid', 'superseded', 'revoked')),
    superseded_by     TEXT REFERENCES certificates(serial),
    revoked_at        INTEGER,
    revocation_reason TEXT,
    issued_at         INTEGER NOT NULL,
    issued_via        TEXT NOT NULL,
    decision_id       TEXT,
    der               BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates(identity);
CREATE INDEX IF NOT EXISTS certificates_status ON certificates(status);
CREATE TABLE IF NOT EXISTS tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    secret_sha256 BLOB NOT NULL,
    identity      TEXT NOT NULL,
    profile       TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    used_serial   TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS crl_state (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    number INTEGER NOT NULL
) STRICT;
";

const COLUMNS: &str = "serial, identity, profile, key_alg, not_before, not_after, status, \
    superseded_by, revoked_at, revocation_reason, issued_at, issued_via, decision_id, der";

fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn from_ts(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertRecord> {
    let reason: Option<String> = row.get(9)?;
    Ok(CertRecord {
        serial: row.get(0)?,
        identity: row.get(1)?,
        profile: row.get(2)?,
        key_alg: row.get(3)?,
        not_before: from_ts(row.get(4)?),
        not_after: from_ts(row.get(5)?),
        status: CertStatus::parse(&row.get::<_, String>(6)?),
        superseded_by: row.get(7)?,
        revoked_at: row.get::<_, Option<i64>>(8)?.map(from_ts),
        revocation_reason: reason.as_deref().and_then(RevocationReason::parse),
        issued_at: from_ts(row.get(10)?),
        issued_via: row.get(11)?,
        decision_id: row.get(12)?,
        der: row.get(13)?,
    })
}

impl Registry {
    /// Opens (creating if needed) the registry at `path`.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let db = |e: rusqlite::Error| RegistryError::Db {
            path: path.to_owned(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| RegistryError::Db {
                path: path.to_owned(),
                message: format!("cannot create `{}`: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        // INVARIANT: FULL, so a committed row survives a power loss (WAL + NORMAL would not).
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(Self { path: path.to_owned(), conn: Mutex::new(conn) })
    }

    /// Ties the registry to the CA with this certificate fingerprint (the first CA to open it);
    /// refuses another CA's registry, whose serials and revocations mean nothing to this one.
    pub fn bind_ca(&self, fingerprint: &str) -> Result<(), RegistryError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('ca_sha256', ?1) ON CONFLICT(key) DO NOTHING",
            params![fingerprint],
        )
        .map_err(self.db())?;
        let bound: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'ca_sha256'", [], |r| r.get(0))
            .map_err(self.db())?;
        if bound != fingerprint {
            return Err(RegistryError::OtherCa(self.path.clone()));
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> RegistryError + '_ {
        |e| RegistryError::Db { path: self.path.clone(), message: e.to_string() }
    }

    /// Records an issued certificate and its `effect` in one transaction, committed (durable)
    /// before this returns.
    pub fn record_issued(
        &self,
        rec: &CertRecord,
        effect: IssueEffect<'_>,
    ) -> Result<(), RegistryError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(self.db())?;
        tx.execute(
            &format!(
                "INSERT INTO certificates ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL, ?8, ?9, ?10, ?11)"
            ),
            params![
                rec.serial,
                rec.identity,
                rec.profile,
                rec.key_alg,
                ts(rec.not_before),
                ts(rec.not_after),
                CertStatus::Valid.as_str(),
                ts(rec.issued_at),
                rec.issued_via,
                rec.decision_id,
                rec.der,
            ],
        )
        .map_err(self.db())?;
        match effect {
            IssueEffect::None => {}
            IssueEffect::ConsumeToken(id) => {
                let n = tx
                    .execute(
                        "UPDATE tokens SET used_at = ?1, used_serial = ?2 \
                         WHERE id = ?3 AND used_at IS NULL AND expires_at > ?1",
                        params![ts(rec.issued_at), rec.serial, id],
                    )
                    .map_err(self.db())?;
                if n != 1 {
                    return Err(RegistryError::TokenUnusable);
                }
            }
            IssueEffect::Supersede(old) => {
                let n = tx
                    .execute(
                        "UPDATE certificates SET status = 'superseded', superseded_by = ?1 \
                         WHERE serial = ?2 AND status = 'valid'",
                        params![rec.serial, old],
                    )
                    .map_err(self.db())?;
                if n != 1 {
                    return Err(RegistryError::AlreadySuperseded(old.to_owned()));
                }
            }
        }
        tx.commit().map_err(self.db())
    }

    /// The certificate with this serial.
    pub fn get(&self, serial: &str) -> Result<Option<CertRecord>, RegistryError> {
        let conn = self.lock();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM certificates WHERE serial = ?1"),
            params![serial.to_ascii_lowercase()],
            row_to_record,
        )
        .optional()
        .map_err(self.db())
    }

    /// Certificates matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<CertRecord>, RegistryError> {
        let conn = self.lock();
        let limit = filter.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM certificates \
                 WHERE (?1 IS NULL OR identity = ?1) AND (?2 IS NULL OR status = ?2) \
                 ORDER BY issued_at DESC, serial LIMIT ?3"
            ))
            .map_err(self.db())?;
        let rows = stmt
            .query_map(
                params![filter.identity, filter.status.map(CertStatus::as_str), limit],
                row_to_record,
            )
            .map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }

    /// Marks a certificate revoked (a superseded one too: its key may still be compromised).
    pub fn revoke(
        &self,
        serial: &str,
        reason: RevocationReason,
        at: OffsetDateTime,
    ) -> Result<CertRecord, RegistryError> {
        let serial = serial.to_ascii_lowercase();
        let current =
            self.get(&serial)?.ok_or_else(|| RegistryError::UnknownSerial(serial.clone()))?;
        if current.status == CertStatus::Revoked {
            return Err(RegistryError::AlreadyRevoked(serial));
        }
        let conn = self.lock();
        let n = conn
            .execute(
                "UPDATE certificates SET status = 'revoked', revoked_at = ?1, \
                 revocation_reason = ?2 WHERE serial = ?3 AND status != 'revoked'",
                params![ts(at), reason.as_str(), serial],
            )
            .map_err(self.db())?;
        drop(conn);
        if n != 1 {
            return Err(RegistryError::AlreadyRevoked(serial));
        }
        self.get(&serial)?.ok_or(RegistryError::UnknownSerial(serial))
    }

    /// Revoked certificates that have not expired by `now` (what a CRL must list).
    pub fn revoked_unexpired(&self, now: OffsetDateTime) -> Result<Vec<CertRecord>, RegistryError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM certificates WHERE status = 'revoked' AND not_after > ?1 \
                 ORDER BY revoked_at, serial"
            ))
            .map_err(self.db())?;
        let rows = stmt.query_map(params![ts(now)], row_to_record).map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }

    /// The next CRL number (monotonic, committed before it is used).
    pub fn next_crl_number(&self) -> Result<u64, RegistryError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO crl_state (id, number) VALUES (1, 1) \
             ON CONFLICT(id) DO UPDATE SET number = number + 1",
            [],
        )
        .map_err(self.db())?;
        let n: i64 = conn
            .query_row("SELECT number FROM crl_state WHERE id = 1", [], |r| r.get(0))
            .map_err(self.db())?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Certificates per status, for status pages.
    pub fn counts(&self) -> Result<Vec<(CertStatus, u64)>, RegistryError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT status, COUNT(*) FROM certificates GROUP BY status ORDER BY status")
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((CertStatus::parse(&r.get::<_, String>(0)?), r.get::<_, i64>(1)?))
            })
            .map_err(self.db())?;
        rows.map(|r| r.map(|(s, n)| (s, u64::try_from(n).unwrap_or(0))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.db())
    }

    /// Stores a new token (its secret only as a SHA-256 hash).
    pub fn add_token(
        &self,
        token: &TokenRecord,
        created_at: OffsetDateTime,
    ) -> Result<(), RegistryError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO tokens (id, secret_sha256, identity, profile, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.id,
                token.secret_sha256,
                token.identity,
                token.profile,
                ts(created_at),
                ts(token.expires_at)
            ],
        )
        .map_err(self.db())?;
        Ok(())
    }

    /// The token with this id.
    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>, RegistryError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT id, identity, profile, expires_at, used_at, secret_sha256 FROM tokens \
             WHERE id = ?1",
            params![id],
            |r| {
                Ok(TokenRecord {
                    id: r.get(0)?,
                    identity: r.get(1)?,
                    profile: r.get(2)?,
                    expires_at: from_ts(r.get(3)?),
                    used_at: r.get::<_, Option<i64>>(4)?.map(from_ts),
                    secret_sha256: r.get(5)?,
                })
            },
        )
        .optional()
        .map_err(self.db())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(serial: &str) -> CertRecord {
        let now = OffsetDateTime::now_utc();
        CertRecord {
            serial: serial.into(),
            identity: "urn:medpdp:terminal:t1".into(),
            profile: "terminal-mtls".into(),
            key_alg: "ECDSA-P256".into(),
            not_before: now,
            not_after: now + time::Duration::days(1),
            status: CertStatus::Valid,
            superseded_by: None,
            revoked_at: None,
            revocation_reason: None,
            issued_at: now,
            issued_via: "cli".into(),
            decision_id: None,
            der: vec![1, 2, 3],
        }
    }

    #[test]
    fn rows_survive_reopening_and_serials_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca/registry.sqlite3");
        let r = Registry::open(&path).unwrap();
        r.record_issued(&rec("aa"), IssueEffect::None).unwrap();
        assert!(r.record_issued(&rec("aa"), IssueEffect::None).is_err(), "duplicate serial");
        drop(r);
        let r = Registry::open(&path).unwrap();
        let got = r.get("AA").unwrap().unwrap();
        assert_eq!((got.status, got.der.as_slice()), (CertStatus::Valid, &[1u8, 2, 3][..]));
    }

    #[test]
    fn supersede_revoke_and_tokens_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("r.sqlite3")).unwrap();
        r.record_issued(&rec("01"), IssueEffect::None).unwrap();
        r.record_issued(&rec("02"), IssueEffect::Supersede("01")).unwrap();
        assert!(matches!(
            r.record_issued(&rec("03"), IssueEffect::Supersede("01")),
            Err(RegistryError::AlreadySuperseded(_))
        ));
        assert!(r.get("03").unwrap().is_none(), "rolled back");
        assert_eq!(r.get("01").unwrap().unwrap().superseded_by.as_deref(), Some("02"));
        let now = OffsetDateTime::now_utc();
        let revoked = r.revoke("02", RevocationReason::KeyCompromise, now).unwrap();
        assert_eq!(revoked.revocation_reason, Some(RevocationReason::KeyCompromise));
        assert!(matches!(
            r.revoke("02", RevocationReason::Unspecified, now),
            Err(RegistryError::AlreadyRevoked(_))
        ));
        assert!(matches!(
            r.revoke("ff", RevocationReason::Unspecified, now),
            Err(RegistryError::UnknownSerial(_))
        ));
        assert_eq!(r.revoked_unexpired(now).unwrap().len(), 1);
        assert_eq!(r.next_crl_number().unwrap(), 1);
        assert_eq!(r.next_crl_number().unwrap(), 2);

        let token = TokenRecord {
            id: "tok".into(),
            identity: "urn:medpdp:terminal:t1".into(),
            profile: None,
            expires_at: now + time::Duration::hours(1),
            used_at: None,
            secret_sha256: vec![0; 32],
        };
        r.add_token(&token, now).unwrap();
        r.record_issued(&rec("10"), IssueEffect::ConsumeToken("tok")).unwrap();
        assert!(matches!(
            r.record_issued(&rec("11"), IssueEffect::ConsumeToken("tok")),
            Err(RegistryError::TokenUnusable)
        ));
        assert!(r.get("11").unwrap().is_none(), "nothing issued with a used token");
        assert!(r.token("tok").unwrap().unwrap().used_at.is_some());
    }
}
