//! Two JSON values as pretty-printed columns, aligned by a line diff: `|` marks a changed
//! row, `<` a line only on the left, `>` a line only on the right.
//!
//! Owns the rendering only; it must not touch the file system. Of the runtime it uses the
//! call's stop flag (the line diff and the row loop give up at the deadline) and memory
//! budget (the text is held against it as it grows).

use serde_json::Value;
use similar::{Algorithm, DiffTag, capture_diff_slices_deadline};

use crate::runtime::{
    budget::{Budget, BudgetExceeded},
    stop::{Stop, Stopped},
};

/// The rendered table and its figures.
pub struct SideBySide {
    pub text: String,
    pub rows: usize,
    pub changed_rows: usize,
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Pads or cuts `s` to exactly `width` characters (cut text ends in "…").
fn cell(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count <= width {
        let mut out = s.to_string();
        out.extend(std::iter::repeat_n(' ', width - count));
        out
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Why a render gave up.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Stopped(#[from] Stopped),
    #[error(transparent)]
    Budget(#[from] BudgetExceeded),
}

/// Bytes of text between two charges to the budget.
const CHARGE_STEP: usize = 1024 * 1024;

/// Renders `left` and `right` in columns of `width` characters. The line diff stops
/// refining at `stop`'s deadline (rows then pair up coarser), the text built is held
/// against `budget` as it grows, and the loop gives up when `stop` is raised.
pub fn render(
    left: &Value,
    right: &Value,
    width: usize,
    stop: &Stop,
    budget: &Budget,
) -> Result<SideBySide, RenderError> {
    let l = pretty(left);
    let r = pretty(right);
    let mut held = budget.hold(
        (l.len() + r.len()) as u64,
        "the pretty-printed sides of format_side_by_side",
    )?;
    let ll: Vec<&str> = l.lines().collect();
    let rl: Vec<&str> = r.lines().collect();
    stop.check()?;
    let ops = capture_diff_slices_deadline(Algorithm::Myers, &ll, &rl, Some(stop.deadline()));
    let mut rows_out: Vec<(&str, char, &str)> = Vec::new();
    for op in ops {
        let (tag, o, n) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => rows_out.extend(ll[o].iter().zip(&rl[n]).map(|(a, b)| (*a, ' ', *b))),
            DiffTag::Delete => rows_out.extend(ll[o].iter().map(|a| (*a, '<', ""))),
            DiffTag::Insert => rows_out.extend(rl[n].iter().map(|b| ("", '>', *b))),
            DiffTag::Replace => {
                let (a, b) = (&ll[o], &rl[n]);
                for i in 0..a.len().max(b.len()) {
                    match (a.get(i), b.get(i)) {
                        (Some(x), Some(y)) => rows_out.push((x, '|', y)),
                        (Some(x), None) => rows_out.push((x, '<', "")),
                        (None, Some(y)) => rows_out.push(("", '>', y)),
                        (None, None) => {}
                    }
                }
            }
        }
    }
    let mut text = String::new();
    let mut changed_rows = 0;
    let mut charged_to = 0usize;
    let mut ticker = stop.ticker(4096);
    for (a, mark, b) in &rows_out {
        ticker.tick()?;
        let line = format!("{} {mark} {}", cell(a, width), b);
        text.push_str(line.trim_end());
        text.push('\n');
        if *mark != ' ' {
            changed_rows += 1;
        }
        if text.len() > charged_to {
            charged_to = text.len() + CHARGE_STEP;
            held.grow_to(
                (l.len() + r.len() + charged_to) as u64,
                "the text of format_side_by_side",
            )?;
        }
    }
    Ok(SideBySide {
        text,
        rows: rows_out.len(),
        changed_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marks_changes() {
        let s = render(
            &json!({"a": 1, "b": 2}),
            &json!({"a": 1, "b": 3}),
            12,
            &Stop::never(),
            &Budget::unlimited(),
        )
        .unwrap();
        assert!(s.text.contains("|"), "{}", s.text);
        assert_eq!(s.changed_rows, 1);
        assert_eq!(s.rows, 4);
    }
}
