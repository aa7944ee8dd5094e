//! `Roots`: the one path-confinement layer every file-touching tool uses (mvp's
//! `read_file`/`cwd`/`workspace`, asbr's scans and reviews, patchkit's spool sessions).
//!
//! Capability based: each workspace root is opened once at start as a directory handle
//! (`cap-std`; on Linux `openat2` with `RESOLVE_BENEATH`), and every read, write, rename
//! and delete is done relative to a handle, so no component of a path — `..`, a symlink
//! at any depth, the final one included — can lead out of it, even when the tree is
//! swapped while the call runs (there is no check-then-open window). Writes create their
//! temp file in the opened parent directory and rename within it. Absolute symlinks are
//! refused by the handle; a path the model gives is first canonicalised (so an absolute
//! symlink that stays inside a root still works) and only then opened beneath the root.
//!
//! Roots are canonicalised component by component, so `/root-evil` is not inside
//! `/root`. Roots that cannot be opened are skipped and logged once, at start. A root
//! replaced or removed after start is refused with an error saying so (its handle would
//! still point at the old directory).
//!
//! Processes that need a working directory get a path, but only one that was opened
//! beneath a root ([`Roots::dir`]).
//!
//! Owns path confinement and confined file primitives only; it imports no toolset and
//! knows nothing of sessions, scans or windows.

use std::{
    io::{ErrorKind, Write},
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use cap_fs_ext::{FollowSymlinks, MetadataExt, OpenOptionsExt, OpenOptionsFollowExt};
use cap_std::{
    ambient_authority,
    fs::{Dir, OpenOptions},
};

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum WorkspaceError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error(
        "{path} is outside the workspace roots ({roots}); pass a path inside them or ask the operator to add a root with --workspace-roots"
    )]
    Outside { path: String, roots: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("no workspace root is usable: {0}")]
    NoRoots(String),
    #[error(
        "the path argument {path:?} contains a NUL byte (\\u0000), which no file name can hold; pass the path without it"
    )]
    NulInPath { path: String },
    #[error("path `{0}` must be relative to the session root, without `..` segments")]
    NotRelative(String),
    #[error(
        "path `{0}` leads outside the session root or workspace root it lies under (through a symlink or `..`); nothing outside is read or written — use a path whose directories are real directories inside the root"
    )]
    Escape(String),
    #[error("path `{0}` is a symlink; only regular files are edited")]
    Symlink(String),
    #[error("path is empty")]
    Empty,
    #[error(
        "workspace root {root} was removed or replaced after the server started, so it is refused; ask the operator to put it back or to restart the server"
    )]
    RootGone { root: String },
}

/// One opened workspace root.
#[derive(Debug)]
struct Root {
    /// Canonical path at start.
    path: PathBuf,
    dir: Dir,
    dev: u64,
    ino: u64,
}

/// The workspace roots, opened once. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Roots {
    roots: Arc<Vec<Root>>,
    /// Why configured roots were skipped (already logged).
    skipped: Arc<Vec<String>>,
}

/// A directory opened beneath a root: every operation stays inside it.
#[derive(Debug)]
pub struct Beneath {
    dir: Dir,
    path: PathBuf,
}

fn io_err(path: &str, e: &std::io::Error) -> WorkspaceError {
    WorkspaceError::Io {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

/// Whether `e` is the handle refusing a path that leads out (EXDEV from `openat2`, or
/// cap-std's own "a path led outside" refusal).
fn is_escape(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EXDEV)
        || (e.kind() == ErrorKind::PermissionDenied
            && e.to_string().contains("outside of the filesystem"))
}

fn is_loop(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

fn is_absent(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// The error of a confined operation on `shown` that failed with `e`.
fn confined_err(shown: &str, e: &std::io::Error) -> WorkspaceError {
    if is_escape(e) {
        WorkspaceError::Escape(shown.to_string())
    } else if e.kind() == ErrorKind::NotFound {
        WorkspaceError::NotFound {
            path: shown.to_string(),
        }
    } else {
        io_err(shown, e)
    }
}

/// Normalises a root-relative path ("./a//b" → "a/b"); refuses absolute paths, `..`,
/// NUL bytes and the empty path.
pub fn relative(rel: &str) -> Result<String, WorkspaceError> {
    if rel.contains('\0') {
        return Err(WorkspaceError::NulInPath {
            path: rel.to_string(),
        });
    }
    let mut parts = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| WorkspaceError::NotRelative(rel.to_string()))?,
            ),
            Component::CurDir => {}
            _ => return Err(WorkspaceError::NotRelative(rel.to_string())),
        }
    }
    if parts.is_empty() {
        return Err(WorkspaceError::Empty);
    }
    Ok(parts.join("/"))
}

