//! The `read_file` tool: a window of a file inside the workspace roots.
//!
//! Owns its input, handler and registration; paths and reads go through
//! `mvp::workspace`.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{M, Out, read_err};
use crate::{
    mvp::workspace::{self, Encoding, FileWindow},
    runtime::{
        registry::{CallCtx, Hints, ToolDef, ToolError},
        toolset::Tools,
    },
};

pub(super) fn register(t: &Tools<M>) -> Vec<ToolDef> {
    let read = Hints::read();
    vec![
        t.tool(
            "read_file",
            read,
            read_file,
            "Read a file inside the workspace roots, `length` bytes from `offset` as utf8 or base64; pass `nextOffset` back to read on.",
        )
        .titled("Read file"),
    ]
}

fn default_read_len() -> u64 {
    workspace::DEFAULT_READ_BYTES
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadFileIn {
    /// File path, absolute or relative to the first workspace root.
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// utf8 (default) or base64.
    #[serde(default)]
    pub encoding: Encoding,
    /// Byte offset to start at (pass `nextOffset` back to read on).
    #[serde(default)]
    pub offset: u64,
    /// Bytes to read (default 262144, at most 1048576).
    #[serde(default = "default_read_len")]
    #[schemars(range(min = 1, max = 1048576))]
    pub length: u64,
}

pub(super) async fn read_file(mvp: M, input: ReadFileIn, ctx: CallCtx) -> Out<FileWindow> {
    let roots = mvp.roots.clone();
    mvp.runtime
        .executor
        .run_cpu(ctx.deadline, &ctx.cancel, move || {
            workspace::read_window(
                &roots,
                &input.path,
                input.encoding,
                input.offset,
                input.length,
            )
        })
        .await
        .map_err(|e| ToolError::Deadline(e.to_string()))?
        .map_err(read_err)
}
