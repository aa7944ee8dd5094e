//! Making diffs: one pass over `similar`'s grouped ops yields the hunks, the git-style
//! unified text and the summary together (the original computed every diff twice).
//! Lines are interned to ids, and lines found on one side only are dropped before
//! `similar` runs (as GNU diff and git do), which keeps scattered edits linear.
//!
//! Owns line splitting, hashing (SHA-256 of each present side), the FilePatch shape and
//! the unified-text format that `git apply` and `patch -p1` accept. It must not touch the
//! file system, the runtime or any session state.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use rustc_hash::FxHashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use similar::{Algorithm, DiffOp, DiffTag, capture_diff_slices_deadline, group_diff_ops};

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

/// Interns lines to ids so the algorithms compare integers, not strings. Fx hashing,
/// because the input is the caller's own text (no hash-flooding concern worth SipHash's
/// cost) and hashing every line was the largest single cost of a 10k-line diff. Ids are
/// dense (0..the returned count).
fn intern<'a>(old: &[&'a str], new: &[&'a str]) -> (Vec<u32>, Vec<u32>, usize) {
    let mut ids: FxHashMap<&'a str, u32> = FxHashMap::default();
    ids.reserve(old.len() + new.len());
    let mut id = |l: &'a str| {
        let next = ids.len() as u32;
        *ids.entry(l).or_insert(next)
    };
    let o = old.iter().map(|l| id(l)).collect();
    let n = new.iter().map(|l| id(l)).collect();
    (o, n, ids.len())
}

/// The edit script of `o` → `n` as `similar` ops, and whether the deadline cut it short.
/// Lines unique to one side are dropped first (see [`discard_unmatched`]), then
/// `similar` diffs the rest within the deadline.
fn edit_script(o: &[u32], n: &[u32], ids: usize, opts: &DiffOptions) -> (Vec<DiffOp>, bool) {
    let deadline = Instant::now() + opts.timeout;
    let (ro, old_at, rn, new_at) = discard_unmatched(o, n, ids);
    let ops = capture_diff_slices_deadline(opts.algorithm.similar(), &ro, &rn, Some(deadline));
    let approximate = Instant::now() >= deadline;
    (
        compact(o, n, expand(&ops, &old_at, &new_at, o.len(), n.len())),
        approximate,
    )
}

/// Replays `ops` through `similar`'s compaction (slides each change up and down to merge
/// it with its neighbours, as `capture_diff_slices` does on the whole sides), so hunks
/// placed across the dropped lines are joined where they can be.
fn compact(o: &[u32], n: &[u32], ops: Vec<DiffOp>) -> Vec<DiffOp> {
    use similar::algorithms::{Capture, Compact, DiffHook, Replace};
    let mut d = Compact::new(Replace::new(Capture::new()), o, n);
    // The hooks' error type is `Infallible`.
    for op in ops {
        let _ = match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => d.equal(old_index, new_index, len),
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => d.delete(old_index, old_len, new_index),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => d.insert(old_index, new_index, new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => d
                .delete(old_index, old_len, new_index)
                .and_then(|()| d.insert(old_index + old_len, new_index, new_len)),
        };
    }
    let _ = d.finish();
    d.into_inner().into_inner().into_ops()
}

/// Drops the lines that occur only on one side (they can never be matched, so the
/// shortest edit script of what remains is one of the whole: GNU diff and git's xdiff
/// do the same before Myers). Returns the kept ids of each side with their original
/// line numbers. `similar` has such a pass too, but skips it whenever a line was
/// inserted or deleted near either end, which scattered edits always do; without it
/// its middle-snake search is quadratic in the number of edits.
fn discard_unmatched(
    o: &[u32],
    n: &[u32],
    ids: usize,
) -> (Vec<u32>, Vec<usize>, Vec<u32>, Vec<usize>) {
    // Bit 0: the id occurs in old; bit 1: in new.
    let mut seen = vec![0u8; ids];
    for &t in o {
        seen[t as usize] |= 1;
    }
    for &t in n {
        seen[t as usize] |= 2;
    }
    let keep = |side: &[u32]| {
        let mut ids = Vec::with_capacity(side.len());
        let mut at = Vec::with_capacity(side.len());
        for (i, &t) in side.iter().enumerate() {
            if seen[t as usize] == 3 {
                ids.push(t);
                at.push(i);
            }
        }
        (ids, at)
    };
    let (ro, old_at) = keep(o);
    let (rn, new_at) = keep(n);
    (ro, old_at, rn, new_at)
}

