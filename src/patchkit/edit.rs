//! Search-and-replace edits the way agents make them (`edit_files`), in memory: a file's
//! bytes are decoded into text that remembers its encoding details (UTF-8 byte-order
//! mark, CRLF line endings, final newline), each edit's `oldText` must match exactly once
//! (or every time with `replaceAll`), and when no exact match exists a
//! whitespace-tolerant one is tried, applied only when unique and always reported. Edits
//! apply in order, each to the result of the ones before; the text is encoded back with
//! the same BOM, line endings and final newline.
//!
//! Also describes ambiguous matches (line numbers and a line of context) for
//! `spool_replace`.
//!
//! Owns matching, applying and reporting only; it must not touch the file system, the
//! runtime's registry or any session (reads and writes are `edit_io.rs`'s).

use regex::RegexBuilder;
use schemars::JsonSchema;
use serde::Serialize;

use crate::runtime::{
    budget::Held,
    stop::{Stop, Stopped},
};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Stopped(#[from] Stopped),
    #[error(transparent)]
    Budget(#[from] crate::runtime::budget::BudgetExceeded),
}

const BOM: &str = "\u{feff}";

/// A file's text with what must survive the edit.
#[derive(Debug, Clone, PartialEq)]
pub struct TextFile {
    pub bom: bool,
    /// Every line ends with CRLF: `text` holds LF and CRLF is put back when encoding.
    pub crlf: bool,
    /// Some lines end with CRLF and some with LF: the text is matched as it is.
    pub mixed: bool,
    pub final_newline: bool,
    pub text: String,
}

impl TextFile {
    /// Decodes UTF-8 bytes (with or without BOM); anything else is refused.
    pub fn decode(path: &str, bytes: Vec<u8>) -> Result<TextFile, EditError> {
        let raw = String::from_utf8(bytes).map_err(|_| {
            EditError::Refused(format!(
                "{path} is not UTF-8 text; edit_files edits UTF-8 files (with or without BOM) only"
            ))
        })?;
        let (bom, body) = match raw.strip_prefix(BOM) {
            Some(rest) => (true, rest.to_string()),
            None => (false, raw),
        };
        let lf = body.matches('\n').count();
        let crlf_count = body.matches("\r\n").count();
        let crlf = crlf_count > 0 && crlf_count == lf;
        let mixed = crlf_count > 0 && crlf_count != lf;
        let text = if crlf {
            body.replace("\r\n", "\n")
        } else {
            body
        };
        Ok(TextFile {
            bom,
            crlf,
            mixed,
            final_newline: text.ends_with('\n'),
            text,
        })
    }

    /// The bytes of `text` with this file's BOM and line endings.
    pub fn encode(&self, text: &str) -> Vec<u8> {
        let mut out = String::with_capacity(text.len() + 3);
        if self.bom {
            out.push_str(BOM);
        }
        if self.crlf {
            out.push_str(&text.replace('\n', "\r\n"));
        } else {
            out.push_str(text);
        }
        out.into_bytes()
    }

    /// `oldText`/`newText` in this file's line-ending form: CRLF becomes LF unless the
    /// file mixes both (then the text is matched as given).
    pub fn normalise_input(&self, s: &str) -> String {
        if self.mixed {
            s.to_string()
        } else {
            s.replace("\r\n", "\n")
        }
    }

    /// Puts back the final newline (present or absent) an edit at the end changed.
    /// Returns a note when it did.
    pub fn keep_final_newline(&self, text: &mut String) -> Option<String> {
        if text.is_empty() {
            return None;
        }
        let ending = if self.mixed && text.ends_with("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        if self.final_newline && !text.ends_with('\n') {
            text.push('\n');
            Some(
                "the file ended with a newline and still does (one was added after the last edit)"
                    .into(),
            )
        } else if !self.final_newline && text.ends_with('\n') {
            text.truncate(text.len() - ending.len());
            Some("the file had no final newline and still has none (the one the last edit added was dropped)".into())
        } else {
            None
        }
    }
}

/// One edit as given.
pub struct Edit<'a> {
    pub old_text: &'a str,
    pub new_text: &'a str,
    pub replace_all: bool,
}

