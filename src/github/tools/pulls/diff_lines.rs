//! Which lines of a pull request's diff an inline review comment may address, read from
//! a file's patch (GitHub's `patch` field of `GET /pulls/{n}/files`): the lines of its
//! hunks — on the RIGHT side the added and context lines by their new number, on the
//! LEFT side the removed and context lines by their old number — and the wording that
//! points a model at the commentable lines nearest to one that is not.
//!
//! Pure functions; no requests.

/// A side of the diff a comment is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffSide {
    Left,
    Right,
}

impl DiffSide {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffSide::Left => "LEFT",
            DiffSide::Right => "RIGHT",
        }
    }
}

/// The commentable line numbers of one file's patch, ascending, per side.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Commentable {
    pub left: Vec<u32>,
    pub right: Vec<u32>,
}

impl Commentable {
    pub fn side(&self, side: DiffSide) -> &[u32] {
        match side {
            DiffSide::Left => &self.left,
            DiffSide::Right => &self.right,
        }
    }

    pub fn contains(&self, side: DiffSide, line: u32) -> bool {
        self.side(side).binary_search(&line).is_ok()
    }
}

/// `@@ -a[,b] +c[,d] @@ ...` → (a, c).
fn hunk_start(header: &str) -> Option<(u32, u32)> {
    let rest = header.strip_prefix("@@ ")?;
    let mut parts = rest.split_whitespace();
    let num = |p: Option<&str>, sign: char| -> Option<u32> {
        p?.strip_prefix(sign)?.split(',').next()?.parse().ok()
    };
    Some((num(parts.next(), '-')?, num(parts.next(), '+')?))
}

/// Reads a unified-diff patch (hunks only, as GitHub gives per file). Lines before the
/// first hunk header and `\ No newline at end of file` markers are skipped; an empty
/// line inside a hunk counts as context (some tools strip the lone space).
pub fn commentable(patch: &str) -> Commentable {
    let mut out = Commentable::default();
    let mut pos: Option<(u32, u32)> = None;
    for line in patch.lines() {
        if line.starts_with("@@") {
            pos = hunk_start(line);
            continue;
        }
        let Some((old, new)) = pos.as_mut() else {
            continue;
        };
        match line.as_bytes().first() {
            Some(b'+') => {
                out.right.push(*new);
                *new += 1;
            }
            Some(b'-') => {
                out.left.push(*old);
                *old += 1;
            }
            Some(b'\\') => {}
            _ => {
                out.right.push(*new);
                out.left.push(*old);
                *old += 1;
                *new += 1;
            }
        }
    }
    for v in [&mut out.left, &mut out.right] {
        v.sort_unstable();
        v.dedup();
    }
    out
}

/// Runs of consecutive numbers in ascending `lines`, as (first, last).
fn runs(lines: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &l in lines {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == l => *last = l,
            _ => out.push((l, l)),
        }
    }
    out
}

/// The commentable runs just before and just after `line`, e.g. `31-37, 52-60`
/// (empty when the side has no lines).
pub fn nearest(lines: &[u32], line: u32) -> String {
    let runs = runs(lines);
    let before = runs.iter().rev().find(|(_, last)| *last < line);
    let after = runs.iter().find(|(first, _)| *first > line);
    [before, after]
        .into_iter()
        .flatten()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `line` on `side` of `path` cannot take a comment, naming the lines that can.
pub fn not_in_diff(path: &str, side: DiffSide, line: u32, lines: &Commentable) -> String {
    let on = lines.side(side);
    if on.is_empty() {
        let other = match side {
            DiffSide::Left => "RIGHT (the file is new)",
            DiffSide::Right => "LEFT (the file is deleted)",
        };
        return format!(
            "{path} has no {} lines in the diff; comment on side {other}",
            side.as_str()
        );
    }
    let side_note = match side {
        DiffSide::Right => String::new(),
        DiffSide::Left => " (LEFT: old line numbers)".to_string(),
    };
    format!(
        "{path} line {line} is not in the diff{side_note}; commentable lines near it: {}",
        nearest(on, line)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_HUNKS: &str = "@@ -28,10 +31,7 @@ fn a() {\n ctx31\n ctx32\n-old34\n-old35\n-old36\n+new34\n ctx35\n ctx36\n ctx37\n-gone\n\\ No newline at end of file\n@@ -50,8 +52,9 @@\n c52\n c53\n c54\n+n55\n c56\n c57\n c58\n c59\n c60";

    #[test]
    fn hunks_give_right_lines_by_new_number_and_left_by_old() {
        let c = commentable(TWO_HUNKS);
        assert_eq!(
            c.right,
            [31, 32, 33, 34, 35, 36, 52, 53, 54, 55, 56, 57, 58, 59, 60]
        );
        assert_eq!(
            c.left,
            [
                28, 29, 30, 31, 32, 33, 34, 35, 36, 50, 51, 52, 53, 54, 55, 56, 57
            ]
        );
        assert!(c.contains(DiffSide::Right, 55));
        assert!(!c.contains(DiffSide::Right, 40));
        assert!(
            c.contains(DiffSide::Left, 30),
            "a removed line, by old number"
        );
        assert!(!c.contains(DiffSide::Right, 30));
    }

    #[test]
    fn added_file_and_one_line_hunks() {
        let c = commentable("@@ -0,0 +1,3 @@\n+a\n+b\n+c");
        assert_eq!(c.right, [1, 2, 3]);
        assert!(c.left.is_empty());
        let c = commentable("@@ -5 +5 @@\n-x\n+y");
        assert_eq!(
            (c.left.as_slice(), c.right.as_slice()),
            (&[5][..], &[5][..])
        );
        assert_eq!(commentable(""), Commentable::default());
        // An empty line inside a hunk is context.
        let c = commentable("@@ -1,3 +1,3 @@\n a\n\n-b\n+c");
        assert_eq!(c.right, [1, 2, 3]);
    }

    #[test]
    fn the_message_names_the_runs_around_the_line() {
        let c = commentable(TWO_HUNKS);
        assert_eq!(nearest(&c.right, 40), "31-36, 52-60");
        assert_eq!(nearest(&c.right, 10), "31-36");
        assert_eq!(nearest(&c.right, 99), "52-60");
        assert_eq!(nearest(&[3, 9, 10], 5), "3, 9-10");
        assert_eq!(
            not_in_diff("src/a.rs", DiffSide::Right, 40, &c),
            "src/a.rs line 40 is not in the diff; commentable lines near it: 31-36, 52-60"
        );
        let added = commentable("@@ -0,0 +1,2 @@\n+a\n+b");
        let msg = not_in_diff("new.txt", DiffSide::Left, 1, &added);
        assert!(
            msg.contains("no LEFT lines") && msg.contains("RIGHT"),
            "{msg}"
        );
    }
}
