//! Unit tests of path confinement: roots, `..` and symlinks at any component, swapped
//! directories, NUL bytes, FIFOs, non-UTF-8 names, removed roots.

use std::{ffi::OsStr, os::unix::ffi::OsStrExt, os::unix::fs::symlink};

use super::*;

struct Tree {
    _base: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

/// base/root (with ok.txt, sub/in.txt), base/root-evil/x.txt, base/outside/secret.txt.
fn tree() -> Tree {
    let base = tempfile::tempdir().unwrap();
    let b = base.path().canonicalize().unwrap();
    let root = b.join("root");
    let evil = b.join("root-evil");
    let outside = b.join("outside");
    for d in [&root.join("sub"), &evil, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(root.join("ok.txt"), "fine").unwrap();
    std::fs::write(root.join("sub/in.txt"), "inner").unwrap();
    std::fs::write(evil.join("x.txt"), "evil").unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    Tree {
        _base: base,
        root,
        outside,
    }
}

fn roots(t: &Tree) -> Roots {
    Roots::new(std::slice::from_ref(&t.root))
}

fn read(r: &Roots, raw: &str) -> Result<String, WorkspaceError> {
    let (mut f, _) = r.open_file(raw)?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut f, &mut s).unwrap();
    Ok(s)
}

fn outside(r: Result<impl std::fmt::Debug, WorkspaceError>) -> bool {
    matches!(
        r,
        Err(WorkspaceError::Outside { .. } | WorkspaceError::Escape(_))
    )
}

#[test]
fn inside_paths_open() {
    let t = tree();
    let r = roots(&t);
    assert_eq!(read(&r, "ok.txt").unwrap(), "fine");
    assert_eq!(read(&r, "./sub/../sub/in.txt").unwrap(), "inner");
    let abs = t.root.join("sub/in.txt");
    assert_eq!(read(&r, abs.to_str().unwrap()).unwrap(), "inner");
    // A symlink that stays inside (relative or absolute) is followed.
    symlink("sub/in.txt", t.root.join("rel-link")).unwrap();
    symlink(t.root.join("sub"), t.root.join("abs-link")).unwrap();
    assert_eq!(read(&r, "rel-link").unwrap(), "inner");
    assert_eq!(read(&r, "abs-link/in.txt").unwrap(), "inner");
    assert_eq!(r.dir(Some("sub")).unwrap(), t.root.join("sub"));
    assert_eq!(r.dir(None).unwrap(), t.root);
}

#[test]
fn dotdot_and_absolute_paths_outside_are_refused() {
    let t = tree();
    let r = roots(&t);
    assert!(outside(read(&r, "../outside/secret.txt")));
    assert!(outside(read(&r, "sub/../../outside/secret.txt")));
    assert!(outside(read(&r, "/etc/passwd")));
    let dotdot = format!("{}/../outside/secret.txt", t.root.display());
    assert!(outside(read(&r, &dotdot)));
    assert!(outside(r.dir(Some("/"))));
}

#[test]
fn sibling_prefix_is_outside() {
    let t = tree();
    let r = roots(&t);
    let evil = format!("{}-evil/x.txt", t.root.display());
    assert!(outside(read(&r, &evil)));
    assert!(outside(r.dir(Some(&format!("{}-evil", t.root.display())))));
    assert!(outside(read(&r, "../root-evil/x.txt")));
}

#[test]
fn symlinks_out_are_refused_at_any_component() {
    let t = tree();
    let r = roots(&t);
    symlink(t.outside.join("secret.txt"), t.root.join("final")).unwrap();
    symlink(&t.outside, t.root.join("mid")).unwrap();
    symlink("../../outside", t.root.join("sub/rel-out")).unwrap();
    assert!(outside(read(&r, "final")));
    assert!(outside(read(&r, "mid/secret.txt")));
    assert!(outside(read(&r, "sub/rel-out/secret.txt")));
    assert!(outside(r.dir(Some("mid"))));
    // Beneath a handle, escapes are refused without any path check first.
    let b = r.open_dir(None).unwrap();
    assert_eq!(
        b.read(Path::new("mid/secret.txt")),
        Err(WorkspaceError::Escape("mid/secret.txt".into()))
    );
    assert_eq!(
        b.read(Path::new("sub/rel-out/secret.txt")),
        Err(WorkspaceError::Escape("sub/rel-out/secret.txt".into()))
    );
    assert_eq!(
        b.read(Path::new("final")),
        Err(WorkspaceError::Symlink("final".into()))
    );
    let mut dirs = Vec::new();
    assert!(matches!(
        b.replace(Path::new("mid/new.txt"), b"x", ".tmp", &mut dirs),
        Err(WorkspaceError::Escape(_))
    ));
    assert!(matches!(
        b.replace(Path::new("mid/deeper/new.txt"), b"x", ".tmp", &mut dirs),
        Err(WorkspaceError::Escape(_))
    ));
    assert_eq!(std::fs::read_dir(&t.outside).unwrap().count(), 1);
    b.replace(Path::new("made/new.txt"), b"x", ".tmp", &mut dirs)
        .unwrap();
    assert_eq!(dirs, vec![PathBuf::from("made")]);
    assert_eq!(
        std::fs::read_to_string(t.root.join("made/new.txt")).unwrap(),
        "x"
    );
}

struct Lister(Vec<PathBuf>);

impl Walk for Lister {
    fn enter(&mut self, _: &Path, _: &Beneath) -> bool {
        true
    }
    fn keep(&mut self, _: &Path, _: bool) -> bool {
        true
    }
    fn file(&mut self, rel: &Path, _: u64) {
        self.0.push(rel.to_path_buf());
    }
    fn done(&self) -> bool {
        false
    }
}

#[test]
fn walks_list_through_handles_and_never_follow_symlinks() {
    let t = tree();
    symlink(&t.outside, t.root.join("mid")).unwrap();
    symlink(t.outside.join("secret.txt"), t.root.join("final")).unwrap();
    symlink("../../outside", t.root.join("sub/rel-out")).unwrap();
    let b = roots(&t).open_dir(None).unwrap();
    let mut l = Lister(Vec::new());
    b.walk(&mut l, 8);
    l.0.sort();
    assert_eq!(
        l.0,
        vec![PathBuf::from("ok.txt"), PathBuf::from("sub/in.txt")]
    );
    assert!(
        b.modified(Path::new("sub/in.txt")).is_some(),
        "modification times are read beneath the handle"
    );
    assert_eq!(b.modified(Path::new("mid/secret.txt")), None);
}

/// A directory swapped for a symlink to outside between being listed and being
/// entered is not entered.
#[test]
fn a_directory_swapped_for_a_symlink_mid_walk_is_not_entered() {
    struct Swapper {
        root: PathBuf,
        outside: PathBuf,
        seen: Vec<PathBuf>,
    }
    impl Walk for Swapper {
        fn enter(&mut self, _: &Path, _: &Beneath) -> bool {
            true
        }
        fn keep(&mut self, rel: &Path, is_dir: bool) -> bool {
            if is_dir && rel == Path::new("sub") {
                // Listed as a directory; swapped before it is opened.
                std::fs::rename(self.root.join("sub"), self.root.join("sub-moved")).unwrap();
                symlink(&self.outside, self.root.join("sub")).unwrap();
            }
            true
        }
        fn file(&mut self, rel: &Path, _: u64) {
            self.seen.push(rel.to_path_buf());
        }
        fn done(&self) -> bool {
            false
        }
    }
    let t = tree();
    let b = roots(&t).open_dir(None).unwrap();
    let mut w = Swapper {
        root: t.root.clone(),
        outside: t.outside.clone(),
        seen: Vec::new(),
    };
    b.walk(&mut w, 8);
    assert!(
        !w.seen.iter().any(|p| p.ends_with("secret.txt")),
        "{:?}",
        w.seen
    );
}

#[test]
fn nul_and_relative_rules() {
    let t = tree();
    let r = roots(&t);
    assert!(matches!(
        read(&r, "ok.txt\0x"),
        Err(WorkspaceError::NulInPath { .. })
    ));
    assert_eq!(relative("./a//b.txt").unwrap(), "a/b.txt");
    assert!(relative("../x").is_err());
    assert!(relative("a/../../x").is_err());
    assert!(relative("/etc/passwd").is_err());
    assert!(relative("").is_err());
    assert!(matches!(
        relative("a\0b"),
        Err(WorkspaceError::NulInPath { .. })
    ));
}

#[test]
fn non_utf8_names_work_beneath_a_handle() {
    let t = tree();
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(t.root.join(name), "bytes").unwrap();
    let b = roots(&t).open_dir(None).unwrap();
    assert_eq!(b.read(Path::new(name)).unwrap().unwrap(), b"bytes");
    let mut dirs = Vec::new();
    b.replace(Path::new(name), b"new", ".tmp", &mut dirs)
        .unwrap();
    assert_eq!(std::fs::read(t.root.join(name)).unwrap(), b"new");
}

#[test]
fn fifos_are_refused_without_blocking() {
    let t = tree();
    let fifo = std::ffi::CString::new(t.root.join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let r = roots(&t);
    assert!(matches!(
        r.open_file("pipe"),
        Err(WorkspaceError::NotAFile { .. })
    ));
    let b = r.open_dir(None).unwrap();
    assert!(matches!(
        b.read(Path::new("pipe")),
        Err(WorkspaceError::NotAFile { .. })
    ));
}

#[test]
fn skipped_roots_are_reported_and_empty_roots_refuse() {
    let t = tree();
    let missing = t.root.join("missing");
    let r = Roots::new(&[missing.clone(), t.root.clone()]);
    assert_eq!(r.list(), vec![t.root.clone()]);
    assert_eq!(r.skipped().len(), 1);
    let none = Roots::new(&[missing]);
    assert!(matches!(
        none.open_file("x"),
        Err(WorkspaceError::NoRoots(_))
    ));
}

#[test]
fn a_root_replaced_or_removed_after_start_is_refused() {
    let t = tree();
    let r = roots(&t);
    let moved = t.root.with_file_name("moved");
    std::fs::rename(&t.root, &moved).unwrap();
    symlink(&t.outside, &t.root).unwrap();
    assert!(matches!(
        read(&r, "secret.txt"),
        Err(WorkspaceError::RootGone { .. })
    ));
    assert!(matches!(r.dir(None), Err(WorkspaceError::RootGone { .. })));
    std::fs::remove_file(&t.root).unwrap();
    assert!(matches!(
        r.open_dir(None),
        Err(WorkspaceError::RootGone { .. })
    ));
    std::fs::rename(&moved, &t.root).unwrap();
    assert_eq!(read(&r, "ok.txt").unwrap(), "fine");
}