/// What one edit did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditReport {
    /// Index of the edit in `edits`.
    pub index: usize,
    pub path: String,
    /// How many places were replaced.
    pub replacements: usize,
    /// Lines of the file the replaced text covered (1-based, before this edit), e.g.
    /// `12-14`; one entry per replacement, at most 20.
    pub lines: Vec<String>,
    /// `exact`, or `whitespace-tolerant` when only a match that differs in spaces and
    /// tabs was found.
    #[serde(rename = "match")]
    pub match_kind: &'static str,
    /// For a whitespace-tolerant match: which lines differed and how (file vs oldText),
    /// and whether newText was re-indented like the file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line range `a-b` (or `a`) a match [start, end) covers.
fn range_label(text: &str, start: usize, end: usize) -> String {
    let a = line_of(text, start);
    let last = if end > start && text.as_bytes()[end - 1] == b'\n' {
        end - 1
    } else {
        end
    };
    let b = line_of(text, last.max(start));
    if a == b {
        format!("{a}")
    } else {
        format!("{a}-{b}")
    }
}

fn clip(line: &str) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    match line.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// Lists `shown` matches [start, end) of `text` by line numbers, each with a line of
/// context (the line before the match, or after it at the top of the file), out of
/// `total` matches.
pub fn describe_matches(text: &str, shown: &[(usize, usize)], total: usize) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for &(s, e) in shown {
        let label = range_label(text, s, e);
        let first = line_of(text, s);
        let context = if first >= 2 {
            format!("after line {}: `{}`", first - 1, clip(lines[first - 2]))
        } else {
            let last: usize = label
                .rsplit('-')
                .next()
                .and_then(|l| l.parse().ok())
                .unwrap_or(first);
            match lines.get(last) {
                Some(l) => format!("before line {}: `{}`", last + 1, clip(l)),
                None => "the whole file".to_string(),
            }
        };
        let prefix = if label.contains('-') { "lines" } else { "line" };
        out.push(format!("{prefix} {label} ({context})"));
    }
    if total > shown.len() {
        out.push(format!("and {} more", total - shown.len()));
    }
    out.join("; ")
}

/// Matches of `needle` in `hay`, overlapping ones included (`aa` is twice in `aaa`):
/// the first `keep` of them and how many there are.
fn overlapping(
    hay: &str,
    needle: &str,
    stop: &Stop,
    keep: usize,
) -> Result<(Vec<(usize, usize)>, usize), Stopped> {
    let mut kept = Vec::new();
    let mut count = 0;
    let mut from = 0;
    let step = needle.chars().next().map_or(1, char::len_utf8);
    let mut ticker = stop.ticker(256);
    while let Some(i) = hay.get(from..).and_then(|h| h.find(needle)) {
        ticker.tick()?;
        let at = from + i;
        if kept.len() < keep {
            kept.push((at, at + needle.len()));
        }
        count += 1;
        from = at + step;
    }
    Ok((kept, count))
}

/// A regex matching `old` with any run of spaces and tabs where it has one (and at the
/// ends of its lines), the same number of line breaks, and `\r?\n` for each.
fn tolerant_pattern(old: &str) -> Option<String> {
    if old.trim().is_empty() {
        return None;
    }
    let mut re = String::new();
    let mut chars = old.char_indices().peekable();
    let is_ws = |c: char| c == ' ' || c == '\t' || c == '\n' || c == '\r';
    while let Some((i, c)) = chars.next() {
        if is_ws(c) {
            let mut newlines = usize::from(c == '\n');
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !is_ws(d) {
                    break;
                }
                newlines += usize::from(d == '\n');
                end = j + d.len_utf8();
                chars.next();
            }
            let at_start = i == 0;
            let at_end = end == old.len();
            re.push_str("[ \\t]*");
            for k in 0..newlines {
                re.push_str("\\r?\\n");
                if !(at_end && k + 1 == newlines) {
                    re.push_str("[ \\t]*");
                }
            }
            if newlines == 0 && !at_start && !at_end {
                // Between two words on one line there must be some space.
                re.truncate(re.len() - "[ \\t]*".len());
                re.push_str("[ \\t]+");
            }
        } else {
            let mut buf = [0u8; 4];
            re.push_str(&regex::escape(c.encode_utf8(&mut buf)));
        }
    }
    Some(re)
}

