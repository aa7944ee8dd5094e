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
//!
//! Here: the session and its writes; the operation shapes are in `ops.rs`, planning
//! and bounded replacement in `plan.rs`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::runtime::{
    budget::{Budget, BudgetExceeded},
    stop::{Stop, Stopped},
    workspace::{self, Beneath, WorkspaceError},
};

use super::{
    apply,
    diff::{ChangeType, DiffOptions, FilePatch, create_diff},
    spool_journal,
    validate::{self, Rules},
};

mod ops;
mod plan;
#[cfg(test)]
mod tests;

pub use ops::{BatchFailure, Op, OpResult};
use plan::{Limits, Plan, replace, text, unique};

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
    /// The validators' findings; nothing was committed.
    #[error("commit refused, nothing was committed: {}", .0.join("; "))]
    Findings(Vec<String>),
    #[error(transparent)]
    Patch(#[from] apply::PatchError),
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} is not UTF-8 text")]
    NotText(String),
    #[error("match must not be empty")]
    EmptyMatch,
    #[error("match is not a valid regex: {0}")]
    BadRegex(#[from] regex::Error),
    #[error("`{pattern}` not found in {rel} (set required: false to allow no match)")]
    NoMatch { pattern: String, rel: String },
    #[error(
        "`{pattern}` matches {count} places in {rel}: {places}. Nothing was replaced; make `match` longer so it matches one place, set `all: true` to replace every one, or `first: true` to replace only the first"
    )]
    Ambiguous {
        pattern: String,
        count: usize,
        rel: String,
        places: String,
    },
    #[error(
        "{rel} changed on disk while the edits were being prepared (sha256 now {sha}); nothing was written: read it again and resend the edits"
    )]
    Changed { rel: String, sha: String },
    #[error("{0}; nothing was written")]
    NothingWritten(Stopped),
    #[error("writing {path} failed: {source}; every file was restored byte-for-byte")]
    WriteFailed {
        path: String,
        source: Box<SpoolError>,
    },
    #[error("{0}: the patch creates it but it already exists")]
    AlreadyExists(String),
    #[error("{rel}: {conflicts} of {hunks} hunks do not apply: {details}")]
    Conflicts {
        rel: String,
        conflicts: usize,
        hunks: usize,
        details: String,
    },
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
                r.error = Some(e.to_string());
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
    ) -> Result<(), SpoolError> {
        let held = budget.hold(0, "an edit plan")?;
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
                return Err(SpoolError::Changed {
                    rel: rel.clone(),
                    sha,
                });
            }
            plan.set(rel, Some(new.clone()), i)?;
        }
        stop.check().map_err(SpoolError::NothingWritten)?;
        self.write(&plan)
            .map_err(|(path, e)| SpoolError::WriteFailed {
                path,
                source: Box::new(e),
            })
    }

    fn plan_op(
        &self,
        op: &Op,
        i: usize,
        plan: &mut Plan,
        r: &mut OpResult,
    ) -> Result<(), SpoolError> {
        let dir = &self.dir;
        let cur = |plan: &mut Plan, rel: &str| plan.current(dir, rel);
        match op {
            Op::Write { path, content } => {
                let rel = workspace::relative(path)?;
                cur(plan, &rel)?;
                plan.set(&rel, Some(content.clone().into_bytes()), i)?;
                r.paths.push(rel);
            }
            Op::Delete { path } => {
                let rel = workspace::relative(path)?;
                if cur(plan, &rel)?.is_none() {
                    return Err(SpoolError::Missing(rel));
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
                let rel = workspace::relative(path)?;
                let old = text(&rel, cur(plan, &rel)?)?;
                if !*all && !*first {
                    unique(&old, &rel, pattern, *regex, &plan.stop)?;
                }
                let (new, count) = {
                    let mut building = plan.held.budget().hold(0, "a spool replacement")?;
                    let limits = Limits {
                        held: &mut building,
                        ticker: plan.stop.ticker(1024),
                    };
                    replace(&old, pattern, replacement, *regex, *all, limits)?
                };
                if count == 0 && *required {
                    return Err(SpoolError::NoMatch {
                        pattern: pattern.clone(),
                        rel,
                    });
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
                let files = apply::parse_patch(diff)?;
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
    ) -> Result<(), SpoolError> {
        let rel = workspace::relative(f.path())?;
        let current = plan.current(&self.dir, &rel)?;
        if f.change_type == ChangeType::Created && current.is_some() {
            return Err(SpoolError::AlreadyExists(rel));
        }
        let old = match (&f.change_type, current) {
            (ChangeType::Created, None) => String::new(),
            (_, cur) => text(&rel, cur)?,
        };
        let applied = apply::apply_until(&old, f, fuzz as usize, &plan.stop)?;
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
            return Err(SpoolError::Conflicts {
                rel,
                conflicts,
                hunks: applied.hunks.len(),
                details,
            });
        }
        let value = match f.change_type {
            ChangeType::Deleted if conflicts == 0 => None,
            _ => Some(applied.content.into_bytes()),
        };
        if let Some(old_path) = f.old_path.as_deref().filter(|o| *o != f.path()) {
            let old_rel = workspace::relative(old_path)?;
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

    /// Runs the validators over the changed files; when they pass — or find exactly what
    /// `accepted` (a [`validate::digest`] of findings a user confirmed) stands for —
    /// returns the patches and the findings committed despite, and makes the current
    /// state the new baseline.
    pub fn commit(
        &mut self,
        rules: &Rules,
        opts: &DiffOptions,
        stop: &Stop,
        budget: &Budget,
        accepted: Option<&str>,
    ) -> Result<(Vec<FilePatch>, Vec<String>), SpoolError> {
        let changed = self.changes()?;
        let candidates: Vec<validate::Candidate<'_>> = changed
            .iter()
            .map(|(rel, _, now)| validate::Candidate {
                path: rel,
                content: now.as_deref(),
            })
            .collect();
        let problems = validate::check(rules, &candidates);
        if !problems.is_empty() && accepted != Some(validate::digest(&problems).as_str()) {
            return Err(SpoolError::Findings(problems));
        }
        drop(changed);
        let patches = self.diff(opts, stop, budget)?;
        self.baseline.clear();
        self.created_dirs.clear();
        Ok((patches, problems))
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