/// The path of an open descriptor, as the kernel knows it now.
fn fd_path(f: &impl std::os::fd::AsRawFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()
}

impl Roots {
    /// Opens the configured roots (or the working directory when none are set). Roots
    /// that do not exist, are not directories or cannot be opened are skipped and logged
    /// here, once; when none is left every operation answers [`WorkspaceError::NoRoots`].
    pub fn new(configured: &[PathBuf]) -> Self {
        let wanted: Vec<PathBuf> = if configured.is_empty() {
            std::env::current_dir().into_iter().collect()
        } else {
            configured.to_vec()
        };
        let mut roots: Vec<Root> = Vec::new();
        let mut skipped = Vec::new();
        for root in wanted {
            match Self::open_root(&root) {
                Ok(r) if roots.iter().any(|o| o.path == r.path) => {}
                Ok(r) => roots.push(r),
                Err(why) => skipped.push(why),
            }
        }
        if configured.is_empty() && roots.is_empty() {
            skipped.push("the working directory cannot be opened".into());
        }
        for why in &skipped {
            tracing::warn!("workspace root skipped: {why}");
        }
        Roots {
            roots: Arc::new(roots),
            skipped: Arc::new(skipped),
        }
    }

    fn open_root(root: &Path) -> Result<Root, String> {
        let path = root
            .canonicalize()
            .map_err(|e| format!("{}: {e}", root.display()))?;
        if !path.is_dir() {
            return Err(format!("{} is not a directory", path.display()));
        }
        let dir = Dir::open_ambient_dir(&path, ambient_authority())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let meta = dir
            .dir_metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Root {
            dev: meta.dev(),
            ino: meta.ino(),
            path,
            dir,
        })
    }

    /// Canonical paths of the usable roots.
    pub fn list(&self) -> Vec<PathBuf> {
        self.roots.iter().map(|r| r.path.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Why configured roots were skipped at start.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Fails with [`WorkspaceError::NoRoots`] when no root is usable.
    pub fn require(&self) -> Result<(), WorkspaceError> {
        if self.roots.is_empty() {
            Err(WorkspaceError::NoRoots(self.skipped.join("; ")))
        } else {
            Ok(())
        }
    }

    fn describe(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn outside(&self, raw: &str) -> WorkspaceError {
        WorkspaceError::Outside {
            path: raw.to_string(),
            roots: self.describe(),
        }
    }

    /// The root `raw` lies in and its path relative to it. `raw` is absolute or relative
    /// to the first root; it is canonicalised first (an absolute symlink that stays
    /// inside is followed here), and the result is only ever opened beneath the root's
    /// handle, so a swap after this point cannot lead out.
    fn locate(&self, raw: &str) -> Result<(&Root, PathBuf), WorkspaceError> {
        if raw.contains('\0') {
            return Err(WorkspaceError::NulInPath {
                path: raw.to_string(),
            });
        }
        self.require()?;
        let given = Path::new(raw);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.alive(&self.roots[0])?;
            self.roots[0].path.join(given)
        };
        let canonical = joined.canonicalize().map_err(|e| match e.kind() {
            ErrorKind::NotFound => WorkspaceError::NotFound {
                path: raw.to_string(),
            },
            _ => io_err(raw, &e),
        })?;
        // The innermost root holding it (roots may nest).
        let root = self
            .roots
            .iter()
            .filter(|r| canonical.starts_with(&r.path))
            .max_by_key(|r| r.path.components().count())
            .ok_or_else(|| self.outside(raw))?;
        self.alive(root)?;
        let rel = canonical
            .strip_prefix(&root.path)
            .map_err(|_| self.outside(raw))?
            .to_path_buf();
        Ok((root, rel))
    }

    /// Refuses a root whose path no longer names the directory opened at start.
    fn alive(&self, root: &Root) -> Result<(), WorkspaceError> {
        match std::fs::metadata(&root.path) {
            Ok(m) if m.dev() == root.dev && m.ino() == root.ino => Ok(()),
            _ => Err(WorkspaceError::RootGone {
                root: root.path.display().to_string(),
            }),
        }
    }

    fn map(&self, raw: &str, e: &std::io::Error) -> WorkspaceError {
        if is_escape(e) {
            self.outside(raw)
        } else {
            confined_err(raw, e)
        }
    }

    /// Opens a regular file inside the roots for reading; returns it with its path.
    pub fn open_file(&self, raw: &str) -> Result<(std::fs::File, PathBuf), WorkspaceError> {
        let (root, rel) = self.locate(raw)?;
        if rel.as_os_str().is_empty() {
            return Err(WorkspaceError::NotAFile {
                path: raw.to_string(),
            });
        }
        // Non-blocking open: a FIFO is refused below instead of hanging the call (the
        // flag changes nothing for regular files).
        let file = root
            .dir
            .open_with(
                &rel,
                OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK),
            )
            .map_err(|e| self.map(raw, &e))?
            .into_std();
        let meta = file.metadata().map_err(|e| io_err(raw, &e))?;
        if !meta.is_file() {
            return Err(WorkspaceError::NotAFile {
                path: raw.to_string(),
            });
        }
        Ok((file, root.path.join(&rel)))
    }

    /// Opens a directory inside the roots (default: the first root) as a handle.
    pub fn open_dir(&self, raw: Option<&str>) -> Result<Beneath, WorkspaceError> {
        let shown = raw.unwrap_or_default();
        let (root, rel) = match raw {
            Some(raw) => self.locate(raw)?,
            None => {
                self.require()?;
                self.alive(&self.roots[0])?;
                (&self.roots[0], PathBuf::new())
            }
        };
        let dir = if rel.as_os_str().is_empty() {
            root.dir.try_clone()
        } else {
            root.dir.open_dir(&rel)
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTDIR) => WorkspaceError::NotADirectory {
                path: shown.to_string(),
            },
            _ => self.map(shown, &e),
        })?;
        Ok(Beneath {
            dir,
            path: root.path.join(&rel),
        })
    }

    /// A directory inside the roots (default: the first root) as a path, for a child
    /// process's working directory: it was opened beneath a root, and the path is the
    /// one the kernel reports for that handle (checked to still lie inside the root).
    pub fn dir(&self, raw: Option<&str>) -> Result<PathBuf, WorkspaceError> {
        let opened = self.open_dir(raw)?;
        opened.real_path(&self.describe(), raw.unwrap_or_default())
    }

    /// A file or directory inside the roots as a canonical path (for arguments of child
    /// processes); it must exist beneath a root.
    pub fn resolve(&self, raw: &str) -> Result<PathBuf, WorkspaceError> {
        let (root, rel) = self.locate(raw)?;
        if !rel.as_os_str().is_empty() {
            root.dir
                .symlink_metadata(&rel)
                .map_err(|e| self.map(raw, &e))?;
        }
        Ok(root.path.join(rel))
    }
}