fn indent(line: &str) -> &str {
    let n = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..n]
}

/// For a tolerant match: the lines that differ (file vs oldText) and `new` re-indented
/// where oldText's indentation differs from the file's.
fn tolerant_notes(
    text: &str,
    start: usize,
    matched: &str,
    old: &str,
    new: &str,
) -> (Vec<String>, String) {
    let first_line = line_of(text, start);
    let file_lines: Vec<&str> = matched.split('\n').collect();
    let old_lines: Vec<&str> = old.split('\n').collect();
    let mut notes = Vec::new();
    let mut differing = 0;
    let mut map: Vec<(String, String)> = Vec::new();
    for (k, (f, o)) in file_lines.iter().zip(old_lines.iter()).enumerate() {
        let f = f.trim_end_matches('\r');
        let o = o.trim_end_matches('\r');
        if f != o {
            differing += 1;
            if notes.len() < 3 {
                notes.push(format!(
                    "line {}: the file has {:?} where oldText has {:?}",
                    first_line + k,
                    clip(f),
                    clip(o)
                ));
            }
        }
        let (fi, oi) = (indent(f), indent(o));
        if fi != oi && !oi.is_empty() && !map.iter().any(|(from, _)| from == oi) {
            map.push((oi.to_string(), fi.to_string()));
        }
    }
    if differing > notes.len() {
        notes.push(format!("and {} more lines", differing - notes.len()));
    }
    if map.is_empty() {
        return (notes, new.to_string());
    }
    // Longest oldText indentation first, so nested lines keep their extra depth.
    map.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let mut changed = false;
    let out: Vec<String> = new
        .split('\n')
        .map(|line| {
            let ind = indent(line);
            for (from, to) in &map {
                if let Some(rest) = ind.strip_prefix(from.as_str()) {
                    changed = true;
                    return format!("{to}{rest}{}", &line[ind.len()..]);
                }
            }
            line.to_string()
        })
        .collect();
    if changed {
        notes.push("newText was re-indented like the matched lines of the file".into());
    }
    (notes, out.join("\n"))
}

