//! Reading unified diffs into [`FileDiff`]s: git-style and classic headers, renames,
//! created/deleted files, hunks and `\ No newline at end of file` markers.
//!
//! Owns the parser only; it must not apply anything nor touch the file system.

use crate::patchkit::diff::ChangeType;

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
