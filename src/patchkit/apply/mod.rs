//! Reading and applying unified diffs: git-style and classic (`diff -u`) patches,
//! multi-file, created/deleted files, `\ No newline at end of file`, CRLF files (their
//! line endings are kept), offsets and fuzz (dropping up to N outer context lines, as
//! GNU patch does).
//!
//! Owns the patch parser and the in-memory applier. It must not touch the file system
//! or any session state; of the runtime it uses only the [`Stop`] flag, which the
//! offset search and the conflict report poll so a call past its deadline gives the
//! CPU back.

use schemars::JsonSchema;
use serde::Serialize;

use super::diff::ChangeType;
use crate::runtime::stop::{Stop, Stopped, Ticker};

/// Line comparisons between two checks of the stop flag.
const STOP_EVERY: u32 = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    #[error("patch line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("the patch holds no file diff (no `---`/`+++` headers or `@@` hunks)")]
    Empty,
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq)]
pub struct PLine {
    pub kind: char,
    pub text: String,
    /// False when followed by `\ No newline at end of file`.
    pub newline: bool,
}

#[derive(Debug, Clone)]
pub struct PHunk {
    pub header: String,
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    pub lines: Vec<PLine>,
}

/// One file of a (possibly multi-file) patch.
#[derive(Debug, Clone)]
pub struct FileDiff {
    /// Path on the old side with `a/` stripped for git patches; None for /dev/null.
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub change_type: ChangeType,
    pub hunks: Vec<PHunk>,
}

impl FileDiff {
    /// The path this diff is about (new side, else old side).
    pub fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or("")
    }
    pub fn counts(&self) -> (usize, usize) {
        let mut add = 0;
        let mut del = 0;
        for l in self.hunks.iter().flat_map(|h| &h.lines) {
            match l.kind {
                '+' => add += 1,
                '-' => del += 1,
                _ => {}
            }
        }
        (add, del)
    }
}

fn header_path(raw: &str, strip: bool) -> Option<String> {
    let raw = raw.split('\t').next().unwrap_or(raw).trim_end_matches('\r');
    let raw = raw.trim_end();
    if raw == "/dev/null" {
        return None;
    }
    let raw = raw.trim_matches('"');
    if strip && let Some(rest) = raw.strip_prefix("a/").or_else(|| raw.strip_prefix("b/")) {
        return Some(rest.to_string());
    }
    Some(raw.to_string())
}

/// Whether a traditional (no `diff --git`) header pair carries git's `a/` and `b/`
/// prefixes, as `git diff --no-index` or `diff -u a/x b/x` make them: the old side starts
/// with `a/` or is `/dev/null`, the new side starts with `b/` or is `/dev/null`. Then
/// both are stripped, as `git apply` (`-p1`) does; `/dev/null` on either side stays a
/// creation or a deletion.
fn git_prefixes(old: &str, new: &str) -> bool {
    let has = |raw: &str, prefix: &str| {
        raw.trim_start_matches('"').starts_with(prefix) && header_path(raw, false).is_some()
    };
    let null = |raw: &str| header_path(raw, false).is_none();
    match (null(old), null(new)) {
        (true, true) => false,
        (true, false) => has(new, "b/"),
        (false, true) => has(old, "a/"),
        (false, false) => has(old, "a/") && has(new, "b/"),
    }
}

fn parse_range(s: &str) -> Option<(usize, usize)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

fn parse_hunk_header(line: &str) -> Option<(usize, usize, usize, usize)> {
    let rest = line.strip_prefix("@@ -")?;
    let (old, rest) = rest.split_once(" +")?;
    let (new, _) = rest.split_once(" @@")?;
    let (os, ol) = parse_range(old)?;
    let (ns, nl) = parse_range(new)?;
    Some((os, ol, ns, nl))
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: impl Into<String>) -> PatchError {
        PatchError::Malformed {
            line: self.pos + 1,
            reason: reason.into(),
        }
    }
}