impl Beneath {
    /// Opens `path` as a confined directory handle without a root check: for a path
    /// that already came from [`Roots`], or a tree the server itself owns (a pull
    /// request checkout under its state directory). Reads beneath it stay inside it.
    pub fn open_ambient(path: &Path) -> Result<Self, WorkspaceError> {
        let shown = path.display().to_string();
        let dir = Dir::open_ambient_dir(path, ambient_authority())
            .map_err(|e| confined_err(&shown, &e))?;
        Ok(Beneath {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// The path this directory had when opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the directory is now, checked to be still the path it was opened at (a
    /// directory moved since is refused); `shown` names it in errors.
    fn real_path(&self, roots: &str, shown: &str) -> Result<PathBuf, WorkspaceError> {
        match fd_path(&self.dir) {
            Some(now) if now != self.path => Err(WorkspaceError::Outside {
                path: shown.to_string(),
                roots: roots.to_string(),
            }),
            // Where /proc cannot tell, the path it was opened at is the answer.
            _ => Ok(self.path.clone()),
        }
    }

    /// Opens the regular file `rel` for reading; `None` when it (or a directory on its
    /// way) does not exist. A final symlink is refused, and no component may lead out.
    pub fn open_regular(&self, rel: &Path) -> Result<Option<std::fs::File>, WorkspaceError> {
        let shown = rel.to_string_lossy();
        let mut opts = OpenOptions::new();
        opts.read(true)
            .follow(FollowSymlinks::No)
            .custom_flags(libc::O_NONBLOCK);
        let file = match self.dir.open_with(rel, &opts) {
            Ok(f) => f.into_std(),
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) if is_loop(&e) => return Err(WorkspaceError::Symlink(shown.into_owned())),
            Err(e) => return Err(confined_err(&shown, &e)),
        };
        let meta = file.metadata().map_err(|e| io_err(&shown, &e))?;
        if !meta.is_file() {
            return Err(WorkspaceError::NotAFile {
                path: shown.into_owned(),
            });
        }
        Ok(Some(file))
    }

    /// Reads the regular file `rel` (see [`Beneath::open_regular`]).
    pub fn read(&self, rel: &Path) -> Result<Option<Vec<u8>>, WorkspaceError> {
        let Some(mut file) = self.open_regular(rel)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut out)
            .map_err(|e| io_err(&rel.to_string_lossy(), &e))?;
        Ok(Some(out))
    }

    /// Replaces (or creates) the regular file `rel` with `bytes`: missing parent
    /// directories are created beneath this one (each recorded in `new_dirs`, outermost
    /// first), the temp file `temp` is created in the opened parent directory and renamed
    /// over the target within it; a replaced file's permissions are kept.
    pub fn replace(
        &self,
        rel: &Path,
        bytes: &[u8],
        temp: &str,
        new_dirs: &mut Vec<PathBuf>,
    ) -> Result<(), WorkspaceError> {
        let shown = rel.to_string_lossy().into_owned();
        let err = |e: std::io::Error| confined_err(&shown, &e);
        let (parent, name) = split(rel).ok_or(WorkspaceError::Empty)?;
        self.create_dirs(parent, new_dirs).map_err(err)?;
        let pdir = if parent.as_os_str().is_empty() {
            self.dir.try_clone()
        } else {
            self.dir.open_dir(parent)
        }
        .map_err(err)?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).follow(FollowSymlinks::No);
        let written = pdir.open_with(temp, &opts).and_then(|mut f| {
            f.write_all(bytes)?;
            if let Ok(meta) = pdir.symlink_metadata(name)
                && meta.is_file()
            {
                f.set_permissions(meta.permissions())?;
            }
            Ok(())
        });
        let result = written.and_then(|()| pdir.rename(temp, &pdir, name));
        if let Err(e) = result {
            let _ = pdir.remove_file(temp);
            return Err(err(e));
        }
        Ok(())
    }

