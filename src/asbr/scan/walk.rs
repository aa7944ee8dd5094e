//! The file walk under a workspace root: `.gitignore`/`.ignore`-aware listing through
//! directory handles and the parallel per-file loop. Must not scan contents or know
//! rules.

use std::{
    path::{Path, PathBuf},
    sync::atomic::Ordering,
};

use crate::runtime::{
    stop::Stop,
    workspace::{Beneath, Walk},
};

/// Deepest directory level a walk lists.
const MAX_WALK_DEPTH: usize = 64;

/// The regular files beneath `dir` (relative paths, with their sizes) as the scans and
/// the review rule packs see them: hidden files included, `.git` skipped (directory or
/// worktree file), the
/// `.gitignore` and `.ignore` files inside the tree respected (gitignore syntax; the
/// deepest directory's match wins, `!` re-includes, `.ignore` over `.gitignore`),
/// symlinks never followed. Listed through directory handles ([`Beneath::walk`]), so a
/// directory swapped for a symlink during the walk lists nothing from outside; ignore
/// files outside the walked tree (its parents', `.git/info/exclude`, the user's global
/// excludes) are not read. Stops listing once `stop` is raised.
pub fn list_files(dir: &Beneath, stop: &Stop) -> Vec<(PathBuf, u64)> {
    let mut lister = IgnoreLister {
        base: dir.path().to_path_buf(),
        stop,
        ignores: Vec::new(),
        files: Vec::new(),
    };
    dir.walk(&mut lister, MAX_WALK_DEPTH);
    lister.files
}

/// Gitignore-aware [`Walk`]: a stack of the ignore rules of the directories on the
/// current path (the walk is depth first).
struct IgnoreLister<'a> {
    base: PathBuf,
    stop: &'a Stop,
    ignores: Vec<(PathBuf, ignore::gitignore::Gitignore)>,
    files: Vec<(PathBuf, u64)>,
}

impl Walk for IgnoreLister<'_> {
    fn enter(&mut self, rel: &Path, dir: &Beneath) -> bool {
        while self
            .ignores
            .last()
            .is_some_and(|(at, _)| !rel.starts_with(at))
        {
            self.ignores.pop();
        }
        let mut builder = ignore::gitignore::GitignoreBuilder::new(dir.path());
        let mut any = false;
        for name in [".gitignore", ".ignore"] {
            if let Ok(Some(bytes)) = dir.read(Path::new(name)) {
                for line in String::from_utf8_lossy(&bytes).lines() {
                    any |= builder.add_line(None, line).is_ok();
                }
            }
        }
        if any && let Ok(g) = builder.build() {
            self.ignores.push((rel.to_path_buf(), g));
        }
        true
    }

    fn keep(&mut self, rel: &Path, is_dir: bool) -> bool {
        // `.git`: the repository's directory, or a worktree's gitlink file.
        if rel.file_name().is_some_and(|n| n == ".git") {
            return false;
        }
        let abs = self.base.join(rel);
        for (_, g) in self.ignores.iter().rev() {
            let m = g.matched(&abs, is_dir);
            if m.is_ignore() {
                return false;
            }
            if m.is_whitelist() {
                return true;
            }
        }
        true
    }

    fn file(&mut self, rel: &Path, len: u64) {
        self.files.push((rel.to_path_buf(), len));
    }

    fn done(&self) -> bool {
        self.stop.is_stopped()
    }
}

/// Runs `each` over `items` on every core; items not yet started are skipped once
/// `stop` is raised.
pub fn for_each_parallel<T: Sync>(items: &[T], stop: &Stop, each: impl Fn(&T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.is_stopped() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    each(item);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keeps_gitignore_semantics_and_never_leaves_the_root() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("repo");
        let outside = base.path().join("outside");
        for d in ["gen", "sub/deep", ".git", ".hidden", "wt"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "AKIAABCDEFGHIJKLMNOP").unwrap();
        let files = [
            ".gitignore",
            "a.rs",
            "x.log",
            "keep.log",
            "gen/g.rs",
            "sub/.gitignore",
            "sub/b.rs",
            "sub/c.tmp",
            "sub/deep/d.log",
            ".git/config",
            ".hidden/h.rs",
            "wt/.git",
            "wt/w.rs",
        ];
        for f in files {
            std::fs::write(root.join(f), "").unwrap();
        }
        std::fs::write(root.join(".gitignore"), "gen/\n*.log\n!keep.log\n").unwrap();
        std::fs::write(root.join("sub/.gitignore"), "*.tmp\n!d.log\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("s.txt")).unwrap();
        let dir = Beneath::open_ambient(&root).unwrap();
        let mut got: Vec<String> = list_files(&dir, &Stop::never())
            .into_iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ".gitignore",
                ".hidden/h.rs",
                "a.rs",
                "keep.log",
                "sub/.gitignore",
                "sub/b.rs",
                "sub/deep/d.log",
                "wt/w.rs",
            ]
        );
    }
}
