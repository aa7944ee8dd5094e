//! [`TextWindow`]: a bounded window of a large text (file contents, diffs), cut on a
//! char boundary, with the offset to read the rest.
//!
//! Owns the windowing only; it must not fetch anything.

use serde::Serialize;

use super::GhError;

/// A window of a large text: `max_bytes` from `offset`, cut on a char boundary.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TextWindow {
    pub text: String,
    /// Total length of the full text in bytes.
    pub total_bytes: usize,
    /// Byte offset to pass back to read the rest; absent when this is the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

pub fn window(full: &str, offset: usize, max_bytes: usize) -> Result<TextWindow, GhError> {
    if offset > full.len() {
        return Err(GhError::Input(format!(
            "offset {offset} is past the end ({} bytes)",
            full.len()
        )));
    }
    let mut start = offset;
    while !full.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + max_bytes).min(full.len());
    while !full.is_char_boundary(end) {
        end -= 1;
    }
    Ok(TextWindow {
        text: full[start..end].to_string(),
        total_bytes: full.len(),
        next_offset: (end < full.len()).then_some(end),
    })
}
