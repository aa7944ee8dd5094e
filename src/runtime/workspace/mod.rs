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
    io::ErrorKind,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use cap_fs_ext::{MetadataExt, OpenOptionsExt};
use cap_std::{
    ambient_authority,
    fs::{Dir, OpenOptions},
};

mod beneath;
#[cfg(test)]
mod tests;

pub use beneath::{Beneath, Walk};

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
                Err(why) => skipped.push(why.to_string()),
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

    fn open_root(root: &Path) -> Result<Root, WorkspaceError> {
        let path = root
            .canonicalize()
            .map_err(|e| io_err(&root.display().to_string(), &e))?;
        if !path.is_dir() {
            return Err(WorkspaceError::NotADirectory {
                path: path.display().to_string(),
            });
        }
        let dir = Dir::open_ambient_dir(&path, ambient_authority())
            .map_err(|e| io_err(&path.display().to_string(), &e))?;
        let meta = dir
            .dir_metadata()
            .map_err(|e| io_err(&path.display().to_string(), &e))?;
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
