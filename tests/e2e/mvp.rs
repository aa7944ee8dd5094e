//! The mvp toolset through a real MCP client (rmcp over stdio): graphs calling tools of
//! other toolsets (github against the fake GitHub, the runtime's tools), cycles, real
//! parallelism, timeouts that leave no process behind, PRP on a fixture crate with a
//! failing test, deterministic runs, the executor's refusals, process accounting under
//! many random timeouts, streamed redaction, pytest, and teaching.

use crate::common;

use std::time::Duration;

use common::*;
use rmcp::model::{CallToolRequestParams, NumberOrString, ProgressToken, RequestMetaObject};
use serde_json::{Value, json};

struct Setup {
    client: Client,
    work: tempfile::TempDir,
    _state: tempfile::TempDir,
}

async fn setup(extra: &[&str], env: &[(&str, &str)]) -> Setup {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let roots = work.path().display().to_string();
    let mut args = vec![
        "--toolsets",
        "github,mvp,patchkit,batch",
        "--workspace-roots",
        roots.as_str(),
        "--exec-allow",
        "cargo,python3,ruff,sh,sleep,echo",
    ];
    args.extend_from_slice(extra);
    let client = stdio_client_env(state.path(), &args, env).await;
    Setup {
        client,
        work,
        _state: state,
    }
}

/// Processes whose command line contains `marker` (scans /proc).
fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(marker))
        .count()
}

#[tokio::test]
async fn graph_calls_github_patchkit_and_runtime_tools_by_name() {
    let hub = fakehub::spawn(
        fakehub::FakeConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = hub.base_url();
    let s = setup(
        &[],
        &[
            ("GITHUB_API_URL", &base),
            ("GITHUB_TOKEN", "tok-e2e-mvp-0001"),
        ],
    )
    .await;
    write(s.work.path(), "notes.txt", "graph input file");
    let created = ok(
        &s.client,
        "create_graph",
        json!({"name": "cross-toolset", "nodes": [
            {"id": "issue", "type": "tool", "config": {"tool": "get_issue", "arguments": {"repository": "{{inputs.repo}}", "number": 2}}},
            {"id": "repo", "type": "tool", "config": {"tool": "get_repository_info", "arguments": {"repository": "{{inputs.repo}}"}}},
            {"id": "file", "type": "tool", "config": {"tool": "read_file", "arguments": {"path": "notes.txt"}}},
            {"id": "check", "type": "gate", "config": {"condition": "{{nodes.issue.number}} == 2"}},
            {"id": "echo", "type": "tool", "config": {"tool": "run_command", "arguments": {"program": "echo", "args": ["{{nodes.repo.repository.default_branch}}", "{{nodes.file.content}}"]}}},
            {"id": "diff", "type": "tool", "config": {"tool": "create_diff", "arguments": {"path": "notes.txt", "before": "{{nodes.file.content}}", "after": "{{nodes.issue.title}}"}}}
        ], "edges": [
            {"from": "issue", "to": "check"}, {"from": "check", "to": "echo"},
            {"from": "repo", "to": "echo"}, {"from": "file", "to": "echo"},
            {"from": "file", "to": "diff"}, {"from": "issue", "to": "diff"}
        ]}),
    )
    .await;
    let id = created["graphId"].as_str().unwrap().to_string();
    let run = ok(
        &s.client,
        "execute_graph",
        json!({"graphId": id, "inputs": {"repo": "octo/hello"}, "config": {"parallel": true}}),
    )
    .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    let echo = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "echo")
        .unwrap();
    assert_eq!(echo["output"]["stdout"], "main graph input file\n");
    // patchkit's create_diff, fed by mvp's read_file and github's get_issue
    let diff = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "diff")
        .unwrap();
    let summary = &diff["output"]["summary"];
    assert_eq!(summary["changeType"], "modified", "{diff:#}");
    assert_eq!(
        (summary["additions"].as_u64(), summary["deletions"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        diff["output"]["diff"]
            .as_str()
            .unwrap()
            .contains("-graph input file"),
        "{diff:#}"
    );
    assert!(
        hub.stats()
            .by_token
            .values()
            .map(|t| t.charged.get("core").copied().unwrap_or(0))
            .sum::<u64>()
            >= 2,
        "github was really called"
    );
    let status = ok(
        &s.client,
        "get_graph_status",
        json!({"graphId": id, "includeHistory": true}),
    )
    .await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["history"].as_array().unwrap().len(), 1);
    let opt = ok(&s.client, "optimize_graph", json!({"graphId": id})).await;
    assert_eq!(opt["runsMeasured"], 1);
    assert_eq!(opt["parallelLevels"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn cycles_are_reported_with_their_path_and_refused() {
    let s = setup(&[], &[]).await;
    let def = json!({"name": "loop", "nodes": [
        {"id": "a", "type": "tool", "config": {"tool": "health"}},
        {"id": "b", "type": "tool", "config": {"tool": "health"}},
        {"id": "c", "type": "tool", "config": {"tool": "nope_tool"}}
    ], "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "c", "to": "x"}]});
    let v = ok(&s.client, "validate_graph", json!({"graphDefinition": def})).await;
    assert_eq!(v["valid"], false);
    let messages: Vec<String> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}: {}",
                i["code"].as_str().unwrap(),
                i["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        messages.iter().any(|m| m == "cycle: cycle: a → b → a"),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("unknown_tool")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("dangling_edge")),
        "{messages:?}"
    );
    let e = err(&s.client, "create_graph", def).await;
    assert!(e.contains("a → b → a"), "{e}");
}

async fn sleepers(client: &Client, parallel: bool) -> Vec<(f64, f64)> {
    let nodes: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("s{i}"), "type": "tool", "config": {"tool": "run_command", "arguments": {"program": "sleep", "args": ["0.4"]}}}))
        .collect();
    let g = ok(
        client,
        "create_graph",
        json!({"name": "sleepers", "nodes": nodes}),
    )
    .await;
    let run = ok(
        client,
        "execute_graph",
        json!({"graphId": g["graphId"], "config": {"parallel": parallel}}),
    )
    .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    // Three independent 0.4 s nodes: the measured estimate is close to ×3.
    let opt = ok(client, "optimize_graph", json!({"graphId": g["graphId"]})).await;
    let est = opt["estimatedSpeedup"].as_f64().unwrap();
    assert!((2.5..=3.1).contains(&est), "{opt:#}");
    assert_eq!(opt["parallelLevels"][0].as_array().unwrap().len(), 3);
    run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["startMs"].as_f64().unwrap(), n["endMs"].as_f64().unwrap()))
        .collect()
}

