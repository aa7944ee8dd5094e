//! The patchkit toolset through a real MCP client (rmcp over stdio): our diffs applied by
//! `git apply` and GNU `patch -p1`, `git diff --no-index` output applied by
//! `apply_patch`, conflicts where git reports them, root escapes refused, an
//! all-or-nothing batch, commit validators and `patchkit.patch` events.

use crate::common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use common::*;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

/// The structured result of a call that must succeed ([`structured`], named for reading).
fn ok(result: &CallToolResult) -> Value {
    structured(result)
}

fn err(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected an error: {}",
        text(result)
    );
    text(result)
}

pub(crate) struct Setup {
    pub(crate) client: Client,
    pub(crate) work: tempfile::TempDir,
    pub(crate) _state: tempfile::TempDir,
}

/// A stdio server with only patchkit, its workspace root `<tmp>/ws` (also used by
/// `patchkit_edit`).
pub(crate) async fn setup() -> Setup {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let ws_arg = ws.display().to_string();
    let client = stdio_client(
        state.path(),
        &["--toolsets", "patchkit", "--workspace-roots", &ws_arg],
    )
    .await;
    Setup {
        client,
        work,
        _state: state,
    }
}

impl Setup {
    pub(crate) fn ws(&self) -> PathBuf {
        self.work.path().join("ws")
    }
}

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

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// Pairs of (before, after) covering created, deleted, no-newline, CRLF and unicode.
fn cases() -> Vec<(&'static str, Option<String>, Option<String>)> {
    let big_old: String = (0..300).map(|i| format!("line {i}\n")).collect();
    let big_new: String = (0..300)
        .map(|i| match i % 37 {
            0 => format!("changed {i}\n"),
            5 => String::new(),
            _ => format!("line {i}\n"),
        })
        .collect();
    vec![
        (
            "mod.txt",
            Some("a\nb\nc\n".into()),
            Some("a\nB\nc\nd\n".into()),
        ),
        ("big.txt", Some(big_old), Some(big_new)),
        ("created.txt", None, Some("new\nfile\n".into())),
        ("deleted.txt", Some("gone\n".into()), None),
        ("nonl.txt", Some("x\ny".into()), Some("x\nz".into())),
        ("addnl.txt", Some("x\ny".into()), Some("x\ny\n".into())),
        (
            "crlf.txt",
            Some("a\r\nb\r\nc\r\n".into()),
            Some("a\r\nβ\r\nc\r\n".into()),
        ),
        (
            "uni.txt",
            Some("héllo\nwörld\n".into()),
            Some("héllo\n世界\n".into()),
        ),
    ]
}

