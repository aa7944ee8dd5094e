//! Two JSON values as pretty-printed columns, aligned by a line diff: `|` marks a changed
//! row, `<` a line only on the left, `>` a line only on the right.
//!
//! Owns the rendering only; it must not touch the file system or the runtime.

use serde_json::Value;
use similar::{Algorithm, DiffTag, capture_diff_slices};

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

/// Renders `left` and `right` in columns of `width` characters.
pub fn render(left: &Value, right: &Value, width: usize) -> SideBySide {
    let l = pretty(left);
    let r = pretty(right);
    let ll: Vec<&str> = l.lines().collect();
    let rl: Vec<&str> = r.lines().collect();
    let ops = capture_diff_slices(Algorithm::Myers, &ll, &rl);
    let mut text = String::new();
    let mut rows = 0;
    let mut changed_rows = 0;
    let mut row = |a: &str, mark: char, b: &str, text: &mut String| {
        let line = format!("{} {mark} {}", cell(a, width), b);
        text.push_str(line.trim_end());
        text.push('\n');
        rows += 1;
        if mark != ' ' {
            changed_rows += 1;
        }
    };
    for op in ops {
        let (tag, o, n) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => {
                for (a, b) in ll[o].iter().zip(&rl[n]) {
                    row(a, ' ', b, &mut text);
                }
            }
            DiffTag::Delete => ll[o].iter().for_each(|a| row(a, '<', "", &mut text)),
            DiffTag::Insert => rl[n].iter().for_each(|b| row("", '>', b, &mut text)),
            DiffTag::Replace => {
                let (a, b) = (&ll[o], &rl[n]);
                for i in 0..a.len().max(b.len()) {
                    match (a.get(i), b.get(i)) {
                        (Some(x), Some(y)) => row(x, '|', y, &mut text),
                        (Some(x), None) => row(x, '<', "", &mut text),
                        (None, Some(y)) => row("", '>', y, &mut text),
                        (None, None) => {}
                    }
                }
            }
        }
    }
    SideBySide {
        text,
        rows,
        changed_rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marks_changes() {
        let s = render(&json!({"a": 1, "b": 2}), &json!({"a": 1, "b": 3}), 12);
        assert!(s.text.contains("|"), "{}", s.text);
        assert_eq!(s.changed_rows, 1);
        assert_eq!(s.rows, 4);
    }
}