#[tokio::test]
async fn parallel_nodes_really_overlap() {
    let s = setup(&[], &[]).await;
    let par = sleepers(&s.client, true).await;
    let latest_start = par.iter().map(|p| p.0).fold(0.0, f64::max);
    let earliest_end = par.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    assert!(latest_start < earliest_end, "all three overlap: {par:?}");
    let seq = sleepers(&s.client, false).await;
    for w in seq.windows(2) {
        assert!(w[1].0 >= w[0].1, "sequential runs do not overlap: {seq:?}");
    }
}

#[tokio::test]
async fn graph_timeout_kills_child_processes() {
    let s = setup(&[], &[]).await;
    let marker = "sleep 987.123";
    let g = ok(
        &s.client,
        "create_graph",
        json!({"name": "slow", "nodes": [
            {"id": "slow", "type": "tool", "config": {"tool": "run_command", "arguments": {"program": "sh", "args": ["-c", format!("{marker} & {marker}; echo done")], "timeoutMs": 60000}}},
            {"id": "after", "type": "tool", "config": {"tool": "health"}}
        ], "edges": [{"from": "slow", "to": "after"}]}),
    )
    .await;
    let t0 = std::time::Instant::now();
    let run = ok(
        &s.client,
        "execute_graph",
        json!({"graphId": g["graphId"], "config": {"timeout": 600}}),
    )
    .await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(run["status"], "timed_out", "{run:#}");
    assert_eq!(run["nodes"][0]["status"], "timed_out");
    assert_eq!(run["nodes"][1]["status"], "skipped");
    wait_until("no orphan left", Duration::from_secs(5), || {
        processes_with("987.123") == 0
    })
    .await;
    let h = ok(&s.client, "health", json!({})).await;
    assert_eq!(h["processes"]["running"], 0);
}

