//! Workspace roots and the `read_file` tool's file access.
//!
//! Owns path confinement: every path a tool touches is canonicalised (symlinks
//! resolved) and must then lie inside one of the canonical roots, compared component by
//! component so `/work/a-b` is not inside `/work/a`. Owns byte-range reads with a
//! cursor. Roots come from `--workspace-roots`; with none configured the server's
//! working directory is the one root (the original package's behaviour).
//!
//! It must not start processes (that is `exec.rs`).

use std::{
    io::{Read, Seek, SeekFrom},
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest window `read_file` returns at once.
pub const MAX_READ_BYTES: u64 = 1024 * 1024;
/// Default window.
pub const DEFAULT_READ_BYTES: u64 = 256 * 1024;

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
    #[error(
        "{path} is not valid UTF-8 at byte {at}; read it with encoding \"base64\" (or adjust offset/length to character boundaries)"
    )]
    NotUtf8 { path: String, at: u64 },
    #[error("offset {offset} is past the end of {path} ({size} bytes)")]
    OffsetPastEnd {
        path: String,
        offset: u64,
        size: u64,
    },
    #[error("no workspace root is usable: {0}")]
    NoRoots(String),
    #[error(
        "the path argument {path:?} contains a NUL byte (\\u0000), which no file name can hold; pass the path without it"
    )]
    NulInPath { path: String },
}

/// The canonical workspace roots.
#[derive(Debug, Clone)]
pub struct Roots {
    roots: Arc<Vec<PathBuf>>,
}

impl Roots {
    /// Canonicalises the configured roots (or the working directory when none are set).
    pub fn new(configured: &[PathBuf]) -> Result<Self, WorkspaceError> {
        let wanted: Vec<PathBuf> = if configured.is_empty() {
            vec![std::env::current_dir().map_err(|e| WorkspaceError::NoRoots(e.to_string()))?]
        } else {
            configured.to_vec()
        };
        let mut roots = Vec::new();
        let mut problems = Vec::new();
        for root in wanted {
            match root.canonicalize() {
                Ok(c) if c.is_dir() => roots.push(c),
                Ok(c) => problems.push(format!("{} is not a directory", c.display())),
                Err(e) => problems.push(format!("{}: {e}", root.display())),
            }
        }
        if roots.is_empty() {
            return Err(WorkspaceError::NoRoots(problems.join("; ")));
        }
        for p in problems {
            tracing::warn!("workspace root skipped: {p}");
        }
        Ok(Roots {
            roots: Arc::new(roots),
        })
    }

    pub fn list(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The first root: where relative paths resolve.
    pub fn primary(&self) -> &Path {
        &self.roots[0]
    }

    fn describe(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Resolves `raw` (absolute, or relative to the first root), canonicalises it and
    /// checks that it lies inside a root.
    pub fn resolve(&self, raw: &str) -> Result<PathBuf, WorkspaceError> {
        if raw.contains('\0') {
            return Err(WorkspaceError::NulInPath {
                path: raw.to_string(),
            });
        }
        let given = Path::new(raw);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.primary().join(given)
        };
        let canonical = joined.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => WorkspaceError::NotFound {
                path: raw.to_string(),
            },
            _ => WorkspaceError::Io {
                path: raw.to_string(),
                reason: e.to_string(),
            },
        })?;
        if self.contains(&canonical) {
            Ok(canonical)
        } else {
            Err(WorkspaceError::Outside {
                path: raw.to_string(),
                roots: self.describe(),
            })
        }
    }

    /// Whether a canonical path lies inside a root (component-wise prefix).
    pub fn contains(&self, canonical: &Path) -> bool {
        self.roots.iter().any(|root| {
            let mut c = canonical.components();
            root.components().all(|r| c.next() == Some(r))
                && !canonical.components().any(|p| p == Component::ParentDir)
        })
    }

    /// A directory inside the roots (default: the first root).
    pub fn dir(&self, raw: Option<&str>) -> Result<PathBuf, WorkspaceError> {
        let path = match raw {
            Some(raw) => self.resolve(raw)?,
            None => self.primary().to_path_buf(),
        };
        if path.is_dir() {
            Ok(path)
        } else {
            Err(WorkspaceError::NotADirectory {
                path: raw.unwrap_or_default().to_string(),
            })
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Utf8,
    Base64,
}

/// One window of a file.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileWindow {
    /// Canonical path of the file.
    pub path: String,
    pub encoding: Encoding,
    /// The window's content (text, or base64 of the bytes).
    pub content: String,
    /// Bytes in this window.
    pub bytes: u64,
    /// Size of the whole file.
    pub size: u64,
    pub offset: u64,
    /// Pass back as `offset` to read on; absent at the end of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    /// True when the file is larger than this window.
    pub truncated: bool,
}

