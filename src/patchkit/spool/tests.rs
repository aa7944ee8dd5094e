//! Unit tests of spool sessions: all-or-nothing batches, restore on a failed write,
//! literal and regex replacement.

use super::*;

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn session() -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "bee\n").unwrap();
    let root = dir.path().canonicalize().unwrap();
    (
        dir,
        Session::new("s".into(), Beneath::open_ambient(&root).unwrap()),
    )
}

fn w(path: &str, content: &str) -> Op {
    Op::Write {
        path: path.into(),
        content: content.into(),
    }
}

#[test]
fn failing_write_restores_everything() {
    let (dir, mut s) = session();
    let before = tree(dir.path());
    let ops = vec![
        w("a.txt", "changed\n"),
        w("new/dir/c.txt", "c\n"),
        Op::Delete {
            path: "b.txt".into(),
        },
        w("d.txt", "d\n"),
        w("a.txt/child.txt", "cannot be written\n"),
    ];
    let err = s.run(&ops).unwrap_err();
    assert_eq!(err.results[4].status, "failed", "{}", err.message);
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn failing_plan_writes_nothing() {
    let (dir, mut s) = session();
    let before = tree(dir.path());
    let ops = vec![
        w("a.txt", "x\n"),
        Op::Replace {
            path: "b.txt".into(),
            pattern: "zzz".into(),
            replacement: "y".into(),
            regex: false,
            all: false,
            first: false,
            required: true,
        },
    ];
    assert!(s.run(&ops).is_err());
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn literal_match_is_not_a_regex_and_reset_restores() {
    let (dir, mut s) = session();
    std::fs::write(dir.path().join("r.txt"), "a.b axb a.b\n").unwrap();
    let ops = vec![Op::Replace {
        path: "r.txt".into(),
        pattern: "a.b".into(),
        replacement: "Z".into(),
        regex: false,
        all: true,
        first: false,
        required: true,
    }];
    let r = s.run(&ops).unwrap();
    assert_eq!(r[0].replacements, Some(2));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("r.txt")).unwrap(),
        "Z axb Z\n"
    );
    s.run(&[w("made/new.txt", "n\n")]).unwrap();
    let restored = s.reset().unwrap();
    assert_eq!(
        restored,
        vec!["made/new.txt".to_string(), "r.txt".to_string()]
    );
    assert!(!dir.path().join("made").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("r.txt")).unwrap(),
        "a.b axb a.b\n"
    );
}