/// Parses every file diff in `text`.
pub fn parse_patch(text: &str) -> Result<Vec<FileDiff>, PatchError> {
    let mut p = Parser {
        lines: text.split('\n').collect(),
        pos: 0,
    };
    if text.ends_with('\n') {
        p.lines.pop();
    }
    let mut files = Vec::new();
    let mut pending: Option<PendingGit> = None;
    while p.pos < p.lines.len() {
        let line = p.lines[p.pos];
        if let Some(rest) = line.strip_prefix("diff --git ") {
            if let Some(g) = pending.take() {
                files.push(g.into_file());
            }
            pending = Some(PendingGit::new(rest));
            p.pos += 1;
        } else if line.starts_with("--- ")
            && p.lines
                .get(p.pos + 1)
                .is_some_and(|l| l.starts_with("+++ "))
        {
            let strip = pending.is_some() || git_prefixes(&line[4..], &p.lines[p.pos + 1][4..]);
            let old_path = header_path(&line[4..], strip);
            let new_path = header_path(&p.lines[p.pos + 1][4..], strip);
            p.pos += 2;
            let hunks = parse_hunks(&mut p)?;
            let git = pending.take();
            let change_type = match (&old_path, &new_path) {
                (None, _) => ChangeType::Created,
                (_, None) => ChangeType::Deleted,
                _ => git.map_or(ChangeType::Modified, |g| g.change),
            };
            files.push(FileDiff {
                old_path,
                new_path,
                change_type,
                hunks,
            });
        } else if let Some(g) = pending.as_mut() {
            g.note(line);
            p.pos += 1;
        } else if line.starts_with("@@ ") {
            return Err(p.err("hunk without `---`/`+++` file headers"));
        } else {
            p.pos += 1;
        }
    }
    if let Some(g) = pending.take() {
        files.push(g.into_file());
    }
    if files.is_empty() {
        return Err(PatchError::Empty);
    }
    Ok(files)
}

/// A `diff --git` block whose `---`/`+++` lines have not been seen (yet): a mode-only,
/// empty-file or rename diff.
struct PendingGit {
    old: Option<String>,
    new: Option<String>,
    change: ChangeType,
}

impl PendingGit {
    fn new(rest: &str) -> Self {
        let rest = rest.trim_end_matches('\r');
        let (old, new) = match rest.split_once(" b/") {
            Some((a, b)) => (a.strip_prefix("a/").unwrap_or(a).to_string(), b.to_string()),
            None => (rest.to_string(), rest.to_string()),
        };
        PendingGit {
            old: Some(old),
            new: Some(new),
            change: ChangeType::Modified,
        }
    }
    fn note(&mut self, line: &str) {
        if line.starts_with("new file mode") {
            self.change = ChangeType::Created;
        } else if line.starts_with("deleted file mode") {
            self.change = ChangeType::Deleted;
        } else if let Some(from) = line.strip_prefix("rename from ") {
            self.old = Some(from.trim_end_matches('\r').to_string());
        } else if let Some(to) = line.strip_prefix("rename to ") {
            self.new = Some(to.trim_end_matches('\r').to_string());
        }
    }
    fn into_file(self) -> FileDiff {
        FileDiff {
            old_path: (self.change != ChangeType::Created)
                .then_some(self.old)
                .flatten(),
            new_path: (self.change != ChangeType::Deleted)
                .then_some(self.new)
                .flatten(),
            change_type: self.change,
            hunks: Vec::new(),
        }
    }
}

fn parse_hunks(p: &mut Parser<'_>) -> Result<Vec<PHunk>, PatchError> {
    let mut hunks = Vec::new();
    while p.pos < p.lines.len() && p.lines[p.pos].starts_with("@@ ") {
        let header = p.lines[p.pos].trim_end_matches('\r');
        let (os, ol, ns, nl) = parse_hunk_header(header)
            .ok_or_else(|| p.err(format!("bad hunk header `{header}`")))?;
        p.pos += 1;
        let (mut old_seen, mut new_seen) = (0, 0);
        let mut lines: Vec<PLine> = Vec::new();
        while old_seen < ol || new_seen < nl || next_is_marker(p) {
            let Some(&raw) = p.lines.get(p.pos) else {
                return Err(p.err(format!("hunk `{header}` ends early")));
            };
            p.pos += 1;
            if raw.starts_with('\\') {
                if let Some(last) = lines.last_mut() {
                    last.newline = false;
                }
                continue;
            }
            let (kind, text) = match raw.chars().next() {
                Some(c @ (' ' | '-' | '+')) => (c, &raw[1..]),
                None => (' ', ""),
                Some(_) => return Err(p.err(format!("unexpected line in hunk `{header}`"))),
            };
            match kind {
                ' ' => {
                    old_seen += 1;
                    new_seen += 1;
                }
                '-' => old_seen += 1,
                _ => new_seen += 1,
            }
            if old_seen > ol || new_seen > nl {
                return Err(p.err(format!(
                    "hunk `{header}` has more lines than its header says"
                )));
            }
            lines.push(PLine {
                kind,
                text: text.to_string(),
                newline: true,
            });
        }
        hunks.push(PHunk {
            header: header.to_string(),
            old_start: os,
            old_lines: ol,
            new_start: ns,
            new_lines: nl,
            lines,
        });
    }
    Ok(hunks)
}

