//! Quarantine of a local journal's damaged parts: corrupt segment lines are moved, as
//! they were, to `<stream>.quarantine-<UTC time>` and the segment rewritten without them;
//! an unreadable snapshot is renamed aside. Each is reported to [`crate::runtime::damage`].
//!
//! Owns only moving bad bytes aside; must not decide what is bad (that is `format.rs`).

use std::fs;

use super::format::{BadLine, StreamPaths, sync_dir, write_synced};
use super::io_err;
use crate::runtime::{damage, store::StoreError};

/// Moves the `bad` lines of the segment's first `len` bytes to a quarantine file next to
/// it (fsynced first), then replaces the segment with the other lines (temp file, fsync,
/// rename, directory fsync) and reports the damage. Returns the segment's new length.
pub(super) fn quarantine_lines(
    paths: &StreamPaths,
    stream: &str,
    bad: &[BadLine],
    len: u64,
) -> Result<u64, StoreError> {
    let seg = &paths.segment;
    let mut bytes = fs::read(seg).map_err(io_err(seg))?;
    bytes.truncate(len as usize);
    let mut moved = Vec::new();
    let mut kept = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for line in bad {
        kept.extend_from_slice(&bytes[at..line.range.start]);
        moved.extend_from_slice(&bytes[line.range.clone()]);
        at = line.range.end;
    }
    kept.extend_from_slice(&bytes[at..]);
    let quarantine = damage::quarantine_path(&paths.dir, stream);
    write_synced(&quarantine, &moved).map_err(io_err(&quarantine))?;
    write_synced(&paths.segment_tmp, &kept).map_err(io_err(&paths.segment_tmp))?;
    fs::rename(&paths.segment_tmp, seg).map_err(io_err(seg))?;
    sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
    let lines: Vec<String> = bad.iter().take(5).map(|b| b.line.to_string()).collect();
    let reason = format!(
        "corrupt line(s) {}{} (first: {}); every other record was kept",
        lines.join(", "),
        if bad.len() > 5 { ", ..." } else { "" },
        bad[0].reason
    );
    damage::report(
        damage::Damage::new(format!("journal {stream}"), seg, reason).quarantined(
            &quarantine,
            bad.len() as u64,
            moved.len() as u64,
        ),
    );
    Ok(kept.len() as u64)
}

/// Moves an unreadable snapshot aside (renamed, so nothing is lost) and reports it; the
/// stream then replays from its segment alone.
pub(super) fn quarantine_snapshot(
    paths: &StreamPaths,
    stream: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let snap = &paths.snapshot;
    let bytes = fs::metadata(snap).map(|m| m.len()).unwrap_or(0);
    let quarantine = damage::quarantine_path(&paths.dir, &format!("{stream}.snapshot"));
    fs::rename(snap, &quarantine).map_err(io_err(snap))?;
    sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
    damage::report(
        damage::Damage::new(
            format!("journal {stream}"),
            snap,
            format!(
                "unreadable snapshot ({reason}); the records it summarised are missing, the segment's records were kept"
            ),
        )
        .quarantined(&quarantine, 0, bytes),
    );
    Ok(())
}
