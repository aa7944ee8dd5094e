//! Spool sessions: staged edits on disk under one root. Every operation (alone or in a
//! batch) is first planned in memory against the current files; only a plan that fully
//! validates is written, file by file through a temp file + rename, and if any write
//! fails every file already written is put back byte-for-byte. The session keeps the
//! baseline bytes of each file it touched so `diff`, `reset` (restores only files that
//! differ) and `commit` (validators, then re-baseline) know what changed.
//!
//! Planning is bounded: every file read into the plan and every planned new content is
//! held against the call's memory budget (a replacement that would grow a file past it
//! stops as soon as it does, before the text is built), and planning polls the call's
//! stop flag; a plan stopped or over budget writes nothing.
//!
//! Every read, write, rename and delete goes through the session root's directory
//! handle (`runtime::workspace::Beneath`): no `..` or symlink at any component leads
//! out, even when a directory is swapped for a symlink while the session is open, and
//! temp files are created in the opened parent directory and renamed within it.
//!
//! Owns session state and file writes under a session root. It must not decide where a
//! root may lie (that is `runtime::workspace::Roots`) nor publish events (the tools do).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    budget::{Budget, BudgetExceeded, Held},
    stop::{Stop, Stopped, Ticker},
    workspace::{self, Beneath, WorkspaceError},
};