fn next_is_marker(p: &Parser<'_>) -> bool {
    p.lines.get(p.pos).is_some_and(|l| l.starts_with('\\'))
}

/// One line of the content being patched.
#[derive(Debug, Clone, PartialEq)]
struct CLine<'a> {
    body: &'a str,
    newline: bool,
}

fn content_lines(text: &str) -> Vec<CLine<'_>> {
    text.split_inclusive('\n')
        .map(|l| match l.strip_suffix('\n') {
            Some(body) => CLine {
                body,
                newline: true,
            },
            None => CLine {
                body: l,
                newline: false,
            },
        })
        .collect()
}

fn same(a: &str, b: &str) -> bool {
    a == b || a.strip_suffix('\r').unwrap_or(a) == b.strip_suffix('\r').unwrap_or(b)
}

/// How one hunk fared.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HunkStatus {
    pub header: String,
    pub applied: bool,
    /// Lines between where the header said and where the hunk matched (or nearly did).
    pub offset: i64,
    /// Context lines dropped to make it match.
    pub fuzz: usize,
    /// The hunk's old-side lines (only for conflicts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<String>,
    /// The file's lines at the nearest position (only for conflicts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<String>,
}

/// The result of applying one file diff to one text.
#[derive(Debug, Clone)]
pub struct Applied {
    pub content: String,
    pub hunks: Vec<HunkStatus>,
}

impl Applied {
    pub fn conflicts(&self) -> usize {
        self.hunks.iter().filter(|h| !h.applied).count()
    }
}

/// Applies `diff` to `content`, trying offsets anywhere after the previous hunk and up to
/// `fuzz` dropped outer context lines. Hunks that do not fit are reported, not applied.
pub fn apply(content: &str, diff: &FileDiff, fuzz: usize) -> Applied {
    match apply_until(content, diff, fuzz, &Stop::never()) {
        Ok(applied) => applied,
        Err(Stopped) => unreachable!("a flag that is never raised stopped"),
    }
}

/// [`apply`] that gives up with `Stopped` once `stop` is raised or its deadline passes.
pub fn apply_until(
    content: &str,
    diff: &FileDiff,
    fuzz: usize,
    stop: &Stop,
) -> Result<Applied, Stopped> {
    let mut ticker = stop.ticker(STOP_EVERY);
    let lines = content_lines(content);
    let mut out = String::with_capacity(content.len() + 64);
    let mut cursor = 0usize;
    let mut shift: i64 = 0;
    let mut statuses = Vec::with_capacity(diff.hunks.len());
    for h in &diff.hunks {
        let old: Vec<&PLine> = h.lines.iter().filter(|l| l.kind != '+').collect();
        let base = if h.old_lines == 0 {
            h.old_start
        } else {
            h.old_start.saturating_sub(1)
        };
        let wanted = (base as i64 + shift).max(0) as usize;
        match locate(&lines, &old, h, cursor, wanted, fuzz, &mut ticker)? {
            Some((pos, f, head, tail)) => {
                push_lines(&mut out, &lines[cursor..pos]);
                let matched = &lines[pos..pos + old.len() - head - tail];
                let add_cr = crlf_fix(&old[head..old.len() - tail], matched);
                emit(h, head, matched, add_cr, &mut out);
                cursor = pos + matched.len();
                let offset = pos as i64 - head as i64 - base as i64;
                shift = offset;
                statuses.push(HunkStatus {
                    header: h.header.clone(),
                    applied: true,
                    offset,
                    fuzz: f,
                    expected: vec![],
                    found: vec![],
                });
            }
            None => statuses.push(conflict(
                &lines,
                &old,
                h,
                (cursor, wanted, base),
                &mut ticker,
            )?),
        }
    }
    push_lines(&mut out, &lines[cursor..]);
    Ok(Applied {
        content: out,
        hunks: statuses,
    })
}

