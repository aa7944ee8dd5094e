//! test_runner and code_analysis through a real MCP client, driving the real runners:
//! jest, vitest and eslint (pinned in tests/fixtures/js-runners, installed by `tools/test.sh`
//! with `npm ci`), cargo-nextest on a tiny dependency-free crate, and coverage (jest's
//! istanbul, vitest's v8 provider, pytest-cov; cargo's missing cargo-llvm-cov named).
//! Also the PRP evaluation gate tracing requirements to tests, test files and gate
//! results. Fixture projects live in the test's temp dir; JS ones link the pinned
//! node_modules.

use crate::common;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use common::*;
use rmcp::{
    RoleClient,
    model::{CallToolRequestParams, NumberOrString, ProgressToken, RequestMetaObject},
    service::RunningService,
};
use serde_json::{Value, json};

struct Server {
    client: RunningService<RoleClient, ProgressMessages>,
    seen: ProgressMessages,
    work: tempfile::TempDir,
    _state: tempfile::TempDir,
}

async fn server(env: &[(&str, String)]) -> Server {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // The fixtures link the pinned node_modules from the repository: children read them
    // through the symlink, so that directory is a root too (the sandbox grants nothing
    // outside the roots, the system and the toolchains).
    let roots = format!(
        "{},{}/tests/fixtures/js-runners",
        work.path().display(),
        env!("CARGO_MANIFEST_DIR")
    );
    let args = [
        "--toolsets",
        "mvp",
        "--exec-allow",
        "npx,cargo,python3",
        "--workspace-roots",
        roots.as_str(),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let seen = ProgressMessages::default();
    let client = stdio_client_with(seen.clone(), state.path(), &args, &env).await;
    Server {
        client,
        seen,
        work,
        _state: state,
    }
}

/// Calls a tool with a progress token; returns its structured result.
async fn call_with_progress(s: &Server, tool: &str, args: Value) -> Value {
    let mut call = CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap());
    call.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("p1".into()),
    )));
    let r = structured(&s.client.call_tool(call).await.unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    r
}

/// The pinned runners' node_modules; fails with the command that installs them.
fn js_modules() -> PathBuf {
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/js-runners/node_modules");
    for bin in ["jest", "vitest", "eslint"] {
        assert!(
            m.join(".bin").join(bin).exists(),
            "{bin} is not installed: run `npm ci --prefix tests/fixtures/js-runners` (tools/test.sh does)"
        );
    }
    m
}

/// A JS project under `dir` with the pinned node_modules linked in.
fn js_project(dir: &Path, package_json: &str) {
    write(dir, "package.json", package_json);
    std::os::unix::fs::symlink(js_modules(), dir.join("node_modules")).unwrap();
}

fn math_tests(dir: &Path, esm: bool) {
    if esm {
        write(
            dir,
            "math.js",
            "export function add(a, b) {\n  return a + b;\n}\n",
        );
        write(
            dir,
            "math.test.js",
            "import { test, expect } from 'vitest';\nimport { add } from './math.js';\n\ntest('adds', () => { expect(add(2, 2)).toBe(4); });\ntest('subtracts wrongly', () => { expect(add(2, -2)).toBe(1); });\n",
        );
    } else {
        write(
            dir,
            "math.js",
            "function add(a, b) {\n  return a + b;\n}\nmodule.exports = { add };\n",
        );
        write(
            dir,
            "math.test.js",
            "const { add } = require('./math');\n\ntest('adds', () => { expect(add(2, 2)).toBe(4); });\ntest('subtracts wrongly', () => { expect(add(2, -2)).toBe(1); });\n",
        );
    }
}

