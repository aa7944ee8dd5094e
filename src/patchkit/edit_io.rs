//! Where `edit_files` touches the file system, and only here: [`locate`] confines a path
//! to the workspace roots, [`open_root`] opens the root of a call once, [`read`] reads a
//! located file beneath it (charged to the call's budget first), and
//! [`write_all_or_nothing`] writes the new contents of all files of one call.
//!
//! The write: every file is first checked to still hold the bytes the edits were made
//! against; then, file by file, the new content goes to a temp file next to it, which is
//! renamed over it. A failure before the last rename removes that temp file and puts
//! back every file already renamed, so a call writes all its files or none.
//!
//! Crash safety: an edit of several files first records its intent (each path and a
//! copy of its original) under `<state-dir>/patchkit/batches/` through `spool_journal`,
//! so a crash between two renames is rolled back on the next start; an edit of one file
//! needs no record, since its one rename is atomic (a crash before it leaves the file as
//! it was, at worst with a stray hidden `.NAME.spool-*` temp file beside it).
//!
//! Durability follows the server's `--fsync` policy: under `always` and `batch` (the
//! call is the batch) each temp file is fsynced before its rename, each directory
//! holding an edited file is fsynced once after the renames, and a record is fsynced
//! before the first rename and its removal after the last, so an answered edit survives
//! a power loss; under `never` nothing is fsynced (a crash of the process is still
//! rolled back; a power loss may lose recent edits).
//!
//! Every open goes through `runtime::workspace::Roots` and the root's directory handle
//! (`Beneath`), so no `..` or symlink swap leads out. Owns no matching or diffing (that is
//! `edit.rs`) and must not decide what a tool answers.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::{
    config::Fsync,
    runtime::{
        budget::{BudgetExceeded, Held},
        stop::{Stop, Stopped},
        workspace::{self, Beneath, Roots, WorkspaceError},
    },
};

use super::spool_journal;

/// What went wrong finding, reading or writing the files of an edit.
#[derive(Debug, thiserror::Error)]
pub enum EditIoError {
    #[error("{raw} does not exist; edit_files edits existing files (create one with spool_write)")]
    Missing { raw: String },
    #[error("{raw} is outside the workspace roots")]
    Outside { raw: String },
    #[error("{raw} is not a UTF-8 path")]
    NotUtf8 { raw: String },
    #[error("{raw}: {source}")]
    NotRelative { raw: String, source: WorkspaceError },
    #[error("a workspace root is not a UTF-8 path")]
    RootNotUtf8,
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("{rel} does not exist")]
    Gone { rel: String },
    #[error("{rel}: {source}")]
    Io { rel: String, source: std::io::Error },
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    #[error(
        "{rel} changed on disk while the edits were being prepared (sha256 now {sha}); nothing was written: read it again and resend the edits"
    )]
    Changed { rel: String, sha: String },
    #[error("{0}; nothing was written")]
    Stopped(#[from] Stopped),
    #[error("recording the edits under {dir} before writing failed: {reason}; nothing was written")]
    Record { dir: String, reason: String },
    #[error("writing {rel} failed: {source}; nothing was written")]
    NotWritten { rel: String, source: WorkspaceError },
    #[error("writing {rel} failed: {source}; {after}")]
    Restored {
        rel: String,
        source: WorkspaceError,
        /// "every file was restored byte-for-byte", or which files could not be.
        after: String,
    },
}

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
pub fn locate(roots: &Roots, raw: &str) -> Result<Located, EditIoError> {
    let canonical = roots.resolve(raw).map_err(|e| match e {
        WorkspaceError::NotFound { .. } => EditIoError::Missing {
            raw: raw.to_string(),
        },
        e => e.into(),
    })?;
    let root = roots
        .list()
        .into_iter()
        .filter(|r| canonical.starts_with(r))
        .max_by_key(|r| r.components().count())
        .ok_or_else(|| EditIoError::Outside {
            raw: raw.to_string(),
        })?;
    let rel = canonical
        .strip_prefix(&root)
        .ok()
        .and_then(Path::to_str)
        .ok_or_else(|| EditIoError::NotUtf8 {
            raw: raw.to_string(),
        })?;
    let rel = workspace::relative(rel).map_err(|source| EditIoError::NotRelative {
        raw: raw.to_string(),
        source,
    })?;
    Ok(Located { root, rel })
}

