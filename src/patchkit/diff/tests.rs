//! Unit tests of diff making: headers and counts, no-newline markers, CRLF, the
//! algorithms, previews, and property tests that `apply` undoes every diff.

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