use super::{
    apply::{self, HunkStatus},
    diff::{ChangeType, DiffOptions, FilePatch, create_diff},
    spool_journal,
    validate::{self, Rules},
};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(transparent)]
    Path(#[from] WorkspaceError),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error(transparent)]
    Stopped(#[from] Stopped),
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
    #[error("{0}")]
    Refused(String),
}

fn default_true() -> bool {
    true
}

/// One staged operation. Paths are relative to the session root.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Create or overwrite a file with `content`.
    Write { path: String, content: String },
    /// Replace `match` by `replacement` (literal text unless `regex` is true; then
    /// `$1`-style groups work in `replacement`). Without `all` or `first`, `match` must
    /// occur exactly once (several matches are an error listing their lines); `all`
    /// replaces every occurrence, `first` only the first; `required` (default true)
    /// makes no match an error.
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
    /// Apply a unified diff (git or classic, one or many files) relative to the root.
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
    fn new(index: usize, op: &Op) -> Self {
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

/// One spool session.
pub struct Session {
    pub id: String,
    pub root: PathBuf,
    /// The session root, opened once: every file operation goes through it.
    dir: Beneath,
    /// Bytes of every touched file when first touched (or at the last commit); None =
    /// the file did not exist.
    baseline: BTreeMap<String, Option<Vec<u8>>>,
    /// Directories this session created (relative to the root), outermost first.
    created_dirs: Vec<PathBuf>,
    /// Where batches record their intent until their last rename (see `spool_journal`).
    batches: Option<PathBuf>,
}

/// The bytes of `rel` beneath the session root (None = absent); a symlink, or a path
/// leading out, is an error.
fn read(dir: &Beneath, rel: &str) -> Result<Option<Vec<u8>>, SpoolError> {
    Ok(dir.read(Path::new(rel))?)
}

/// A changed file: (path, baseline bytes, current bytes); None = absent.
type Change = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// Planned new state: path → new bytes (None = deleted), plus the bytes before; `held`
/// counts both against the call's budget.
struct Plan {
    next: BTreeMap<String, Option<Vec<u8>>>,
    before: BTreeMap<String, Option<Vec<u8>>>,
    last_op: BTreeMap<String, usize>,
    held: Held,
    stop: Stop,
}

fn len_of(v: &Option<Vec<u8>>) -> u64 {
    v.as_ref().map_or(0, |b| b.len() as u64)
}

impl Plan {
    fn current(&mut self, dir: &Beneath, rel: &str) -> Result<Option<Vec<u8>>, String> {
        self.stop.check().map_err(|e| e.to_string())?;
        if let Some(v) = self.next.get(rel) {
            return Ok(v.clone());
        }
        if !self.before.contains_key(rel) {
            let bytes = read(dir, rel).map_err(|e| e.to_string())?;
            // Held twice: the plan keeps it, and each operation works on a copy.
            self.held
                .grow(2 * len_of(&bytes), "the files a spool plan reads")
                .map_err(|e| e.to_string())?;
            self.before.insert(rel.to_string(), bytes);
        }
        Ok(self.before[rel].clone())
    }
    fn set(&mut self, rel: &str, value: Option<Vec<u8>>, index: usize) -> Result<(), String> {
        self.held
            .grow(len_of(&value), "the new contents a spool plan holds")
            .map_err(|e| e.to_string())?;
        if let Some(old) = self.next.insert(rel.to_string(), value) {
            self.held.shrink(len_of(&old));
        }
        self.last_op.insert(rel.to_string(), index);
        Ok(())
    }
}

fn text(rel: &str, bytes: Option<Vec<u8>>) -> Result<String, String> {
    let bytes = bytes.ok_or_else(|| format!("{rel} does not exist"))?;
    String::from_utf8(bytes).map_err(|_| format!("{rel} is not UTF-8 text"))
}

impl Session {
    /// A session over `dir` (opened beneath a workspace root by the caller).
    pub fn new(id: String, dir: Beneath) -> Self {
        Session {
            id,
            root: dir.path().to_path_buf(),
            dir,
            baseline: BTreeMap::new(),
            created_dirs: Vec::new(),
            batches: None,
        }
    }

    /// Records each batch's intent under `dir` before its first rename, so a crash
    /// mid-batch is rolled back on the next start.
    pub fn with_batch_records(mut self, dir: PathBuf) -> Self {
        self.batches = Some(dir);
        self
    }

    /// Plans and writes `ops` all-or-nothing.
    pub fn run(&mut self, ops: &[Op]) -> Result<Vec<OpResult>, BatchFailure> {
        self.run_within(ops, &Stop::never(), &Budget::unlimited())
    }

    /// [`Session::run`] whose planning holds its data against `budget` and gives up
    /// (writing nothing) once `stop` is raised or its deadline passes.
    pub fn run_within(
        &mut self,
        ops: &[Op],
        stop: &Stop,
        budget: &Budget,
    ) -> Result<Vec<OpResult>, BatchFailure> {
        let held = budget.hold(0, "a spool plan").map_err(|e| BatchFailure {
            message: format!("{e}; nothing was written"),
            results: Vec::new(),
        })?;
        let mut plan = Plan {
            next: BTreeMap::new(),
            before: BTreeMap::new(),
            last_op: BTreeMap::new(),
            held,
            stop: stop.clone(),
        };
        let mut results: Vec<OpResult> = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let mut r = OpResult::new(i, op);
            if let Err(e) = self.plan_op(op, i, &mut plan, &mut r) {
                r.status = "failed";
                r.error = Some(e.clone());
                results.push(r);
                results.extend(ops.iter().enumerate().skip(i + 1).map(|(j, o)| {
                    let mut n = OpResult::new(j, o);
                    n.status = "not_run";
                    n
                }));
                return Err(BatchFailure {
                    message: format!(
                        "operation {} ({}) failed: {e}; nothing was written",
                        i + 1,
                        op.name()
                    ),
                    results,
                });
            }
            results.push(r);
        }
        // Past this point the plan is written whole (or restored whole), never cut short.
        if let Err(e) = stop.check() {
            return Err(BatchFailure {
                message: format!("{e} before anything was written; nothing was written"),
                results,
            });
        }
        if let Err((path, e)) = self.write(&plan) {
            let failed = plan.last_op.get(&path).copied().unwrap_or(0);
            for r in &mut results {
                r.status = if r.index == failed {
                    "failed"
                } else {
                    "not_run"
                };
            }
            results[failed].error = Some(e.to_string());
            return Err(BatchFailure {
                message: format!(
                    "writing failed at operation {} ({}): {e}; every file was restored byte-for-byte",
                    failed + 1,
                    ops[failed].name()
                ),
                results,
            });
        }
        Ok(results)
    }

    /// Writes whole new contents of existing files all-or-nothing, through the same
    /// plan, intent record (`spool_journal`) and temp file + rename as a batch: each
    /// `(path, bytes read before, new bytes)` is re-read under the plan first, and if any
    /// file no longer holds the bytes its caller read, nothing is written.
    pub fn write_if_unchanged(
        &mut self,
        files: &[(String, Vec<u8>, Vec<u8>)],
        stop: &Stop,
        budget: &Budget,
    ) -> Result<(), String> {
        let held = budget.hold(0, "an edit plan").map_err(|e| e.to_string())?;
        let mut plan = Plan {
            next: BTreeMap::new(),
            before: BTreeMap::new(),
            last_op: BTreeMap::new(),
            held,
            stop: stop.clone(),
        };
        for (i, (rel, read, new)) in files.iter().enumerate() {
            let now = plan.current(&self.dir, rel)?;
            if now.as_deref() != Some(read.as_slice()) {
                let sha = now.as_deref().map_or_else(
                    || "none: it was deleted".to_string(),
                    super::diff::sha256_hex,
                );
                return Err(format!(
                    "{rel} changed on disk while the edits were being prepared (sha256 now {sha}); nothing was written: read it again and resend the edits"
                ));
            }
            plan.set(rel, Some(new.clone()), i)?;
        }
        stop.check()
            .map_err(|e| format!("{e}; nothing was written"))?;
        self.write(&plan).map_err(|(path, e)| {
            format!("writing {path} failed: {e}; every file was restored byte-for-byte")
        })
    }

    fn plan_op(&self, op: &Op, i: usize, plan: &mut Plan, r: &mut OpResult) -> Result<(), String> {
        let dir = &self.dir;
        let cur = |plan: &mut Plan, rel: &str| plan.current(dir, rel);
        match op {
            Op::Write { path, content } => {
                let rel = workspace::relative(path).map_err(|e| e.to_string())?;
                cur(plan, &rel)?;
                plan.set(&rel, Some(content.clone().into_bytes()), i)?;
                r.paths.push(rel);
            }
            Op::Delete { path } => {
                let rel = workspace::relative(path).map_err(|e| e.to_string())?;
                if cur(plan, &rel)?.is_none() {
                    return Err(format!("{rel} does not exist"));
                }
                plan.set(&rel, None, i)?;
                r.paths.push(rel);
            }
            Op::Replace {
                path,
                pattern,
                replacement,
                regex,
                all,
                first,
                required,
            } => {
                let rel = workspace::relative(path).map_err(|e| e.to_string())?;
                let old = text(&rel, cur(plan, &rel)?)?;
                if !*all && !*first {
                    unique(&old, &rel, pattern, *regex, &plan.stop)?;
                }
                let (new, count) = {
                    let mut building = plan
                        .held
                        .budget()
                        .hold(0, "a spool replacement")
                        .map_err(|e| e.to_string())?;
                    let limits = Limits {
                        held: &mut building,
                        ticker: plan.stop.ticker(1024),
                    };
                    replace(&old, pattern, replacement, *regex, *all, limits)?
                };
                if count == 0 && *required {
                    return Err(format!(
                        "`{pattern}` not found in {rel} (set required: false to allow no match)"
                    ));
                }
                plan.set(&rel, Some(new.into_bytes()), i)?;
                r.replacements = Some(count);
                r.paths.push(rel);
            }
            Op::Patch {
                diff,
                ignore_conflicts,
                fuzz,
            } => {
                let files = apply::parse_patch(diff).map_err(|e| e.to_string())?;
                for f in &files {
                    self.plan_file_patch(f, i, *fuzz, *ignore_conflicts, plan, r)?;
                }
            }
        }
        Ok(())
    }

    fn plan_file_patch(
        &self,
        f: &apply::FileDiff,
        i: usize,
        fuzz: u8,
        ignore_conflicts: bool,
        plan: &mut Plan,
        r: &mut OpResult,
    ) -> Result<(), String> {
        let rel = workspace::relative(f.path()).map_err(|e| e.to_string())?;
        let current = plan.current(&self.dir, &rel)?;
        if f.change_type == ChangeType::Created && current.is_some() {
            return Err(format!("{rel}: the patch creates it but it already exists"));
        }
        let old = match (&f.change_type, current) {
            (ChangeType::Created, None) => String::new(),
            (_, cur) => text(&rel, cur)?,
        };
        let applied =
            apply::apply_until(&old, f, fuzz as usize, &plan.stop).map_err(|e| e.to_string())?;
        let conflicts = applied.conflicts();
        r.hunks.extend(applied.hunks.iter().cloned());
        if conflicts > 0 && !ignore_conflicts {
            let details = serde_json::to_string(
                &applied
                    .hunks
                    .iter()
                    .filter(|h| !h.applied)
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default();
            return Err(format!(
                "{rel}: {conflicts} of {} hunks do not apply: {details}",
                applied.hunks.len()
            ));
        }
        let value = match f.change_type {
            ChangeType::Deleted if conflicts == 0 => None,
            _ => Some(applied.content.into_bytes()),
        };
        if let Some(old_path) = f.old_path.as_deref().filter(|o| *o != f.path()) {
            let old_rel = workspace::relative(old_path).map_err(|e| e.to_string())?;
            plan.current(&self.dir, &old_rel)?;
            plan.set(&old_rel, None, i)?;
            r.paths.push(old_rel);
        }
        plan.set(&rel, value, i)?;
        r.paths.push(rel);
        Ok(())
    }

    /// Writes the plan; on the first failure restores what was written and returns the
    /// failing path.
    fn write(&mut self, plan: &Plan) -> Result<(), (String, SpoolError)> {
        let intent = match &self.batches {
            Some(dir) if !plan.next.is_empty() => {
                let files: Vec<(&str, Option<&[u8]>)> = plan
                    .next
                    .keys()
                    .map(|rel| {
                        let before = plan.before.get(rel).and_then(|b| b.as_deref());
                        (rel.as_str(), before)
                    })
                    .collect();
                let intent = spool_journal::begin(dir, &self.root, &files).map_err(|e| {
                    let first = plan.next.keys().next().cloned().unwrap_or_default();
                    (
                        first,
                        SpoolError::Io {
                            path: dir.display().to_string(),
                            reason: format!("recording the batch before writing: {e}"),
                        },
                    )
                })?;
                Some(intent)
            }
            _ => None,
        };
        let tag = intent.as_ref().map_or_else(
            || uuid::Uuid::new_v4().simple().to_string(),
            |i| i.tag.clone(),
        );
        let result = self.write_all(plan, &tag);
        if let Some(intent) = intent {
            intent.finish();
        }
        result
    }

    fn write_all(&mut self, plan: &Plan, tag: &str) -> Result<(), (String, SpoolError)> {
        let mut done: Vec<&str> = Vec::new();
        let mut new_dirs = Vec::new();
        for (rel, value) in &plan.next {
            let result = put(&self.dir, rel, value.as_deref(), &mut new_dirs, tag);
            if let Err(e) = result {
                for written in done.iter().rev() {
                    if let Err(re) = put(
                        &self.dir,
                        written,
                        plan.before[*written].as_deref(),
                        &mut Vec::new(),
                        tag,
                    ) {
                        tracing::error!(path = %written, "restoring after a failed batch: {re}");
                    }
                }
                remove_dirs(&self.dir, &new_dirs);
                return Err((rel.clone(), e));
            }
            done.push(rel);
        }
        for (rel, before) in &plan.before {
            self.baseline
                .entry(rel.clone())
                .or_insert_with(|| before.clone());
        }
        self.created_dirs.extend(new_dirs);
        Ok(())
    }

    /// Files whose disk content differs from the baseline, with both sides.
    fn changes(&self) -> Result<Vec<Change>, SpoolError> {
        let mut out = Vec::new();
        for (rel, base) in &self.baseline {
            let now = read(&self.dir, rel)?;
            if &now != base {
                out.push((rel.clone(), base.clone(), now));
            }
        }
        Ok(out)
    }

    /// One FilePatch per changed file, sorted by path.
    pub fn diff(
        &self,
        opts: &DiffOptions,
        stop: &Stop,
        budget: &Budget,
    ) -> Result<Vec<FilePatch>, SpoolError> {
        let changes = self.changes()?;
        let side = |c: &Option<Vec<u8>>| c.as_ref().map_or(0, Vec::len) as u64;
        // Both sides of every changed file, then (as create_diff does) about twice both
        // sides for each file's hunks and unified text.
        let mut held = budget.hold(
            changes.iter().map(|(_, b, a)| side(b) + side(a)).sum(),
            "the changed files of the spool",
        )?;
        let mut out = Vec::with_capacity(changes.len());
        for (rel, before, after) in changes {
            stop.check()?;
            held.grow(
                2 * (side(&before) + side(&after)),
                "the hunks and text of the spool's diffs",
            )?;
            let b = before.map(|b| String::from_utf8_lossy(&b).into_owned());
            let a = after.map(|a| String::from_utf8_lossy(&a).into_owned());
            if let Ok(p) = create_diff(&rel, b.as_deref(), a.as_deref(), opts) {
                out.push(p);
            }
        }
        stop.check()?;
        Ok(out)
    }

    /// Restores every touched file that differs from its baseline; returns their paths.
    pub fn reset(&mut self) -> Result<Vec<String>, SpoolError> {
        let changed = self.changes()?;
        for (rel, before, _) in &changed {
            let tag = uuid::Uuid::new_v4().simple().to_string();
            put(&self.dir, rel, before.as_deref(), &mut Vec::new(), &tag)?;
        }
        remove_dirs(&self.dir, &self.created_dirs);
        self.created_dirs.clear();
        self.baseline.clear();
        Ok(changed.into_iter().map(|(rel, _, _)| rel).collect())
    }

    /// Runs the validators over the changed files; when they pass, returns the patches
    /// and makes the current state the new baseline.
    pub fn commit(
        &mut self,
        rules: &Rules,
        opts: &DiffOptions,
        stop: &Stop,
        budget: &Budget,
    ) -> Result<Vec<FilePatch>, SpoolError> {
        let changed = self.changes()?;
        let candidates: Vec<validate::Candidate<'_>> = changed
            .iter()
            .map(|(rel, _, now)| validate::Candidate {
                path: rel,
                content: now.as_deref(),
            })
            .collect();
        let problems = validate::check(rules, &candidates);
        if !problems.is_empty() {
            return Err(SpoolError::Refused(format!(
                "commit refused, nothing was committed: {}",
                problems.join("; ")
            )));
        }
        drop(changed);
        let patches = self.diff(opts, stop, budget)?;
        self.baseline.clear();
        self.created_dirs.clear();
        Ok(patches)
    }

    /// Every touched file and how it stands against its baseline.
    pub fn status(&self) -> Result<Vec<(String, &'static str)>, SpoolError> {
        let mut out = Vec::new();
        for (rel, base) in &self.baseline {
            let now = read(&self.dir, rel)?;
            let state = match (base, &now) {
                (a, b) if a == b => "unchanged",
                (None, Some(_)) => "created",
                (Some(_), None) => "deleted",
                _ => "modified",
            };
            out.push((rel.clone(), state));
        }
        Ok(out)
    }
}

/// What bounds one replacement: the budget hold its text grows in, and the stop flag.
struct Limits<'a> {
    held: &'a mut Held,
    ticker: Ticker<'a>,
}

/// Bytes of replacement text between two charges to the budget.
const CHARGE_STEP: usize = 256 * 1024;

impl Limits<'_> {
    /// Called before `out` grows by `more` bytes: the text must still fit the budget.
    /// Capacity grows by half (not double) so the text never holds much more than the
    /// budget allows.
    fn reserve(&mut self, out: &mut String, more: usize) -> Result<(), String> {
        self.ticker.tick().map_err(|e| e.to_string())?;
        let needed = out.len() + more;
        if needed as u64 > self.held.bytes() {
            self.held
                .grow_to(
                    (needed + CHARGE_STEP) as u64,
                    "the text a spool replacement builds",
                )
                .map_err(|e| e.to_string())?;
        }
        if needed > out.capacity() {
            out.reserve_exact(more.max(out.len() / 2).max(CHARGE_STEP));
        }
        Ok(())
    }
}

