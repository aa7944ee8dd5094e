//! Pull-request checkouts for `create_review`: asks the registry's GitHub tools, by name,
//! for a pull request's head commit, its changed files and each file's text at that head,
//! and writes them under a scratch directory so the review's analysers run on them like
//! on any local checkout.
//!
//! Owns only that scratch directory (created here, removed by the caller when the review
//! is done). It must not import the github toolset: everything goes through
//! `CallCtx::registry`, the same path a client takes, so the github lanes, cache and rate
//! limits apply and a missing credential comes back as that toolset's own message.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::runtime::{registry::CallCtx, workspace::Beneath};

/// Changed files fetched per review; GitHub lists at most 3,000 per pull request.
pub const MAX_FILES: usize = 300;
/// A file larger than this is listed as skipped, not fetched.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The window asked of `get_file_contents` (its maximum).
const WINDOW_BYTES: u64 = 1 << 20;
/// Files asked of `get_pull_request_files` per page.
const FILES_PAGE: u64 = 100;

/// What was fetched.
#[derive(Debug)]
pub struct PrCheckout {
    pub root: PathBuf,
    pub head_sha: String,
    /// Paths written under `root`, relative, in the pull request's order.
    pub files: Vec<String>,
    /// Changed paths not reviewed, each with why (removed, binary, too large, unsafe path).
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// A GitHub tool answered with an error; its message already says what to do.
    #[error("{tool}: {message}")]
    Github { tool: &'static str, message: String },
    /// A GitHub tool answered with a shape this module does not understand.
    #[error("{tool} answered without {field}")]
    Shape {
        tool: &'static str,
        field: &'static str,
    },
    #[error("writing the checkout {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the checkout: {0}")]
    Write(#[from] crate::runtime::workspace::WorkspaceError),
}

/// Fetches pull request `number` of `repository` ("owner/name") into `dir` (created).
pub async fn fetch(
    ctx: &CallCtx,
    repository: &str,
    number: u64,
    dir: &Path,
) -> Result<PrCheckout, CheckoutError> {
    let pr = call(
        ctx,
        "get_pull_request",
        json!({"repository": repository, "number": number}),
    )
    .await?;
    let head_sha = pr
        .pointer("/head/sha")
        .and_then(Value::as_str)
        .ok_or(CheckoutError::Shape {
            tool: "get_pull_request",
            field: "head.sha",
        })?
        .to_string();
    let changed = changed_files(ctx, repository, number).await?;
    create_dir(dir)?;
    // Every file is written through the scratch directory's handle (temp file + rename
    // in its opened parent), like every other write of the server.
    let handle = Beneath::open_ambient(dir)?;
    let mut out = PrCheckout {
        root: dir.to_path_buf(),
        head_sha,
        files: Vec::new(),
        skipped: Vec::new(),
    };
    for (path, status) in changed {
        if let Some(why) = skip_reason(&path, &status, out.files.len()) {
            out.skipped.push(format!("{path} ({why})"));
            continue;
        }
        match file_text(ctx, repository, &path, &out.head_sha).await? {
            Ok(text) => {
                write_file(&handle, &path, &text)?;
                out.files.push(path);
            }
            Err(why) => out.skipped.push(format!("{path} ({why})")),
        }
    }
    Ok(out)
}

/// (path, status) of every changed file, following `next_cursor`.
async fn changed_files(
    ctx: &CallCtx,
    repository: &str,
    number: u64,
) -> Result<Vec<(String, String)>, CheckoutError> {
    let mut files = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"repository": repository, "number": number, "limit": FILES_PAGE, "maxPatchBytes": 0});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = call(ctx, "get_pull_request_files", args).await?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .ok_or(CheckoutError::Shape {
                tool: "get_pull_request_files",
                field: "items",
            })?;
        for f in items {
            let name = f.get("filename").and_then(Value::as_str).unwrap_or("");
            let status = f.get("status").and_then(Value::as_str).unwrap_or("");
            files.push((name.to_string(), status.to_string()));
        }
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if cursor.is_none() || files.len() > MAX_FILES {
            return Ok(files);
        }
    }
}

fn skip_reason(path: &str, status: &str, fetched: usize) -> Option<&'static str> {
    if status == "removed" {
        return Some("removed");
    }
    if safe_relative(path).is_none() {
        return Some("unsafe path");
    }
    if fetched >= MAX_FILES {
        return Some("over the 300-file limit");
    }
    None
}

/// The file's UTF-8 text at `git_ref`, window by window; `Err(why)` when it is not
/// reviewable text (binary, too large, not a file).
async fn file_text(
    ctx: &CallCtx,
    repository: &str,
    path: &str,
    git_ref: &str,
) -> Result<Result<String, &'static str>, CheckoutError> {
    let mut text = String::new();
    let mut offset = 0u64;
    loop {
        let window = call(
            ctx,
            "get_file_contents",
            json!({"repository": repository, "path": path, "ref": git_ref, "offset": offset, "maxBytes": WINDOW_BYTES}),
        )
        .await?;
        if window.get("type").and_then(Value::as_str) != Some("file") {
            return Ok(Err("not a file"));
        }
        if window.get("size").and_then(Value::as_u64).unwrap_or(0) > MAX_FILE_BYTES {
            return Ok(Err("larger than 1 MiB"));
        }
        let Some(content) = window.get("content") else {
            return Ok(Err("binary"));
        };
        text.push_str(content.get("text").and_then(Value::as_str).unwrap_or(""));
        match content.get("next_offset").and_then(Value::as_u64) {
            Some(next) if next > offset => offset = next,
            _ => return Ok(Ok(text)),
        }
    }
}

async fn call(ctx: &CallCtx, tool: &'static str, args: Value) -> Result<Value, CheckoutError> {
    let args = match args {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let value = ctx
        .registry
        .call(tool, args, ctx.clone())
        .await
        .map_err(|e| CheckoutError::Github {
            tool,
            message: e.to_string(),
        })?;
    // The registry charged this result to the call's memory budget as held; a checkout
    // writes it to disk and drops it, so it is given back at once.
    ctx.budget
        .release(crate::runtime::budget::json_size(&value));
    Ok(value)
}

/// `path` as a relative path of normal components only (no `..`, root or prefix).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

fn create_dir(dir: &Path) -> Result<(), CheckoutError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckoutError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_file(root: &Beneath, rel: &str, text: &str) -> Result<(), CheckoutError> {
    let Some(rel) = safe_relative(rel) else {
        return Ok(());
    };
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = format!(".{}.checkout", name.unwrap_or_default());
    root.replace(&rel, text.as_bytes(), &temp, &mut Vec::new())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_relative("src/lib.rs").is_some());
        for bad in ["", "../etc/passwd", "/etc/passwd", "a/../../b", "./a/../.."] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn removed_and_unsafe_files_are_skipped() {
        assert_eq!(skip_reason("a.rs", "removed", 0), Some("removed"));
        assert_eq!(skip_reason("../a.rs", "added", 0), Some("unsafe path"));
        assert_eq!(
            skip_reason("a.rs", "modified", MAX_FILES),
            Some("over the 300-file limit")
        );
        assert_eq!(skip_reason("a.rs", "modified", 0), None);
    }
}
