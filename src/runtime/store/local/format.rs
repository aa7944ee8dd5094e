//! The local journal's files: their names, the segment's line codec and the snapshot
//! file, replay of both (torn tails, corrupt lines found), and the fsync helpers.
//!
//! Owns the bytes on disk; must not touch the writer's queue or the damage report
//! (that is `quarantine.rs`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::io_err;
use crate::runtime::store::StoreError;

pub(super) const SNAPSHOT_VERSION: u32 = 1;

pub(super) struct StreamPaths {
    pub(super) dir: PathBuf,
    pub(super) segment: PathBuf,
    pub(super) snapshot: PathBuf,
    pub(super) snapshot_tmp: PathBuf,
    /// The snapshot a [`Request::Retain`]'s helper thread writes.
    pub(super) retain_tmp: PathBuf,
    /// The segment's tail being written when a retained snapshot is installed.
    pub(super) segment_tmp: PathBuf,
}

impl StreamPaths {
    pub(super) fn new(dir: &Path, stream: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            segment: dir.join(format!("{stream}.ndjson")),
            snapshot: dir.join(format!("{stream}.snapshot.json")),
            snapshot_tmp: dir.join(format!("{stream}.snapshot.json.tmp")),
            retain_tmp: dir.join(format!("{stream}.snapshot.json.retain.tmp")),
            segment_tmp: dir.join(format!("{stream}.ndjson.tmp")),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct Snapshot {
    pub(super) version: u32,
    pub(super) last_seq: u64,
    pub(super) records: Vec<Value>,
}

/// What [`Writer::compact`] writes: a [`Snapshot`] that borrows its records.
#[derive(Serialize)]
pub(super) struct SnapshotRef<'a> {
    pub(super) version: u32,
    pub(super) last_seq: u64,
    pub(super) records: &'a [Value],
}

#[derive(Deserialize)]
pub(super) struct Line {
    pub(super) seq: u64,
    pub(super) rec: Value,
}

/// Tells a snapshot file from the one that replaces it (compaction renames a new file
/// over it); `None` when there is none.
pub(super) fn file_identity(path: &Path) -> Option<(u64, u64, Option<std::time::SystemTime>)> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((inode, meta.len(), meta.modified().ok()))
}

pub(super) fn read_snapshot(path: &Path) -> Result<(u64, Vec<Value>), StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, Vec::new())),
        Err(e) => return Err(io_err(path)(e)),
    };
    let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        file: path.to_path_buf(),
        line: e.line(),
        reason: e.to_string(),
    })?;
    Ok((snap.last_seq, snap.records))
}

pub(super) struct SegmentReplay {
    pub(super) last_seq: u64,
    /// Valid length of the segment after dropping a torn tail.
    pub(super) len: u64,
}

/// What replay does with a torn last line: the writer truncates it, readers stop before it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TornTail {
    Truncate,
    Keep,
}

/// A corrupt segment line before the last one: skipped by replay.
pub(super) struct BadLine {
    /// 1-based line number.
    pub(super) line: usize,
    /// Byte range of the line, its newline included.
    pub(super) range: std::ops::Range<usize>,
    pub(super) reason: String,
}

pub(super) fn replay_segment(
    path: &Path,
    snapshot_seq: u64,
    torn: TornTail,
    bad: &mut Vec<BadLine>,
    each: &mut dyn FnMut(u64, Value),
) -> Result<SegmentReplay, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(path)(e)),
    };
    replay_bytes(path, &bytes, snapshot_seq, torn, bad, each)
}

/// [`replay_segment`] over the segment's bytes (`path` names it in errors). Corrupt
/// lines before the last one are skipped and listed in `bad`.
pub(super) fn replay_bytes(
    path: &Path,
    bytes: &[u8],
    snapshot_seq: u64,
    torn: TornTail,
    bad: &mut Vec<BadLine>,
    each: &mut dyn FnMut(u64, Value),
) -> Result<SegmentReplay, StoreError> {
    let mut out = SegmentReplay {
        last_seq: snapshot_seq,
        len: 0,
    };
    let mut offset = 0usize;
    let mut line_no = 0usize;
    let mut segment_seq = 0u64;
    while offset < bytes.len() {
        line_no += 1;
        let rest = &bytes[offset..];
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            return drop_torn_tail(path, out, line_no, "missing trailing newline", torn);
        };
        let raw = &rest[..nl];
        let is_last = offset + nl + 1 == bytes.len();
        match parse_line(raw, segment_seq) {
            Ok(Some(line)) => {
                segment_seq = line.seq;
                out.last_seq = out.last_seq.max(line.seq);
                if line.seq > snapshot_seq {
                    each(line.seq, line.rec);
                }
            }
            Ok(None) => {}
            Err(e) if is_last => {
                return drop_torn_tail(path, out, line_no, &e.to_string(), torn);
            }
            Err(e) => bad.push(BadLine {
                line: line_no,
                range: offset..offset + nl + 1,
                reason: e.to_string(),
            }),
        }
        offset += nl + 1;
        out.len = offset as u64;
    }
    Ok(out)
}

/// Why a segment line is unreadable (the reason recorded for a bad or torn line).
#[derive(Debug, thiserror::Error)]
pub(super) enum LineError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("sequence {seq} not after {prev}")]
    OutOfOrder { seq: u64, prev: u64 },
}

/// Parse one segment line; `Ok(None)` for blank lines.
pub(super) fn parse_line(raw: &[u8], prev_seq: u64) -> Result<Option<Line>, LineError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let line: Line = serde_json::from_slice(raw)?;
    // Sequence numbers must strictly increase within a segment.
    if line.seq <= prev_seq {
        return Err(LineError::OutOfOrder {
            seq: line.seq,
            prev: prev_seq,
        });
    }
    Ok(Some(line))
}

pub(super) fn drop_torn_tail(
    path: &Path,
    out: SegmentReplay,
    line: usize,
    reason: &str,
    torn: TornTail,
) -> Result<SegmentReplay, StoreError> {
    if torn == TornTail::Keep {
        return Ok(out);
    }
    tracing::warn!(
        file = %path.display(),
        line,
        reason,
        "dropping torn last journal line"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    file.set_len(out.len).map_err(io_err(path))?;
    file.sync_data().map_err(io_err(path))?;
    Ok(out)
}
pub(super) fn encode_line(buf: &mut Vec<u8>, seq: u64, rec: &[u8]) {
    buf.extend_from_slice(b"{\"seq\":");
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{seq}");
    buf.extend_from_slice(b",\"rec\":");
    buf.extend_from_slice(rec);
    buf.extend_from_slice(b"}\n");
}

pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