/// Replaces matches of `pattern` in `old`, building the result piece by piece so a
/// replacement that would outgrow the budget stops as soon as it does.
fn replace(
    old: &str,
    pattern: &str,
    replacement: &str,
    regex: bool,
    all: bool,
    mut limits: Limits<'_>,
) -> Result<(String, usize), String> {
    if pattern.is_empty() {
        return Err("match must not be empty".into());
    }
    let limit = if all { usize::MAX } else { 1 };
    let mut out = String::new();
    let mut last = 0usize;
    let mut count = 0usize;
    if regex {
        let re = Regex::new(pattern).map_err(|e| format!("match is not a valid regex: {e}"))?;
        let refs = replacement.matches('$').count();
        for caps in re.captures_iter(old).take(limit) {
            let Some(m) = caps.get(0) else { continue };
            // Expansion adds at most the replacement plus, per `$` reference, a group
            // (no longer than the match).
            limits.reserve(
                &mut out,
                m.start() - last + replacement.len() + refs.saturating_mul(m.len()),
            )?;
            out.push_str(&old[last..m.start()]);
            caps.expand(replacement, &mut out);
            last = m.end();
            count += 1;
        }
    } else {
        for (start, m) in old.match_indices(pattern).take(limit) {
            limits.reserve(&mut out, start - last + replacement.len())?;
            out.push_str(&old[last..start]);
            out.push_str(replacement);
            last = start + m.len();
            count += 1;
        }
    }
    if count == 0 {
        return Ok((old.to_string(), 0));
    }
    limits.reserve(&mut out, old.len() - last)?;
    out.push_str(&old[last..]);
    Ok((out, count))
}