/// Applies `edits` of one file in order to `file.text`; returns the new text and one
/// report per edit. `first_index` numbers the edits as in the whole call. `held` counts
/// the text being built against the call's budget.
pub fn apply_edits(
    path: &str,
    file: &TextFile,
    edits: &[(usize, Edit<'_>)],
    stop: &Stop,
    held: &mut Held,
) -> Result<(String, Vec<EditReport>), EditError> {
    let mut text = file.text.clone();
    let mut reports = Vec::with_capacity(edits.len());
    // What `held` counts already (the file as read); the text it becomes is charged on
    // top when it grows past that.
    let start = held.bytes();
    for (index, edit) in edits {
        stop.check()?;
        let which = format!("edits[{index}] ({path})");
        if edit.old_text.is_empty() {
            return Err(EditError::Refused(format!(
                "{which}: oldText is empty; give the exact text to replace (to write a whole file use spool_write)"
            )));
        }
        let old = file.normalise_input(edit.old_text);
        let new = file.normalise_input(edit.new_text);
        // Match positions are 16 bytes each: charged before they are collected.
        let count_exact = if edit.replace_all {
            text.matches(old.as_str()).count()
        } else {
            overlapping(&text, &old, stop, 0).map(|(_, n)| n)?
        };
        let mut kind = "exact";
        let tolerant = if count_exact == 0 {
            tolerant_pattern(&old).and_then(|p| {
                RegexBuilder::new(&p)
                    .size_limit(32 * 1024 * 1024)
                    .build()
                    .ok()
            })
        } else {
            None
        };
        let count = match &tolerant {
            Some(re) => {
                kind = "whitespace-tolerant";
                let mut ticker = stop.ticker(256);
                let mut n = 0usize;
                for _ in re.find_iter(&text) {
                    ticker.tick()?;
                    n += 1;
                }
                n
            }
            None => count_exact,
        };
        if count == 0 {
            return Err(EditError::Refused(format!(
                "{which}: oldText was not found, not even ignoring differences in spaces and tabs; read the file again (the text may have changed, or an earlier edit of this call changed it) and copy oldText exactly"
            )));
        }
        if count > 1 && !edit.replace_all {
            let (how, shown) = match &tolerant {
                None => ("oldText", overlapping(&text, &old, stop, 10)?.0),
                Some(re) => (
                    "oldText (ignoring differences in spaces and tabs)",
                    re.find_iter(&text)
                        .take(10)
                        .map(|m| (m.start(), m.end()))
                        .collect(),
                ),
            };
            return Err(EditError::Refused(format!(
                "{which}: {how} matches {count} places: {}; add neighbouring lines to oldText so it matches only one, or set replaceAll: true to replace every one",
                describe_matches(&text, &shown, count)
            )));
        }
        // This edit's matches and the text it builds, alive until the edit is done.
        let mut building = held.budget().hold(0, "the text edit_files builds")?;
        building.grow(16 * count as u64, "the matches edit_files found")?;
        let matches: Vec<(usize, usize)> = match &tolerant {
            Some(re) => re.find_iter(&text).map(|m| (m.start(), m.end())).collect(),
            None if edit.replace_all => text
                .match_indices(old.as_str())
                .map(|(s, m)| (s, s + m.len()))
                .collect(),
            None => overlapping(&text, &old, stop, 1)?.0,
        };
        let lines: Vec<String> = matches
            .iter()
            .take(20)
            .map(|&(s, e)| range_label(&text, s, e))
            .collect();
        // Build the new text piece by piece; the text before and the text being built
        // are alive together, and each piece is charged before it is added.
        let base = building.bytes();
        let mut out = String::with_capacity(text.len());
        let mut notes = Vec::new();
        let mut last = 0;
        let mut ticker = stop.ticker(256);
        for &(s, e) in &matches {
            ticker.tick()?;
            let piece: std::borrow::Cow<'_, str> = match tolerant {
                None => std::borrow::Cow::Borrowed(new.as_str()),
                Some(_) => {
                    let (n, r) = tolerant_notes(&text, s, &text[s..e], &old, &new);
                    if notes.is_empty() {
                        notes = n;
                    }
                    std::borrow::Cow::Owned(r)
                }
            };
            building.grow_to(
                base + (out.len() + (s - last) + piece.len()) as u64,
                "the text edit_files builds",
            )?;
            out.push_str(&text[last..s]);
            out.push_str(&piece);
            last = e;
        }
        building.grow_to(
            base + (out.len() + text.len() - last) as u64,
            "the text edit_files builds",
        )?;
        out.push_str(&text[last..]);
        text = out;
        let replacements = matches.len();
        drop(matches);
        drop(building);
        held.grow_to(start + text.len() as u64, "the text edit_files holds")?;
        reports.push(EditReport {
            index: *index,
            path: path.to_string(),
            replacements,
            lines,
            match_kind: kind,
            notes,
        });
    }
    if let Some(note) = file.keep_final_newline(&mut text)
        && let Some(last) = reports.last_mut()
    {
        last.notes.push(note);
    }
    Ok((text, reports))
}

#[cfg(test)]
mod tests;
