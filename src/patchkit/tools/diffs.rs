//! Diff and patch tools over values (no files): create_diff, apply_patch,
//! check_conflicts, parse_patch, format_side_by_side.
//!
//! Owns their inputs, outputs and handlers; the work is in `diff.rs` and `apply.rs`.

use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::patchkit::{
    apply::{self, FileDiff, HunkStatus},
    diff::{self, ChangeType, DiffAlgorithm, DiffOptions, sha256_hex},
    side_by_side,
};

pub(super) fn register(t: &Tools<Kit>) -> Vec<ToolDef> {
    let read = Hints::read();
    vec![
        t.tool(
            "create_diff",
            read,
            create_diff,
            "Diff two versions of one file: returns hunks, a git-style unified diff (`git apply` accepts it), a summary and each side's SHA-256. Omit `before` for a created file, `after` for a deleted one."
        )
        .titled("Create diff"),
        t.tool(
            "apply_patch",
            read,
            apply_patch,
            "Apply a unified diff to `content` in memory and return the new content; writes nothing. Hunks may sit at an offset and `fuzz` (0-3) relaxes context; a hunk that does not fit is an error listing each failing hunk, what it expected and what was found."
        )
        .titled("Apply patch to text"),
        t.tool(
            "check_conflicts",
            read,
            check_conflicts,
            "Dry-run a unified diff against `content` before applying it: per-hunk status (applies, at which offset and fuzz, or conflicts with expected vs found lines). Conflicts are results, not errors."
        )
        .titled("Check patch conflicts"),
        t.tool(
            "parse_patch",
            read,
            parse_patch,
            "Read a unified diff of one or many files: each file's old and new path, change type and hunks, with addition and deletion counts."
        )
        .titled("Parse patch"),
        t.tool(
            "format_side_by_side",
            read,
            format_side_by_side,
            "Compare two JSON values by eye: pretty-printed columns aligned by a line diff (`|` changed, `<` left only, `>` right only), the changed-row count and whether they are equal."
        )
        .titled("Format side by side"),
    ]
}

fn default_context() -> usize {
    3
}

fn default_preview() -> usize {
    180
}

fn default_timeout_ms() -> u64 {
    2000
}

