//! `edit_files` and `spool_replace`'s unique-match rule through a real MCP client (rmcp
//! over stdio): ambiguous and missing matches are `isError` and write nothing, a
//! whitespace-tolerant match is applied and reported, CRLF / BOM / missing final
//! newline survive byte for byte, several files are written all-or-nothing, `expectedSha`
//! refuses a changed file, `dryRun` writes nothing, the diff pages with a cursor, and
//! paths outside the workspace roots are refused.

use crate::common;

use common::*;

use crate::patchkit::{Setup, setup};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

impl Setup {
    fn put(&self, rel: &str, bytes: &[u8]) {
        std::fs::write(self.ws().join(rel), bytes).unwrap();
    }
    fn get(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.ws().join(rel)).unwrap()
    }
    async fn edit(&self, args: Value) -> Value {
        ok(&self.client, "edit_files", args).await
    }
    async fn refused(&self, args: Value) -> String {
        err(&self.client, "edit_files", args).await
    }
}

const TWO_FNS: &str = "fn first() {\n    x += 1;\n}\n\nfn second() {\n    x += 1;\n}\n";

#[tokio::test]
async fn ambiguous_match_names_both_lines_and_writes_nothing() {
    let s = setup().await;
    s.put("lib.rs", TWO_FNS.as_bytes());
    let msg = s
        .refused(json!({"edits": [{"path": "lib.rs", "oldText": "    x += 1;", "newText": "    x += 2;"}]}))
        .await;
    assert!(msg.contains("lib.rs"), "{msg}");
    assert!(msg.contains("matches 2 places"), "{msg}");
    assert!(
        msg.contains("line 2 (after line 1: `fn first() {`)"),
        "{msg}"
    );
    assert!(
        msg.contains("line 6 (after line 5: `fn second() {`)"),
        "{msg}"
    );
    assert_eq!(s.get("lib.rs"), TWO_FNS.as_bytes());
    // Widened with the line before, it matches once and only the second changes.
    let r = s
        .edit(json!({"edits": [{"path": "lib.rs", "oldText": "fn second() {\n    x += 1;", "newText": "fn second() {\n    x += 2;"}]}))
        .await;
    assert_eq!(r["applied"], true);
    assert_eq!(r["edits"][0]["lines"], json!(["5-6"]));
    assert_eq!(
        String::from_utf8(s.get("lib.rs")).unwrap(),
        TWO_FNS.replace("fn second() {\n    x += 1;", "fn second() {\n    x += 2;")
    );
    assert!(
        r["diff"]
            .as_str()
            .unwrap()
            .contains("-    x += 1;\n+    x += 2;")
    );
}

#[tokio::test]
async fn zero_match_is_an_error() {
    let s = setup().await;
    s.put("a.txt", b"alpha\nbeta\n");
    let msg = s
        .refused(json!({"edits": [{"path": "a.txt", "oldText": "gamma", "newText": "x"}]}))
        .await;
    assert!(msg.contains("a.txt") && msg.contains("not found"), "{msg}");
    assert_eq!(s.get("a.txt"), b"alpha\nbeta\n");
}

#[tokio::test]
async fn whitespace_tolerant_match_is_applied_and_reported() {
    let s = setup().await;
    s.put("t.go", b"func f() {\n\tif x {\n\t\ty()\n\t}\n}\n");
    let r = s
        .edit(json!({"edits": [{"path": "t.go",
            "oldText": "    if x {\n        y()\n    }",
            "newText": "    if x {\n        z()\n    }"}]}))
        .await;
    let e = &r["edits"][0];
    assert_eq!(e["match"], "whitespace-tolerant", "{r}");
    assert_eq!(e["lines"], json!(["2-4"]));
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("line 2") && notes.contains("\\\\t"),
        "{notes}"
    );
    assert_eq!(s.get("t.go"), b"func f() {\n\tif x {\n\t\tz()\n\t}\n}\n");
    // An exact match says so.
    let r = s
        .edit(json!({"edits": [{"path": "t.go", "oldText": "z()", "newText": "w()"}]}))
        .await;
    assert_eq!(r["edits"][0]["match"], "exact");
}

