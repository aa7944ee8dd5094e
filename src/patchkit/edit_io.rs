//! Where `edit_files` touches the file system, and only here: [`locate`] confines a path
//! to the workspace roots, [`read`] reads a located file (charged to the call's budget
//! first), and [`write_all_or_nothing`] writes the new contents of all files of one call
//! through a spool session's batch writer (intent record under
//! `<state-dir>/patchkit/batches/`, temp file + rename per file, every file restored on
//! a failure, rolled back on the next start after a crash).
//!
//! Every open goes through `runtime::workspace::Roots` and the root's directory handle
//! (`Beneath`), so no `..` or symlink swap leads out. Owns no matching or diffing (that is
//! `edit.rs`) and must not decide what a tool answers.

use std::path::{Path, PathBuf};

use crate::runtime::{
    budget::{Budget, Held},
    stop::Stop,
    workspace::{self, Beneath, Roots},
};

use super::spool::Session;

/// A file inside one workspace root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Located {
    /// The canonical workspace root holding the file.
    pub root: PathBuf,
    /// The file's path relative to `root` (`/`-separated, no `..`).
    pub rel: String,
}

/// Confines `raw` (absolute, or relative to the first workspace root) to `roots`: the
/// file must exist beneath a root (symlinks that lead out are refused); it is only ever
/// opened beneath that root's handle.
pub fn locate(roots: &Roots, raw: &str) -> Result<Located, String> {
    let canonical = roots.resolve(raw).map_err(|e| match e {
        workspace::WorkspaceError::NotFound { .. } => format!(
            "{raw} does not exist; edit_files edits existing files (create one with spool_write)"
        ),
        e => e.to_string(),
    })?;
    let root = roots
        .list()
        .into_iter()
        .filter(|r| canonical.starts_with(r))
        .max_by_key(|r| r.components().count())
        .ok_or_else(|| format!("{raw} is outside the workspace roots"))?;
    let rel = canonical
        .strip_prefix(&root)
        .ok()
        .and_then(Path::to_str)
        .ok_or_else(|| format!("{raw} is not a UTF-8 path"))?;
    let rel = workspace::relative(rel).map_err(|e| format!("{raw}: {e}"))?;
    Ok(Located { root, rel })
}

/// The root directory of `file`, opened through `roots`.
fn open_root(roots: &Roots, root: &Path) -> Result<Beneath, String> {
    let shown = root
        .to_str()
        .ok_or("a workspace root is not a UTF-8 path")?;
    roots.open_dir(Some(shown)).map_err(|e| e.to_string())
}

/// The bytes of a located file, read beneath its root's handle and charged to `held`
/// (twice: the bytes read and the text decoded from them) before they are read.
pub fn read(roots: &Roots, file: &Located, held: &mut Held) -> Result<Vec<u8>, String> {
    let dir = open_root(roots, &file.root)?;
    let mut f = dir
        .open_regular(Path::new(&file.rel))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} does not exist", file.rel))?;
    let len = f
        .metadata()
        .map_err(|e| format!("{}: {e}", file.rel))?
        .len();
    held.grow(2 * len, "the files edit_files reads")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut f, &mut out).map_err(|e| format!("{}: {e}", file.rel))?;
    Ok(out)
}

/// Writes `files` (path under `root`, bytes read before, new bytes) all-or-nothing; a
/// file that changed since it was read fails the whole call before anything is written.
pub fn write_all_or_nothing(
    roots: &Roots,
    root: &Path,
    batches: Option<&Path>,
    files: &[(String, Vec<u8>, Vec<u8>)],
    stop: &Stop,
    budget: &Budget,
) -> Result<(), String> {
    let session = Session::new("edit_files".into(), open_root(roots, root)?);
    let mut session = match batches {
        Some(dir) => session.with_batch_records(dir.to_path_buf()),
        None => session,
    };
    session.write_if_unchanged(files, stop, budget)
}
