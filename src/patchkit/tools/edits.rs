//! `edit_files`: search-and-replace edits over files inside the workspace roots in one
//! call, checked in memory first and written all-or-nothing, answered with a git-style
//! diff paged by a signed cursor.
//!
//! Owns the tool's input, output, the check of `expectedSha`, and the diffs kept for
//! later pages; matching is `edit.rs`'s, file access `edit_io.rs`'s.

use std::collections::BTreeMap;

use crate::{
    patchkit::{
        diff::{self, DiffOptions, sha256_hex},
        edit::{self, Edit, EditError, EditReport, TextFile},
        edit_io::{self, Change, EditIoError, Located},
    },
    runtime::{budget::Budget, page, stop::Stop},
};

use super::*;

pub(super) fn register(t: &Tools<Kit>) -> Vec<ToolDef> {
    let write = Hints::write();
    vec![
        t.tool(
            "edit_files",
            write.destructive(),
            edit_files,
            "Edit workspace files by search and replace: `edits` apply in order, each oldText matching once (else the error shows the matches), all-or-nothing; `expectedSha` refuses changed files. Returns a git-style diff (`dryRun` writes nothing); more via `next_cursor`."
        )
        .titled("Edit files"),
    ]
}

const CURSOR_KIND: &str = "edit_files";

fn default_max_diff_bytes() -> usize {
    20_000
}