/// Reads `length` bytes from `offset` of a file inside the roots.
pub fn read_window(
    roots: &Roots,
    raw: &str,
    encoding: Encoding,
    offset: u64,
    length: u64,
) -> Result<FileWindow, WorkspaceError> {
    let path = roots.resolve(raw)?;
    let io = |e: std::io::Error| WorkspaceError::Io {
        path: raw.to_string(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(&path).map_err(io)?;
    if !meta.is_file() {
        return Err(WorkspaceError::NotAFile {
            path: raw.to_string(),
        });
    }
    let size = meta.len();
    if offset > size || (offset == size && size > 0) {
        return Err(WorkspaceError::OffsetPastEnd {
            path: raw.to_string(),
            offset,
            size,
        });
    }
    let want = length.clamp(1, MAX_READ_BYTES).min(size - offset);
    let mut file = std::fs::File::open(&path).map_err(io)?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut buf).map_err(io)?;
    let (content, taken) = match encoding {
        Encoding::Base64 => (
            base64::engine::general_purpose::STANDARD.encode(&buf),
            buf.len(),
        ),
        Encoding::Utf8 => utf8_window(&buf, offset + buf.len() as u64 == size).map_err(|at| {
            WorkspaceError::NotUtf8 {
                path: raw.to_string(),
                at: offset + at as u64,
            }
        })?,
    };
    let end = offset + taken as u64;
    Ok(FileWindow {
        path: path.display().to_string(),
        encoding,
        content,
        bytes: taken as u64,
        size,
        offset,
        next_offset: (end < size).then_some(end),
        truncated: offset > 0 || end < size,
    })
}

/// Decodes a window as UTF-8; a character cut at the window's end is left for the next
/// window. Returns the byte index of invalid data otherwise.
fn utf8_window(buf: &[u8], at_eof: bool) -> Result<(String, usize), usize> {
    match std::str::from_utf8(buf) {
        Ok(s) => Ok((s.to_string(), buf.len())),
        Err(e) if e.error_len().is_none() && !at_eof && e.valid_up_to() > 0 => {
            let n = e.valid_up_to();
            Ok((String::from_utf8(buf[..n].to_vec()).expect("checked"), n))
        }
        Err(e) => Err(e.valid_up_to()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_prefix_and_symlink_escapes_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("a");
        let sibling = base.path().join("a-b");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&sibling).unwrap();
        std::fs::write(sibling.join("x.txt"), "secret").unwrap();
        std::fs::write(root.join("ok.txt"), "fine").unwrap();
        std::os::unix::fs::symlink(sibling.join("x.txt"), root.join("link.txt")).unwrap();
        let roots = Roots::new(std::slice::from_ref(&root)).unwrap();
        assert!(roots.resolve("ok.txt").is_ok());
        let outside =
            |r: Result<PathBuf, WorkspaceError>| matches!(r, Err(WorkspaceError::Outside { .. }));
        assert!(outside(
            roots.resolve(sibling.join("x.txt").to_str().unwrap())
        ));
        assert!(outside(roots.resolve("../a-b/x.txt")));
        assert!(outside(roots.resolve("link.txt")));
        assert!(outside(roots.resolve("/etc/passwd")));
    }

    #[test]
    fn windows_walk_the_file_and_keep_characters_whole() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("t.txt"), "héllo wörld").unwrap();
        let roots = Roots::new(&[base.path().to_path_buf()]).unwrap();
        let w = read_window(&roots, "t.txt", Encoding::Utf8, 0, 2).unwrap();
        assert_eq!(w.content, "h");
        assert_eq!(w.next_offset, Some(1));
        let mut text = String::new();
        let mut offset = 0;
        loop {
            let w = read_window(&roots, "t.txt", Encoding::Utf8, offset, 3).unwrap();
            text.push_str(&w.content);
            match w.next_offset {
                Some(n) => offset = n,
                None => break,
            }
        }
        assert_eq!(text, "héllo wörld");
        let b = read_window(&roots, "t.txt", Encoding::Base64, 0, 1024).unwrap();
        assert_eq!(b.bytes, "héllo wörld".len() as u64);
    }
}