    /// Creates each missing directory of `parent` beneath this one.
    fn create_dirs(&self, parent: &Path, new_dirs: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut at = PathBuf::new();
        for c in parent.components() {
            at.push(c);
            match self.dir.symlink_metadata(&at) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    self.dir.create_dir(&at)?;
                    new_dirs.push(at.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes the file (or symlink) `rel`; an absent one is fine.
    pub fn remove_file(&self, rel: &Path) -> Result<(), WorkspaceError> {
        let shown = rel.to_string_lossy();
        match self.dir.remove_file(rel) {
            Err(e) if !is_absent(&e) => Err(confined_err(&shown, &e)),
            _ => Ok(()),
        }
    }

    /// Removes the directory `rel` if it is empty.
    pub fn remove_empty_dir(&self, rel: &Path) {
        let _ = self.dir.remove_dir(rel);
    }

    /// The existing directory `rel` beneath this one (empty: this one), opened through
    /// this handle: for writers that put several files in one directory and sync it once.
    pub fn subdir(&self, rel: &Path) -> Result<Beneath, WorkspaceError> {
        let shown = rel.to_string_lossy();
        let dir = if rel.as_os_str().is_empty() {
            self.dir.try_clone()
        } else {
            self.dir.open_dir(rel)
        }
        .map_err(|e| confined_err(&shown, &e))?;
        Ok(Beneath {
            dir,
            path: self.path.join(rel),
        })
    }

    /// Creates the new file `name` in this directory (never over an existing one, never
    /// through a symlink) holding `bytes`, with the permissions of the regular file
    /// `like` here if there is one; `sync`: its data and metadata are fsynced before
    /// this returns. A file left half-written by a failure is removed.
    pub fn create_new(
        &self,
        name: &str,
        bytes: &[u8],
        like: &str,
        sync: bool,
    ) -> Result<(), WorkspaceError> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).follow(FollowSymlinks::No);
        let mut f = self
            .dir
            .open_with(name, &opts)
            .map_err(|e| confined_err(name, &e))?;
        let mut fill = || -> std::io::Result<()> {
            f.write_all(bytes)?;
            if let Ok(meta) = self.dir.symlink_metadata(like)
                && meta.is_file()
            {
                f.set_permissions(meta.permissions())?;
            }
            if sync {
                f.sync_all()?;
            }
            Ok(())
        };
        if let Err(e) = fill() {
            let _ = self.dir.remove_file(name);
            return Err(confined_err(name, &e));
        }
        Ok(())
    }

    /// Renames `from` over `to`, both names in this directory.
    pub fn rename_here(&self, from: &str, to: &str) -> Result<(), WorkspaceError> {
        self.dir
            .rename(from, &self.dir, to)
            .map_err(|e| confined_err(to, &e))
    }

    /// Makes this directory's entries (renames, creations, removals) durable: fsync of
    /// the directory itself (reopened for reading: the handle is `O_PATH`, which cannot
    /// be fsynced).
    pub fn sync(&self) -> Result<(), WorkspaceError> {
        let shown = self.path.to_string_lossy();
        self.dir
            .open(".")
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(&shown, &e))
    }
}