/// The edit script of the whole sides from that of the kept lines: only the equal runs
/// of the reduced script are kept (as anchors); every line between two anchors is
/// deleted (old) or inserted (new).
fn expand(
    reduced: &[DiffOp],
    old_at: &[usize],
    new_at: &[usize],
    old_len: usize,
    new_len: usize,
) -> Vec<DiffOp> {
    let mut ops = Vec::new();
    let (mut oi, mut ni) = (0usize, 0usize);
    for op in reduced {
        let DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = *op
        else {
            continue;
        };
        for k in 0..len {
            let (a, b) = (old_at[old_index + k], new_at[new_index + k]);
            // The last op, when Equal, ends at (oi, ni): gaps are only pushed before
            // an anchor.
            match ops.last_mut() {
                Some(DiffOp::Equal { len, .. }) if a == oi && b == ni => *len += 1,
                _ => {
                    push_gap(&mut ops, oi..a, ni..b);
                    ops.push(DiffOp::Equal {
                        old_index: a,
                        new_index: b,
                        len: 1,
                    });
                }
            }
            oi = a + 1;
            ni = b + 1;
        }
    }
    push_gap(&mut ops, oi..old_len, ni..new_len);
    ops
}

/// The op for old lines `o` replaced by new lines `n` (either may be empty).
fn push_gap(ops: &mut Vec<DiffOp>, o: std::ops::Range<usize>, n: std::ops::Range<usize>) {
    ops.push(match (o.len(), n.len()) {
        (0, 0) => return,
        (old_len, 0) => DiffOp::Delete {
            old_index: o.start,
            old_len,
            new_index: n.start,
        },
        (0, new_len) => DiffOp::Insert {
            old_index: o.start,
            new_index: n.start,
            new_len,
        },
        (old_len, new_len) => DiffOp::Replace {
            old_index: o.start,
            old_len,
            new_index: n.start,
            new_len,
        },
    });
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

fn unified_inner(
    names: &Names,
    old: &str,
    new: &str,
    opts: &DiffOptions,
    with_lines: bool,
) -> Unified {
    let old_lines = split_lines(old);
    let new_lines = split_lines(new);
    let (o, n, ids) = intern(&old_lines, &new_lines);
    let (ops, approximate) = edit_script(&o, &n, ids, opts);
    let groups = group_diff_ops(ops, opts.context);
    let mut out = Unified {
        hunks: Vec::with_capacity(groups.len()),
        diff: String::with_capacity(old.len().max(new.len()) + old.len().min(new.len()) / 2 + 128),
        additions: 0,
        deletions: 0,
        approximate,
    };
    let changed = !groups.is_empty();
    if changed || names.mode_line.is_some() {
        write_header(&mut out.diff, names, changed);
    }
    for group in &groups {
        let hunk = render_hunk(group, &old_lines, &new_lines, &mut out, with_lines);
        out.hunks.push(hunk);
    }
    out
}

fn write_header(buf: &mut String, names: &Names, changed: bool) {
    if let Some(git) = &names.git_line {
        buf.push_str(git);
        buf.push('\n');
    }
    if let Some(mode) = names.mode_line {
        buf.push_str(mode);
        buf.push('\n');
    }
    if changed {
        let _ = writeln!(buf, "--- {}\n+++ {}", names.old, names.new);
    }
}

/// `@@` range: git omits ",1"; an empty range names the line before it.
fn range(start: usize, len: usize) -> String {
    match len {
        1 => format!("{}", start + 1),
        0 => format!("{start},0"),
        _ => format!("{},{len}", start + 1),
    }
}

fn render_hunk(
    group: &[DiffOp],
    old: &[&str],
    new: &[&str],
    out: &mut Unified,
    with_lines: bool,
) -> Hunk {
    let first = &group[0];
    let last = &group[group.len() - 1];
    let old_start = first.old_range().start;
    let old_len = last.old_range().end - old_start;
    let new_start = first.new_range().start;
    let new_len = last.new_range().end - new_start;
    let _ = writeln!(
        out.diff,
        "@@ -{} +{} @@",
        range(old_start, old_len),
        range(new_start, new_len)
    );
    let mut lines = if with_lines {
        Vec::with_capacity(old_len + new_len)
    } else {
        Vec::new()
    };
    for op in group {
        let (tag, o, n) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => push_lines(with_lines, ' ', &old[o], &mut lines, &mut out.diff),
            DiffTag::Delete => {
                out.deletions += o.len();
                push_lines(with_lines, '-', &old[o], &mut lines, &mut out.diff);
            }
            DiffTag::Insert => {
                out.additions += n.len();
                push_lines(with_lines, '+', &new[n], &mut lines, &mut out.diff);
            }
            DiffTag::Replace => {
                out.deletions += o.len();
                out.additions += n.len();
                push_lines(with_lines, '-', &old[o], &mut lines, &mut out.diff);
                push_lines(with_lines, '+', &new[n], &mut lines, &mut out.diff);
            }
        }
    }
    Hunk {
        old_start: if old_len == 0 {
            old_start
        } else {
            old_start + 1
        },
        old_lines: old_len,
        new_start: if new_len == 0 {
            new_start
        } else {
            new_start + 1
        },
        new_lines: new_len,
        lines,
    }
}

