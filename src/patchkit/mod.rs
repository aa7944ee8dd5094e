//! The `patchkit` toolset: diffs and patches as fast as git (`diff.rs`, `apply.rs`) and
//! spool sessions — staged edits on disk under a workspace root that are all-or-nothing
//! (`spool.rs`, `validate.rs`), and search-and-replace edits of files in the workspace
//! (`edit.rs`, `edit_io.rs`: temp file + rename per file, the spool's intent records
//! for edits of several files); where a session or an edit may work and every file
//! access of it go through the runtime's workspace roots (`runtime::workspace`).
//!
//! Imports only `runtime` and `config`; never another toolset.

pub mod apply;
pub mod cli;
pub mod diff;
pub mod edit;
pub mod edit_io;
pub mod side_by_side;
pub mod spool;
pub mod spool_journal;
pub mod tools;
pub mod validate;

use std::sync::Arc;

use crate::runtime::{Runtime, toolset::Toolset};

pub const INSTRUCTIONS: &str = "patchkit: make git-style unified diffs (`create_diff`), read them (`parse_patch`), dry-run and apply them to text (`check_conflicts`, `apply_patch`, with offsets and fuzz 0-3), and show two JSON values side by side. To edit files in the workspace by search and replace use `edit_files` (each oldText must match once; all-or-nothing; answers a diff). For staged edits on disk open a spool session over a directory inside the workspace roots (`spool_open`), stage writes, replacements, patches, deletes or an all-or-nothing `spool_batch`, review with `spool_diff`/`spool_status`, then `spool_commit` (validators: size, forbidden globs, JSON/TOML must parse) or `spool_reset`. Conflicts come back as errors naming each hunk, what it expected and what the file holds.";

/// Builds the toolset from the runtime (executor `cpu` lane, event bus, workspace roots).
pub fn toolset(runtime: &Runtime) -> Toolset {
    let kit = Arc::new(tools::Patchkit::new(runtime));
    Toolset::new("patchkit", INSTRUCTIONS, tools::all(&kit))
}
