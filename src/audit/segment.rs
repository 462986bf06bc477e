//! Segment files: naming, listing, reading them as one stream of lines, and crash recovery.
//!
//! The log is a directory of segments named by the sequence number of their first record
//! (`00000000000000000001.jsonl`), so lexical order is chain order. A segment is appended to
//! by one process run only and never rewritten; the writer starts a new one on every start,
//! when the current one exceeds its size, and when it gets too old.
//!
//! Recovery (at start-up, before anything is written): the last complete, hash-valid record
//! is found; bytes after it (a torn write from a crash or power loss) are truncated and
//! reported, so the writer can record that it did so and continue the chain. Corruption
//! *before* the last valid record is not repaired here: that is tampering or media damage,
//! and `audit verify` reports it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{canonical_hash, split_line, LoggedRecord, RecordKind};
use super::AuditError;

/// File name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.jsonl")
}

/// The segment files of a log directory, in chain order. A missing directory has none.
pub fn list_segments(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io(dir, e)),
    };
    let mut segments: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.len() == 26
                    && n.ends_with(".jsonl")
                    && n[..20].bytes().all(|b| b.is_ascii_digit())
            })
        })
        .collect();
    segments.sort();
    Ok(segments)
}

/// Makes a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| AuditError::io(dir, e))
}

/// One line of the log as stored.
#[derive(Debug, Clone)]
pub struct RawLine {
    /// Segment file name.
    pub segment: Arc<str>,
    /// Line number within the segment, from 1.
    pub line: u64,
    /// Byte offset of the line within the segment.
    pub offset: u64,
    /// Position in the whole log, from 1 (the n-th line over all segments).
    pub position: u64,
    /// The bytes, without the newline.
    pub bytes: Vec<u8>,
    /// False for a last line that has no newline (a truncated record).
    pub complete: bool,
}

/// Reads every line of every segment in order, with constant memory.
#[derive(Debug)]
pub struct LogReader {
    segments: std::vec::IntoIter<PathBuf>,
    current: Option<(Arc<str>, BufReader<File>)>,
    line: u64,
    offset: u64,
    position: u64,
}

impl LogReader {
    /// A reader over the log in `dir`; fails when the directory holds no segment.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        let segments = list_segments(dir)?;
        if segments.is_empty() {
            return Err(AuditError::NoLog { dir: dir.display().to_string() });
        }
        Ok(Self { segments: segments.into_iter(), current: None, line: 0, offset: 0, position: 0 })
    }

    fn next_line(&mut self) -> Result<Option<RawLine>, AuditError> {
        loop {
            if self.current.is_none() {
                let Some(path) = self.segments.next() else {
                    return Ok(None);
                };
                let name: Arc<str> =
                    path.file_name().map(|n| n.to_string_lossy().into()).unwrap_or_default();
                let file = File::open(&path).map_err(|e| AuditError::io(&path, e))?;
                self.current = Some((name, BufReader::with_capacity(1 << 20, file)));
                self.line = 0;
                self.offset = 0;
            }
            let Some((name, reader)) = self.current.as_mut() else {
                continue;
            };
            let mut bytes = Vec::with_capacity(512);
            let n = reader
                .read_until(b'\n', &mut bytes)
                .map_err(|e| AuditError::io(Path::new(&**name), e))?;
            if n == 0 {
                self.current = None;
                continue;
            }
            let complete = bytes.last() == Some(&b'\n');
            if complete {
                bytes.pop();
            }
            self.line += 1;
            self.position += 1;
            let raw = RawLine {
                segment: Arc::clone(name),
                line: self.line,
                offset: self.offset,
                position: self.position,
                bytes,
                complete,
            };
            self.offset += n as u64;
            return Ok(Some(raw));
        }
    }
}

impl Iterator for LogReader {
    type Item = Result<RawLine, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().transpose()
    }
}

/// The end of the chain found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEnd {
    /// Sequence number of the last record.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// Its kind (a clean stop ends with a checkpoint).
    pub kind: RecordKind,
}

/// A torn tail removed at start-up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Truncation {
    /// Segment file name.
    pub segment: String,
    /// Offset the segment was truncated to.
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
}

/// What recovery found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The last valid record, if the log has any.
    pub end: Option<ChainEnd>,
    /// The torn tails that were truncated (normally at most one).
    pub truncated: Vec<Truncation>,
}