async fn our_diff(s: &Setup) -> (String, Vec<(&'static str, Option<String>, Option<String>)>) {
    let mut diff = String::new();
    let cases = cases();
    for (path, before, after) in &cases {
        let r = call(
            &s.client,
            "create_diff",
            json!({"path": path, "before": before, "after": after}),
        )
        .await;
        let v = ok(&r);
        diff.push_str(v["diff"].as_str().unwrap());
    }
    (diff, cases)
}

fn write_tree(dir: &Path, cases: &[(&str, Option<String>, Option<String>)], after: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for (path, before, after_text) in cases {
        let side = if after { after_text } else { before };
        if let Some(t) = side {
            std::fs::write(dir.join(path), t).unwrap();
        }
    }
}

#[tokio::test]
async fn our_diffs_apply_with_git_and_gnu_patch() {
    let s = setup().await;
    let (diff, cases) = our_diff(&s).await;
    let patch_file = s.work.path().join("ours.patch");
    std::fs::write(&patch_file, &diff).unwrap();
    let expected_dir = s.work.path().join("expected");
    write_tree(&expected_dir, &cases, true);
    let expected = tree(&expected_dir);

    let git_dir = s.work.path().join("git");
    write_tree(&git_dir, &cases, false);
    let out = Command::new("git")
        .args(["apply", "--whitespace=nowarn"])
        .arg(&patch_file)
        .current_dir(&git_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git apply: {}\n{diff}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&git_dir), expected, "git apply result differs");

    if !have("patch") {
        skip_unless_ci(
            "the GNU patch half: `patch` is not installed (tools/test.sh installs it as root)",
        );
        return;
    }
    let patch_dir = s.work.path().join("patch");
    write_tree(&patch_dir, &cases, false);
    let out = Command::new("patch")
        .args(["-p1", "--batch", "--silent", "-i"])
        .arg(&patch_file)
        .current_dir(&patch_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "patch -p1: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&patch_dir), expected, "GNU patch result differs");
}

#[tokio::test]
async fn git_diffs_apply_with_apply_patch_and_conflicts_match_git() {
    let s = setup().await;
    let dir = s.work.path().join("g");
    std::fs::create_dir_all(&dir).unwrap();
    for (path, before, after) in cases() {
        let old = dir.join(format!("old-{path}"));
        let new = dir.join(format!("new-{path}"));
        let (Some(before), Some(after)) = (before, after) else {
            continue;
        };
        std::fs::write(&old, &before).unwrap();
        std::fs::write(&new, &after).unwrap();
        let out = Command::new("git")
            .args(["diff", "--no-index", "--no-color"])
            .arg(&old)
            .arg(&new)
            .output()
            .unwrap();
        let diff = String::from_utf8(out.stdout).unwrap();
        let r = call(
            &s.client,
            "apply_patch",
            json!({"content": before, "diff": diff}),
        )
        .await;
        assert_eq!(ok(&r)["content"].as_str().unwrap(), after, "{path}");

        // A changed base: where `git apply --check` refuses our diff, we report a
        // conflict too (and where git accepts it, so do we).
        let other = before.replace('b', "Q").replace("line 1\n", "LINE\n");
        let ours = ok(&call(
            &s.client,
            "create_diff",
            json!({"path": "f.txt", "before": before, "after": after}),
        )
        .await);
        let ours = ours["diff"].as_str().unwrap().to_string();
        let case_dir = dir.join(format!("case-{path}"));
        std::fs::create_dir_all(&case_dir).unwrap();
        std::fs::write(case_dir.join("f.txt"), &other).unwrap();
        std::fs::write(case_dir.join("p.patch"), &ours).unwrap();
        let git_ok = Command::new("git")
            .args(["apply", "--check", "p.patch"])
            .current_dir(&case_dir)
            .output()
            .unwrap()
            .status
            .success();
        let check = ok(&call(
            &s.client,
            "check_conflicts",
            json!({"content": other, "diff": ours}),
        )
        .await);
        assert_eq!(
            check["clean"], git_ok,
            "{path}: git apply --check said {git_ok}: {check}"
        );
        if !git_ok {
            let r = call(
                &s.client,
                "apply_patch",
                json!({"content": other, "diff": ours}),
            )
            .await;
            let msg = err(&r);
            assert!(msg.contains("expected") && msg.contains("found"), "{msg}");
        }
    }
}

#[tokio::test]
async fn tools_over_values() {
    let s = setup().await;
    let v = ok(&call(
        &s.client,
        "create_diff",
        json!({"path": "a.txt", "before": "x\n", "after": "y\n", "algorithm": "histogram"}),
    )
    .await);
    assert_eq!(v["changeType"], "modified");
    assert_eq!(v["summary"]["additions"], 1);
    assert_eq!(v["shaBefore"].as_str().unwrap().len(), 64);
    let parsed = ok(&call(&s.client, "parse_patch", json!({"diff": v["diff"]})).await);
    assert_eq!(parsed["files"][0]["path"], "a.txt");
    assert_eq!(parsed["deletions"], 1);
    let sbs = ok(&call(
        &s.client,
        "format_side_by_side",
        json!({"left": {"a": 1}, "right": {"a": 2}}),
    )
    .await);
    assert_eq!(sbs["changedRows"], 1);
    let bad = call(
        &s.client,
        "create_diff",
        json!({"path": "a", "before": null, "after": null}),
    )
    .await;
    assert!(err(&bad).contains("both null"));
    let fuzz = call(
        &s.client,
        "apply_patch",
        json!({"content": "", "diff": "x", "fuzz": 9}),
    )
    .await;
    assert!(err(&fuzz).contains("fuzz"));
}

#[tokio::test]
async fn escapes_are_refused() {
    let s = setup().await;
    let ws = s.ws();
    let evil = s.work.path().join("ws-evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::create_dir_all(ws.join("inner")).unwrap();
    std::os::unix::fs::symlink(&evil, ws.join("link")).unwrap();
    for root in [
        evil.display().to_string(),
        format!("{}/../ws-evil", ws.display()),
        ws.join("link").display().to_string(),
        "/".to_string(),
    ] {
        let r = call(&s.client, "spool_open", json!({"root": root})).await;
        assert!(err(&r).contains("outside"), "{root}");
    }
    let open = ok(&call(&s.client, "spool_open", json!({"root": ws.join("inner")})).await);
    let id = open["session"].as_str().unwrap();
    let open_ws = ok(&call(&s.client, "spool_open", json!({"root": ws})).await);
    let ws_id = open_ws["session"].as_str().unwrap();
    for path in ["../x.txt", "/etc/passwd", "a/../../x"] {
        let r = call(
            &s.client,
            "spool_write",
            json!({"session": id, "path": path, "content": "x"}),
        )
        .await;
        assert!(err(&r).contains("relative"), "{path}");
    }
    let r = call(
        &s.client,
        "spool_write",
        json!({"session": ws_id, "path": "link/x.txt", "content": "x"}),
    )
    .await;
    assert!(err(&r).contains("outside the session root"));
    assert!(std::fs::read_dir(&evil).unwrap().next().is_none());
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    let s = setup().await;
    let ws = s.ws();
    std::fs::write(ws.join("a.txt"), "alpha\nbeta\n").unwrap();
    std::fs::write(ws.join("b.txt"), "bee\n").unwrap();
    let id = ok(&call(&s.client, "spool_open", json!({"root": ws})).await)["session"]
        .as_str()
        .unwrap()
        .to_string();
    let before = tree(&ws);
    let four = json!([
        {"op": "write", "path": "new/c.txt", "content": "c\n"},
        {"op": "replace", "path": "a.txt", "match": "beta", "replacement": "BETA"},
        {"op": "delete", "path": "b.txt"},
        {"op": "write", "path": "d.txt", "content": "d\n"},
    ]);
    // Fifth operation fails while planning (no match) ...
    let mut ops = four.as_array().unwrap().clone();
    ops.push(json!({"op": "replace", "path": "a.txt", "match": "zeta", "replacement": "x"}));
    let r = call(
        &s.client,
        "spool_batch",
        json!({"session": id, "operations": ops}),
    )
    .await;
    assert!(err(&r).contains("operation 5"));
    assert_eq!(tree(&ws), before);
    // ... or while writing (a file where a directory must be): everything restored.
    let mut ops = four.as_array().unwrap().clone();
    ops.push(json!({"op": "write", "path": "a.txt/inner.txt", "content": "x"}));
    let r = call(
        &s.client,
        "spool_batch",
        json!({"session": id, "operations": ops}),
    )
    .await;
    assert!(err(&r).contains("restored byte-for-byte"));
    assert_eq!(tree(&ws), before);
    // The same four alone go through, with per-operation results.
    let r = ok(&call(
        &s.client,
        "spool_batch",
        json!({"session": id, "operations": four}),
    )
    .await);
    assert_eq!(r["results"].as_array().unwrap().len(), 4);
    assert_eq!(r["results"][1]["replacements"], 1);
    assert_eq!(
        std::fs::read_to_string(ws.join("a.txt")).unwrap(),
        "alpha\nBETA\n"
    );
    let status = ok(&call(&s.client, "spool_status", json!({"session": id})).await);
    assert_eq!(status["changed"], 4);
    let page = ok(&call(&s.client, "spool_diff", json!({"session": id, "limit": 3})).await);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let rest = ok(&call(
        &s.client,
        "spool_diff",
        json!({"session": id, "limit": 3, "cursor": page["next_cursor"]}),
    )
    .await);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    let reset = ok(&call(&s.client, "spool_reset", json!({"session": id})).await);
    assert_eq!(reset["restored"].as_array().unwrap().len(), 4);
    assert_eq!(tree(&ws), before);
}

#[tokio::test]
async fn patch_replace_commit_and_events() {
    let s = setup().await;
    let ws = s.ws();
    std::fs::write(ws.join("conf.json"), "{\"a\": 1}\n").unwrap();
    std::fs::write(ws.join("notes.txt"), "one\ntwo\nthree\n").unwrap();
    let id = ok(&call(&s.client, "spool_open", json!({"root": ws})).await)["session"]
        .as_str()
        .unwrap()
        .to_string();
    let d = ok(&call(
        &s.client,
        "create_diff",
        json!({"path": "notes.txt", "before": "one\ntwo\nthree\n", "after": "one\n2\nthree\n"}),
    )
    .await);
    ok(&call(
        &s.client,
        "spool_patch",
        json!({"session": id, "diff": d["diff"]}),
    )
    .await);
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "one\n2\nthree\n"
    );
    // The same patch again conflicts (isError) unless ignoreConflicts.
    let r = call(
        &s.client,
        "spool_patch",
        json!({"session": id, "diff": d["diff"]}),
    )
    .await;
    assert!(err(&r).contains("do not apply"));
    // Literal match by default: "." is not a wildcard.
    let r = call(
        &s.client,
        "spool_replace",
        json!({"session": id, "path": "notes.txt", "match": "o.e", "replacement": "x"}),
    )
    .await;
    assert!(err(&r).contains("not found"));
    ok(&call(&s.client, "spool_replace", json!({"session": id, "path": "notes.txt", "match": "o.e", "replacement": "x", "regex": true})).await);
    // Validators: broken JSON and a forbidden glob refuse the commit.
    ok(&call(
        &s.client,
        "spool_write",
        json!({"session": id, "path": "conf.json", "content": "{broken"}),
    )
    .await);
    ok(&call(
        &s.client,
        "spool_write",
        json!({"session": id, "path": "id.pem", "content": "k"}),
    )
    .await);
    let r = call(&s.client, "spool_commit", json!({"session": id})).await;
    let msg = err(&r);
    assert!(msg.contains("conf.json") && msg.contains("id.pem"), "{msg}");
    let r = call(
        &s.client,
        "spool_commit",
        json!({"session": id, "maxFileBytes": 2, "forbiddenGlobs": []}),
    )
    .await;
    assert!(err(&r).contains("maxFileBytes"));
    ok(&call(
        &s.client,
        "spool_write",
        json!({"session": id, "path": "conf.json", "content": "{\"a\": 2}\n"}),
    )
    .await);
    ok(&call(
        &s.client,
        "spool_delete",
        json!({"session": id, "path": "id.pem"}),
    )
    .await);
    let c = ok(&call(&s.client, "spool_commit", json!({"session": id})).await);
    let committed = c["committed"].as_array().unwrap();
    assert_eq!(committed.len(), 2, "{c}");
    let events = read_json(&s.client, "events://patchkit.patch").await;
    let evs = events["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["data"]["path"], "conf.json");
    assert_eq!(evs[0]["data"]["changeType"], "modified");
    assert!(evs[0]["data"]["additions"].is_number());
    // Re-baselined: nothing left to diff; reset changes nothing.
    let page = ok(&call(&s.client, "spool_diff", json!({"session": id})).await);
    assert!(page["items"].as_array().unwrap().is_empty());
    let reset = ok(&call(&s.client, "spool_reset", json!({"session": id})).await);
    assert!(reset["restored"].as_array().unwrap().is_empty());
    let closed = ok(&call(&s.client, "spool_close", json!({"session": id})).await);
    assert_eq!(closed["closed"], true);
    let r = call(&s.client, "spool_status", json!({"session": id})).await;
    assert!(err(&r).contains("no open spool session"));
}

#[tokio::test]
async fn sessions_expire() {
    let s = setup().await;
    let id = ok(&call(
        &s.client,
        "spool_open",
        json!({"root": s.ws(), "ttlSecs": 1}),
    )
    .await)["session"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let r = call(&s.client, "spool_status", json!({"session": id})).await;
    assert!(err(&r).contains("expired"));
}

#[tokio::test]
async fn read_only_hints() {
    let s = setup().await;
    let tools = s.client.list_all_tools().await.unwrap();
    let ro = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.annotations.as_ref())
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false)
    };
    for name in [
        "create_diff",
        "apply_patch",
        "check_conflicts",
        "format_side_by_side",
        "parse_patch",
        "spool_diff",
        "spool_status",
    ] {
        assert!(ro(name), "{name} should be read-only");
    }
    for name in [
        "spool_open",
        "spool_write",
        "spool_batch",
        "spool_commit",
        "spool_reset",
    ] {
        assert!(!ro(name), "{name} writes");
    }
}