/// Refuses a `match` that occurs more than once (without `all` or `first`), listing
/// the places by line so the caller can widen it.
fn unique(old: &str, rel: &str, pattern: &str, regex: bool, stop: &Stop) -> Result<(), String> {
    let mut ticker = stop.ticker(1024);
    let mut shown: Vec<(usize, usize)> = Vec::new();
    let mut count = 0usize;
    let mut note = |s: usize, e: usize| {
        if shown.len() < 10 {
            shown.push((s, e));
        }
        count += 1;
    };
    if regex {
        let re = Regex::new(pattern).map_err(|e| format!("match is not a valid regex: {e}"))?;
        for m in re.find_iter(old) {
            ticker.tick().map_err(|e| e.to_string())?;
            note(m.start(), m.end());
        }
    } else if !pattern.is_empty() {
        for (s, m) in old.match_indices(pattern) {
            ticker.tick().map_err(|e| e.to_string())?;
            note(s, s + m.len());
        }
    }
    if count > 1 {
        return Err(format!(
            "`{pattern}` matches {count} places in {rel}: {}. Nothing was replaced; make `match` longer so it matches one place, set `all: true` to replace every one, or `first: true` to replace only the first",
            super::edit::describe_matches(old, &shown, count)
        ));
    }
    Ok(())
}

