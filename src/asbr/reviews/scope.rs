//! Review scopes: which files of a repository a review looks at (gitignore-style globs,
//! a pull request's files, files modified since the last review).
//!
//! Owns only deciding what is in scope; reviews and their records are `asbr::reviews`'s.

use std::{collections::HashSet, path::Path, time::SystemTime};

use super::ReviewError;

/// A compiled review scope: gitignore-style globs relative to the repository (none:
/// everything), optionally narrowed to a set of files (a pull request's) and to files
/// modified at or after a time (an incremental review).
pub struct Scope {
    root: std::path::PathBuf,
    /// The repository, opened when modification times are wanted: they are read
    /// through this handle, never by path.
    dir: Option<crate::runtime::workspace::Beneath>,
    globs: Option<ignore::overrides::Override>,
    files: Option<HashSet<String>>,
    modified_since: Option<SystemTime>,
}

impl Scope {
    pub fn new(root: &Path, entries: &[String]) -> Result<Self, ReviewError> {
        let mut scope = Scope {
            root: root.to_path_buf(),
            dir: None,
            globs: None,
            files: None,
            modified_since: None,
        };
        if entries.is_empty()
            || entries
                .iter()
                .any(|e| matches!(e.trim(), "all" | "full" | "*" | "**"))
        {
            return Ok(scope);
        }
        let mut b = ignore::overrides::OverrideBuilder::new(root);
        for e in entries {
            let e = e.trim();
            if e.is_empty()
                || e.starts_with('/')
                || e.starts_with('!')
                || e.split(['/', '\\']).any(|p| p == "..")
            {
                return Err(ReviewError::Input(format!(
                    "paths: `{e}` must be a glob or path relative to repositoryUrl, without `..`, a leading `/` or `!`; leave paths out for the whole repository"
                )));
            }
            b.add(e)
                .map_err(|err| ReviewError::Input(format!("paths: `{e}` is not a glob: {err}")))?;
        }
        let globs = b
            .build()
            .map_err(|err| ReviewError::Input(format!("paths: {err}")))?;
        scope.globs = Some(globs);
        Ok(scope)
    }

    /// Narrows the scope to these repository-relative files.
    pub fn only_files(mut self, files: impl IntoIterator<Item = String>) -> Self {
        self.files = Some(files.into_iter().collect());
        self
    }

    /// Narrows the scope to files modified at or after `since`.
    pub fn modified_since(mut self, since: SystemTime) -> Self {
        self.dir = crate::runtime::workspace::Beneath::open_ambient(&self.root).ok();
        self.modified_since = Some(since);
        self
    }

    /// True when the repository-relative file `rel` is in scope.
    pub fn contains(&self, rel: &str) -> bool {
        if self.files.as_ref().is_some_and(|f| !f.contains(rel)) {
            return false;
        }
        if let Some(since) = self.modified_since {
            let modified = self.dir.as_ref().and_then(|d| d.modified(Path::new(rel)));
            if modified.is_some_and(|m| m < since) {
                return false;
            }
        }
        self.matches_globs(rel)
    }

    fn matches_globs(&self, rel: &str) -> bool {
        match &self.globs {
            None => true,
            Some(o) => {
                let path = Path::new(rel);
                if o.matched(path, false).is_whitelist() {
                    return true;
                }
                // a directory entry (e.g. `src`) covers everything under it
                path.ancestors()
                    .skip(1)
                    .filter(|p| !p.as_os_str().is_empty())
                    .any(|p| o.matched(p, true).is_whitelist())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_globs_and_directories() {
        let root = Path::new("/repo");
        let s = Scope::new(root, &["src".into(), "*.py".into()]).unwrap();
        assert!(s.contains("src/a/b.rs"));
        assert!(s.contains("tools/x.py"));
        assert!(!s.contains("web/index.js"));
        let all = Scope::new(root, &["all".into()]).unwrap();
        assert!(all.contains("anything/at/all.rs"));
        assert!(Scope::new(root, &["../x".into()]).is_err());
        assert!(Scope::new(root, &["/etc".into()]).is_err());
    }

    #[test]
    fn incremental_scopes_read_modification_times_through_the_handle() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("repo");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("src/old.rs"), "").unwrap();
        std::fs::write(outside.join("old.rs"), "").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        let s = Scope::new(&root, &[]).unwrap().modified_since(later);
        assert!(
            !s.contains("src/old.rs"),
            "older than `since`: out of scope"
        );
        // Through a symlink out nothing is looked up (by path it would be found old).
        assert!(s.contains("out/old.rs"));
    }
}