/// What [`Beneath::walk`] asks of its caller.
pub trait Walk {
    /// A directory about to be listed (the walked one first, with an empty `rel`), with a
    /// handle to read beneath it (e.g. its `.gitignore`); false: do not list it.
    fn enter(&mut self, rel: &Path, dir: &Beneath) -> bool;
    /// Whether the directory or regular file `rel` is kept: a kept directory is walked,
    /// a kept file is passed to [`Walk::file`].
    fn keep(&mut self, rel: &Path, is_dir: bool) -> bool;
    /// A kept regular file and its size.
    fn file(&mut self, rel: &Path, len: u64);
    /// True once the walk should end (deadline, cancellation, a cap reached).
    fn done(&self) -> bool;
}

impl Beneath {
    /// Walks the tree beneath this directory through handles only: each directory is
    /// opened beneath its parent's handle without following a symlink and listed through
    /// that handle, so nothing outside is ever listed, even when a directory is swapped
    /// for a symlink while the walk runs (it is then not entered). Symlinks are neither
    /// followed nor reported; only directories and regular files are. Directories are
    /// walked in name order, `max_depth` levels deep at most.
    pub fn walk(&self, walk: &mut dyn Walk, max_depth: usize) {
        self.walk_in(Path::new(""), walk, max_depth);
    }