#[tokio::test]
async fn crlf_bom_and_missing_final_newline_are_kept() {
    let s = setup().await;
    s.put("win.txt", b"\xef\xbb\xbfone\r\ntwo\r\nthree");
    let r = s
        .edit(json!({"edits": [{"path": "win.txt", "oldText": "two\nthree", "newText": "2\n3\n"}]}))
        .await;
    assert_eq!(s.get("win.txt"), b"\xef\xbb\xbfone\r\n2\r\n3");
    assert_eq!(r["files"][0]["lineEndings"], "crlf");
    assert_eq!(r["files"][0]["bom"], true);
    let sha = hex(&Sha256::digest(s.get("win.txt")));
    assert_eq!(r["files"][0]["shaAfter"], sha);
    // A file without a final newline keeps lacking one; LF keeps LF.
    s.put("nonl.txt", b"a\nb");
    s.edit(json!({"edits": [{"path": "nonl.txt", "oldText": "b", "newText": "c"}]}))
        .await;
    assert_eq!(s.get("nonl.txt"), b"a\nc");
}

#[tokio::test]
async fn several_files_are_all_or_nothing() {
    let s = setup().await;
    s.put("one.txt", b"keep me\n");
    s.put("two.txt", b"dup\ndup\n");
    let msg = s
        .refused(json!({"edits": [
            {"path": "one.txt", "oldText": "keep me", "newText": "changed"},
            {"path": "two.txt", "oldText": "dup", "newText": "x"}]}))
        .await;
    assert!(
        msg.contains("two.txt") && msg.contains("nothing was written"),
        "{msg}"
    );
    assert_eq!(s.get("one.txt"), b"keep me\n");
    assert_eq!(s.get("two.txt"), b"dup\ndup\n");
    // Both fine: both written, edits of one file in order.
    let r = s
        .edit(json!({"edits": [
            {"path": "one.txt", "oldText": "keep me", "newText": "changed"},
            {"path": "two.txt", "oldText": "dup\ndup", "newText": "dup\nDUP"},
            {"path": "two.txt", "oldText": "dup\nDUP", "newText": "both"}]}))
        .await;
    assert_eq!(r["files"].as_array().unwrap().len(), 2);
    assert_eq!(s.get("one.txt"), b"changed\n");
    assert_eq!(s.get("two.txt"), b"both\n");
    // No batch record is left behind.
    let batches = s._state.path().join("patchkit").join("batches");
    assert_eq!(std::fs::read_dir(batches).unwrap().count(), 0);
}

#[tokio::test]
async fn expected_sha_refuses_a_changed_file() {
    let s = setup().await;
    s.put("c.txt", b"v1\n");
    let seen = hex(&Sha256::digest(b"v1\n"));
    s.put("c.txt", b"v2\n");
    let now = hex(&Sha256::digest(b"v2\n"));
    let msg = s
        .refused(
            json!({"edits": [{"path": "c.txt", "oldText": "v2", "newText": "v3"}],
                        "expectedSha": {"c.txt": seen}}),
        )
        .await;
    assert!(msg.contains(&now), "names the current sha: {msg}");
    assert_eq!(s.get("c.txt"), b"v2\n");
    s.edit(
        json!({"edits": [{"path": "c.txt", "oldText": "v2", "newText": "v3"}],
                  "expectedSha": {"c.txt": now}}),
    )
    .await;
    assert_eq!(s.get("c.txt"), b"v3\n");
}

#[tokio::test]
async fn dry_run_writes_nothing_and_returns_the_diff() {
    let s = setup().await;
    s.put("d.txt", b"a\nb\nc\n");
    let r = s
        .edit(json!({"edits": [{"path": "d.txt", "oldText": "b", "newText": "B"}], "dryRun": true}))
        .await;
    assert_eq!(r["applied"], false);
    assert_eq!(r["dryRun"], true);
    let diff = r["diff"].as_str().unwrap();
    assert!(diff.starts_with("diff --git a/d.txt b/d.txt"), "{diff}");
    assert!(diff.contains("-b\n+B\n"), "{diff}");
    assert_eq!(s.get("d.txt"), b"a\nb\nc\n");
}