#[test]
fn diff_subcommand_behaves_like_diff() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "1\n2\n").unwrap();
    std::fs::write(&b, "1\n3\n").unwrap();
    let out = Command::new(BIN)
        .arg("diff")
        .arg(&a)
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let out = Command::new(BIN)
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("-2\n+3\n"), "{text}");
    let out = Command::new(BIN)
        .arg("diff")
        .arg(&a)
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Classic patches (no `diff --git` line) with `a/`/`b/` prefixes and `/dev/null` on one
/// side create and delete the same files `git apply` does.
#[tokio::test]
async fn classic_create_and_delete_patches_match_git_apply() {
    if !have("git") {
        return;
    }
    let s = setup().await;
    let ws = s.ws();
    std::fs::write(ws.join("a.txt"), "gone\n").unwrap();
    std::fs::write(ws.join("keep.txt"), "kept\n").unwrap();
    let git_dir = s.work.path().join("git");
    std::fs::create_dir_all(&git_dir).unwrap();
    std::fs::write(git_dir.join("a.txt"), "gone\n").unwrap();
    std::fs::write(git_dir.join("keep.txt"), "kept\n").unwrap();
    let patch = "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n\
                 --- a/a.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n";
    std::fs::write(s.work.path().join("p.patch"), patch).unwrap();
    let out = Command::new("git")
        .args(["apply"])
        .arg(s.work.path().join("p.patch"))
        .current_dir(&git_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = ok(&call(&s.client, "spool_open", json!({"root": ws})).await)["session"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&call(
        &s.client,
        "spool_patch",
        json!({"session": id, "diff": patch}),
    )
    .await);
    assert_eq!(tree(&ws), tree(&git_dir));
    assert!(ws.join("new.txt").is_file() && !ws.join("b").exists());
}
