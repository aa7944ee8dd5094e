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

use crate::runtime::stop::{Stop, Stopped, Ticker};

mod parse;
#[cfg(test)]
mod tests;

pub use parse::{FileDiff, PHunk, PLine, PatchError, parse_patch};

/// Line comparisons between two checks of the stop flag.
const STOP_EVERY: u32 = 64 * 1024;

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
