//! Where spool sessions may work: a session root must lie inside a configured workspace
//! root (compared component by component after canonicalisation, so `/root-evil` is not
//! inside `/root` and symlinks cannot lead out), and every file path of a session is a
//! relative path without `..` whose existing ancestors stay inside the session root.
//!
//! Owns path checks only; it must not read or write file contents.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PathError {
    #[error("root `{0}` does not exist or is not a directory")]
    NoRoot(String),
    #[error(
        "root `{root}` is outside the workspace roots ({allowed}); pick a directory inside one of them or start the server with --workspace-roots"
    )]
    OutsideWorkspace { root: String, allowed: String },
    #[error("path `{0}` must be relative to the session root, without `..` segments")]
    NotRelative(String),
    #[error("path `{0}` leads outside the session root (through a symlink)")]
    Escape(String),
    #[error("path `{0}` is a symlink; spool edits only regular files")]
    Symlink(String),
    #[error("path is empty")]
    Empty,
}

/// Canonical workspace roots; an empty configuration means the current directory.
pub fn workspace_roots(configured: &[PathBuf]) -> Vec<PathBuf> {
    let raw = if configured.is_empty() {
        vec![std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))]
    } else {
        configured.to_vec()
    };
    raw.iter().filter_map(|p| p.canonicalize().ok()).collect()
}

/// Canonicalises `root` and checks it lies inside one of `allowed` (already canonical).
pub fn session_root(root: &str, allowed: &[PathBuf]) -> Result<PathBuf, PathError> {
    let canonical = Path::new(root)
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| PathError::NoRoot(root.to_string()))?;
    if allowed.iter().any(|a| canonical.starts_with(a)) {
        Ok(canonical)
    } else {
        Err(PathError::OutsideWorkspace {
            root: root.to_string(),
            allowed: allowed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Normalises a session-relative path ("./a//b" → "a/b"); refuses absolute paths and `..`.
pub fn normalise(rel: &str) -> Result<String, PathError> {
    let mut parts = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| PathError::NotRelative(rel.to_string()))?,
            ),
            Component::CurDir => {}
            _ => return Err(PathError::NotRelative(rel.to_string())),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(parts.join("/"))
}

/// The absolute path of `rel` under `root`, checking that no existing component is a
/// symlink leading out and that the file itself is not a symlink.
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf, PathError> {
    let rel = normalise(rel)?;
    let full = root.join(&rel);
    if let Ok(meta) = std::fs::symlink_metadata(&full)
        && meta.file_type().is_symlink()
    {
        return Err(PathError::Symlink(rel));
    }
    let mut existing = full.parent().map(Path::to_path_buf);
    while let Some(dir) = existing {
        if dir.exists() {
            let canonical = dir
                .canonicalize()
                .map_err(|_| PathError::Escape(rel.clone()))?;
            if !canonical.starts_with(root) {
                return Err(PathError::Escape(rel));
            }
            break;
        }
        existing = dir.parent().map(Path::to_path_buf);
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_prefix_is_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let evil = dir.path().join("root-evil");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&evil).unwrap();
        let allowed = workspace_roots(std::slice::from_ref(&root));
        assert!(session_root(root.to_str().unwrap(), &allowed).is_ok());
        assert!(matches!(
            session_root(evil.to_str().unwrap(), &allowed),
            Err(PathError::OutsideWorkspace { .. })
        ));
        let dotdot = format!("{}/../root-evil", root.display());
        assert!(session_root(&dotdot, &allowed).is_err());
    }

    #[test]
    fn relative_paths_only() {
        assert_eq!(normalise("./a//b.txt").unwrap(), "a/b.txt");
        assert!(normalise("../x").is_err());
        assert!(normalise("a/../../x").is_err());
        assert!(normalise("/etc/passwd").is_err());
        assert!(normalise("").is_err());
    }

    #[test]
    fn symlinks_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let root = root.canonicalize().unwrap();
        assert_eq!(
            resolve(&root, "link/x.txt"),
            Err(PathError::Escape("link/x.txt".into()))
        );
        assert_eq!(
            resolve(&root, "link"),
            Err(PathError::Symlink("link".into()))
        );
        assert!(resolve(&root, "new/dir/f.txt").is_ok());
    }
}