pub const NO_NEWLINE: &str = "\\ No newline at end of file";

fn push_lines(
    with_lines: bool,
    prefix: char,
    src: &[&str],
    lines: &mut Vec<String>,
    diff: &mut String,
) {
    for line in src {
        diff.push(prefix);
        diff.push_str(line);
        let body = line.strip_suffix('\n');
        if with_lines {
            let mut entry = String::with_capacity(line.len() + 1);
            entry.push(prefix);
            entry.push_str(body.unwrap_or(line));
            lines.push(entry);
        }
        if body.is_none() {
            diff.push('\n');
            diff.push_str(NO_NEWLINE);
            diff.push('\n');
            if with_lines {
                lines.push(NO_NEWLINE.to_string());
            }
        }
    }
}

/// The first changed lines, capped at `max` characters with "…".
fn preview(hunks: &[Hunk], max: usize) -> Option<String> {
    let mut text = String::new();
    for line in hunks
        .iter()
        .flat_map(|h| h.lines.iter())
        .filter(|l| l.starts_with('+') || l.starts_with('-'))
    {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line.trim_end_matches('\r'));
        if text.chars().count() > max {
            break;
        }
    }
    if text.is_empty() {
        return None;
    }
    if text.chars().count() > max {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        return Some(cut);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_file_has_git_headers_and_counts() {
        let p = create_diff(
            "a.txt",
            Some("x\ny\n"),
            Some("x\nz\n"),
            &DiffOptions::default(),
        )
        .unwrap();
        assert_eq!(p.change_type, ChangeType::Modified);
        assert_eq!(
            p.diff,
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n"
        );
        assert_eq!((p.summary.additions, p.summary.deletions), (1, 1));
        assert_eq!(p.hunks[0].lines, vec![" x", "-y", "+z"]);
    }

    #[test]
    fn change_type_comes_from_absent_sides() {
        let o = DiffOptions::default();
        let c = create_diff("n", None, Some(""), &o).unwrap();
        assert_eq!(c.change_type, ChangeType::Created);
        assert!(c.sha_before.is_none());
        let d = create_diff("n", Some("a"), None, &o).unwrap();
        assert_eq!(d.change_type, ChangeType::Deleted);
        assert!(d.diff.contains("+++ /dev/null"));
        assert!(d.diff.contains(NO_NEWLINE));
        assert!(create_diff("n", None, None, &o).is_err());
    }

    #[test]
    fn preview_is_capped() {
        let long = "y".repeat(400);
        let p = create_diff(
            "f",
            Some("x\n"),
            Some(&format!("{long}\n")),
            &DiffOptions::default(),
        )
        .unwrap();
        let pv = p.summary.preview.unwrap();
        assert!(pv.ends_with('…'));
        assert_eq!(pv.chars().count(), 181);
    }

    mod scattered {
        //! Issue 16.18: diffs of files with edits scattered at random positions must
        //! apply back to the new text and stay minimal when every edited line is unique.
        use super::super::*;
        use crate::patchkit::apply::{apply, parse_patch};
        use proptest::prelude::*;

        /// One edit at an old line: changed, deleted, or a new line inserted before it.
        #[derive(Debug, Clone, Copy)]
        enum Edit {
            Keep,
            Change,
            Delete,
            Insert,
        }

        fn edit() -> impl Strategy<Value = Edit> {
            prop_oneof![
                7 => Just(Edit::Keep),
                1 => Just(Edit::Change),
                1 => Just(Edit::Delete),
                1 => Just(Edit::Insert),
            ]
        }

        /// Old and new texts: old lines from `old_line(i)`, then the edits applied, every
        /// changed or inserted line unique. Also the minimal (deletions, additions).
        fn build(
            edits: &[Edit],
            old_line: impl Fn(usize) -> String,
            trailing: bool,
        ) -> (String, String, usize, usize) {
            let (mut old, mut new) = (Vec::new(), Vec::new());
            let (mut del, mut add) = (0, 0);
            for (i, e) in edits.iter().enumerate() {
                let line = old_line(i);
                old.push(line.clone());
                match e {
                    Edit::Keep => new.push(line),
                    Edit::Change => {
                        new.push(format!("changed {i}"));
                        del += 1;
                        add += 1;
                    }
                    Edit::Delete => del += 1,
                    Edit::Insert => {
                        new.push(format!("inserted {i}"));
                        new.push(line);
                        add += 1;
                    }
                }
            }
            let end = if trailing { "\n" } else { "" };
            let join = |v: Vec<String>| {
                if v.is_empty() {
                    String::new()
                } else {
                    v.join("\n") + end
                }
            };
            (join(old), join(new), del, add)
        }

        fn round_trip(a: &str, b: &str, opts: &DiffOptions) -> Result<FilePatch, TestCaseError> {
            let p = create_diff("f", Some(a), Some(b), opts).unwrap();
            if a == b {
                prop_assert!(p.diff.is_empty());
                return Ok(p);
            }
            let files = parse_patch(&p.diff).unwrap();
            prop_assert_eq!(files.len(), 1);
            let r = apply(a, &files[0], 0);
            prop_assert_eq!(r.conflicts(), 0);
            prop_assert!(
                r.content == b,
                "the diff does not give the new text:\n{}",
                p.diff
            );
            Ok(p)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Unique old lines: the diff applies back and is minimal (each changed line
            /// one deletion and one addition, nothing else; `git diff` gives the same).
            #[test]
            fn unique_lines_round_trip_minimally(
                edits in prop::collection::vec(edit(), 0..3000),
                ctx in 0usize..5,
            ) {
                let (a, b, del, add) = build(&edits, |i| format!("line {i}"), true);
                let opts = DiffOptions { context: ctx, ..DiffOptions::default() };
                let p = round_trip(&a, &b, &opts)?;
                prop_assert_eq!((p.summary.deletions, p.summary.additions), (del, add));
            }

            /// Repeated old lines (a small alphabet, as in code: braces, blank lines), all
            /// algorithms: the diff applies back.
            #[test]
            fn repeated_lines_round_trip(
                edits in prop::collection::vec(edit(), 0..1500),
                alphabet in 1usize..12,
                trailing in any::<bool>(),
                alg in prop::sample::select(vec![
                    DiffAlgorithm::Myers,
                    DiffAlgorithm::Patience,
                    DiffAlgorithm::Histogram,
                ]),
            ) {
                let (a, b, _, _) = build(&edits, |i| format!("r{}", i % alphabet), trailing);
                let opts = DiffOptions { algorithm: alg, ..DiffOptions::default() };
                round_trip(&a, &b, &opts)?;
            }
        }
    }
}