    fn walk_in(&self, rel: &Path, walk: &mut dyn Walk, depth_left: usize) {
        if walk.done() || !walk.enter(rel, self) {
            return;
        }
        let Ok(entries) = self.dir.entries() else {
            return;
        };
        let mut subdirs = Vec::new();
        for entry in entries.flatten() {
            if walk.done() {
                return;
            }
            let name = entry.file_name();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let child = rel.join(&name);
            if kind.is_dir() {
                if depth_left > 0 && walk.keep(&child, true) {
                    subdirs.push(name);
                }
            } else if kind.is_file() && walk.keep(&child, false) {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                walk.file(&child, len);
            }
        }
        subdirs.sort();
        for name in subdirs {
            use cap_fs_ext::DirExt;
            // Refused when `name` became a symlink since it was listed.
            if let Ok(dir) = self.dir.open_dir_nofollow(&name) {
                let sub = Beneath {
                    dir,
                    path: self.path.join(&name),
                };
                sub.walk_in(&rel.join(&name), walk, depth_left - 1);
            }
        }
    }

    /// Modification time of `rel` (a final symlink's own), looked up beneath this
    /// directory; None when it cannot be (absent, or a path leading out).
    pub fn modified(&self, rel: &Path) -> Option<std::time::SystemTime> {
        let meta = self.dir.symlink_metadata(rel).ok()?;
        meta.modified().ok().map(|t| t.into_std())
    }
}