#[tokio::test]
async fn client_cancellation_kills_child_processes() {
    let s = setup(&[], &[]).await;
    let peer = s.client.peer().clone();
    let args = json!({"program": "sh", "args": ["-c", "sleep 986.321 & sleep 986.321"]});
    let request = tokio::spawn(async move {
        peer.call_tool(
            CallToolRequestParams::new("run_command")
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
    });
    for _ in 0..50 {
        if processes_with("986.321") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(processes_with("986.321") >= 2, "the command started");
    request.abort(); // dropping the request makes the client send notifications/cancelled
    let _ = request.await;
    for _ in 0..60 {
        if processes_with("986.321") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        processes_with("986.321"),
        0,
        "no orphan left after cancellation"
    );
    let h = ok(&s.client, "health", json!({})).await;
    assert_eq!(h["processes"]["running"], 0);
}

#[tokio::test]
async fn prp_on_a_crate_with_a_failing_test_recycles_naming_it() {
    let s = setup(&[], &[]).await;
    let crate_dir = s.work.path().join("fx");
    failing_crate(&crate_dir);
    let run = ok(
        &s.client,
        "run_prp_workflow",
        json!({"blueprint": {"title": "adder", "description": "adds numbers",
                "requirements": ["add returns the sum of two numbers", "negative numbers are supported"]},
               "workspace": "fx"}),
    )
    .await;
    assert_eq!(run["status"], "recycled", "{run:#}");
    assert_eq!(run["recycledAt"], "build");
    assert_eq!(run["cerebrum"]["decision"], "recycle");
    let reasons = run["cerebrum"]["reasons"].to_string();
    assert!(reasons.contains("tests::subtracts_wrongly"), "{reasons}");
    let build = &run["phases"][1]["gate"];
    assert!(
        build["evidence"].to_string().contains("lint (cargo clippy"),
        "the build gate ran the linter too: {build:#}"
    );
    assert_eq!(build["blockerCount"], 1, "{build:#}");
    let id = run["runId"].as_str().unwrap();
    let again = ok(&s.client, "get_prp_run", json!({"runId": id})).await;
    assert_eq!(again["runId"], id);
    let list = ok(&s.client, "list_prp_runs", json!({"status": "recycled"})).await;
    assert_eq!(list["items"][0]["runId"], id);
    // The test report names the failure with its message, too.
    let report = ok(&s.client, "test_runner", json!({"cwd": "fx"})).await;
    assert_eq!(report["totals"]["failed"], 1);
    assert_eq!(report["totals"]["passed"], 1);
    assert_eq!(report["failures"][0]["name"], "tests::subtracts_wrongly");
    assert!(
        report["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("planted failure")
    );
}

#[tokio::test]
async fn deterministic_prp_runs_are_identical() {
    let s = setup(&[], &[]).await;
    let input = json!({"blueprint": {"title": "t", "description": "d",
        "requirements": ["the thing does one", "the thing does two"]}, "deterministic": true});
    let a = call(&s.client, "run_prp_workflow", input.clone()).await;
    let b = call(&s.client, "run_prp_workflow", input).await;
    assert_eq!(text(&a), text(&b));
    let v = structured(&a);
    assert_eq!(v["status"], "completed", "{v:#}");
    assert_eq!(v["cerebrum"]["decision"], "promote");
    let bad = ok(
        &s.client,
        "run_prp_workflow",
        json!({"blueprint": {"title": "t", "requirements": []}}),
    )
    .await;
    assert_eq!(bad["status"], "recycled");
    assert_eq!(bad["recycledAt"], "strategy");
}

#[tokio::test]
async fn executor_refuses_programs_and_escapes() {
    let s = setup(&[], &[]).await;
    let e = err(
        &s.client,
        "run_command",
        json!({"program": "rm", "args": ["-rf", "x"]}),
    )
    .await;
    assert!(e.contains("not allow-listed"), "{e}");
    let e = err(&s.client, "run_command", json!({"program": "/bin/sh"})).await;
    assert!(e.contains("bare name"), "{e}");
    let e = err(
        &s.client,
        "run_command",
        json!({"program": "echo", "args": ["x".repeat(1001)]}),
    )
    .await;
    assert!(e.contains("1000"), "{e}");
    let e = err(
        &s.client,
        "run_command",
        json!({"program": "echo", "cwd": "/"}),
    )
    .await;
    assert!(e.contains("outside the workspace roots"), "{e}");
    let e = err(
        &s.client,
        "run_command",
        json!({"program": "echo", "env": {"LD_PRELOAD": "x"}}),
    )
    .await;
    assert!(e.contains("LD_PRELOAD"), "{e}");
    // read_file: sibling prefix and symlink escapes.
    let sibling = format!("{}-b", s.work.path().display());
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(format!("{sibling}/secret.txt"), "s").unwrap();
    std::os::unix::fs::symlink(format!("{sibling}/secret.txt"), s.work.path().join("link"))
        .unwrap();
    for path in [
        format!("{sibling}/secret.txt"),
        "link".into(),
        "../x".into(),
        "/etc/passwd".into(),
    ] {
        let e = err(&s.client, "read_file", json!({"path": path})).await;
        assert!(
            e.contains("outside the workspace roots") || e.contains("no such file"),
            "{e}"
        );
    }
    std::fs::remove_dir_all(&sibling).unwrap();
    write(s.work.path(), "big.txt", &"0123456789".repeat(10));
    let w = ok(
        &s.client,
        "read_file",
        json!({"path": "big.txt", "length": 40}),
    )
    .await;
    assert_eq!(w["nextOffset"], 40);
    let w = ok(
        &s.client,
        "read_file",
        json!({"path": "big.txt", "offset": 80, "encoding": "base64"}),
    )
    .await;
    assert_eq!(w["bytes"], 20);
    assert!(w.get("nextOffset").is_none());
    // The environment is reduced: only PATH, HOME and allow-listed names reach children.
    let out = ok(
        &s.client,
        "run_command",
        json!({"program": "sh", "args": ["-c", "env | cut -d= -f1 | sort | tr '\\n' ' '"]}),
    )
    .await;
    let names = out["stdout"].as_str().unwrap();
    assert!(names.contains("PATH") && names.contains("HOME"), "{names}");
    assert!(!names.contains("CARGO_MANIFEST_DIR"), "{names}");
}

#[tokio::test]
async fn many_runs_with_random_timeouts_leave_no_process_running() {
    let s = setup(&["--exec-max-processes", "8"], &[]).await;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20 {
        let calls: Vec<Value> = (0..50)
            .map(|_| {
                let sleep = format!("0.{:03}", next() % 60);
                json!({"tool": "run_command", "arguments": {"program": "sleep", "args": [sleep], "timeoutMs": 1 + next() % 40}})
            })
            .collect();
        let out = ok(
            &s.client,
            "batch",
            json!({"calls": calls, "max_concurrency": 50}),
        )
        .await;
        assert_eq!(out["succeeded"], 50, "{out:#}");
    }
    let h = ok(&s.client, "health", json!({})).await;
    assert_eq!(h["processes"]["running"], 0, "{h:#}");
    assert_eq!(h["processes"]["startedTotal"], 1000);
    let exec = h["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "exec")
        .unwrap();
    assert_eq!(exec["running"], 0);
    assert_eq!(exec["waiting"], 0);
}

#[tokio::test]
async fn planted_token_is_redacted_in_streamed_and_final_output() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let planted = "tok-planted-5f3a9c2e71";
    let work_dir = work.path().to_str().unwrap();
    let args = [
        "--toolsets",
        "mvp",
        "--exec-allow",
        "sh",
        "--workspace-roots",
        work_dir,
    ];
    let seen = ProgressMessages::default();
    let client = stdio_client_with(
        seen.clone(),
        state.path(),
        &args,
        &[("GITHUB_TOKEN", planted)],
    )
    .await;
    let script = format!(
        "for i in 1 2 3; do echo line $i {planted}; sleep 0.06; done; echo aws AKIAABCDEFGHIJKLMNOP; echo password=hunter2hunter2 >&2"
    );
    let mut call = CallToolRequestParams::new("run_command").with_arguments(
        json!({"program": "sh", "args": ["-c", script]})
            .as_object()
            .cloned()
            .unwrap(),
    );
    call.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("r1".into()),
    )));
    let result = client.call_tool(call).await.unwrap();
    let out = structured(&result);
    let all = out.to_string();
    assert!(!all.contains(planted), "{all}");
    assert!(!all.contains("AKIAABCDEFGHIJKLMNOP"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
    assert!(
        out["stdout"]
            .as_str()
            .unwrap()
            .contains("line 1 [REDACTED]"),
        "{all}"
    );
    wait_until("lines streamed as progress", Duration::from_secs(5), || {
        seen.0
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("[REDACTED]"))
    })
    .await;
    let streamed = seen.0.lock().unwrap().clone();
    assert!(!streamed.is_empty(), "lines were streamed as progress");
    assert!(
        streamed.iter().all(|m| !m.contains(planted)),
        "{streamed:?}"
    );
    assert!(
        streamed.iter().any(|m| m.contains("[REDACTED]")),
        "{streamed:?}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn pytest_and_ruff_report_real_results() {
    let s = setup(&[], &[]).await;
    let py = s.work.path().join("py");
    write(
        &py,
        "pyproject.toml",
        "[project]\nname = \"fx\"\nversion = \"0.1.0\"\n",
    );
    write(
        &py,
        "tests/test_math.py",
        "import os\n\n\ndef test_ok():\n    assert 1 + 1 == 2\n\n\ndef test_bad():\n    assert 1 + 1 == 3, \"planted\"\n",
    );
    let r = ok(
        &s.client,
        "test_runner",
        json!({"cwd": "py", "framework": "auto"}),
    )
    .await;
    assert_eq!(r["framework"], "pytest", "{r:#}");
    assert_eq!(r["totals"]["passed"], 1, "{r:#}");
    assert_eq!(r["totals"]["failed"], 1, "{r:#}");
    assert_eq!(r["failures"][0]["name"], "tests/test_math.py::test_bad");
    assert!(
        r["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("planted"),
        "{r:#}"
    );
    let lint = ok(&s.client, "code_analysis", json!({"cwd": "py"})).await;
    assert_eq!(lint["tool"], "ruff");
    assert_eq!(lint["errorCount"], 1, "{lint:#}");
    assert_eq!(lint["issues"][0]["ruleId"], "F401");
    assert_eq!(lint["cached"], false);
    let again = ok(&s.client, "code_analysis", json!({"cwd": "py"})).await;
    assert_eq!(again["cached"], true);
    write(
        &py,
        "tests/test_math.py",
        "def test_ok():\n    assert True\n",
    );
    let changed = ok(&s.client, "code_analysis", json!({"cwd": "py"})).await;
    assert_eq!(changed["cached"], false);
    assert_eq!(changed["errorCount"], 0);
}

#[tokio::test]
async fn missing_linter_is_an_error_naming_it() {
    // ruff is allow-listed by default, but not on this PATH.
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let roots = work.path().display().to_string();
    let client = stdio_client_env(
        state.path(),
        &["--toolsets", "mvp", "--workspace-roots", &roots],
        &[("PATH", "/nonexistent-bin")],
    )
    .await;
    write(work.path(), "pyproject.toml", "[project]\nname = \"x\"\n");
    write(work.path(), "a.py", "x = 1\n");
    let e = err(&client, "code_analysis", json!({})).await;
    assert!(e.contains("`ruff` is not installed"), "{e}");
}

#[tokio::test]
async fn teaching_counts_patterns_and_replays_by_similarity() {
    let s = setup(&[], &[]).await;
    let mut ids = Vec::new();
    for success in [true, true, false] {
        let c = ok(
            &s.client,
            "capture_example",
            json!({"type": "correction", "phase": "build",
                   "context": {"description": "failing parser test", "state": {"module": "parser", "tests": 3}},
                   "userAction": {"type": "fix", "description": "fix the parser"},
                   "outcome": {"success": success, "learningValue": 0.7}}),
        )
        .await;
        ids.push(c["exampleId"].as_str().unwrap().to_string());
    }
    let p = ok(&s.client, "list_patterns", json!({})).await;
    let pat = &p["items"][0];
    assert_eq!(pat["key"], "correction-build-fix");
    assert_eq!(pat["examples"], 3);
    assert!((pat["confidence"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    assert!((pat["effectiveness"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    let r = ok(
        &s.client,
        "replay_example",
        json!({"exampleId": ids[0], "state": {"phase": "build", "module": "parser", "tests": 1, "description": "parser test failing"}}),
    )
    .await;
    assert_eq!(r["applies"], true, "{r:#}");
    assert_eq!(r["suggestedAction"]["type"], "fix");
    let r = ok(
        &s.client,
        "replay_example",
        json!({"exampleId": ids[0], "state": {"phase": "strategy"}}),
    )
    .await;
    assert_eq!(r["applies"], false);
}

#[tokio::test]
async fn map_nodes_conditional_edges_and_state_survive_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let roots = work.path().display().to_string();
    let args = ["--toolsets", "mvp", "--workspace-roots", roots.as_str()];
    write(work.path(), "a.txt", "alpha");
    write(work.path(), "b.txt", "beta");
    let client = stdio_client(state.path(), &args).await;
    let g = ok(
        &client,
        "create_graph",
        json!({"name": "map", "nodes": [
            {"id": "m", "type": "map", "config": {"tool": "read_file", "over": "{{inputs.files}}", "arguments": {"path": "{{item}}"}, "concurrency": 2}},
            {"id": "good", "type": "gate", "config": {"condition": "{{nodes.m.succeeded}} == 2"}},
            {"id": "bad", "type": "gate", "config": {"condition": "true"}}
        ], "edges": [
            {"from": "m", "to": "good", "condition": "{{nodes.m.failed}} == 0"},
            {"from": "m", "to": "bad", "condition": "{{nodes.m.failed}} > 0"}
        ]}),
    )
    .await;
    let id = g["graphId"].as_str().unwrap().to_string();
    let run = ok(
        &client,
        "execute_graph",
        json!({"graphId": id, "inputs": {"files": ["a.txt", "b.txt"]}}),
    )
    .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(
        run["nodes"][0]["output"]["results"][1]["result"]["content"],
        "beta"
    );
    assert_eq!(run["nodes"][1]["status"], "succeeded");
    assert_eq!(run["nodes"][2]["status"], "skipped");
    // A missing file fails the map node; only the edge whose condition holds is taken.
    let run = ok(
        &client,
        "execute_graph",
        json!({"graphId": id, "inputs": {"files": ["a.txt", "nope.txt"]}}),
    )
    .await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["nodes"][0]["status"], "failed");
    assert_eq!(run["nodes"][1]["status"], "skipped");
    assert_eq!(run["nodes"][2]["status"], "succeeded");
    let prp = ok(&client, "run_prp_workflow", json!({"blueprint": {"title": "kept", "description": "d", "requirements": ["survives a restart of the server"]}})).await;
    client.cancel().await.unwrap();

    let client = stdio_client(state.path(), &args).await;
    let status = ok(
        &client,
        "get_graph_status",
        json!({"graphId": id, "includeHistory": true}),
    )
    .await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["history"].as_array().unwrap().len(), 2);
    let again = ok(&client, "get_prp_run", json!({"runId": prp["runId"]})).await;
    assert_eq!(again, prp);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn test_runner_streams_progress_as_tests_finish() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    write(
        work.path(),
        "tests/test_many.py",
        &(0..5)
            .map(|i| format!("import time\n\ndef test_{i}():\n    time.sleep(0.08)\n\n"))
            .collect::<String>(),
    );
    let args = [
        "--toolsets",
        "mvp",
        "--workspace-roots",
        work.path().to_str().unwrap(),
    ];
    let seen = ProgressMessages::default();
    let client = stdio_client_with(seen.clone(), state.path(), &args, &[]).await;
    let mut call = CallToolRequestParams::new("test_runner").with_arguments(
        json!({"framework": "pytest", "coverage": false})
            .as_object()
            .cloned()
            .unwrap(),
    );
    call.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("t1".into()),
    )));
    let report = structured(&client.call_tool(call).await.unwrap());
    assert_eq!(report["totals"]["passed"], 5, "{report:#}");
    let done = || {
        let seen = seen.0.lock().unwrap();
        seen.iter().filter(|m| m.contains("tests done")).count()
    };
    wait_until("3 progress notifications", Duration::from_secs(5), || {
        done() >= 3
    })
    .await;
    let streamed = seen.0.lock().unwrap().clone();
    assert!(
        streamed.iter().filter(|m| m.contains("tests done")).count() >= 3,
        "one notification per finished test (rate-limited): {streamed:?}"
    );
    client.cancel().await.unwrap();
}

/// A crate whose build script leaves `marker` behind when anything compiles it.
fn booby_trapped_crate(dir: &std::path::Path, marker: &std::path::Path) {
    write(
        dir,
        "Cargo.toml",
        "[package]\nname = \"victim\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(
        dir,
        "build.rs",
        &format!(
            "fn main() {{ std::fs::write({:?}, \"ran\").unwrap(); }}\n",
            marker.display().to_string()
        ),
    );
    write(
        dir,
        "src/lib.rs",
        "#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {}\n}\n",
    );
}

/// Executes a stored graph: the run, or the refusal's text when the call fails.
async fn execute(client: &Client, id: &Value) -> Result<Value, String> {
    let r = call(
        client,
        "execute_graph",
        json!({"graphId": id, "inputs": {"cmds": ["a", "b"]}}),
    )
    .await;
    if r.is_error == Some(true) {
        Err(text(&r))
    } else {
        Ok(structured(&r))
    }
}

#[tokio::test]
async fn excluded_tools_cannot_be_reached_through_any_graph_node() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("build-rs-ran");
    let touched = work.path().join("touched");
    booby_trapped_crate(&work.path().join("victim"), &marker);
    let roots = work.path().display().to_string();
    let touch = touched.display().to_string();
    let base = [
        "--toolsets",
        "mvp",
        "--workspace-roots",
        roots.as_str(),
        "--exec-allow",
        "cargo,sh,touch",
    ];
    let blueprint = json!({"title": "t", "description": "d", "requirements": ["r"]});
    let prp = |phase: Option<&str>| {
        let mut config = json!({"blueprint": blueprint, "workspace": "victim"});
        if let Some(p) = phase {
            config["phase"] = json!(p);
        }
        json!({"id": "p", "type": "prp", "config": config})
    };
    let nodes = [
        (
            "tool",
            "run_command",
            json!({"id": "t", "type": "tool", "config": {"tool": "run_command", "arguments": {"program": "touch", "args": [touch]}}}),
        ),
        (
            "map",
            "run_command",
            json!({"id": "m", "type": "map", "config": {"tool": "run_command", "over": "{{inputs.cmds}}", "arguments": {"program": "touch", "args": [touch]}}}),
        ),
        ("prp", "run_prp_workflow", prp(None)),
        ("prp-build", "run_prp_workflow", prp(Some("build"))),
    ];
    // Stored while every tool was offered ...
    let client = stdio_client(state.path(), &base).await;
    let mut ids = Vec::new();
    for (name, _, node) in &nodes {
        let g = ok(
            &client,
            "create_graph",
            json!({"name": name, "nodes": [node]}),
        )
        .await;
        ids.push(g["graphId"].clone());
    }
    client.cancel().await.unwrap();

    // ... then run by a server that excludes the tools: refused when stored, and
    // stored graphs fail without running anything.
    let mut args = base.to_vec();
    args.extend([
        "--exclude-tools",
        "run_command,test_runner,code_analysis,run_prp_workflow",
    ]);
    let client = stdio_client(state.path(), &args).await;
    for ((name, tool, node), id) in nodes.iter().zip(&ids) {
        let msg = err(
            &client,
            "create_graph",
            json!({"name": format!("{name}-again"), "nodes": [node]}),
        )
        .await;
        assert!(msg.contains(tool), "{name}: {msg}");
        match execute(&client, id).await {
            Err(msg) => assert!(msg.contains(tool), "{name}: {msg}"),
            Ok(run) => {
                assert_eq!(run["status"], "failed", "{name}: {run:#}");
                // The node's error (a map node's: per item) names the tool.
                let node = run["nodes"][0].to_string();
                assert!(
                    node.contains(&format!("unknown tool `{tool}`"))
                        || node.contains(&format!("{tool} is not offered")),
                    "{name}: {run:#}"
                );
            }
        }
    }
    // A gate calls no tool: it runs.
    let g = ok(
        &client,
        "create_graph",
        json!({"name": "gate", "nodes": [{"id": "g", "type": "gate", "config": {"condition": "true"}}]}),
    )
    .await;
    assert_eq!(
        execute(&client, &g["graphId"]).await.unwrap()["status"],
        "completed"
    );
    assert!(!touched.exists(), "run_command ran through a graph node");
    assert!(!marker.exists(), "cargo ran through a graph node");
    client.cancel().await.unwrap();

    // With the PRP tool offered but tests and lint excluded, a PRP run (as a tool or a
    // node) builds nothing and says why.
    let mut args = base.to_vec();
    args.extend(["--exclude-tools", "test_runner,code_analysis"]);
    let client = stdio_client(state.path(), &args).await;
    let run = execute(&client, &ids[3]).await.unwrap();
    let gate = run["nodes"][0]["output"]["phases"][0]["gate"].to_string();
    assert!(gate.contains("test_runner is not offered"), "{run:#}");
    assert!(gate.contains("code_analysis is not offered"), "{run:#}");
    let direct = call(
        &client,
        "run_prp_workflow",
        json!({"blueprint": blueprint, "workspace": "victim"}),
    )
    .await;
    assert!(
        text(&direct).contains("test_runner is not offered"),
        "{}",
        text(&direct)
    );
    assert!(!marker.exists(), "cargo ran through a PRP run");
    client.cancel().await.unwrap();
}