fn default_context() -> usize {
    3
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditIn {
    /// File path, absolute or relative to the first workspace root; the file must exist.
    #[schemars(length(min = 1, max = 4096))]
    pub path: String,
    /// Exact text to replace (LF matches a CRLF file's line endings); must occur once
    /// unless `replaceAll`.
    pub old_text: String,
    /// The text to put in its place.
    pub new_text: String,
    /// Replace every occurrence instead of requiring exactly one.
    #[serde(default)]
    pub replace_all: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditFilesIn {
    /// Applied in order, each to the result of the ones before. Omit only when passing
    /// `cursor`.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub edits: Vec<EditIn>,
    /// Check everything and return the diff, but write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Path → SHA-256 hex of the bytes you last saw; a file that now differs is refused
    /// (the error names its current SHA-256).
    #[serde(default)]
    pub expected_sha: BTreeMap<String, String>,
    /// Unchanged lines around each change in the diff (default 3).
    #[serde(default = "default_context")]
    #[schemars(range(max = 100))]
    pub context_lines: usize,
    /// Most bytes of diff text per answer (default 20000); the rest comes with
    /// `next_cursor`.
    #[serde(default = "default_max_diff_bytes")]
    #[schemars(range(min = 1000, max = 1000000))]
    pub max_diff_bytes: usize,
    /// `next_cursor` of a previous answer: returns the next part of its diff (send no
    /// edits with it).
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One edited file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditedFile {
    /// Path relative to `root`.
    pub path: String,
    /// SHA-256 hex of the file's bytes before the edits.
    pub sha_before: String,
    /// SHA-256 hex of its bytes after the edits (pass it as `expectedSha` next time).
    pub sha_after: String,
    pub additions: usize,
    pub deletions: usize,
    /// Kept as found: `crlf`, `mixed` or `lf` line endings.
    pub line_endings: &'static str,
    /// The file starts with a UTF-8 byte-order mark (kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bom: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditFilesOut {
    /// True when the files were written; false for `dryRun`.
    pub applied: bool,
    pub dry_run: bool,
    /// The workspace root the paths are relative to.
    pub root: String,
    /// Every file the edits touched (on the first page only).
    pub files: Vec<EditedFile>,
    /// What each edit did: lines, replacements, and for whitespace-tolerant matches what
    /// differed (on the first page only).
    pub edits: Vec<EditReport>,
    /// This page of the git-style unified diff of all files (paths relative to `root`).
    pub diff: String,
    /// Bytes of the whole diff, all pages together.
    pub diff_bytes: usize,
    /// Pass back as `cursor` (without edits) to get the rest of the diff.
    #[serde(rename = "next_cursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A diff kept for its later pages.
pub(super) struct Kept {
    /// Who made the edit: only that principal may page through its diff.
    owner: Option<String>,
    applied: bool,
    dry_run: bool,
    root: String,
    diff: String,
}

impl Kept {
    /// Cache weight: the diff's bytes.
    pub(super) fn weight(&self) -> u32 {
        u32::try_from(self.diff.len() + 256).unwrap_or(u32::MAX)
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    id: String,
    at: usize,
}

/// The next page of `diff` from byte `at`: at most `max` bytes, cut after a line end
/// when one falls inside the page.
fn cut(diff: &str, at: usize, max: usize) -> (&str, Option<usize>) {
    let rest = diff.get(at..).unwrap_or("");
    if rest.len() <= max {
        return (rest, None);
    }
    let mut end = max;
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(nl) = rest[..end].rfind('\n') {
        end = nl + 1;
    }
    (&rest[..end], Some(at + end))
}

fn page_of(kit: &Kit, kept: Arc<Kept>, at: usize, max: usize, id: &str) -> EditFilesOut {
    let (text, next) = cut(&kept.diff, at, max);
    let next_cursor = next.map(|at| {
        page::encode(
            CURSOR_KIND,
            &Cursor {
                id: id.to_string(),
                at,
            },
        )
    });
    let out = EditFilesOut {
        applied: kept.applied,
        dry_run: kept.dry_run,
        root: kept.root.clone(),
        files: Vec::new(),
        edits: Vec::new(),
        diff: text.to_string(),
        diff_bytes: kept.diff.len(),
        next_cursor,
    };
    if next.is_some() {
        kit.edit_diffs.insert(id.to_string(), kept);
    }
    out
}

fn edit_error(e: EditError) -> ToolError {
    match e {
        EditError::Refused(m) => ToolError::business(m),
        EditError::Stopped(s) => s.into(),
        EditError::Budget(b) => b.into(),
    }
}

/// The tool error of a failed read or write (a budget or a deadline as such).
fn io_error(e: EditIoError) -> ToolError {
    match e {
        EditIoError::Budget(b) => b.into(),
        e @ EditIoError::Stopped(_) => ToolError::Deadline(e.to_string()),
        e => ToolError::business(e.to_string()),
    }
}

/// One file's planned change.
struct Planned {
    file: Located,
    before: Vec<u8>,
    /// SHA-256 hex of `before`.
    sha_before: String,
    after: Vec<u8>,
    text: TextFile,
}

pub(super) async fn edit_files(kit: Kit, i: EditFilesIn, ctx: CallCtx) -> Out<EditFilesOut> {
    if let Some(cursor) = &i.cursor {
        if !i.edits.is_empty() {
            return Err(ToolError::input(
                "cursor continues an earlier answer's diff; send it without edits",
            ));
        }
        let c: Cursor = page::decode(CURSOR_KIND, cursor)
            .map_err(|e| ToolError::input(format!("cursor: {e}")))?;
        let kept = kit
            .edit_diffs
            .get(&c.id)
            .filter(|k| ctx.principal.may_access(k.owner.as_deref(), false))
            .ok_or_else(|| {
            ToolError::business(
                "the rest of that diff is no longer kept (diffs are kept 30 minutes, and not across a restart); the edits stand as answered — read the files to see them",
            )
        })?;
        return Ok(page_of(&kit, kept, c.at, i.max_diff_bytes, &c.id));
    }
    if i.edits.is_empty() {
        return Err(ToolError::input(
            "edits is empty; give at least one {path, oldText, newText}",
        ));
    }
    let input_bytes: usize = i
        .edits
        .iter()
        .map(|e| e.old_text.len() + e.new_text.len() + e.path.len())
        .sum();
    let _input = ctx
        .budget
        .hold(input_bytes as u64, "the edits of edit_files")?;
    let dry_run = i.dry_run;
    let max = i.max_diff_bytes;
    let opts = DiffOptions {
        context: i.context_lines,
        timeout: DiffOptions::default().timeout.min(ctx.remaining()),
        ..DiffOptions::default()
    };
    let k = kit.clone();
    let (stop, budget) = (ctx.stop.clone(), ctx.budget.clone());
    let done = kit
        .cpu(&ctx, move || plan_and_write(&k, &i, &opts, &stop, &budget))
        .await??;
    if !dry_run {
        for f in &done.patches {
            let data = crate::patchkit::events::Patch(&f.summary);
            if let Err(e) = kit.events.publish(SOURCE, &data).await {
                tracing::warn!("could not journal the patchkit.patch event: {e}");
            }
        }
    }
    let diff: String = done.patches.iter().map(|p| p.diff.as_str()).collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let kept = Arc::new(Kept {
        owner: ctx.principal.owner(),
        applied: !dry_run,
        dry_run,
        root: done.root.display().to_string(),
        diff,
    });
    let mut out = page_of(&kit, kept, 0, max, &id);
    out.files = done.files;
    out.edits = done.reports;
    Ok(out)
}

/// What a call did (or, dry, would do).
struct Done {
    root: PathBuf,
    files: Vec<EditedFile>,
    reports: Vec<EditReport>,
    patches: Vec<diff::FilePatch>,
}

/// Locates, reads and edits every file in memory; when all edits of all files fit and
/// the call is not dry, writes them all-or-nothing.
fn plan_and_write(
    kit: &Patchkit,
    i: &EditFilesIn,
    opts: &DiffOptions,
    stop: &Stop,
    budget: &Budget,
) -> Out<Done> {
    // Files in the order of their first edit, with their edits in order.
    let mut order: Vec<Located> = Vec::new();
    let mut by_file: BTreeMap<Located, Vec<(usize, Edit<'_>)>> = BTreeMap::new();
    for (n, e) in i.edits.iter().enumerate() {
        let at = edit_io::locate(&kit.roots, &e.path)
            .map_err(|m| ToolError::input(format!("edits[{n}].path: {m}")))?;
        if !by_file.contains_key(&at) {
            order.push(at.clone());
        }
        by_file.entry(at).or_default().push((
            n,
            Edit {
                old_text: &e.old_text,
                new_text: &e.new_text,
                replace_all: e.replace_all,
            },
        ));
    }
    let root = order[0].root.clone();
    if let Some(other) = order.iter().find(|f| f.root != root) {
        return Err(ToolError::input(format!(
            "the edits touch files under two workspace roots ({} and {}); one call writes under one root, so split the edits by root",
            root.display(),
            other.root.display()
        )));
    }
    let mut expected: BTreeMap<Located, String> = BTreeMap::new();
    for (path, sha) in &i.expected_sha {
        let at = edit_io::locate(&kit.roots, path)
            .map_err(|m| ToolError::input(format!("expectedSha: {m}")))?;
        if !by_file.contains_key(&at) {
            return Err(ToolError::input(format!(
                "expectedSha names {path}, which no edit touches; key it by a path of `edits`"
            )));
        }
        expected.insert(at, sha.trim().to_ascii_lowercase());
    }
    let dir = edit_io::open_root(&kit.roots, &root).map_err(io_error)?;
    let mut held = budget
        .hold(0, "the files edit_files reads")
        .map_err(ToolError::from)?;
    let mut problems: Vec<String> = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    let mut reports: Vec<EditReport> = Vec::new();
    for file in &order {
        stop.check()?;
        let before = edit_io::read(&dir, file, &mut held).map_err(io_error)?;
        let sha_before = sha256_hex(&before);
        if let Some(want) = expected.get(file) {
            let now = &sha_before;
            if now != want {
                problems.push(format!(
                    "{} changed since it was read: its sha256 is now {now}, not the expected {want}; read it again and redo the edits against what it holds now",
                    file.rel
                ));
                continue;
            }
        }
        let text = match TextFile::decode(&file.rel, before.clone()) {
            Ok(t) => t,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        match edit::apply_edits(&file.rel, &text, &by_file[file], stop, &mut held) {
            Ok((new, r)) => {
                reports.extend(r);
                let after = text.encode(&new);
                planned.push(Planned {
                    file: file.clone(),
                    before,
                    sha_before,
                    after,
                    text,
                });
            }
            Err(EditError::Refused(m)) => problems.push(m),
            Err(e) => return Err(edit_error(e)),
        }
    }
    if !problems.is_empty() {
        return Err(ToolError::business(format!(
            "nothing was written: {}",
            problems.join(" | ")
        )));
    }
    reports.sort_by_key(|r| r.index);
    let mut files = Vec::with_capacity(planned.len());
    let mut patches = Vec::with_capacity(planned.len());
    for p in &planned {
        stop.check()?;
        // While one file's diff is made it holds about twice both sides; what stays is
        // its hunks and text.
        let making = budget.hold(
            2 * (p.before.len() + p.after.len()) as u64,
            "the diff edit_files is making",
        )?;
        // Both sides are UTF-8 (decoded above), kept byte for byte with BOM and CRLF.
        let b = String::from_utf8_lossy(&p.before);
        let a = String::from_utf8_lossy(&p.after);
        let patch = diff::create_diff(&p.file.rel, Some(&b), Some(&a), opts)
            .map_err(|e| ToolError::Internal(e.to_string()))?;
        drop(making);
        held.grow(2 * patch.diff.len() as u64, "the diffs of edit_files")?;
        files.push(EditedFile {
            path: p.file.rel.clone(),
            sha_before: p.sha_before.clone(),
            sha_after: sha256_hex(&p.after),
            additions: patch.summary.additions,
            deletions: patch.summary.deletions,
            line_endings: if p.text.crlf {
                "crlf"
            } else if p.text.mixed {
                "mixed"
            } else {
                "lf"
            },
            bom: p.text.bom,
        });
        if p.before != p.after {
            patches.push(patch);
        }
    }
    if !i.dry_run {
        let writes: Vec<Change<'_>> = planned
            .iter()
            .filter(|p| p.before != p.after)
            .map(|p| Change {
                rel: &p.file.rel,
                before: &p.before,
                after: &p.after,
            })
            .collect();
        if !writes.is_empty() {
            edit_io::write_all_or_nothing(&dir, kit.batches.as_deref(), &writes, kit.fsync, stop)
                .map_err(io_error)?;
        }
    }
    Ok(Done {
        root,
        files,
        reports,
        patches,
    })
}
