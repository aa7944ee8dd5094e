//! The operations a spool batch is made of ([`Op`]), what each one did ([`OpResult`])
//! and a batch that did not go through ([`BatchFailure`]).
//!
//! Owns these shapes only; it must not plan or write anything.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patchkit::apply::HunkStatus;

fn default_true() -> bool {
    true
}

/// One staged operation; paths are relative to the session root.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Create or overwrite a file with `content`.
    Write { path: String, content: String },
    /// As `spool_replace`.
    Replace {
        path: String,
        #[serde(rename = "match")]
        pattern: String,
        replacement: String,
        #[serde(default)]
        regex: bool,
        #[serde(default)]
        all: bool,
        /// Replace only the first of several matches instead of refusing.
        #[serde(default)]
        first: bool,
        #[serde(default = "default_true")]
        required: bool,
    },
    /// Apply a unified diff (one or many files).
    Patch {
        diff: String,
        /// Apply the hunks that fit and report the others instead of failing.
        #[serde(default, rename = "ignoreConflicts")]
        ignore_conflicts: bool,
        /// Outer context lines a hunk may drop to fit (0-3).
        #[serde(default)]
        #[schemars(range(max = 3))]
        fuzz: u8,
    },
    /// Delete a file (it must exist).
    Delete { path: String },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Write { .. } => "write",
            Op::Replace { .. } => "replace",
            Op::Patch { .. } => "patch",
            Op::Delete { .. } => "delete",
        }
    }
}

/// What one operation did (or would have done).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpResult {
    pub index: usize,
    pub op: &'static str,
    /// Files the operation touched.
    pub paths: Vec<String>,
    /// `ok`, `failed`, or `not_run` (an earlier operation failed).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacements: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<HunkStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl OpResult {
    pub(super) fn new(index: usize, op: &Op) -> Self {
        OpResult {
            index,
            op: op.name(),
            paths: Vec::new(),
            status: "ok",
            replacements: None,
            hunks: Vec::new(),
            error: None,
        }
    }
}

/// A batch that did not go through: nothing on disk changed.
#[derive(Debug)]
pub struct BatchFailure {
    pub message: String,
    pub results: Vec<OpResult>,
}