#[tokio::test]
async fn replace_all_and_paged_diff() {
    let s = setup().await;
    let body: String = (0..400).map(|i| format!("item {i} old\n")).collect();
    s.put("big.txt", body.as_bytes());
    let r = s
        .edit(json!({"edits": [{"path": "big.txt", "oldText": " old\n", "newText": " new\n", "replaceAll": true}],
                     "maxDiffBytes": 1000}))
        .await;
    assert_eq!(r["edits"][0]["replacements"], 400);
    assert_eq!(
        s.get("big.txt"),
        body.replace(" old\n", " new\n").as_bytes()
    );
    let total = r["diffBytes"].as_u64().unwrap() as usize;
    let mut diff = r["diff"].as_str().unwrap().to_string();
    assert!(diff.len() <= 1000);
    let mut cursor = r["next_cursor"].clone();
    let mut pages = 1;
    while let Some(c) = cursor.as_str() {
        let p = s.edit(json!({"cursor": c, "maxDiffBytes": 1000})).await;
        let part = p["diff"].as_str().unwrap();
        assert!(part.len() <= 1000 && !part.is_empty());
        diff.push_str(part);
        cursor = p["next_cursor"].clone();
        pages += 1;
    }
    assert!(pages > 10, "{pages}");
    assert_eq!(diff.len(), total);
    assert_eq!(diff.matches("\n+item ").count(), 400);
    // A cursor goes without edits.
    let c = r["next_cursor"].as_str().unwrap();
    let msg = s
        .refused(
            json!({"cursor": c, "edits": [{"path": "big.txt", "oldText": "x", "newText": "y"}]}),
        )
        .await;
    assert!(msg.contains("without edits"), "{msg}");
}

#[tokio::test]
async fn paths_outside_the_roots_are_refused() {
    let s = setup().await;
    let outside = s.work.path().join("outside.txt");
    std::fs::write(&outside, "secret\n").unwrap();
    std::os::unix::fs::symlink(&outside, s.ws().join("link.txt")).unwrap();
    for path in [
        outside.display().to_string(),
        "../outside.txt".to_string(),
        "link.txt".to_string(),
    ] {
        let msg = s
            .refused(json!({"edits": [{"path": path, "oldText": "secret", "newText": "x"}]}))
            .await;
        assert!(msg.contains("outside the workspace roots"), "{path}: {msg}");
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"secret\n");
}