/// Finds the end of the chain in `dir`, truncating a torn tail (and removing trailing segment
/// files left empty by it).
pub fn recover(dir: &Path) -> Result<Recovery, AuditError> {
    let mut recovery = Recovery::default();
    let mut segments = list_segments(dir)?;
    while let Some(path) = segments.pop() {
        let bytes = std::fs::read(&path).map_err(|e| AuditError::io(&path, e))?;
        let (good_end, last) = last_valid_record(&bytes);
        if good_end < bytes.len() {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| AuditError::io(&path, e))?;
            file.set_len(good_end as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| AuditError::io(&path, e))?;
            recovery.truncated.push(Truncation {
                segment: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                offset: good_end as u64,
                bytes: (bytes.len() - good_end) as u64,
            });
            tracing::warn!(
                segment = %path.display(),
                offset = good_end,
                bytes = bytes.len() - good_end,
                "decision log: truncated a torn tail left by an unclean stop"
            );
        }
        if let Some(end) = last {
            recovery.end = Some(end);
            break;
        }
        // Nothing valid in this segment: it only ever held a torn write. Remove it so the
        // next segment name is free, and look at the one before.
        std::fs::remove_file(&path).map_err(|e| AuditError::io(&path, e))?;
        sync_dir(dir)?;
    }
    Ok(recovery)
}

/// Byte offset just after the last complete, hash-valid record of a segment, and that record.
fn last_valid_record(bytes: &[u8]) -> (usize, Option<ChainEnd>) {
    let mut good_end = 0;
    let mut last = None;
    let mut start = 0;
    while let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') {
        let line = &bytes[start..start + nl];
        if let Some(split) = split_line(line) {
            if canonical_hash(split.body_open) == split.hash {
                if let Ok(rec) = serde_json::from_slice::<LoggedRecord>(line) {
                    good_end = start + nl + 1;
                    last = Some(ChainEnd { seq: rec.seq, hash: rec.hash, kind: rec.kind });
                }
            }
        }
        start += nl + 1;
    }
    (good_end, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{encode_line, payload_of, GENESIS};

    fn lines(n: u64) -> (Vec<u8>, String) {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let p =
                payload_of(&serde_json::json!({"kind": "event", "ts": "t", "event": "e"})).unwrap();
            prev = encode_line(&mut out, seq, &prev, &p);
        }
        (out, prev)
    }

    #[test]
    fn recovery_truncates_a_torn_tail_and_finds_the_chain_end() {
        let d = tempfile::tempdir().unwrap();
        let (mut bytes, last) = lines(3);
        let clean = bytes.len();
        bytes.extend_from_slice(b"{\"seq\":4,\"prev\":\"abc");
        std::fs::write(d.path().join(segment_name(1)), &bytes).unwrap();
        let r = recover(d.path()).unwrap();
        assert_eq!(r.end.as_ref().map(|e| (e.seq, e.hash.as_str())), Some((3, last.as_str())));
        assert_eq!(r.truncated.len(), 1);
        assert_eq!((r.truncated[0].offset, r.truncated[0].bytes), (clean as u64, 20));
        assert_eq!(std::fs::metadata(d.path().join(segment_name(1))).unwrap().len(), clean as u64);
        // Recovering again finds nothing more to do.
        assert!(recover(d.path()).unwrap().truncated.is_empty());
    }

    #[test]
    fn a_segment_holding_only_a_torn_write_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let (bytes, last) = lines(2);
        std::fs::write(d.path().join(segment_name(1)), &bytes).unwrap();
        std::fs::write(d.path().join(segment_name(3)), b"\0\0\0\0").unwrap();
        let r = recover(d.path()).unwrap();
        assert_eq!(r.end.unwrap().hash, last);
        assert_eq!(list_segments(d.path()).unwrap().len(), 1);
    }

    #[test]
    fn the_reader_spans_segments_and_flags_an_incomplete_last_line() {
        let d = tempfile::tempdir().unwrap();
        let (bytes, _) = lines(2);
        std::fs::write(d.path().join(segment_name(1)), &bytes).unwrap();
        std::fs::write(d.path().join(segment_name(3)), b"{\"x\":1}\n{\"y\"").unwrap();
        std::fs::write(d.path().join("notes.txt"), b"ignored").unwrap();
        let got: Vec<RawLine> = LogReader::open(d.path()).unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), 4);
        assert_eq!((got[2].position, got[2].line, got[2].offset), (3, 1, 0));
        assert!(got[2].complete && !got[3].complete);
        assert_eq!(&*got[3].segment, segment_name(3));
        assert!(matches!(LogReader::open(&d.path().join("none")), Err(AuditError::NoLog { .. })));
    }
}