fn default_width() -> usize {
    60
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateDiffIn {
    /// File path shown in the headers (`a/<path>`, `b/<path>`).
    pub path: String,
    /// Old content; omit it (or pass null) when the file is created.
    #[serde(default)]
    pub before: Option<String>,
    /// New content; omit it (or pass null) when the file is deleted.
    #[serde(default)]
    pub after: Option<String>,
    /// Unchanged lines around each change (default 3).
    #[serde(default = "default_context")]
    #[schemars(range(max = 1000))]
    pub context_lines: usize,
    /// Longest summary preview in characters (default 180, then "…").
    #[serde(default = "default_preview")]
    #[schemars(range(max = 10000))]
    pub max_preview_length: usize,
    /// myers (default), patience or histogram.
    #[serde(default)]
    pub algorithm: DiffAlgorithm,
    /// Time budget of the diff in milliseconds (default 2000); past it the result is
    /// coarser and marked `approximate`.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub timeout_ms: u64,
}

pub(super) async fn create_diff(kit: Kit, i: CreateDiffIn, ctx: CallCtx) -> Out<FilePatch> {
    if i.before.is_none() && i.after.is_none() {
        return Err(ToolError::input(
            "before and after are both null; give at least one side",
        ));
    }
    // The hunks and the unified text each hold about both sides.
    let sides = i.before.as_deref().map_or(0, str::len) + i.after.as_deref().map_or(0, str::len);
    let _held = ctx
        .budget
        .hold(2 * sides as u64, "the hunks and text of create_diff")?;
    let opts = DiffOptions {
        context: i.context_lines,
        max_preview: i.max_preview_length,
        algorithm: i.algorithm,
        timeout: Duration::from_millis(i.timeout_ms).min(ctx.remaining()),
    };
    let k = kit.clone();
    let patch = kit
        .cpu(&ctx, move || {
            let key = DiffKey {
                path: i.path.clone(),
                sha_before: i.before.as_deref().map(|b| sha256_hex(b.as_bytes())),
                sha_after: i.after.as_deref().map(|a| sha256_hex(a.as_bytes())),
                context: opts.context,
                max_preview: opts.max_preview,
                algorithm: opts.algorithm,
            };
            if let Some(hit) = k.cache.get(&key) {
                return Ok(hit);
            }
            let patch = Arc::new(diff::create_diff(
                &i.path,
                i.before.as_deref(),
                i.after.as_deref(),
                &opts,
            )?);
            if !patch.approximate {
                k.cache.insert(key, patch.clone());
            }
            Ok::<_, diff::DiffError>(patch)
        })
        .await?
        .map_err(|e| ToolError::input(e.to_string()))?;
    Ok((*patch).clone())
}

fn default_fuzz() -> u8 {
    0
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyPatchIn {
    /// The text to patch ("" for a file the patch creates).
    pub content: String,
    /// Unified diff (git-style or classic `diff -u`).
    pub diff: String,
    /// Outer context lines a hunk may drop to fit (0-3, default 0).
    #[serde(default = "default_fuzz")]
    #[schemars(range(max = 3))]
    pub fuzz: u8,
    /// For a multi-file diff: which file (its new or old path).
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyOut {
    pub path: String,
    pub change_type: ChangeType,
    /// The patched text ("" when the patch deletes the file).
    pub content: String,
    pub sha_after: String,
    pub hunks: Vec<HunkStatus>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckOut {
    pub path: String,
    /// True when every hunk applies.
    pub clean: bool,
    pub conflicts: usize,
    pub hunks: Vec<HunkStatus>,
}

fn pick_file(diff: &str, path: Option<&str>) -> Out<FileDiff> {
    let mut files = apply::parse_patch(diff).map_err(|e| ToolError::input(format!("diff: {e}")))?;
    match path {
        Some(p) => files
            .into_iter()
            .find(|f| f.path() == p || f.old_path.as_deref() == Some(p))
            .ok_or_else(|| ToolError::input(format!("path: the diff has no file `{p}`"))),
        None if files.len() == 1 => Ok(files.remove(0)),
        None => Err(ToolError::input(format!(
            "path: the diff holds {} files ({}); name the one to apply",
            files.len(),
            files
                .iter()
                .map(|f| f.path())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

async fn run_apply(kit: &Kit, i: ApplyPatchIn, ctx: &CallCtx) -> Out<(FileDiff, apply::Applied)> {
    let file = pick_file(&i.diff, i.path.as_deref())?;
    // The patched text is at most the content plus every added line.
    let added: usize = file
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.kind == '+')
        .map(|l| l.text.len() + 2)
        .sum();
    let _held = ctx
        .budget
        .hold((i.content.len() + added) as u64, "the patched content")?;
    let stop = ctx.stop.clone();
    let (file, applied) = kit
        .cpu(ctx, move || {
            let applied = apply::apply_until(&i.content, &file, i.fuzz as usize, &stop);
            (file, applied)
        })
        .await?;
    Ok((file, applied?))
}

pub(super) async fn apply_patch(kit: Kit, i: ApplyPatchIn, ctx: CallCtx) -> Out<ApplyOut> {
    let (file, applied) = run_apply(&kit, i, &ctx).await?;
    if applied.conflicts() > 0 {
        let failing: Vec<&HunkStatus> = applied.hunks.iter().filter(|h| !h.applied).collect();
        return Err(ToolError::business(format!(
            "{} of {} hunks do not apply to {}; nothing was changed. Check the content is the version the diff was made from, raise `fuzz`, or regenerate the diff. Conflicts: {}",
            failing.len(),
            applied.hunks.len(),
            file.path(),
            serde_json::to_string(&failing).unwrap_or_default()
        )));
    }
    let content = if file.change_type == ChangeType::Deleted {
        String::new()
    } else {
        applied.content
    };
    Ok(ApplyOut {
        path: file.path().to_string(),
        change_type: file.change_type,
        sha_after: sha256_hex(content.as_bytes()),
        content,
        hunks: applied.hunks,
    })
}

pub(super) async fn check_conflicts(kit: Kit, i: ApplyPatchIn, ctx: CallCtx) -> Out<CheckOut> {
    let (file, applied) = run_apply(&kit, i, &ctx).await?;
    Ok(CheckOut {
        path: file.path().to_string(),
        clean: applied.conflicts() == 0,
        conflicts: applied.conflicts(),
        hunks: applied.hunks,
    })
}

#[derive(Deserialize, JsonSchema)]
pub struct ParsePatchIn {
    /// Unified diff text, one or many files.
    pub diff: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HunkInfo {
    pub header: String,
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    pub additions: usize,
    pub deletions: usize,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub path: String,
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub change_type: ChangeType,
    pub additions: usize,
    pub deletions: usize,
    pub hunks: Vec<HunkInfo>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParseOut {
    pub files: Vec<FileInfo>,
    pub additions: usize,
    pub deletions: usize,
}

fn file_info(f: &FileDiff) -> FileInfo {
    let (additions, deletions) = f.counts();
    FileInfo {
        path: f.path().to_string(),
        old_path: f.old_path.clone(),
        new_path: f.new_path.clone(),
        change_type: f.change_type,
        additions,
        deletions,
        hunks: f
            .hunks
            .iter()
            .map(|h| HunkInfo {
                header: h.header.clone(),
                old_start: h.old_start,
                old_lines: h.old_lines,
                new_start: h.new_start,
                new_lines: h.new_lines,
                additions: h.lines.iter().filter(|l| l.kind == '+').count(),
                deletions: h.lines.iter().filter(|l| l.kind == '-').count(),
            })
            .collect(),
    }
}

pub(super) async fn parse_patch(kit: Kit, i: ParsePatchIn, ctx: CallCtx) -> Out<ParseOut> {
    let files = kit
        .cpu(&ctx, move || apply::parse_patch(&i.diff))
        .await?
        .map_err(|e| ToolError::input(format!("diff: {e}")))?;
    let files: Vec<FileInfo> = files.iter().map(file_info).collect();
    Ok(ParseOut {
        additions: files.iter().map(|f| f.additions).sum(),
        deletions: files.iter().map(|f| f.deletions).sum(),
        files,
    })
}

#[derive(Deserialize, JsonSchema)]
pub struct SideBySideIn {
    /// Left value (any JSON).
    pub left: Value,
    /// Right value (any JSON).
    pub right: Value,
    /// Width of the left column in characters (default 60).
    #[serde(default = "default_width")]
    #[schemars(range(min = 10, max = 200))]
    pub width: usize,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideBySideOut {
    pub text: String,
    pub rows: usize,
    pub changed_rows: usize,
    /// True when the values are equal.
    pub equal: bool,
}

pub(super) async fn format_side_by_side(
    kit: Kit,
    i: SideBySideIn,
    ctx: CallCtx,
) -> Out<SideBySideOut> {
    let (stop, budget) = (ctx.stop.clone(), ctx.budget.clone());
    kit.cpu(&ctx, move || {
        let r = side_by_side::render(&i.left, &i.right, i.width, &stop, &budget)?;
        Ok(SideBySideOut {
            text: r.text,
            rows: r.rows,
            changed_rows: r.changed_rows,
            equal: i.left == i.right,
        })
    })
    .await?
    .map_err(|e| match e {
        side_by_side::RenderError::Stopped(s) => ToolError::from(s),
        side_by_side::RenderError::Budget(b) => ToolError::from(b),
    })
}
