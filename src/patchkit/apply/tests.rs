//! Unit tests of the patch parser and applier: round trips against `create_diff`,
//! offsets, fuzz, CRLF, conflicts, and property tests.

use super::super::diff::{ChangeType, DiffOptions, create_diff};
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
    use super::super::super::diff::{ChangeType, DiffAlgorithm, DiffOptions, create_diff};
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
