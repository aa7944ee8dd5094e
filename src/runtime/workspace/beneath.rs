//! [`Beneath`]: a directory opened beneath a workspace root, and the confined file
//! primitives every tool uses through it (open, read, replace through a temp file +
//! rename, remove, walk, mtime).
//!
//! Owns the operations on one opened directory; it must not decide which roots exist
//! (that is [`Roots`](super::Roots)) and imports no toolset.

use std::{
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use cap_fs_ext::{FollowSymlinks, OpenOptionsExt, OpenOptionsFollowExt};
use cap_std::{
    ambient_authority,
    fs::{Dir, OpenOptions},
};

use super::{WorkspaceError, confined_err, fd_path, io_err, is_absent, is_loop};

/// A directory opened beneath a root: every operation stays inside it.
#[derive(Debug)]
pub struct Beneath {
    pub(super) dir: Dir,
    pub(super) path: PathBuf,
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
    pub(super) fn real_path(&self, roots: &str, shown: &str) -> Result<PathBuf, WorkspaceError> {
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
