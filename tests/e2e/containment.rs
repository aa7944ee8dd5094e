//! Containment through a real MCP client (rmcp over stdio) against a server that runs
//! under an address-space limit (`RLIMIT_AS`), so a regression fails the test instead of
//! taking the machine: graphs that amplify a few KB of definition into gigabytes, and a
//! `spool_replace` that would build a 20 GB file, end with `isError` naming the call's
//! memory budget while the server's peak RSS stays small; CPU work stops within a
//! second or two of a deadline reply; `create_diff` keeps its `timeoutMs` on one huge line.

use crate::common;

use std::{path::Path, time::Duration};

use common::{BIN, Client, assert_batch_rolled_back, call, structured, text};
use rmcp::{ServiceExt, model::CallToolResult, transport::TokioChildProcess};
use serde_json::{Value, json};

/// Address space the server may map. A healthy server (tokio workers, mimalloc arenas,
/// blocking threads with their stacks) stays far below it; one that builds gigabytes
/// fails its allocations instead of exhausting the machine.
const ADDRESS_SPACE: u64 = 3 * 1024 * 1024 * 1024;

/// Peak resident memory a contained server may reach in these tests.
const MAX_PEAK_RSS: u64 = 768 * 1024 * 1024;

struct Server {
    client: Client,
    pid: u32,
    work: tempfile::TempDir,
    _state: tempfile::TempDir,
}

/// Starts the server over stdio under [`ADDRESS_SPACE`] with the workspace at `work/ws`.
async fn contained(extra: &[&str]) -> Server {
    contained_with("mvp,patchkit,batch", extra).await
}

/// Like [`contained`], with the given toolsets.
async fn contained_with(toolsets: &str, extra: &[&str]) -> Server {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let (client, pid) = spawn_toolsets(state.path(), &ws, toolsets, extra).await;
    Server {
        client,
        pid,
        work,
        _state: state,
    }
}

/// Starts the server over `state` and `ws` under [`ADDRESS_SPACE`]; returns its pid.
async fn spawn_contained(state: &Path, ws: &Path, extra: &[&str]) -> (Client, u32) {
    spawn_toolsets(state, ws, "mvp,patchkit,batch", extra).await
}

async fn spawn_toolsets(state: &Path, ws: &Path, toolsets: &str, extra: &[&str]) -> (Client, u32) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--state-dir")
        .arg(state)
        .args(["--toolsets", toolsets, "--workspace-roots"])
        .arg(ws)
        .args(extra);
    cmd.env_remove("RUST_LOG");
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (child, _) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn cortex-mcp");
    let pid = child.id().expect("child pid");
    let client = ().serve(child).await.expect("initialize over stdio");
    (client, pid)
}

impl Server {
    fn ws(&self) -> std::path::PathBuf {
        self.work.path().join("ws")
    }

    /// A field of /proc/<pid>/status in bytes (VmHWM: peak RSS, VmRSS: RSS now).
    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("the server is still running");
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("{field} in /proc status"));
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap();
        kb * 1024
    }

    /// Milliseconds of CPU per 2 s the server uses once the stop flag has acted: 1 s
    /// windows from now, until one uses under 150 ms (the server went quiet) or one
    /// ends 3.5 s or more after now (it kept computing); that window's figure, doubled.
    async fn cpu_ms_after_reply(&self) -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_millis(3500);
        loop {
            let before = self.cpu_ticks();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let used = (self.cpu_ticks() - before) * 2000 / ticks_per_sec();
            if used < 300 || std::time::Instant::now() >= deadline {
                return used;
            }
        }
    }

    fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    /// CPU time (user + system) the server has used, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        // Fields after the `(comm)`; utime and stime are fields 14 and 15 overall.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// The server answers a cheap call (it did not abort).
    async fn still_serves(&self) {
        let r = call(&self.client, "health", json!({})).await;
        assert_ne!(r.is_error, Some(true), "{}", text(&r));
    }
}

fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