/// (parent, file name) of a relative path.
fn split(rel: &Path) -> Option<(&Path, &std::ffi::OsStr)> {
    Some((rel.parent().unwrap_or(Path::new("")), rel.file_name()?))
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt, os::unix::fs::symlink};

    use super::*;

    struct Tree {
        _base: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    /// base/root (with ok.txt, sub/in.txt), base/root-evil/x.txt, base/outside/secret.txt.
    fn tree() -> Tree {
        let base = tempfile::tempdir().unwrap();
        let b = base.path().canonicalize().unwrap();
        let root = b.join("root");
        let evil = b.join("root-evil");
        let outside = b.join("outside");
        for d in [&root.join("sub"), &evil, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(root.join("ok.txt"), "fine").unwrap();
        std::fs::write(root.join("sub/in.txt"), "inner").unwrap();
        std::fs::write(evil.join("x.txt"), "evil").unwrap();
        std::fs::write(outside.join("secret.txt"), "secret").unwrap();
        Tree {
            _base: base,
            root,
            outside,
        }
    }

    fn roots(t: &Tree) -> Roots {
        Roots::new(std::slice::from_ref(&t.root))
    }

    fn read(r: &Roots, raw: &str) -> Result<String, WorkspaceError> {
        let (mut f, _) = r.open_file(raw)?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        Ok(s)
    }

    fn outside(r: Result<impl std::fmt::Debug, WorkspaceError>) -> bool {
        matches!(
            r,
            Err(WorkspaceError::Outside { .. } | WorkspaceError::Escape(_))
        )
    }

    #[test]
    fn inside_paths_open() {
        let t = tree();
        let r = roots(&t);
        assert_eq!(read(&r, "ok.txt").unwrap(), "fine");
        assert_eq!(read(&r, "./sub/../sub/in.txt").unwrap(), "inner");
        let abs = t.root.join("sub/in.txt");
        assert_eq!(read(&r, abs.to_str().unwrap()).unwrap(), "inner");
        // A symlink that stays inside (relative or absolute) is followed.
        symlink("sub/in.txt", t.root.join("rel-link")).unwrap();
        symlink(t.root.join("sub"), t.root.join("abs-link")).unwrap();
        assert_eq!(read(&r, "rel-link").unwrap(), "inner");
        assert_eq!(read(&r, "abs-link/in.txt").unwrap(), "inner");
        assert_eq!(r.dir(Some("sub")).unwrap(), t.root.join("sub"));
        assert_eq!(r.dir(None).unwrap(), t.root);
    }

    #[test]
    fn dotdot_and_absolute_paths_outside_are_refused() {
        let t = tree();
        let r = roots(&t);
        assert!(outside(read(&r, "../outside/secret.txt")));
        assert!(outside(read(&r, "sub/../../outside/secret.txt")));
        assert!(outside(read(&r, "/etc/passwd")));
        let dotdot = format!("{}/../outside/secret.txt", t.root.display());
        assert!(outside(read(&r, &dotdot)));
        assert!(outside(r.dir(Some("/"))));
    }

    #[test]
    fn sibling_prefix_is_outside() {
        let t = tree();
        let r = roots(&t);
        let evil = format!("{}-evil/x.txt", t.root.display());
        assert!(outside(read(&r, &evil)));
        assert!(outside(r.dir(Some(&format!("{}-evil", t.root.display())))));
        assert!(outside(read(&r, "../root-evil/x.txt")));
    }

    #[test]
    fn symlinks_out_are_refused_at_any_component() {
        let t = tree();
        let r = roots(&t);
        symlink(t.outside.join("secret.txt"), t.root.join("final")).unwrap();
        symlink(&t.outside, t.root.join("mid")).unwrap();
        symlink("../../outside", t.root.join("sub/rel-out")).unwrap();
        assert!(outside(read(&r, "final")));
        assert!(outside(read(&r, "mid/secret.txt")));
        assert!(outside(read(&r, "sub/rel-out/secret.txt")));
        assert!(outside(r.dir(Some("mid"))));
        // Beneath a handle, escapes are refused without any path check first.
        let b = r.open_dir(None).unwrap();
        assert_eq!(
            b.read(Path::new("mid/secret.txt")),
            Err(WorkspaceError::Escape("mid/secret.txt".into()))
        );
        assert_eq!(
            b.read(Path::new("sub/rel-out/secret.txt")),
            Err(WorkspaceError::Escape("sub/rel-out/secret.txt".into()))
        );
        assert_eq!(
            b.read(Path::new("final")),
            Err(WorkspaceError::Symlink("final".into()))
        );
        let mut dirs = Vec::new();
        assert!(matches!(
            b.replace(Path::new("mid/new.txt"), b"x", ".tmp", &mut dirs),
            Err(WorkspaceError::Escape(_))
        ));
        assert!(matches!(
            b.replace(Path::new("mid/deeper/new.txt"), b"x", ".tmp", &mut dirs),
            Err(WorkspaceError::Escape(_))
        ));
        assert_eq!(std::fs::read_dir(&t.outside).unwrap().count(), 1);
        b.replace(Path::new("made/new.txt"), b"x", ".tmp", &mut dirs)
            .unwrap();
        assert_eq!(dirs, vec![PathBuf::from("made")]);
        assert_eq!(
            std::fs::read_to_string(t.root.join("made/new.txt")).unwrap(),
            "x"
        );
    }

    struct Lister(Vec<PathBuf>);

    impl Walk for Lister {
        fn enter(&mut self, _: &Path, _: &Beneath) -> bool {
            true
        }
        fn keep(&mut self, _: &Path, _: bool) -> bool {
            true
        }
        fn file(&mut self, rel: &Path, _: u64) {
            self.0.push(rel.to_path_buf());
        }
        fn done(&self) -> bool {
            false
        }
    }

    #[test]
    fn walks_list_through_handles_and_never_follow_symlinks() {
        let t = tree();
        symlink(&t.outside, t.root.join("mid")).unwrap();
        symlink(t.outside.join("secret.txt"), t.root.join("final")).unwrap();
        symlink("../../outside", t.root.join("sub/rel-out")).unwrap();
        let b = roots(&t).open_dir(None).unwrap();
        let mut l = Lister(Vec::new());
        b.walk(&mut l, 8);
        l.0.sort();
        assert_eq!(
            l.0,
            vec![PathBuf::from("ok.txt"), PathBuf::from("sub/in.txt")]
        );
        assert!(
            b.modified(Path::new("sub/in.txt")).is_some(),
            "modification times are read beneath the handle"
        );
        assert_eq!(b.modified(Path::new("mid/secret.txt")), None);
    }

    /// A directory swapped for a symlink to outside between being listed and being
    /// entered is not entered.
    #[test]
    fn a_directory_swapped_for_a_symlink_mid_walk_is_not_entered() {
        struct Swapper {
            root: PathBuf,
            outside: PathBuf,
            seen: Vec<PathBuf>,
        }
        impl Walk for Swapper {
            fn enter(&mut self, _: &Path, _: &Beneath) -> bool {
                true
            }
            fn keep(&mut self, rel: &Path, is_dir: bool) -> bool {
                if is_dir && rel == Path::new("sub") {
                    // Listed as a directory; swapped before it is opened.
                    std::fs::rename(self.root.join("sub"), self.root.join("sub-moved")).unwrap();
                    symlink(&self.outside, self.root.join("sub")).unwrap();
                }
                true
            }
            fn file(&mut self, rel: &Path, _: u64) {
                self.seen.push(rel.to_path_buf());
            }
            fn done(&self) -> bool {
                false
            }
        }
        let t = tree();
        let b = roots(&t).open_dir(None).unwrap();
        let mut w = Swapper {
            root: t.root.clone(),
            outside: t.outside.clone(),
            seen: Vec::new(),
        };
        b.walk(&mut w, 8);
        assert!(
            !w.seen.iter().any(|p| p.ends_with("secret.txt")),
            "{:?}",
            w.seen
        );
    }

    #[test]
    fn nul_and_relative_rules() {
        let t = tree();
        let r = roots(&t);
        assert!(matches!(
            read(&r, "ok.txt\0x"),
            Err(WorkspaceError::NulInPath { .. })
        ));
        assert_eq!(relative("./a//b.txt").unwrap(), "a/b.txt");
        assert!(relative("../x").is_err());
        assert!(relative("a/../../x").is_err());
        assert!(relative("/etc/passwd").is_err());
        assert!(relative("").is_err());
        assert!(matches!(
            relative("a\0b"),
            Err(WorkspaceError::NulInPath { .. })
        ));
    }

    #[test]
    fn non_utf8_names_work_beneath_a_handle() {
        let t = tree();
        let name = OsStr::from_bytes(b"caf\xe9.txt");
        std::fs::write(t.root.join(name), "bytes").unwrap();
        let b = roots(&t).open_dir(None).unwrap();
        assert_eq!(b.read(Path::new(name)).unwrap().unwrap(), b"bytes");
        let mut dirs = Vec::new();
        b.replace(Path::new(name), b"new", ".tmp", &mut dirs)
            .unwrap();
        assert_eq!(std::fs::read(t.root.join(name)).unwrap(), b"new");
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let t = tree();
        let fifo = std::ffi::CString::new(t.root.join("pipe").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let r = roots(&t);
        assert!(matches!(
            r.open_file("pipe"),
            Err(WorkspaceError::NotAFile { .. })
        ));
        let b = r.open_dir(None).unwrap();
        assert!(matches!(
            b.read(Path::new("pipe")),
            Err(WorkspaceError::NotAFile { .. })
        ));
    }

    #[test]
    fn skipped_roots_are_reported_and_empty_roots_refuse() {
        let t = tree();
        let missing = t.root.join("missing");
        let r = Roots::new(&[missing.clone(), t.root.clone()]);
        assert_eq!(r.list(), vec![t.root.clone()]);
        assert_eq!(r.skipped().len(), 1);
        let none = Roots::new(&[missing]);
        assert!(matches!(
            none.open_file("x"),
            Err(WorkspaceError::NoRoots(_))
        ));
    }

    #[test]
    fn a_root_replaced_or_removed_after_start_is_refused() {
        let t = tree();
        let r = roots(&t);
        let moved = t.root.with_file_name("moved");
        std::fs::rename(&t.root, &moved).unwrap();
        symlink(&t.outside, &t.root).unwrap();
        assert!(matches!(
            read(&r, "secret.txt"),
            Err(WorkspaceError::RootGone { .. })
        ));
        assert!(matches!(r.dir(None), Err(WorkspaceError::RootGone { .. })));
        std::fs::remove_file(&t.root).unwrap();
        assert!(matches!(
            r.open_dir(None),
            Err(WorkspaceError::RootGone { .. })
        ));
        std::fs::rename(&moved, &t.root).unwrap();
        assert_eq!(read(&r, "ok.txt").unwrap(), "fine");
    }
}