fn push_line(out: &mut String, body: &str, newline: bool) {
    out.push_str(body);
    if newline {
        out.push('\n');
    }
}

fn push_lines(out: &mut String, lines: &[CLine<'_>]) {
    for l in lines {
        push_line(out, l.body, l.newline);
    }
}

/// Whether added lines need a "\r": the hunk's old lines matched CRLF lines of the file
/// only once the "\r" was ignored, i.e. the patch was made with LF endings. (A pure
/// insertion has no such evidence and is taken as written.)
fn crlf_fix(old: &[&PLine], matched: &[CLine<'_>]) -> bool {
    old.iter()
        .zip(matched)
        .any(|(p, c)| c.body.ends_with('\r') && !p.text.ends_with('\r'))
}

/// Writes the hunk's result: context lines as they are in the file (endings kept),
/// added lines from the patch; `head` leading old-side lines were dropped by fuzz.
fn emit(h: &PHunk, head: usize, matched: &[CLine<'_>], add_cr: bool, out: &mut String) {
    let mut old_idx = 0usize;
    for l in &h.lines {
        match l.kind {
            '+' => {
                out.push_str(&l.text);
                if add_cr && l.newline && !l.text.ends_with('\r') {
                    out.push('\r');
                }
                if l.newline {
                    out.push('\n');
                }
            }
            ' ' => {
                if let Some(c) = old_idx.checked_sub(head).and_then(|i| matched.get(i)) {
                    push_line(out, c.body, c.newline);
                }
                old_idx += 1;
            }
            _ => old_idx += 1,
        }
    }
}

/// Finds where the hunk's old side matches: returns (position of the first matched
/// line, fuzz used, leading context dropped, trailing context dropped).
fn locate(
    lines: &[CLine<'_>],
    old: &[&PLine],
    h: &PHunk,
    min: usize,
    wanted: usize,
    fuzz: usize,
    ticker: &mut Ticker<'_>,
) -> Result<Option<(usize, usize, usize, usize)>, Stopped> {
    let lead = h.lines.iter().take_while(|l| l.kind == ' ').count();
    let trail = h.lines.iter().rev().take_while(|l| l.kind == ' ').count();
    for f in 0..=fuzz {
        let head = f.min(lead);
        let tail = f.min(trail);
        if f > 0 && f > lead.max(trail) {
            break;
        }
        let window = &old[head..old.len() - tail];
        if let Some(pos) = search(lines, window, min, wanted + head, ticker)? {
            return Ok(Some((pos, f, head, tail)));
        }
    }
    Ok(None)
}

fn fits(lines: &[CLine<'_>], window: &[&PLine], pos: usize) -> bool {
    pos + window.len() <= lines.len()
        && window
            .iter()
            .zip(&lines[pos..])
            .all(|(p, c)| p.newline == c.newline && same(&p.text, c.body))
}

/// The position nearest to `wanted` (not before `min`) where `window` fits.
fn search(
    lines: &[CLine<'_>],
    window: &[&PLine],
    min: usize,
    wanted: usize,
    ticker: &mut Ticker<'_>,
) -> Result<Option<usize>, Stopped> {
    if window.is_empty() {
        return Ok(Some(wanted.clamp(min, lines.len().max(min))));
    }
    let Some(last) = lines.len().checked_sub(window.len()) else {
        return Ok(None);
    };
    if last < min {
        return Ok(None);
    }
    let wanted = wanted.clamp(min, last);
    for d in 0.. {
        // Each position compares up to the whole window.
        ticker.tick_n(2 * window.len())?;
        let up = wanted + d;
        let down = wanted.checked_sub(d).filter(|&p| p >= min);
        if up > last && down.is_none() {
            break;
        }
        if up <= last && fits(lines, window, up) {
            return Ok(Some(up));
        }
        if d > 0 && down.is_some_and(|p| fits(lines, window, p)) {
            return Ok(down);
        }
    }
    Ok(None)
}

/// `at` is (first line the hunk may use, wanted position, position the header names).
fn conflict(
    lines: &[CLine<'_>],
    old: &[&PLine],
    h: &PHunk,
    at: (usize, usize, usize),
    ticker: &mut Ticker<'_>,
) -> Result<HunkStatus, Stopped> {
    let (min, wanted, base) = at;
    // Nearest position: the most matching lines within ±1000 lines of the wanted spot.
    let lo = wanted.saturating_sub(1000).max(min);
    let hi = (wanted + 1000).min(lines.len());
    let mut best = (0usize, wanted.min(lines.len()));
    for pos in lo..=hi {
        ticker.tick_n(old.len())?;
        let score = old
            .iter()
            .zip(lines.get(pos..).unwrap_or(&[]))
            .filter(|(p, c)| same(&p.text, c.body))
            .count();
        let closer = pos.abs_diff(wanted) < best.1.abs_diff(wanted);
        if score > best.0 || score == best.0 && score > 0 && closer {
            best = (score, pos);
        }
    }
    let pos = best.1;
    let found = lines
        .get(pos..(pos + old.len()).min(lines.len()))
        .unwrap_or(&[])
        .iter()
        .map(|c| c.body.to_string())
        .collect();
    Ok(HunkStatus {
        header: h.header.clone(),
        applied: false,
        offset: pos as i64 - base as i64,
        fuzz: 0,
        expected: old.iter().map(|l| l.text.clone()).collect(),
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::super::diff::{DiffOptions, create_diff};
    use super::*;

    fn roundtrip(a: &str, b: &str) {
        let p = create_diff("f", Some(a), Some(b), &DiffOptions::default()).unwrap();
        if p.diff.is_empty() {
            assert_eq!(a, b);
            return;
        }
        let files = parse_patch(&p.diff).unwrap();
        let applied = apply(a, &files[0], 0);
        assert_eq!(applied.conflicts(), 0, "{:?}", applied.hunks);
        assert_eq!(applied.content, b, "diff was:\n{}", p.diff);
    }

    #[test]
    fn roundtrips() {
        roundtrip("", "a\n");
        roundtrip("a\n", "");
        roundtrip("a", "b");
        roundtrip("a\nb", "a\nb\n");
        roundtrip("a\r\nb\r\n", "a\r\nc\r\n");
        roundtrip("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\nx\n4\n5\n6\n7\n8\ny\n");
        roundtrip("ü\nß\n", "ü\n€\n");
    }

    #[test]
    fn offset_and_fuzz() {
        let p = create_diff(
            "f",
            Some("a\nb\nc\nd\ne\n"),
            Some("a\nb\nX\nd\ne\n"),
            &DiffOptions::default(),
        )
        .unwrap();
        let files = parse_patch(&p.diff).unwrap();
        let shifted = "new\nnew\na\nb\nc\nd\ne\n";
        let r = apply(shifted, &files[0], 0);
        assert_eq!(r.content, "new\nnew\na\nb\nX\nd\ne\n");
        assert_eq!(r.hunks[0].offset, 2);
        let fuzzy = "Q\nb\nc\nd\ne\n";
        assert_eq!(apply(fuzzy, &files[0], 0).conflicts(), 1);
        let r = apply(fuzzy, &files[0], 1);
        assert_eq!(r.conflicts(), 0);
        assert_eq!(r.content, "Q\nb\nX\nd\ne\n");
    }

    #[test]
    fn lf_patch_keeps_crlf_file() {
        let p = create_diff("f", Some("a\nb\n"), Some("a\nc\n"), &DiffOptions::default()).unwrap();
        let files = parse_patch(&p.diff).unwrap();
        let r = apply("a\r\nb\r\n", &files[0], 0);
        assert_eq!(r.content, "a\r\nc\r\n");
    }

    #[test]
    fn conflict_reports_expected_and_found() {
        let p = create_diff(
            "f",
            Some("a\nb\nc\n"),
            Some("a\nB\nc\n"),
            &DiffOptions::default(),
        )
        .unwrap();
        let files = parse_patch(&p.diff).unwrap();
        let r = apply("x\ny\nz\n", &files[0], 0);
        assert_eq!(r.conflicts(), 1);
        assert_eq!(r.hunks[0].expected, vec!["a", "b", "c"]);
        assert_eq!(r.content, "x\ny\nz\n");
    }

    #[test]
    fn classic_and_multi_file() {
        let text = "--- old.txt\t2024-01-01\n+++ new.txt\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/x b/x\nnew file mode 100644\n--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+hi\ndiff --git a/e b/e\nnew file mode 100644\n";
        let files = parse_patch(text).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].path(), "new.txt");
        assert_eq!(files[1].change_type, ChangeType::Created);
        assert_eq!(files[1].path(), "x");
        assert_eq!(files[2].change_type, ChangeType::Created);
        assert_eq!(apply("", &files[1], 0).content, "hi\n");
    }

    #[test]
    fn classic_create_and_delete_strip_git_prefixes() {
        let create = "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hi\n";
        let files = parse_patch(create).unwrap();
        assert_eq!(files[0].change_type, ChangeType::Created);
        assert_eq!(files[0].path(), "new.txt");
        assert_eq!(files[0].old_path, None);
        let delete = "--- a/a.txt\t2024-01-01\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        let files = parse_patch(delete).unwrap();
        assert_eq!(files[0].change_type, ChangeType::Deleted);
        assert_eq!(files[0].path(), "a.txt");
        assert_eq!(files[0].new_path, None);
        // A lone prefix on the wrong side is a real directory name: kept.
        let odd = "--- /dev/null\n+++ a/new.txt\n@@ -0,0 +1 @@\n+hi\n";
        assert_eq!(parse_patch(odd).unwrap()[0].path(), "a/new.txt");
        let plain = "--- x/old.txt\n+++ b/old.txt\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(parse_patch(plain).unwrap()[0].path(), "b/old.txt");
    }

    mod props {
        use super::super::super::diff::{DiffAlgorithm, DiffOptions, create_diff};
        use super::super::*;
        use proptest::prelude::*;

        /// Texts built from a small alphabet of lines so diffs have both matches and
        /// changes; endings LF, CRLF or none at the end; unicode included.
        fn text() -> impl Strategy<Value = String> {
            let line = prop::sample::select(vec!["a", "b", "c", "", "ü€", "世界", "  x", "b\r"]);
            (
                prop::collection::vec(line, 0..30),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(lines, crlf, trailing)| {
                    let sep = if crlf { "\r\n" } else { "\n" };
                    let mut t = lines.join(sep);
                    if trailing && !t.is_empty() {
                        t.push_str(sep);
                    }
                    t
                })
        }

        fn algorithm() -> impl Strategy<Value = DiffAlgorithm> {
            prop::sample::select(vec![
                DiffAlgorithm::Myers,
                DiffAlgorithm::Patience,
                DiffAlgorithm::Histogram,
            ])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]
            #[test]
            fn apply_of_diff_gives_the_new_text(a in text(), b in text(), alg in algorithm(), ctx in 0usize..4) {
                let opts = DiffOptions { context: ctx, algorithm: alg, ..DiffOptions::default() };
                let p = create_diff("f", Some(&a), Some(&b), &opts).unwrap();
                if a == b {
                    prop_assert!(p.diff.is_empty());
                } else {
                    let files = parse_patch(&p.diff).unwrap();
                    prop_assert_eq!(files.len(), 1);
                    let r = apply(&a, &files[0], 0);
                    prop_assert_eq!(r.conflicts(), 0);
                    prop_assert_eq!(&r.content, &b, "diff:\n{}", p.diff);
                }
            }

            #[test]
            fn created_and_deleted_round_trip(b in text()) {
                let opts = DiffOptions::default();
                let c = create_diff("f", None, Some(&b), &opts).unwrap();
                let files = parse_patch(&c.diff).unwrap();
                prop_assert_eq!(files[0].change_type, ChangeType::Created);
                prop_assert_eq!(apply("", &files[0], 0).content, b.clone());
                let d = create_diff("f", Some(&b), None, &opts).unwrap();
                let files = parse_patch(&d.diff).unwrap();
                prop_assert_eq!(files[0].change_type, ChangeType::Deleted);
                prop_assert_eq!(apply(&b, &files[0], 0).content, "");
            }
        }
    }
}
