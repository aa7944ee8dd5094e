//! Crash safety of spool writes: before the first rename of a batch, its intent — the
//! session root, every path it will touch, and a copy of each original — is written
//! durably under `<state-dir>/patchkit/batches/<id>/`; the record is removed once the
//! last rename is done. On start, [`recover`] rolls back every batch whose record is
//! still there (a crash or SIGKILL mid-batch): each original is put back, each file the
//! batch created is removed, and the batch's temp files are deleted, so a batch is
//! all-old or all-new across a crash.
//!
//! Recovery reopens each recorded root through the runtime's workspace roots and puts
//! files back through that directory handle, like every spool write.
//!
//! Owns the intent records and recovery only; the writes themselves are `spool.rs`'s.
//! It must not decide where a root may lie (that is `runtime::workspace::Roots`).

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::runtime::workspace::Roots;

/// Name of a temp file of batch `tag` next to file `name`.
pub fn temp_name(name: &str, tag: &str) -> String {
    format!(".{name}.spool-{tag}")
}

#[derive(Serialize, Deserialize)]
struct Record {
    /// The server process writing the batch: a record of a live process other than this
    /// one (two servers on one state directory) is not rolled back.
    pid: u32,
    root: PathBuf,
    /// (relative path, index of its original copy, or None when it did not exist).
    files: Vec<(String, Option<usize>)>,
}

const RECORD: &str = "plan.json";

/// A batch whose intent is on disk; [`Intent::finish`] removes it.
pub struct Intent {
    dir: PathBuf,
    pub tag: String,
}

fn write_synced(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    if sync { f.sync_all() } else { Ok(()) }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Records the intent of a batch over `root`: each path and its bytes before (None =
/// absent). Returns once the record is durable.
pub fn begin(
    batches: &Path,
    root: &Path,
    files: &[(&str, Option<&[u8]>)],
) -> std::io::Result<Intent> {
    begin_with(batches, root, files, true)
}

/// [`begin`], fsyncing the record only when `sync` (`--fsync never` skips it: the record
/// then still rolls a batch back after a crash of the process, not after a power loss).
pub fn begin_with(
    batches: &Path,
    root: &Path,
    files: &[(&str, Option<&[u8]>)],
    sync: bool,
) -> std::io::Result<Intent> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let dir = batches.join(&tag);
    std::fs::create_dir_all(&dir)?;
    let mut record = Record {
        pid: std::process::id(),
        root: root.to_path_buf(),
        files: Vec::with_capacity(files.len()),
    };
    for (i, (rel, before)) in files.iter().enumerate() {
        let copy = match before {
            Some(bytes) => {
                write_synced(&dir.join(i.to_string()), bytes, sync)?;
                Some(i)
            }
            None => None,
        };
        record.files.push((rel.to_string(), copy));
    }
    let json = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    let tmp = dir.join("plan.json.tmp");
    write_synced(&tmp, &json, sync)?;
    std::fs::rename(&tmp, dir.join(RECORD))?;
    if sync {
        sync_dir(&dir)?;
        sync_dir(batches)?;
    }
    Ok(Intent { dir, tag })
}

impl Intent {
    /// The batch is whole on disk: forget its intent.
    pub fn finish(self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), "removing a finished spool batch record: {e}");
        }
    }

    /// [`Intent::finish`] that, with `sync`, also makes the removal durable (the batch's
    /// renames must be durable first): a record brought back by a power loss would roll
    /// back a batch that was already answered as written.
    pub fn finish_synced(self, sync: bool) {
        let batches = self.dir.parent().map(Path::to_path_buf);
        self.finish();
        if let Some(batches) = batches.filter(|_| sync)
            && let Err(e) = sync_dir(&batches)
        {
            tracing::warn!(dir = %batches.display(), "syncing the removal of a spool batch record: {e}");
        }
    }
}

/// Rolls back every batch recorded under `batches` (each root reopened inside `roots`);
/// returns the files put back.
pub fn recover(batches: &Path, roots: &Roots) -> Vec<String> {
    let mut restored = Vec::new();
    let Ok(entries) = std::fs::read_dir(batches) else {
        return restored;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let tag = entry.file_name().to_string_lossy().into_owned();
        if let Ok(bytes) = std::fs::read(dir.join(RECORD)) {
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(record) if alive_elsewhere(record.pid) => continue,
                Ok(record) => restored.extend(roll_back(&dir, &tag, &record, roots)),
                Err(e) => {
                    tracing::error!(dir = %dir.display(), "unreadable spool batch record, left in place: {e}");
                    continue;
                }
            }
        }
        // Without a record nothing was renamed yet: only the copies are left to remove.
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), "removing a rolled-back spool batch record: {e}");
        }
    }
    restored
}

fn alive_elsewhere(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn roll_back(dir: &Path, tag: &str, record: &Record, roots: &Roots) -> Vec<String> {
    let mut restored = Vec::new();
    let root = match roots.open_dir(Some(&record.root.to_string_lossy())) {
        Ok(root) => root,
        Err(e) => {
            tracing::error!(root = %record.root.display(), "an interrupted spool batch cannot be rolled back: {e}");
            return restored;
        }
    };
    for (rel, copy) in &record.files {
        let path = Path::new(rel);
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let temp = temp_name(&name, tag);
        let _ = root.remove_file(&path.with_file_name(&temp));
        let outcome = match copy {
            Some(i) => std::fs::read(dir.join(i.to_string()))
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    root.replace(path, &bytes, &temp, &mut Vec::new())
                        .map_err(|e| e.to_string())
                }),
            None => root.remove_file(path).map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(()) => restored.push(rel.clone()),
            Err(e) => tracing::error!(path = %rel, "rolling back an interrupted spool batch: {e}"),
        }
    }
    tracing::warn!(
        files = restored.len(),
        root = %record.root.display(),
        "rolled back a spool batch interrupted by a crash"
    );
    restored
}
