//! Structural checks on a JSON body before it is decoded: nesting depth and duplicate keys.
//!
//! serde_json alone accepts any object with a repeated key (the last one wins) and nests up to
//! its fixed recursion limit. Both are risks for an authorization service: a duplicate key
//! lets two parsers disagree about what was asked (the PEP may have checked the first value,
//! we would decide on the last), and deep nesting costs stack and time out of proportion to
//! the body size. So every JSON body is walked once, without building anything, and refused
//! with the offending field named when it nests deeper than `limits.max_json_depth` or repeats
//! a key in any object (RFC 8259 §4 says names SHOULD be unique; I-JSON, RFC 7493, makes it
//! MUST). The walk borrows keys from the input, so a body without escapes allocates only the
//! per-object key lists.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a body failed the structural check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardError {
    /// Not JSON (or not UTF-8, or trailing characters): serde_json's message.
    Syntax(String),
    /// Nested deeper than allowed; `path` is where the limit was crossed.
    TooDeep {
        /// JSON path of the value that is too deep, e.g. `context.a.b`.
        path: String,
        /// The configured limit.
        max_depth: usize,
    },
    /// An object repeats a key.
    DuplicateKey {
        /// JSON path of the repeated member, e.g. `context.patient`.
        path: String,
    },
}

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(m) => f.write_str(m),
            Self::TooDeep { path, max_depth } => write!(
                f,
                "`{path}` is nested more than {max_depth} levels deep (limits.max_json_depth)"
            ),
            Self::DuplicateKey { path } => {
                write!(f, "duplicate key: `{path}` appears more than once in its object")
            }
        }
    }
}

/// Checks that `bytes` is one JSON value with at most `max_depth` objects and arrays nested in
/// one another (`1` and `{}` have depth 0 and 1) and no repeated key in any object.
pub fn check(bytes: &[u8], max_depth: usize) -> Result<(), GuardError> {
    let failure = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // serde_json's own recursion limit (128) stays on as a backstop for configured depths
    // above it.
    let walked = Walk { depth: 1, max_depth, failure: &failure }.deserialize(&mut de);
    if let Some(f) = failure.into_inner() {
        return Err(f.finish(max_depth));
    }
    walked.map_err(|e| GuardError::Syntax(e.to_string()))?;
    de.end().map_err(|e| GuardError::Syntax(e.to_string()))
}

/// A structural failure being unwound: each enclosing level prepends its path segment.
#[derive(Debug)]
struct Failure {
    kind: FailureKind,
    /// Path segments, innermost first.
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy)]
enum FailureKind {
    TooDeep,
    Duplicate,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Failure {
    fn finish(self, max_depth: usize) -> GuardError {
        let mut path = String::new();
        for seg in self.segments.iter().rev() {
            match seg {
                Segment::Key(k) if path.is_empty() => path.push_str(k),
                Segment::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if path.is_empty() {
            path.push('.');
        }
        match self.kind {
            FailureKind::TooDeep => GuardError::TooDeep { path, max_depth },
            FailureKind::Duplicate => GuardError::DuplicateKey { path },
        }
    }
}

type FailureCell = RefCell<Option<Failure>>;

fn fail<E: de::Error>(cell: &FailureCell, kind: FailureKind, segments: Vec<Segment>) -> E {
    *cell.borrow_mut() = Some(Failure { kind, segments });
    E::custom("structural check failed")
}

fn add_segment(cell: &FailureCell, seg: impl FnOnce() -> Segment) {
    if let Some(f) = cell.borrow_mut().as_mut() {
        f.segments.push(seg());
    }
}

/// One value at `depth`.
struct Walk<'f> {
    depth: usize,
    max_depth: usize,
    failure: &'f FailureCell,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Walk<'_> {
    fn child(&self) -> Walk<'_> {
        Walk { depth: self.depth + 1, max_depth: self.max_depth, failure: self.failure }
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth > self.max_depth {
            return Err(fail(self.failure, FailureKind::TooDeep, Vec::new()));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut index = 0usize;
        loop {
            match seq.next_element_seed(self.child()) {
                Ok(Some(())) => index += 1,
                Ok(None) => return Ok(()),
                Err(e) => {
                    add_segment(self.failure, || Segment::Index(index));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut keys = Keys::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if !keys.insert(key.clone()) {
                return Err(fail(
                    self.failure,
                    FailureKind::Duplicate,
                    vec![Segment::Key(key.into())],
                ));
            }
            if let Err(e) = map.next_value_seed(self.child()) {
                add_segment(self.failure, || Segment::Key(key.into_owned()));
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The keys seen in one object: a short list scanned linearly (objects in requests are small),
/// a hash set once it grows.
#[derive(Default)]
struct Keys<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<HashSet<Cow<'de, str>>>,
}

impl<'de> Keys<'de> {
    const LINEAR: usize = 16;

    /// False when `key` was already there.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > Self::LINEAR {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1))
    }

    #[test]
    fn depth_counts_levels_and_names_the_path() {
        assert_eq!(check(b"1", 1), Ok(()));
        assert_eq!(check(b"{}", 1), Ok(()));
        assert_eq!(check(nested(33).as_bytes(), 32), Ok(()), "32 arrays");
        assert!(matches!(check(nested(34).as_bytes(), 32), Err(GuardError::TooDeep { .. })));
        let e = check(br#"{"context": {"a": {"b": [1, {"c": 2}]}}}"#, 4).unwrap_err();
        assert_eq!(e, GuardError::TooDeep { path: "context.a.b[1]".into(), max_depth: 4 });
        assert_eq!(check(br#"{"context": {"a": {"b": [1, {"c": 2}]}}}"#, 5), Ok(()));
        // Far beyond serde_json's own limit: refused, no stack overflow.
        assert!(check(nested(100_000).as_bytes(), 32).is_err());
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth_and_any_size() {
        let e = check(br#"{"a": 1, "b": {"x": 1, "x": 2}}"#, 32).unwrap_err();
        assert_eq!(e, GuardError::DuplicateKey { path: "b.x".into() });
        let e = check(br#"{"a": 1, "a": 1}"#, 32).unwrap_err();
        assert_eq!(e, GuardError::DuplicateKey { path: "a".into() });
        // Escaped and plain spellings of the same key are the same key.
        let e = check(br#"{"id": 1, "\u0069d": 2}"#, 32).unwrap_err();
        assert_eq!(e, GuardError::DuplicateKey { path: "id".into() });
        // Past the linear list, the hash set still finds repeats.
        let mut body: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
        assert_eq!(check(format!("{{{}}}", body.join(",")).as_bytes(), 32), Ok(()));
        body.push("\"k3\": 0".into());
        let e = check(format!("{{{}}}", body.join(",")).as_bytes(), 32).unwrap_err();
        assert_eq!(e, GuardError::DuplicateKey { path: "k3".into() });
        // The same key in sibling objects is fine.
        assert_eq!(check(br#"[{"a": 1}, {"a": 2}]"#, 32), Ok(()));
    }

    #[test]
    fn syntax_errors_pass_through() {
        for bad in [&b""[..], b"{", b"{\"a\":}", b"[1,]", b"1 2", b"\"\xff\"", b"nul"] {
            assert!(matches!(check(bad, 32), Err(GuardError::Syntax(_))), "{bad:?}");
        }
    }
}
