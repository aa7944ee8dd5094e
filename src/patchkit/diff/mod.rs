//! Making diffs: one pass over `similar`'s grouped ops yields the hunks, the git-style
//! unified text and the summary together (the original computed every diff twice).
//! Lines are interned to ids, and lines found on one side only are dropped before
//! `similar` runs (as GNU diff and git do), which keeps scattered edits linear.
//!
//! Owns line splitting, hashing (SHA-256 of each present side), the FilePatch shape and
//! the unified-text format that `git apply` and `patch -p1` accept. It must not touch the
//! file system, the runtime or any session state.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use similar::Algorithm;

mod render;
mod script;
#[cfg(test)]
mod tests;

pub use render::NO_NEWLINE;
use render::{preview, unified_inner};
use script::{edit_script, intern};

/// Which diff algorithm `similar` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum DiffAlgorithm {
    #[default]
    Myers,
    Patience,
    Histogram,
}

impl DiffAlgorithm {
    fn similar(self) -> Algorithm {
        match self {
            DiffAlgorithm::Myers => Algorithm::Myers,
            DiffAlgorithm::Patience => Algorithm::Patience,
            DiffAlgorithm::Histogram => Algorithm::Histogram,
        }
    }
}

/// How a file changed; decided by which side is absent, never by lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Created,
    Modified,
    Deleted,
}

/// One hunk: old/new ranges (1-based starts as in `@@` headers) and its lines, each
/// prefixed with ' ', '-', '+' or '\' (no-newline marker), without line terminators.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hunk {
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    pub lines: Vec<String>,
}

/// What a patch did to one file, in the contract's summary shape (also the data of the
/// `patchkit.patch` event).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchSummary {
    pub path: String,
    pub change_type: ChangeType,
    pub additions: usize,
    pub deletions: usize,
    /// The first changed lines, at most `maxPreviewLength` characters (then "…").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// The contract's FilePatch.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilePatch {
    pub path: String,
    pub change_type: ChangeType,
    pub hunks: Vec<Hunk>,
    /// Git-style unified diff text; empty when both sides are equal.
    pub diff: String,
    pub summary: PatchSummary,
    /// SHA-256 hex of the old content; null when the file did not exist.
    pub sha_before: Option<String>,
    /// SHA-256 hex of the new content; null when the file is deleted.
    pub sha_after: Option<String>,
    /// True when the diff deadline passed and a coarser (still correct) diff was returned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

/// Options of one diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DiffOptions {
    pub context: usize,
    pub max_preview: usize,
    pub algorithm: DiffAlgorithm,
    pub timeout: Duration,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            context: 3,
            max_preview: 180,
            algorithm: DiffAlgorithm::Myers,
            timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DiffError {
    #[error("before and after are both null; give at least one side")]
    BothAbsent,
}

/// SHA-256 hex of `text`.
pub fn sha256_hex(text: &[u8]) -> String {
    hex::encode(Sha256::digest(text))
}

/// Splits into lines, each keeping its terminator ("\n"; a "\r" stays in the body).
pub fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Diffs two sides of `path`; `None` marks an absent side (created or deleted file).
pub fn create_diff(
    path: &str,
    before: Option<&str>,
    after: Option<&str>,
    opts: &DiffOptions,
) -> Result<FilePatch, DiffError> {
    let change_type = match (before, after) {
        (None, None) => return Err(DiffError::BothAbsent),
        (None, Some(_)) => ChangeType::Created,
        (Some(_), None) => ChangeType::Deleted,
        (Some(_), Some(_)) => ChangeType::Modified,
    };
    let old = before.unwrap_or("");
    let new = after.unwrap_or("");
    let names = Names::git(path, change_type);
    let text = unified(&names, old, new, opts);
    let preview = preview(&text.hunks, opts.max_preview);
    Ok(FilePatch {
        path: path.to_string(),
        change_type,
        summary: PatchSummary {
            path: path.to_string(),
            change_type,
            additions: text.additions,
            deletions: text.deletions,
            preview,
        },
        hunks: text.hunks,
        diff: text.diff,
        sha_before: before.map(|b| sha256_hex(b.as_bytes())),
        sha_after: after.map(|a| sha256_hex(a.as_bytes())),
        approximate: text.approximate,
    })
}

/// The header names of one file diff.
pub struct Names {
    pub git_line: Option<String>,
    pub mode_line: Option<&'static str>,
    pub old: String,
    pub new: String,
}

impl Names {
    /// `diff --git a/p b/p` with `/dev/null` for an absent side.
    pub fn git(path: &str, change: ChangeType) -> Names {
        Names::git_pair(path, path, change)
    }

    pub fn git_pair(old: &str, new: &str, change: ChangeType) -> Names {
        Names {
            git_line: Some(format!("diff --git a/{old} b/{new}")),
            mode_line: match change {
                ChangeType::Created => Some("new file mode 100644"),
                ChangeType::Deleted => Some("deleted file mode 100644"),
                ChangeType::Modified => None,
            },
            old: match change {
                ChangeType::Created => "/dev/null".into(),
                _ => format!("a/{old}"),
            },
            new: match change {
                ChangeType::Deleted => "/dev/null".into(),
                _ => format!("b/{new}"),
            },
        }
    }
}

/// Hunks, text and counts from one pass.
pub struct Unified {
    pub hunks: Vec<Hunk>,
    pub diff: String,
    pub additions: usize,
    pub deletions: usize,
    pub approximate: bool,
}

/// Git-style unified diff of `old` → `new` with hunks and counts.
pub fn unified(names: &Names, old: &str, new: &str, opts: &DiffOptions) -> Unified {
    unified_inner(names, old, new, opts, true)
}

/// [`unified`] without the per-line `hunks[].lines` (left empty): the text, the hunk
/// ranges and the counts, for callers that only print the text (`cortex-mcp diff`).
pub fn unified_text(names: &Names, old: &str, new: &str, opts: &DiffOptions) -> Unified {
    unified_inner(names, old, new, opts, false)
}
