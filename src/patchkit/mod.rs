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
pub mod events;
pub mod side_by_side;
pub mod spool;
pub mod spool_journal;
pub mod tools;
pub mod validate;

use std::sync::Arc;

use crate::runtime::{Runtime, toolset::Toolset};

pub const INSTRUCTIONS: &str = "patchkit: unified diffs: make (`create_diff`), read (`parse_patch`), dry-run and apply (`check_conflicts`, `apply_patch`). Edit workspace files by search and replace with `edit_files` (all-or-nothing, answers a diff); for staged edits open a spool (`spool_open`), stage, `spool_diff`, then `spool_commit` or `spool_reset`.";

/// Builds the toolset from the runtime (executor `cpu` lane, event bus, workspace roots).
pub fn toolset(runtime: &Runtime) -> Toolset {
    let kit = Arc::new(tools::Patchkit::new(runtime));
    Toolset::new("patchkit", INSTRUCTIONS, tools::all(&kit))
}
