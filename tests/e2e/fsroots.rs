//! The capability-based workspace layer (`runtime::workspace::Roots`) through a real MCP
//! client: after a directory of a spool session is swapped for a symlink to an outside
//! directory, status/diff/commit/reset neither read nor publish outside bytes; and while a
//! thread swaps a directory with such a symlink (`renameat2(RENAME_EXCHANGE)`) in a loop,
//! `read_file` never returns outside bytes and `spool_write` never creates a file (or a
//! temp file) outside the root.

use crate::common;

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;
use serde_json::json;

const SECRET: &str = "OUTSIDE-SECRET-BYTES";

struct Setup {
    client: Client,
    /// The workspace root.
    ws: PathBuf,
    /// A directory next to it, outside every root.
    outside: PathBuf,
    _work: tempfile::TempDir,
    _state: tempfile::TempDir,
}

async fn setup(toolsets: &str) -> Setup {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let base = work.path().canonicalize().unwrap();
    let ws = base.join("ws");
    let outside = base.join("outside");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let ws_arg = ws.display().to_string();
    let client = stdio_client(
        state.path(),
        &["--toolsets", toolsets, "--workspace-roots", &ws_arg],
    )
    .await;
    Setup {
        client,
        ws,
        outside,
        _work: work,
        _state: state,
    }
}

/// Every entry under `dir` (hidden temp files included), recursively.
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn spool_never_reads_or_publishes_outside_bytes_after_a_symlink_swap() {
    let s = setup("patchkit").await;
    std::fs::write(s.outside.join("id_rsa"), SECRET).unwrap();
    let id = ok(&s.client, "spool_open", json!({"root": s.ws})).await["session"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &s.client,
        "spool_write",
        json!({"session": id, "path": "d/id_rsa", "content": "inside key\n"}),
    )
    .await;
    // `d` becomes a symlink to the outside directory holding its own id_rsa.
    std::fs::rename(s.ws.join("d"), s.ws.join("d.moved")).unwrap();
    std::os::unix::fs::symlink(&s.outside, s.ws.join("d")).unwrap();
    let outside_before = entries(&s.outside);

    let status = call(&s.client, "spool_status", json!({"session": id})).await;
    let shown = text(&status);
    assert!(!shown.contains(SECRET), "{shown}");
    assert_eq!(
        status.is_error,
        Some(true),
        "status read through d: {shown}"
    );
    assert!(shown.contains("outside"), "{shown}");

    let diff = call(&s.client, "spool_diff", json!({"session": id})).await;
    let shown = text(&diff);
    assert!(!shown.contains(SECRET), "{shown}");
    assert_eq!(diff.is_error, Some(true), "diff read through d: {shown}");
    assert!(shown.contains("outside"), "{shown}");

    let commit = call(
        &s.client,
        "spool_commit",
        json!({"session": id, "forbiddenGlobs": []}),
    )
    .await;
    let shown = text(&commit);
    assert!(!shown.contains(SECRET), "{shown}");
    assert_eq!(
        commit.is_error,
        Some(true),
        "commit read through d: {shown}"
    );
    assert!(shown.contains("outside"), "{shown}");
    let events = read_json(&s.client, "events://patchkit.patch").await;
    assert!(!events.to_string().contains(SECRET), "{events}");
    assert!(
        events["events"].as_array().is_none_or(|e| e.is_empty()),
        "{events}"
    );

    // Reset and close with reset must not write through the symlink either.
    let reset = call(&s.client, "spool_reset", json!({"session": id})).await;
    assert!(!text(&reset).contains(SECRET));
    let _ = call(
        &s.client,
        "spool_close",
        json!({"session": id, "reset": true}),
    )
    .await;
    assert_eq!(entries(&s.outside), outside_before);
    assert_eq!(
        std::fs::read_to_string(s.outside.join("id_rsa")).unwrap(),
        SECRET
    );
    // The file the session wrote is still where it was written.
    assert_eq!(
        std::fs::read_to_string(s.ws.join("d.moved/id_rsa")).unwrap(),
        "inside key\n"
    );
}

/// Swaps `a` and `b` atomically (both must exist).
fn exchange(a: &Path, b: &Path) {
    let (a, b) = (
        CString::new(a.as_os_str().as_bytes()).unwrap(),
        CString::new(b.as_os_str().as_bytes()).unwrap(),
    );
    // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
}

#[tokio::test]
async fn racing_symlink_swaps_never_lead_reads_or_writes_outside() {
    let s = setup("mvp,patchkit").await;
    std::fs::create_dir_all(s.ws.join("d")).unwrap();
    std::fs::write(s.ws.join("d/f.txt"), "inside").unwrap();
    std::fs::write(s.outside.join("f.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(&s.outside, s.ws.join("swap")).unwrap();
    let outside_before = entries(&s.outside);
    let id = ok(&s.client, "spool_open", json!({"root": s.ws})).await["session"]
        .as_str()
        .unwrap()
        .to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let racer = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let (d, swap) = (s.ws.join("d"), s.ws.join("swap"));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                exchange(&d, &swap);
                n += 1;
            }
            // Leave `d` a directory again.
            if n % 2 == 1 {
                exchange(&d, &swap);
            }
            swaps.store(n, Ordering::Relaxed);
        })
    };

    let (mut reads_inside, mut writes_ok, mut calls) = (0u64, 0u64, 0u64);
    let mut leaked = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) || reads_inside == 0 || writes_ok == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no read or write got through in 60 s ({calls} calls)"
        );
        let r = call(&s.client, "read_file", json!({"path": "d/f.txt"})).await;
        let shown = text(&r);
        if shown.contains(SECRET)
            || r.structured_content
                .as_ref()
                .is_some_and(|v| v.to_string().contains(SECRET))
        {
            leaked.push(shown);
        } else if r.is_error != Some(true) {
            reads_inside += 1;
        }
        let w = call(
            &s.client,
            "spool_write",
            json!({"session": id, "path": format!("d/w{calls}.txt"), "content": "w\n"}),
        )
        .await;
        if w.is_error != Some(true) {
            writes_ok += 1;
        }
        calls += 1;
    }
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();

    let outside_after = entries(&s.outside);
    eprintln!(
        "race: {} swaps, {calls} read_file + {calls} spool_write calls: {reads_inside} reads inside, {} outside; {writes_ok} writes, {} entries created outside",
        swaps.load(Ordering::Relaxed),
        leaked.len(),
        outside_after.len().saturating_sub(outside_before.len())
    );
    assert!(swaps.load(Ordering::Relaxed) > 0);
    assert!(
        leaked.is_empty(),
        "{} of {calls} reads returned outside bytes, e.g. {}",
        leaked.len(),
        leaked[0]
    );
    assert_eq!(
        outside_after, outside_before,
        "files were created outside the root"
    );
    // Every successful write landed inside the root (in `d`, whichever name it had).
    let inside = entries(&s.ws)
        .into_iter()
        .filter(|e| e.starts_with("d/w"))
        .count() as u64;
    assert_eq!(
        inside, writes_ok,
        "{reads_inside} reads, {writes_ok} writes"
    );
}