#[tokio::test]
async fn spool_replace_refuses_ambiguous_matches_unless_first() {
    let s = setup().await;
    s.put("lib.rs", TWO_FNS.as_bytes());
    let id = ok(&s.client, "spool_open", json!({"root": s.ws()})).await["session"]
        .as_str()
        .unwrap()
        .to_string();
    let msg = err(
        &s.client,
        "spool_replace",
        json!({"session": id, "path": "lib.rs", "match": "    x += 1;", "replacement": "    x += 2;"}),
    )
    .await;
    assert!(msg.contains("matches 2 places"), "{msg}");
    assert!(msg.contains("line 2") && msg.contains("line 6"), "{msg}");
    assert_eq!(s.get("lib.rs"), TWO_FNS.as_bytes());
    // `first: true` keeps the old behaviour: the first one changes.
    let r = ok(
        &s.client,
        "spool_replace",
        json!({"session": id, "path": "lib.rs", "match": "    x += 1;", "replacement": "    x += 2;", "first": true}),
    )
    .await;
    assert_eq!(r["results"][0]["replacements"], 1);
    assert_eq!(
        String::from_utf8(s.get("lib.rs")).unwrap(),
        TWO_FNS.replacen("x += 1", "x += 2", 1)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `edit_files` writes through the spool batch writer: a server SIGKILLed between its
/// first and last rename is rolled back on the next start (all files old, no temp file,
/// no batch record).
#[tokio::test]
async fn edits_killed_mid_write_are_rolled_back_on_restart() {
    use rmcp::{ServiceExt, transport::TokioChildProcess};
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let spawn = || {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("--state-dir")
            .arg(state.path())
            .args(["--toolsets", "patchkit", "--workspace-roots"])
            .arg(&ws);
        cmd.env_remove("RUST_LOG");
        let (child, _) = TokioChildProcess::builder(cmd)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn cortex-mcp");
        let pid = child.id().expect("child pid");
        async move { (().serve(child).await.expect("initialize over stdio"), pid) }
    };
    let old = |i: usize| format!("head {i}\n{}", "filler line\n".repeat(4 * 1024));
    for i in 0..120 {
        std::fs::write(ws.join(format!("f{i:03}.txt")), old(i)).unwrap();
    }
    let (client, pid) = spawn().await;
    let edits: Vec<Value> = (0..120)
        .map(|i| json!({"path": format!("f{i:03}.txt"), "oldText": format!("head {i}\n"), "newText": format!("new {i}\n")}))
        .collect();
    let peer = client.peer().clone();
    let running = tokio::spawn(async move {
        let args = json!({"edits": edits});
        let _ = peer
            .call_tool(
                rmcp::model::CallToolRequestParams::new("edit_files")
                    .with_arguments(args.as_object().cloned().unwrap()),
            )
            .await;
    });
    let first = ws.join("f000.txt");
    let mut killed_mid_write = false;
    while !running.is_finished() {
        if std::fs::read(&first).is_ok_and(|b| b.starts_with(b"new")) {
            // SAFETY: sends SIGKILL to the server this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            killed_mid_write =
                std::fs::read(ws.join("f119.txt")).is_ok_and(|b| b.starts_with(b"head"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
    }
    let _ = running.await;
    drop(client);
    assert!(
        killed_mid_write,
        "the kill must land between the first and the last rename"
    );
    let (client, _pid) = spawn().await;
    // Recovery runs when the toolset starts, before the first call is answered.
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "edit_files"));
    assert_batch_rolled_back(&ws, state.path(), 120, old);
}

/// A single-file edit needs no intent record (its one rename is atomic), so it works
/// with the record directory unusable; an edit of several files records its intent
/// before any rename, so without a usable record directory it writes nothing.
#[tokio::test]
async fn single_file_edit_writes_no_intent_record_multi_file_needs_one() {
    let s = setup().await;
    s.put("a.txt", b"alpha\n");
    s.put("b.txt", b"beta\n");
    let batches = s._state.path().join("patchkit").join("batches");
    std::fs::remove_dir(&batches).unwrap();
    // A file where the directory was: no record can be created under it.
    std::fs::write(&batches, b"not a directory").unwrap();
    let r = s
        .edit(json!({"edits": [{"path": "a.txt", "oldText": "alpha", "newText": "ALPHA"}]}))
        .await;
    assert_eq!(r["applied"], true, "{r}");
    assert_eq!(s.get("a.txt"), b"ALPHA\n");
    let msg = s
        .refused(json!({"edits": [
            {"path": "a.txt", "oldText": "ALPHA", "newText": "one"},
            {"path": "b.txt", "oldText": "beta", "newText": "two"}]}))
        .await;
    assert!(
        msg.contains("recording the edits") && msg.contains("nothing was written"),
        "{msg}"
    );
    assert_eq!(s.get("a.txt"), b"ALPHA\n");
    assert_eq!(s.get("b.txt"), b"beta\n");
    let temps: Vec<String> = std::fs::read_dir(s.ws())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".spool-"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    // With the directory back, the same two-file edit is written and its record removed.
    std::fs::remove_file(&batches).unwrap();
    std::fs::create_dir(&batches).unwrap();
    s.edit(json!({"edits": [
        {"path": "a.txt", "oldText": "ALPHA", "newText": "one"},
        {"path": "b.txt", "oldText": "beta", "newText": "two"}]}))
        .await;
    assert_eq!(s.get("a.txt"), b"one\n");
    assert_eq!(s.get("b.txt"), b"two\n");
    assert_eq!(std::fs::read_dir(&batches).unwrap().count(), 0);
}