/// The workspace root `root` (a [`Located::root`]), opened through `roots` once per call.
pub fn open_root(roots: &Roots, root: &Path) -> Result<Beneath, EditIoError> {
    let shown = root.to_str().ok_or(EditIoError::RootNotUtf8)?;
    Ok(roots.open_dir(Some(shown))?)
}

/// The bytes of a located file, read beneath its root's handle `dir` and charged to
/// `held` (twice: the bytes read and the text decoded from them) before they are read.
pub fn read(dir: &Beneath, file: &Located, held: &mut Held) -> Result<Vec<u8>, EditIoError> {
    let mut f = dir
        .open_regular(Path::new(&file.rel))?
        .ok_or_else(|| EditIoError::Gone {
            rel: file.rel.clone(),
        })?;
    let io = |source| EditIoError::Io {
        rel: file.rel.clone(),
        source,
    };
    let len = f.metadata().map_err(io)?.len();
    held.grow(2 * len, "the files edit_files reads")?;
    let mut out = Vec::with_capacity(len as usize);
    f.read_to_end(&mut out).map_err(io)?;
    Ok(out)
}

/// One file to write: its path under the root, the bytes it was read with, the new bytes.
pub struct Change<'a> {
    pub rel: &'a str,
    pub before: &'a [u8],
    pub after: &'a [u8],
}

/// Refuses `rel` unless it still holds `before` (compared in pieces, nothing held).
fn check_unchanged(dir: &Beneath, rel: &str, before: &[u8]) -> Result<(), EditIoError> {
    let io = |source| EditIoError::Io {
        rel: rel.to_string(),
        source,
    };
    let Some(mut f) = dir.open_regular(Path::new(rel))? else {
        return Err(EditIoError::Changed {
            rel: rel.to_string(),
            sha: "none: it was deleted".into(),
        });
    };
    let mut buf = [0u8; 16 * 1024];
    let mut at = 0usize;
    let mut same = f.metadata().map_err(io)?.len() == before.len() as u64;
    while same {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            same = at == before.len();
            break;
        }
        same = before.get(at..at + n) == Some(&buf[..n]);
        at += n;
    }
    if same {
        return Ok(());
    }
    // Changed: name what it holds now (hashed in pieces from the start).
    let mut f = dir
        .open_regular(Path::new(rel))?
        .ok_or_else(|| EditIoError::Changed {
            rel: rel.to_string(),
            sha: "none: it was deleted".into(),
        })?;
    let mut hasher = Sha256::new();
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Err(EditIoError::Changed {
        rel: rel.to_string(),
        sha: hex::encode(hasher.finalize()),
    })
}

/// A file being written: its directory (opened once per directory), name and temp name.
struct Slot<'a> {
    change: &'a Change<'a>,
    dir: usize,
    name: &'a str,
    temp: String,
}

