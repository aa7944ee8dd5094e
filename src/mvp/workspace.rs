//! The `read_file` tool's file access: byte-range reads with a cursor, through the
//! runtime's [`Roots`] (the file is opened beneath a root's directory handle, so no
//! `..` or symlink at any component can lead out, even when the tree changes during
//! the call). Roots come from `--workspace-roots`; with none configured the server's
//! working directory is the one root (the original package's behaviour).
//!
//! Owns windows only: confinement is `runtime::workspace`'s. It must not start
//! processes (that is `exec.rs`).

use std::io::{Read, Seek, SeekFrom};

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::runtime::workspace::{Roots, WorkspaceError};

/// Largest window `read_file` returns at once.
pub const MAX_READ_BYTES: u64 = 1024 * 1024;
/// Default window.
pub const DEFAULT_READ_BYTES: u64 = 256 * 1024;

/// Why a window could not be read: a confinement error of the runtime's roots, or one
/// of the window itself.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ReadError {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
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
) -> Result<FileWindow, ReadError> {
    let (mut file, path) = roots.open_file(raw)?;
    let io = |e: std::io::Error| ReadError::Io {
        path: raw.to_string(),
        reason: e.to_string(),
    };
    let size = file.metadata().map_err(io)?.len();
    if offset > size || (offset == size && size > 0) {
        return Err(ReadError::OffsetPastEnd {
            path: raw.to_string(),
            offset,
            size,
        });
    }
    let want = length.clamp(1, MAX_READ_BYTES).min(size - offset);
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut buf).map_err(io)?;
    let (content, taken) = match encoding {
        Encoding::Base64 => (
            base64::engine::general_purpose::STANDARD.encode(&buf),
            buf.len(),
        ),
        Encoding::Utf8 => utf8_window(&buf, offset + buf.len() as u64 == size).map_err(|at| {
            ReadError::NotUtf8 {
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
    fn windows_walk_the_file_and_keep_characters_whole() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("t.txt"), "héllo wörld").unwrap();
        let roots = Roots::new(&[base.path().to_path_buf()]);
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