fn over_budget(result: &CallToolResult) -> String {
    let t = text(result);
    assert_eq!(
        result.is_error,
        Some(true),
        "expected an error, got {t:.2000}"
    );
    assert!(
        t.contains("call memory budget exceeded") && t.contains("--call-memory-budget-bytes"),
        "the error names the budget and its flag: {t:.2000}"
    );
    t
}

fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

async fn graph(s: &Server, def: Value) -> String {
    let r = call(&s.client, "create_graph", def).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    structured(&r)["graphId"].as_str().unwrap().to_string()
}

/// Finding 15.2: four parallel map nodes that each read a 1 MiB file 1,000 times (16 at
/// once) asked for ~3 GB per node and aborted the process.
#[tokio::test]
async fn map_nodes_reading_a_big_file_a_thousand_times_end_over_budget() {
    let s = contained(&[]).await;
    std::fs::write(s.ws().join("big.txt"), "x".repeat(1024 * 1024)).unwrap();
    let healthy = s.peak_rss();
    let map = |id: &str| {
        json!({"id": id, "type": "map", "config": {
            "tool": "read_file", "over": "{{inputs.files}}", "concurrency": 16,
            "arguments": {"path": "{{item}}", "length": 1048576}}})
    };
    let id = graph(
        &s,
        json!({"name": "amplify", "nodes": [map("a"), map("b"), map("c"), map("d")], "edges": []}),
    )
    .await;
    let files = vec!["big.txt"; 1000];
    let r = call(
        &s.client,
        "execute_graph",
        json!({"graphId": id, "inputs": {"files": files}, "config": {"parallel": true}}),
    )
    .await;
    over_budget(&r);
    s.still_serves().await;
    let peak = s.peak_rss();
    eprintln!(
        "map amplification: healthy peak {} MiB, peak after {} MiB",
        mib(healthy),
        mib(peak)
    );
    assert!(
        peak < MAX_PEAK_RSS,
        "peak RSS {} MiB passes {} MiB",
        mib(peak),
        mib(MAX_PEAK_RSS)
    );
}

/// Finding 15.2: a chain of `format_side_by_side` nodes, each embedding the previous
/// output twice, doubled its way to 4.4 GB.
#[tokio::test]
async fn a_chain_of_doubling_side_by_side_nodes_ends_over_budget() {
    let s = contained(&[]).await;
    let mut nodes = vec![json!({"id": "n0", "type": "tool", "config": {
        "tool": "format_side_by_side",
        "arguments": {"left": "{{inputs.seed}}", "right": "{{inputs.seed}}"}}})];
    let mut edges = Vec::new();
    for i in 1..40 {
        let prev = format!("{{{{nodes.n{}.text}}}}", i - 1);
        nodes.push(json!({"id": format!("n{i}"), "type": "tool", "config": {
            "tool": "format_side_by_side",
            "arguments": {"left": {"a": prev, "b": prev}, "right": {"a": prev, "b": prev}}}}));
        edges.push(json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}));
    }
    let id = graph(
        &s,
        json!({"name": "doubling", "nodes": nodes, "edges": edges}),
    )
    .await;
    let r = call(
        &s.client,
        "execute_graph",
        json!({"graphId": id, "inputs": {"seed": "y".repeat(1000)}}),
    )
    .await;
    over_budget(&r);
    s.still_serves().await;
    let peak = s.peak_rss();
    eprintln!("side-by-side doubling: peak {} MiB", mib(peak));
    assert!(
        peak < MAX_PEAK_RSS,
        "peak RSS {} MiB passes {} MiB",
        mib(peak),
        mib(MAX_PEAK_RSS)
    );
}