/// Writes `files` (under the root `dir`) all-or-nothing, as the module doc says; a file
/// that no longer holds the bytes it was read with fails the whole call before anything
/// is written. `batches`: where a multi-file edit records its intent (None: nowhere,
/// logged at start).
pub fn write_all_or_nothing(
    dir: &Beneath,
    batches: Option<&Path>,
    files: &[Change<'_>],
    fsync: Fsync,
    stop: &Stop,
) -> Result<(), EditIoError> {
    let sync = fsync != Fsync::Never;
    for c in files {
        check_unchanged(dir, c.rel, c.before)?;
    }
    stop.check()?;
    // Each directory holding a file is opened once (and synced once).
    let mut dirs: Vec<Beneath> = Vec::new();
    let mut dir_index: BTreeMap<&Path, usize> = BTreeMap::new();
    let mut slots: Vec<Slot<'_>> = Vec::with_capacity(files.len());
    for c in files {
        let path = Path::new(c.rel);
        let (parent, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
            (Some(p), Some(n)) => (p, n),
            _ => {
                return Err(EditIoError::NotWritten {
                    rel: c.rel.to_string(),
                    source: WorkspaceError::Empty,
                });
            }
        };
        let at = match dir_index.get(parent) {
            Some(&at) => at,
            None => {
                let opened = dir
                    .subdir(parent)
                    .map_err(|source| EditIoError::NotWritten {
                        rel: c.rel.to_string(),
                        source,
                    })?;
                dirs.push(opened);
                dir_index.insert(parent, dirs.len() - 1);
                dirs.len() - 1
            }
        };
        slots.push(Slot {
            change: c,
            dir: at,
            name,
            temp: String::new(),
        });
    }
    // Several files: record the intent first, so a crash between renames rolls back.
    let intent = match batches {
        Some(record_dir) if files.len() > 1 => {
            let originals: Vec<(&str, Option<&[u8]>)> =
                files.iter().map(|c| (c.rel, Some(c.before))).collect();
            let intent = spool_journal::begin_with(record_dir, dir.path(), &originals, sync)
                .map_err(|e| EditIoError::Record {
                    dir: record_dir.display().to_string(),
                    reason: e.to_string(),
                })?;
            Some(intent)
        }
        _ => None,
    };
    let tag = intent.as_ref().map_or_else(
        || uuid::Uuid::new_v4().simple().to_string(),
        |i| i.tag.clone(),
    );
    for s in &mut slots {
        s.temp = spool_journal::temp_name(s.name, &tag);
    }
    let result = write_slots(&dirs, &slots, sync, stop);
    if let Some(intent) = intent {
        intent.finish_synced(sync && result.is_ok());
    }
    result
}

/// Per file: temp file (fsynced under `sync`), rename; then each directory synced once.
/// On a failure, removes the failing temp file and puts back every file renamed before.
fn write_slots(
    dirs: &[Beneath],
    slots: &[Slot<'_>],
    sync: bool,
    stop: &Stop,
) -> Result<(), EditIoError> {
    stop.check()?;
    // Past this point the edits are written whole, or every file is put back.
    for (i, s) in slots.iter().enumerate() {
        let d = &dirs[s.dir];
        let written = d
            .create_new(&s.temp, s.change.after, s.name, sync)
            .and_then(|()| {
                d.rename_here(&s.temp, s.name).inspect_err(|_| {
                    let _ = d.remove_file(Path::new(&s.temp));
                })
            });
        if let Err(source) = written {
            return Err(if i == 0 {
                EditIoError::NotWritten {
                    rel: s.change.rel.to_string(),
                    source,
                }
            } else {
                EditIoError::Restored {
                    rel: s.change.rel.to_string(),
                    source,
                    after: restore(dirs, &slots[..i], sync),
                }
            });
        }
    }
    if sync {
        for (n, d) in dirs.iter().enumerate() {
            if let Err(source) = d.sync() {
                let rel = slots
                    .iter()
                    .find(|s| s.dir == n)
                    .map_or("", |s| s.change.rel);
                return Err(EditIoError::Restored {
                    rel: rel.to_string(),
                    source,
                    after: restore(dirs, slots, sync),
                });
            }
        }
    }
    Ok(())
}

/// Puts the originals of `slots` back (each through its temp name and a rename);
/// says whether every one was.
fn restore(dirs: &[Beneath], slots: &[Slot<'_>], sync: bool) -> String {
    let mut failed = Vec::new();
    for s in slots.iter().rev() {
        let d = &dirs[s.dir];
        let back = d
            .create_new(&s.temp, s.change.before, s.name, sync)
            .and_then(|()| d.rename_here(&s.temp, s.name));
        if let Err(e) = back {
            let _ = d.remove_file(Path::new(&s.temp));
            tracing::error!(path = %s.change.rel, "restoring after a failed edit_files write: {e}");
            failed.push(format!("{} ({e})", s.change.rel));
        }
    }
    if sync {
        for d in dirs {
            let _ = d.sync();
        }
    }
    if failed.is_empty() {
        "every file was restored byte-for-byte".into()
    } else {
        format!(
            "restoring {} failed too; read those files before editing them again",
            failed.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    /// The second rename fails (its target is a non-empty directory): the first file,
    /// already renamed, is put back and no temp file is left.
    #[test]
    fn a_failed_rename_puts_back_the_files_written_before() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), b"old a\n").unwrap();
        std::fs::create_dir_all(tmp.path().join("b.txt/inner")).unwrap();
        let root = Beneath::open_ambient(tmp.path()).unwrap();
        let changes = [
            Change {
                rel: "a.txt",
                before: b"old a\n",
                after: b"new a\n",
            },
            Change {
                rel: "b.txt",
                before: b"",
                after: b"new b\n",
            },
        ];
        let dirs = vec![root.subdir(Path::new("")).unwrap()];
        let slots: Vec<Slot<'_>> = changes
            .iter()
            .map(|c| Slot {
                change: c,
                dir: 0,
                name: c.rel,
                temp: spool_journal::temp_name(c.rel, "t"),
            })
            .collect();
        let err = write_slots(&dirs, &slots, true, &Stop::never()).unwrap_err();
        assert!(matches!(err, EditIoError::Restored { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("every file was restored byte-for-byte"),
            "{err}"
        );
        assert_eq!(std::fs::read(tmp.path().join("a.txt")).unwrap(), b"old a\n");
        assert_eq!(names(tmp.path()), ["a.txt", "b.txt"]);
    }

    /// Under each `--fsync` policy: a one-file edit leaves no record behind, an edit of
    /// files in two directories is written whole and its record removed, no temp file
    /// is left anywhere.
    #[test]
    fn writes_under_every_fsync_policy() {
        for fsync in [Fsync::Always, Fsync::Batch, Fsync::Never] {
            let tmp = tempfile::tempdir().unwrap();
            let ws = tmp.path().join("ws");
            let batches = tmp.path().join("batches");
            std::fs::create_dir_all(ws.join("sub")).unwrap();
            std::fs::create_dir(&batches).unwrap();
            std::fs::write(ws.join("a.txt"), b"a\n").unwrap();
            std::fs::write(ws.join("sub/b.txt"), b"b\n").unwrap();
            let root = Beneath::open_ambient(&ws).unwrap();
            let one = [Change {
                rel: "a.txt",
                before: b"a\n",
                after: b"A\n",
            }];
            write_all_or_nothing(&root, Some(&batches), &one, fsync, &Stop::never()).unwrap();
            assert_eq!(std::fs::read(ws.join("a.txt")).unwrap(), b"A\n");
            let two = [
                Change {
                    rel: "a.txt",
                    before: b"A\n",
                    after: b"AA\n",
                },
                Change {
                    rel: "sub/b.txt",
                    before: b"b\n",
                    after: b"BB\n",
                },
            ];
            write_all_or_nothing(&root, Some(&batches), &two, fsync, &Stop::never()).unwrap();
            assert_eq!(std::fs::read(ws.join("a.txt")).unwrap(), b"AA\n");
            assert_eq!(std::fs::read(ws.join("sub/b.txt")).unwrap(), b"BB\n");
            assert_eq!(names(&ws), ["a.txt", "sub"], "{fsync:?}");
            assert_eq!(names(&ws.join("sub")), ["b.txt"], "{fsync:?}");
            assert!(names(&batches).is_empty(), "{fsync:?}");
        }
    }

    /// A file changed after it was read refuses the whole write, naming its new SHA-256.
    #[test]
    fn a_changed_file_refuses_the_write() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), b"one\n").unwrap();
        std::fs::write(tmp.path().join("b.txt"), b"two, changed\n").unwrap();
        let root = Beneath::open_ambient(tmp.path()).unwrap();
        let changes = [
            Change {
                rel: "a.txt",
                before: b"one\n",
                after: b"ONE\n",
            },
            Change {
                rel: "b.txt",
                before: b"two\n",
                after: b"TWO\n",
            },
        ];
        let err =
            write_all_or_nothing(&root, None, &changes, Fsync::Never, &Stop::never()).unwrap_err();
        let sha = super::super::diff::sha256_hex(b"two, changed\n");
        assert!(
            matches!(&err, EditIoError::Changed { rel, sha: now } if rel == "b.txt" && *now == sha),
            "{err}"
        );
        assert_eq!(std::fs::read(tmp.path().join("a.txt")).unwrap(), b"one\n");
        assert_eq!(names(tmp.path()), ["a.txt", "b.txt"]);
    }
}
