//! Where `edit_files` touches the file system, and only here: [`locate`] confines a path
//! to the workspace roots, [`read`] reads a located file (charged to the call's budget
//! first), and [`write_all_or_nothing`] writes the new contents of all files of one call
//! through a spool session's batch writer (intent record under
//! `<state-dir>/patchkit/batches/`, temp file + rename per file, every file restored on
//! a failure, rolled back on the next start after a crash).
//!
//! Kept small on purpose: switching path confinement (e.g. to capability-based root
//! handles) means changing these three functions. Owns no matching or diffing (that is
//! `edit.rs`) and must not decide what a tool answers.

use std::path::{Path, PathBuf};

use crate::runtime::{
    budget::{Budget, Held},
    stop::Stop,
};

use super::{paths, spool::Session};

/// A file inside one workspace root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Located {
    /// The canonical workspace root holding the file.
    pub root: PathBuf,
    /// The file's path relative to `root` (`/`-separated, no `..`).
    pub rel: String,
}

/// Confines `raw` (absolute, or relative to the first workspace root) to `roots`
/// (canonical): the file must exist, be a regular file, and its canonical path must lie
/// inside a root (symlinks that lead out are refused).
pub fn locate(roots: &[PathBuf], raw: &str) -> Result<Located, String> {
    if raw.is_empty() || raw.contains('\0') {
        return Err(format!("path {raw:?} is empty or holds a NUL byte"));
    }
    let Some(first) = roots.first() else {
        return Err(
            "no workspace root exists; start the server with --workspace-roots".to_string(),
        );
    };
    let given = Path::new(raw);
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else {
        first.join(given)
    };
    let canonical = joined.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{raw} does not exist; edit_files edits existing files (create one with spool_write)"
        ),
        _ => format!("{raw}: {e}"),
    })?;
    let root = roots
        .iter()
        .filter(|r| canonical.starts_with(r))
        .max_by_key(|r| r.as_os_str().len())
        .ok_or_else(|| {
            format!(
                "{raw} is outside the workspace roots ({}); edit files inside them",
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let rel = canonical
        .strip_prefix(root)
        .ok()
        .and_then(Path::to_str)
        .ok_or_else(|| format!("{raw} is not a UTF-8 path"))?;
    let rel = paths::normalise(rel).map_err(|e| format!("{raw}: {e}"))?;
    let full = paths::resolve(root, &rel).map_err(|e| format!("{raw}: {e}"))?;
    if !full.is_file() {
        return Err(format!("{raw} is not a regular file"));
    }
    Ok(Located {
        root: root.clone(),
        rel,
    })
}

/// The bytes of a located file, charged to `held` (twice: the bytes read and the text
/// decoded from them) before they are read.
pub fn read(file: &Located, held: &mut Held) -> Result<Vec<u8>, String> {
    let full = paths::resolve(&file.root, &file.rel).map_err(|e| e.to_string())?;
    let len = std::fs::metadata(&full)
        .map_err(|e| format!("{}: {e}", file.rel))?
        .len();
    held.grow(2 * len, "the files edit_files reads")
        .map_err(|e| e.to_string())?;
    std::fs::read(&full).map_err(|e| format!("{}: {e}", file.rel))
}

/// Writes `files` (path under `root`, bytes read before, new bytes) all-or-nothing; a
/// file that changed since it was read fails the whole call before anything is written.
pub fn write_all_or_nothing(
    root: &Path,
    batches: Option<&Path>,
    files: &[(String, Vec<u8>, Vec<u8>)],
    stop: &Stop,
    budget: &Budget,
) -> Result<(), String> {
    let session = Session::new("edit_files".into(), root.to_path_buf());
    let mut session = match batches {
        Some(dir) => session.with_batch_records(dir.to_path_buf()),
        None => session,
    };
    session.write_if_unchanged(files, stop, budget)
}
