//! Unit tests of in-memory edits: encoding round trips (BOM, CRLF, final newline),
//! ambiguous and overlapping matches, whitespace-tolerant matches, edit order, the memory
//! budget.

use super::*;
use crate::runtime::budget::Budget;

fn run(bytes: &[u8], edits: &[(&str, &str, bool)]) -> Result<(Vec<u8>, Vec<EditReport>), String> {
    let file = TextFile::decode("f", bytes.to_vec()).map_err(|e| e.to_string())?;
    let edits: Vec<(usize, Edit<'_>)> = edits
        .iter()
        .enumerate()
        .map(|(i, (o, n, all))| {
            (
                i,
                Edit {
                    old_text: o,
                    new_text: n,
                    replace_all: *all,
                },
            )
        })
        .collect();
    let budget = Budget::unlimited();
    let mut held = budget.hold(0, "t").unwrap();
    let (text, reports) =
        apply_edits("f", &file, &edits, &Stop::never(), &mut held).map_err(|e| e.to_string())?;
    Ok((file.encode(&text), reports))
}

#[test]
fn round_trip_keeps_bytes() {
    for raw in [
        &b"a\r\nb\r\n"[..],
        b"\xef\xbb\xbfa\nb",
        b"a\r\nb\nc",
        b"",
        b"x\r\r\ny",
    ] {
        let f = TextFile::decode("f", raw.to_vec()).unwrap();
        assert_eq!(f.encode(&f.text), raw);
    }
}

#[test]
fn ambiguous_and_overlapping_matches_are_refused() {
    let src = "fn a() {\n    x += 1;\n}\nfn b() {\n    x += 1;\n}\n";
    let e = run(src.as_bytes(), &[("    x += 1;", "    x += 2;", false)]).unwrap_err();
    assert!(e.contains("matches 2 places"), "{e}");
    assert!(e.contains("line 2 (after line 1: `fn a() {`)"), "{e}");
    assert!(e.contains("line 5 (after line 4: `fn b() {`)"), "{e}");
    assert!(
        run(b"aaa", &[("aa", "b", false)])
            .unwrap_err()
            .contains("2 places")
    );
    let (out, r) = run(src.as_bytes(), &[("    x += 1;", "    y;", true)]).unwrap();
    assert_eq!(r[0].replacements, 2);
    assert_eq!(out, src.replace("x += 1", "y").as_bytes());
}

#[test]
fn crlf_bom_and_final_newline_survive() {
    let (out, _) = run(
        b"\xef\xbb\xbfone\r\ntwo\r\nthree",
        &[("two\nthree", "2\n3\n", false)],
    )
    .unwrap();
    assert_eq!(out, b"\xef\xbb\xbfone\r\n2\r\n3");
    let (out, _) = run(b"a\nb\n", &[("b\n", "c", false)]).unwrap();
    assert_eq!(out, b"a\nc\n");
}

#[test]
fn tolerant_match_is_reported_and_reindented() {
    let src = "fn f() {\n\tif x {\n\t\ty();\n\t}\n}\n";
    let (out, r) = run(
        src.as_bytes(),
        &[(
            "    if x {\n        y();\n    }",
            "    if x {\n        z();\n        w();\n    }",
            false,
        )],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "fn f() {\n\tif x {\n\t\tz();\n\t\tw();\n\t}\n}\n"
    );
    assert_eq!(r[0].match_kind, "whitespace-tolerant");
    assert_eq!(r[0].lines, vec!["2-4"]);
    assert!(r[0].notes[0].contains("line 2"), "{:?}", r[0].notes);
    assert!(r[0].notes.iter().any(|n| n.contains("re-indented")));
    // Ambiguous even ignoring whitespace: refused with both places.
    let e = run(b"\tx = 1;\n  x = 1;\n", &[("    x = 1;", "y", false)]).unwrap_err();
    assert!(
        e.contains("ignoring differences") && e.contains("line 1") && e.contains("line 2"),
        "{e}"
    );
    // Words must still be apart: `ab` does not match `a b`.
    assert!(
        run(b"ab\n", &[("a b", "c", false)])
            .unwrap_err()
            .contains("not found")
    );
}

#[test]
fn later_edits_see_earlier_ones() {
    let (out, r) = run(b"a\nb\n", &[("a", "c", false), ("c\nb", "d", false)]).unwrap();
    assert_eq!(out, b"d\n");
    assert_eq!(r.len(), 2);
}

#[test]
fn a_blow_up_stops_at_the_budget() {
    let file = TextFile::decode("f", "a".repeat(200 * 1024).into_bytes()).unwrap();
    let huge = "b".repeat(100 * 1024);
    let edits = [(
        0,
        Edit {
            old_text: "a",
            new_text: &huge,
            replace_all: true,
        },
    )];
    let budget = Budget::new(8 * 1024 * 1024);
    let mut held = budget.hold(0, "t").unwrap();
    let e = apply_edits("f", &file, &edits, &Stop::never(), &mut held).unwrap_err();
    assert!(matches!(e, EditError::Budget(_)), "{e}");
    drop(held);
    // Many small edits of one 1 MB file do not add up past what is alive.
    let body: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
    let file = TextFile::decode("f", body.into_bytes()).unwrap();
    let olds: Vec<String> = (0..100)
        .map(|i| format!("\nline {}\n", i * 997 + 1))
        .collect();
    let news: Vec<String> = (0..100)
        .map(|i| format!("\nLINE {}\n", i * 997 + 1))
        .collect();
    let edits: Vec<(usize, Edit<'_>)> = (0..100)
        .map(|i| {
            (
                i,
                Edit {
                    old_text: &olds[i],
                    new_text: &news[i],
                    replace_all: false,
                },
            )
        })
        .collect();
    let budget = Budget::new(8 * 1024 * 1024);
    let mut held = budget.hold(0, "t").unwrap();
    let (text, reports) = apply_edits("f", &file, &edits, &Stop::never(), &mut held).unwrap();
    assert_eq!(reports.len(), 100);
    assert!(text.contains("\nLINE 98704\n"));
}