/// Finding 15.3: `spool_replace` with `all` asked for ~20 GB (a 100 KB replacement of
/// each "a" of a 200 KB file; the same with the regex `x*`, which matches everywhere).
#[tokio::test]
async fn spool_replace_that_would_build_gigabytes_ends_over_budget() {
    let s = contained(&[]).await;
    let original = "a".repeat(200 * 1024);
    std::fs::write(s.ws().join("f.txt"), &original).unwrap();
    let open = call(
        &s.client,
        "spool_open",
        json!({"root": s.ws().display().to_string()}),
    )
    .await;
    let session = structured(&open)["session"].as_str().unwrap().to_string();
    let huge = "b".repeat(100 * 1024);
    for (pattern, regex) in [("a", false), ("x*", true)] {
        let r = call(
            &s.client,
            "spool_replace",
            json!({"session": session, "path": "f.txt", "match": pattern, "replacement": huge,
                   "regex": regex, "all": true}),
        )
        .await;
        over_budget(&r);
        assert_eq!(
            std::fs::read_to_string(s.ws().join("f.txt")).unwrap(),
            original,
            "nothing is written when the plan is over budget"
        );
    }
    // The same operation inside spool_batch is refused the same way.
    let r = call(
        &s.client,
        "spool_batch",
        json!({"session": session, "operations": [
            {"op": "write", "path": "g.txt", "content": "g"},
            {"op": "replace", "path": "f.txt", "match": "a", "replacement": huge, "all": true}]}),
    )
    .await;
    over_budget(&r);
    assert!(!s.ws().join("g.txt").exists());
    // A replacement that fits still works.
    let r = call(
        &s.client,
        "spool_replace",
        json!({"session": session, "path": "f.txt", "match": "a", "replacement": "bb", "all": true}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert_eq!(
        std::fs::metadata(s.ws().join("f.txt")).unwrap().len(),
        400 * 1024
    );
    let peak = s.peak_rss();
    eprintln!("spool_replace blow-up: peak {} MiB", mib(peak));
    assert!(
        peak < MAX_PEAK_RSS,
        "peak RSS {} MiB passes {} MiB",
        mib(peak),
        mib(MAX_PEAK_RSS)
    );
}

/// A hunk whose 400 context lines match everywhere but at their last line: every
/// offset of the 8,000-line text is tried, line by line, for each of the 60 hunks.
fn pathological_patch() -> (String, String) {
    let content = "a\n".repeat(8000);
    let mut diff = String::from("--- a/f\n+++ b/f\n");
    for h in 0..60 {
        let start = h * 100 + 1;
        diff.push_str(&format!("@@ -{start},401 +{start},401 @@\n"));
        for _ in 0..400 {
            diff.push_str(" a\n");
        }
        diff.push_str("-b\n+c\n");
    }
    (content, diff)
}

/// Finding 15.6: `apply_patch` calls that answered "deadline exceeded" kept both cores
/// busy for ~47 s more. The server must be idle within a second or two of the reply.
#[tokio::test]
async fn cpu_work_stops_soon_after_the_deadline_reply() {
    let s = contained(&["--request-timeout-secs", "1"]).await;
    let (content, diff) = pathological_patch();
    let calls: Vec<Value> = (0..4)
        .map(|_| json!({"tool": "apply_patch", "arguments": {"content": content, "diff": diff, "fuzz": 3}}))
        .collect();
    let r = call(
        &s.client,
        "batch",
        json!({"calls": calls, "max_concurrency": 4}),
    )
    .await;
    let t = text(&r);
    assert!(
        t.contains("deadline"),
        "the batch ran into its deadline: {t:.1000}"
    );
    // Give the stop flag a moment, then the server must use (almost) no CPU.
    let used = s.cpu_ms_after_reply().await;
    eprintln!("CPU used in the 2 s after a deadline reply: {used} ms");
    assert!(
        used < 300,
        "the server kept computing after its deadline reply: {used} ms of CPU in 2 s"
    );
    // A single call the same way.
    let r = call(
        &s.client,
        "apply_patch",
        json!({"content": content, "diff": diff, "fuzz": 3}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("deadline"), "{}", text(&r));
    let used = s.cpu_ms_after_reply().await;
    assert!(
        used < 300,
        "apply_patch kept computing after its deadline reply: {used} ms of CPU in 2 s"
    );
}

/// Finding 15.6: `create_diff` on one very long line. The diff is line-level (never
/// char-level), so the work is linear in the input: a multi-MB single line costs the
/// server a fraction of a second of CPU whatever `timeoutMs` says.
#[tokio::test]
async fn create_diff_on_one_huge_line_is_cheap() {
    let s = contained(&[]).await;
    let n = 2_000_000usize;
    let before: String = (0..n)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let mut after = before.clone();
    after.replace_range(n / 2..n / 2 + 10, "ZZZZZZZZZZ");
    let cpu = s.cpu_ticks();
    let r = call(
        &s.client,
        "create_diff",
        json!({"path": "one-line.txt", "before": before, "after": after, "timeoutMs": 50}),
    )
    .await;
    let used_ms = (s.cpu_ticks() - cpu) * 1000 / ticks_per_sec();
    eprintln!("create_diff of a 2 MB line: {used_ms} ms of server CPU");
    assert_ne!(r.is_error, Some(true), "{:.1000}", text(&r));
    let patch = structured(&r);
    assert_eq!(patch["summary"]["additions"], 1);
    assert_eq!(patch["summary"]["deletions"], 1);
    assert!(
        used_ms < 5000,
        "a line-level diff of one line took {used_ms} ms of CPU"
    );
}

/// Issue 16.17: `optimize_graph` flagged the five largest outputs as memory-heavy with
/// no threshold (three nodes of 122-440 bytes were all flagged).
#[tokio::test]
async fn optimize_graph_flags_only_outputs_past_the_threshold() {
    let s = contained(&[]).await;
    std::fs::write(s.ws().join("small.txt"), "tiny").unwrap();
    std::fs::write(s.ws().join("large.txt"), "z".repeat(200 * 1024)).unwrap();
    let read = |id: &str, path: &str| json!({"id": id, "type": "tool", "config": {"tool": "read_file", "arguments": {"path": path}}});
    let id = graph(
        &s,
        json!({"name": "sizes", "nodes": [
            read("small1", "small.txt"), read("small2", "small.txt"),
            {"id": "gate", "type": "gate", "config": {"condition": "true"}},
            read("large", "large.txt")], "edges": []}),
    )
    .await;
    let r = call(&s.client, "execute_graph", json!({"graphId": id})).await;
    assert_eq!(structured(&r)["status"], "completed", "{}", text(&r));
    let r = call(
        &s.client,
        "optimize_graph",
        json!({"graphId": id, "optimizationType": "memory"}),
    )
    .await;
    let o = structured(&r);
    let heavy: Vec<&str> = o["memoryHeavyNodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(heavy, vec!["large"], "{o:#}");
}

/// Issue 16.13: SIGKILL during a 120-file `spool_batch` left 15 files new and 105 old and
/// a temp file in the workspace. After a restart every interrupted batch is rolled back:
/// all files old, no temp file, no batch record left.
#[tokio::test]
async fn a_batch_killed_mid_write_is_rolled_back_on_restart() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let old = |i: usize| format!("old {i}\n").repeat(8 * 1024);
    let new = |i: usize| format!("new {i}\n").repeat(8 * 1024);
    for i in 0..120 {
        std::fs::write(ws.join(format!("f{i:03}.txt")), old(i)).unwrap();
    }
    let (client, pid) = spawn_contained(state.path(), &ws, &[]).await;
    let open = call(
        &client,
        "spool_open",
        json!({"root": ws.display().to_string()}),
    )
    .await;
    let session = structured(&open)["session"].as_str().unwrap().to_string();
    let operations: Vec<Value> = (0..120)
        .map(|i| json!({"op": "write", "path": format!("f{i:03}.txt"), "content": new(i)}))
        .collect();
    let peer = client.peer().clone();
    let batch = tokio::spawn(async move {
        let args = json!({"session": session, "operations": operations});
        let _ = peer
            .call_tool(
                rmcp::model::CallToolRequestParams::new("spool_batch")
                    .with_arguments(args.as_object().cloned().unwrap()),
            )
            .await;
    });
    // Kill the server as soon as the first file is renamed into place.
    let first = ws.join("f000.txt");
    let mut killed_mid_batch = false;
    for _ in 0..200_000 {
        if std::fs::read(&first).is_ok_and(|b| b.starts_with(b"new")) {
            // SAFETY: sends SIGKILL to the server this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            killed_mid_batch =
                std::fs::read(ws.join("f119.txt")).is_ok_and(|b| b.starts_with(b"old"));
            break;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let _ = batch.await;
    drop(client);
    assert!(
        killed_mid_batch,
        "the kill must land between the first and the last rename"
    );
    // Restart over the same state directory: the interrupted batch is rolled back.
    let (client, _pid) = spawn_contained(state.path(), &ws, &[]).await;
    let r = call(&client, "health", json!({})).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert_batch_rolled_back(&ws, state.path(), 120, old);
}

/// The budget is the flag's: with 1 MiB, a diff whose hunks and text would hold more, and
/// a batch whose results would, end with the budget error; smaller work still runs.
#[tokio::test]
async fn the_budget_follows_its_flag_for_diffs_and_batches() {
    let s = contained(&["--call-memory-budget-bytes", "1048576"]).await;
    let side = "line\n".repeat(120 * 1024);
    let r = call(
        &s.client,
        "create_diff",
        json!({"path": "f", "before": side, "after": format!("{side}x\n")}),
    )
    .await;
    over_budget(&r);
    let r = call(
        &s.client,
        "create_diff",
        json!({"path": "f", "before": "a\n", "after": "b\n"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    std::fs::write(s.ws().join("k.txt"), "k".repeat(200 * 1024)).unwrap();
    let calls: Vec<Value> = (0..8)
        .map(|_| json!({"tool": "read_file", "arguments": {"path": "k.txt"}}))
        .collect();
    let r = call(&s.client, "batch", json!({"calls": calls})).await;
    over_budget(&r);
    let r = call(&s.client, "batch", json!({"calls": calls[..2]})).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
}

/// Text every secret rule has to read, with no findings; the non-ASCII letters keep the
/// regex engines off their fastest (ASCII-only) path, so the scan takes several seconds.
fn generate_scan_tree(root: &Path, files: usize, bytes: usize) {
    let line = "let tokén_valué = compute(alpha, beta); // naïve café crème brûlée\n";
    let body = line.repeat(bytes / line.len());
    for f in 0..files {
        let dir = root.join(format!("d{}", f / 100));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{f}.txt")), &body).unwrap();
    }
}

/// Issue 15: `run_security_scan` and `create_review` walks did not poll the stop flag,
/// so a scan that answered "deadline exceeded" kept the cores busy until it had read
/// the whole tree. The walk now quits between files: the server is idle within a second
/// or two of the reply.
#[tokio::test]
async fn scans_stop_soon_after_the_deadline_reply() {
    let s = contained_with("asbr,mvp,patchkit,batch", &["--request-timeout-secs", "1"]).await;
    let tree = s.ws().join("tree");
    generate_scan_tree(&tree, 1500, 64 * 1024);
    let target = tree.display().to_string();
    let r = call(
        &s.client,
        "run_security_scan",
        json!({"targetPath": target, "scanType": "all"}),
    )
    .await;
    // The reply is the deadline, not a walker thread's panic (a progress report from a
    // walker thread once spawned a task off the runtime).
    assert_eq!(r.is_error, Some(true), "{:.1000}", text(&r));
    assert!(text(&r).contains("deadline"), "{:.1000}", text(&r));
    let used = s.cpu_ms_after_reply().await;
    eprintln!("CPU used in the 2 s after a scan's deadline reply: {used} ms");
    assert!(
        used < 300,
        "the scan kept computing after its deadline reply: {used} ms of CPU in 2 s"
    );
    let r = call(
        &s.client,
        "create_review",
        json!({"repositoryUrl": target, "scope": "full"}),
    )
    .await;
    let t = text(&r);
    assert!(t.contains("deadline") || t.contains("stopped"), "{t:.1000}");
    let used = s.cpu_ms_after_reply().await;
    eprintln!("CPU used in the 2 s after a review's deadline reply: {used} ms");
    assert!(
        used < 300,
        "the review kept computing after its deadline reply: {used} ms of CPU in 2 s"
    );
}

/// Issue 15: the diffs `spool_diff` and `spool_commit` build were not held against the
/// call's memory budget (create_diff's were). Both now answer the budget error, and a
/// refused commit keeps the session's changes.
#[tokio::test]
async fn spool_diff_and_commit_are_charged_to_the_budget() {
    let s = contained(&["--call-memory-budget-bytes", "1048576"]).await;
    std::fs::write(s.ws().join("f.txt"), "old line\n".repeat(28 * 1024)).unwrap();
    let open = call(
        &s.client,
        "spool_open",
        json!({"root": s.ws().display().to_string()}),
    )
    .await;
    let session = structured(&open)["session"].as_str().unwrap().to_string();
    let r = call(
        &s.client,
        "spool_write",
        json!({"session": session, "path": "f.txt", "content": "new line\n".repeat(28 * 1024)}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    over_budget(&call(&s.client, "spool_diff", json!({"session": session})).await);
    over_budget(&call(&s.client, "spool_commit", json!({"session": session})).await);
    // The refused commit kept the change: a small session commits, this one still
    // shows its modified file.
    let r = call(&s.client, "spool_status", json!({"session": session})).await;
    assert!(text(&r).contains("modified"), "{}", text(&r));
}

/// Issue 15: `create_diff` keeps `timeoutMs` on a pathological multi-line input (100,000
/// unique lines against a shuffled permutation of them): it answers with
/// `approximate: true`, and the server's CPU for the call stays small.
#[tokio::test]
async fn create_diff_keeps_its_timeout_on_a_shuffled_permutation() {
    let s = contained(&[]).await;
    let n = 100_000u64;
    let lines: Vec<String> = (0..n).map(|i| format!("line {i:08}")).collect();
    let before = lines.join("\n") + "\n";
    // A fixed-multiplier permutation of the indices (odd multiplier, so it is one-to-one
    // modulo a power of two, filtered to < n).
    let mut order: Vec<u64> = (0..131_072u64)
        .map(|i| (i * 40_503 + 12_345) % 131_072)
        .filter(|i| *i < n)
        .collect();
    order.dedup();
    assert_eq!(order.len() as u64, n);
    let after = order
        .iter()
        .map(|i| lines[*i as usize].as_str())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let cpu = s.cpu_ticks();
    let r = call(
        &s.client,
        "create_diff",
        json!({"path": "shuffled.txt", "before": before, "after": after, "timeoutMs": 50}),
    )
    .await;
    let used_ms = (s.cpu_ticks() - cpu) * 1000 / ticks_per_sec();
    eprintln!(
        "create_diff of a 100,000-line permutation with timeoutMs 50: {used_ms} ms of server CPU"
    );
    assert_ne!(r.is_error, Some(true), "{:.1000}", text(&r));
    let patch = structured(&r);
    assert_eq!(patch["approximate"], true, "{:.500}", text(&r));
    assert!(
        used_ms < 5000,
        "create_diff with timeoutMs 50 took {used_ms} ms of CPU"
    );
    // One line of several MB against a different one: one line out, one in.
    let a = "a".repeat(1_500_000);
    let b = "b".repeat(1_500_000);
    let cpu = s.cpu_ticks();
    let r = call(
        &s.client,
        "create_diff",
        json!({"path": "one-line.txt", "before": a, "after": b, "timeoutMs": 50}),
    )
    .await;
    let used_ms = (s.cpu_ticks() - cpu) * 1000 / ticks_per_sec();
    eprintln!("create_diff of two different 1.5 MB lines: {used_ms} ms of server CPU");
    assert_ne!(r.is_error, Some(true), "{:.1000}", text(&r));
    let patch = structured(&r);
    assert_eq!(patch["summary"]["additions"], 1);
    assert_eq!(patch["summary"]["deletions"], 1);
    assert!(used_ms < 5000, "took {used_ms} ms of CPU");
}
