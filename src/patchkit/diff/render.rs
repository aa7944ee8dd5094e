//! The git-style unified text: headers, `@@` ranges, hunk lines with their
//! no-newline markers, counts and the preview, built in one pass over grouped ops.
//!
//! Owns the text format only; it must not compute the edit script.

use std::fmt::Write as _;

use similar::{DiffOp, DiffTag, group_diff_ops};

use super::{DiffOptions, Hunk, Names, Unified, edit_script, intern, split_lines};

pub(super) fn unified_inner(
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
pub(super) fn preview(hunks: &[Hunk], max: usize) -> Option<String> {
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