fn assert_one_pass_one_fail(r: &Value, framework: &str, failed: &str) {
    assert_eq!(r["framework"], framework, "{r:#}");
    assert_eq!(
        r["totals"],
        json!({"passed": 1, "failed": 1, "total": 2, "ignored": 0}),
        "{r:#}"
    );
    assert_eq!(r["failures"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(r["failures"][0]["name"], failed, "{r:#}");
}

fn progress_lines(s: &Server) -> Vec<String> {
    s.seen
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains("tests done"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn jest_reports_totals_failures_coverage_and_progress() {
    let s = server(&[]).await;
    let dir = s.work.path().join("jest");
    js_project(
        &dir,
        r#"{"name": "fx-jest", "private": true, "devDependencies": {"jest": "30.5.2"}}"#,
    );
    math_tests(&dir, false);
    // framework auto (package.json names jest); coverage omitted: best effort.
    let r = call_with_progress(&s, "test_runner", json!({"cwd": "jest"})).await;
    assert_one_pass_one_fail(&r, "jest", "subtracts wrongly");
    assert!(
        r["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("toBe"),
        "{r:#}"
    );
    assert_eq!(r["coverage"]["available"], true, "{r:#}");
    assert_eq!(r["coverage"]["linesPct"], 100.0, "{r:#}");
    assert!(
        !dir.join("coverage").exists(),
        "coverage goes to a temp dir"
    );
    let progress = progress_lines(&s);
    assert!(
        progress.iter().any(|m| m.contains("last: ")),
        "progress from jest --verbose lines: {progress:?}"
    );
    s.client.cancel().await.unwrap();
}

#[tokio::test]
async fn vitest_reports_totals_failures_coverage_and_progress() {
    let s = server(&[]).await;
    let dir = s.work.path().join("vite");
    js_project(
        &dir,
        r#"{"name": "fx-vitest", "private": true, "type": "module", "devDependencies": {"vitest": "3.2.7"}}"#,
    );
    math_tests(&dir, true);
    let r = call_with_progress(
        &s,
        "test_runner",
        json!({"cwd": "vite", "framework": "auto", "coverage": true}),
    )
    .await;
    assert_one_pass_one_fail(&r, "vitest", "subtracts wrongly");
    assert!(
        r["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expected +0 to be 1"),
        "{r:#}"
    );
    assert_eq!(r["coverage"]["available"], true, "{r:#}");
    assert_eq!(r["coverage"]["linesPct"], 100.0, "{r:#}");
    let progress = progress_lines(&s);
    assert!(
        progress.iter().any(|m| m.contains("last: math.test.js > ")),
        "progress from vitest's verbose reporter: {progress:?}"
    );
    // A test path narrows the run.
    write(
        &dir,
        "other.test.js",
        "import { test } from 'vitest';\ntest('other', () => {});\n",
    );
    let only = ok(
        &s.client,
        "test_runner",
        json!({"cwd": "vite", "testPath": "other.test.js", "coverage": false}),
    )
    .await;
    assert_eq!(
        only["totals"],
        json!({"passed": 1, "failed": 0, "total": 1, "ignored": 0}),
        "{only:#}"
    );
    assert!(only.get("coverage").is_none(), "{only:#}");
    s.client.cancel().await.unwrap();
}

#[tokio::test]
async fn eslint_finds_the_planted_error() {
    let s = server(&[]).await;
    let dir = s.work.path().join("lint");
    js_project(
        &dir,
        r#"{"name": "fx-lint", "private": true, "type": "module", "devDependencies": {"eslint": "9.39.5"}}"#,
    );
    write(
        &dir,
        "eslint.config.js",
        "export default [{ files: ['**/*.js'], rules: { 'no-unused-vars': 'error', eqeqeq: 'warn' } }];\n",
    );
    write(
        &dir,
        "lib.js",
        "export function isTwo(a) {\n  const planted = 1;\n  return a == 2;\n}\n",
    );
    let r = ok(&s.client, "code_analysis", json!({"cwd": "lint"})).await;
    assert_eq!(r["tool"], "eslint", "{r:#}");
    assert_eq!(r["errorCount"], 1, "{r:#}");
    assert_eq!(r["warningCount"], 1, "{r:#}");
    let err = r["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["severity"] == "error")
        .unwrap();
    assert_eq!(err["ruleId"], "no-unused-vars", "{r:#}");
    assert_eq!(err["line"], 2);
    assert_eq!(err["column"], 9);
    assert!(err["filePath"].as_str().unwrap().ends_with("lint/lib.js"));
    assert!(err["message"].as_str().unwrap().contains("planted"));
    let again = ok(&s.client, "code_analysis", json!({"cwd": "lint"})).await;
    assert_eq!(again["cached"], true);
    s.client.cancel().await.unwrap();
}

fn on_path(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(program).is_file())
}

#[tokio::test]
async fn nextest_runs_a_fixture_crate_and_cargo_coverage_names_the_missing_tool() {
    assert!(
        on_path("cargo-nextest"),
        "cargo-nextest is not installed on this machine (machines of this kind have /usr/local/bin/cargo-nextest); install it with `cargo install cargo-nextest --locked`"
    );
    let target = tempfile::tempdir().unwrap();
    let s = server(&[("CARGO_TARGET_DIR", target.path().display().to_string())]).await;
    failing_crate(&s.work.path().join("nx"));
    let r = call_with_progress(
        &s,
        "test_runner",
        json!({"cwd": "nx", "framework": "nextest"}),
    )
    .await;
    assert_one_pass_one_fail(&r, "nextest", "tests::subtracts_wrongly");
    assert!(
        r["command"]
            .as_str()
            .unwrap()
            .starts_with("cargo nextest run")
    );
    assert!(
        r["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("planted failure"),
        "{r:#}"
    );
    let progress = progress_lines(&s);
    assert!(
        progress.iter().any(|m| m.contains("last: tests::")),
        "progress from nextest status lines: {progress:?}"
    );
    if !on_path("cargo-llvm-cov") {
        // Omitted coverage is best effort: the note names the missing tool.
        assert_eq!(r["coverage"]["available"], false, "{r:#}");
        assert!(
            r["coverage"]["note"]
                .as_str()
                .unwrap()
                .contains("cargo-llvm-cov"),
            "{r:#}"
        );
        // Required coverage is an error naming it.
        let e = err(
            &s.client,
            "test_runner",
            json!({"cwd": "nx", "framework": "cargo", "coverage": true}),
        )
        .await;
        assert!(e.contains("cargo-llvm-cov"), "{e}");
        assert!(e.contains("coverage: false"), "{e}");
    }
    s.client.cancel().await.unwrap();

    // Without cargo-nextest on PATH the error names it.
    let bare = server(&[("PATH", "/nonexistent-bin".to_string())]).await;
    failing_crate(&bare.work.path().join("nx"));
    let e = err(
        &bare.client,
        "test_runner",
        json!({"cwd": "nx", "framework": "nextest", "coverage": false}),
    )
    .await;
    assert!(e.contains("cargo-nextest"), "{e}");
    bare.client.cancel().await.unwrap();
}

#[tokio::test]
async fn pytest_coverage_returns_a_percentage() {
    let s = server(&[]).await;
    let py = s.work.path().join("py");
    write(
        &py,
        "pyproject.toml",
        "[project]\nname = \"fx\"\nversion = \"0.1.0\"\n",
    );
    write(
        &py,
        "calc.py",
        "def half(x):\n    if x < 0:\n        return None\n    return x / 2\n",
    );
    write(
        &py,
        "tests/test_calc.py",
        "from calc import half\n\n\ndef test_half():\n    assert half(4) == 2\n",
    );
    write(&py, "conftest.py", "");
    let r = ok(
        &s.client,
        "test_runner",
        json!({"cwd": "py", "coverage": true}),
    )
    .await;
    assert_eq!(r["framework"], "pytest", "{r:#}");
    assert_eq!(r["totals"]["passed"], 1, "{r:#}");
    assert_eq!(r["coverage"]["available"], true, "{r:#}");
    let pct = r["coverage"]["linesPct"].as_f64().unwrap();
    assert!(pct > 50.0 && pct < 100.0, "one branch is never run: {r:#}");
    s.client.cancel().await.unwrap();
}

#[tokio::test]
async fn prp_evaluation_traces_requirements_to_tests_files_and_gates() {
    let target = tempfile::tempdir().unwrap();
    let s = server(&[("CARGO_TARGET_DIR", target.path().display().to_string())]).await;
    let dir = s.work.path().join("calc");
    write(
        &dir,
        "Cargo.toml",
        "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(
        &dir,
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds_two_numbers() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n",
    );
    write(
        &dir,
        "tests/overflow.rs",
        "// Large inputs wrap instead of panicking.\n#[test]\nfn big() {\n    assert_eq!(calc::add(1, 2), 3);\n}\n",
    );
    let run = ok(
        &s.client,
        "run_prp_workflow",
        json!({"blueprint": {"title": "calc", "description": "a calculator",
                "requirements": [
                    "adds two numbers",
                    "large inputs wrap instead of panicking",
                    "the linter reports no errors",
                    "exports a CSV report of every sum"
                ]},
               "workspace": "calc", "deterministic": true, "gates": {"maxMajors": 0}}),
    )
    .await;
    assert_eq!(run["status"], "recycled", "{run:#}");
    assert_eq!(run["recycledAt"], "evaluation", "{run:#}");
    let eval = &run["phases"][2]["gate"];
    let trace = eval["trace"].as_array().unwrap();
    assert_eq!(trace.len(), 4, "{eval:#}");
    assert_eq!(trace[0]["traced"], true);
    assert_eq!(
        trace[0]["evidence"][0], "test tests::adds_two_numbers",
        "{eval:#}"
    );
    assert_eq!(trace[1]["traced"], true);
    assert!(
        trace[1]["evidence"]
            .as_array()
            .unwrap()
            .contains(&json!("file tests/overflow.rs")),
        "{eval:#}"
    );
    assert_eq!(trace[2]["traced"], true);
    assert!(
        trace[2]["evidence"][0]
            .as_str()
            .unwrap()
            .starts_with("gate lint (cargo clippy"),
        "{eval:#}"
    );
    assert_eq!(trace[3]["traced"], false);
    assert_eq!(eval["majorCount"], 1, "{eval:#}");
    let major = eval["majors"][0].as_str().unwrap();
    assert!(
        major.starts_with("requirement 4 (\"exports a CSV report of every sum\") is not traced"),
        "{major}"
    );
    assert!(
        run["cerebrum"]["reasons"]
            .to_string()
            .contains("requirement 4"),
        "{run:#}"
    );
    // With the default limits (≤ 3 majors) the same run completes, still listing it.
    let run = ok(
        &s.client,
        "run_prp_workflow",
        json!({"blueprint": {"title": "calc", "description": "a calculator",
                "requirements": ["adds two numbers", "exports a CSV report of every sum"]},
               "workspace": "calc", "deterministic": true}),
    )
    .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["phases"][2]["gate"]["majorCount"], 1, "{run:#}");
    s.client.cancel().await.unwrap();
}