/// Puts `value` at `rel` beneath the session root (None = remove) through a temp file
/// in the opened parent directory + rename within it, keeping the permissions of a file
/// it replaces; records directories it had to create. The temp file is named after the
/// batch `tag`, so recovery can find it.
fn put(
    dir: &Beneath,
    rel: &str,
    value: Option<&[u8]>,
    new_dirs: &mut Vec<PathBuf>,
    tag: &str,
) -> Result<(), SpoolError> {
    let path = Path::new(rel);
    let Some(bytes) = value else {
        return Ok(dir.remove_file(path)?);
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    dir.replace(path, bytes, &spool_journal::temp_name(name, tag), new_dirs)?;
    Ok(())
}

/// Removes created directories that are empty again, innermost first.
fn remove_dirs(dir: &Beneath, dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        dir.remove_empty_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if p.is_dir() {
                    out.insert(format!("{rel}/"), Vec::new());
                    stack.push(p);
                } else {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    fn session() -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "bee\n").unwrap();
        let root = dir.path().canonicalize().unwrap();
        (
            dir,
            Session::new("s".into(), Beneath::open_ambient(&root).unwrap()),
        )
    }

    fn w(path: &str, content: &str) -> Op {
        Op::Write {
            path: path.into(),
            content: content.into(),
        }
    }

    #[test]
    fn failing_write_restores_everything() {
        let (dir, mut s) = session();
        let before = tree(dir.path());
        let ops = vec![
            w("a.txt", "changed\n"),
            w("new/dir/c.txt", "c\n"),
            Op::Delete {
                path: "b.txt".into(),
            },
            w("d.txt", "d\n"),
            w("a.txt/child.txt", "cannot be written\n"),
        ];
        let err = s.run(&ops).unwrap_err();
        assert_eq!(err.results[4].status, "failed", "{}", err.message);
        assert_eq!(tree(dir.path()), before);
    }

    #[test]
    fn failing_plan_writes_nothing() {
        let (dir, mut s) = session();
        let before = tree(dir.path());
        let ops = vec![
            w("a.txt", "x\n"),
            Op::Replace {
                path: "b.txt".into(),
                pattern: "zzz".into(),
                replacement: "y".into(),
                regex: false,
                all: false,
                first: false,
                required: true,
            },
        ];
        assert!(s.run(&ops).is_err());
        assert_eq!(tree(dir.path()), before);
    }

    #[test]
    fn literal_match_is_not_a_regex_and_reset_restores() {
        let (dir, mut s) = session();
        std::fs::write(dir.path().join("r.txt"), "a.b axb a.b\n").unwrap();
        let ops = vec![Op::Replace {
            path: "r.txt".into(),
            pattern: "a.b".into(),
            replacement: "Z".into(),
            regex: false,
            all: true,
            first: false,
            required: true,
        }];
        let r = s.run(&ops).unwrap();
        assert_eq!(r[0].replacements, Some(2));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("r.txt")).unwrap(),
            "Z axb Z\n"
        );
        s.run(&[w("made/new.txt", "n\n")]).unwrap();
        let restored = s.reset().unwrap();
        assert_eq!(
            restored,
            vec!["made/new.txt".to_string(), "r.txt".to_string()]
        );
        assert!(!dir.path().join("made").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("r.txt")).unwrap(),
            "a.b axb a.b\n"
        );
    }
}
