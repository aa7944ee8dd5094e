//! Test runners: framework detection, the command for each, and parsers of their
//! machine-readable output as it streams (libtest lines and cargo JSON messages,
//! nextest status lines, pytest verbose lines, jest/vitest JSON reports). Linters are
//! in `lint.rs`.
//!
//! Every process goes through [`super::exec::SecureExec`]; this module never spawns.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::lint::{AnalysisCache, AnalysisReport, Issue, Linter, analyse, detect_linter};

use super::exec::{Command, ExecError, LineSink, Output, SecureExec, Stream};
use crate::runtime::registry::{CallCtx, ToolError};

/// Test runs default to 10 minutes (still bounded by the request deadline).
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Most failures listed in a result.
const MAX_FAILURES: usize = 100;
/// Bytes of a failure's captured output kept.
const MAX_FAILURE_OUTPUT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    #[default]
    Auto,
    Cargo,
    Nextest,
    Vitest,
    Jest,
    Pytest,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Default, PartialEq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub total: u64,
    #[serde(default)]
    pub ignored: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct TestFailure {
    /// Test name (e.g. `tests::adds` or `tests/test_x.py::test_y`), or `build` when the
    /// code did not compile.
    pub name: String,
    /// Captured output of the failure (capped).
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Whether coverage figures were collected.
    pub available: bool,
    /// Line coverage in percent, when available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_pct: Option<f64>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub framework: Framework,
    pub command: String,
    pub cwd: String,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub totals: Totals,
    pub failures: Vec<TestFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Last lines of the runner's stderr (capped), for context.
    pub stderr_tail: String,
}

pub fn exec_err(e: ExecError) -> ToolError {
    match e {
        ExecError::Cancelled => ToolError::Cancelled,
        ExecError::Queue(m) => ToolError::Deadline(m),
        ExecError::Spawn { .. } => ToolError::Internal(e.to_string()),
        other => ToolError::Business(other.to_string()),
    }
}

/// Picks the framework of a directory.
pub fn detect_framework(dir: &Path) -> Option<Framework> {
    if dir.join("Cargo.toml").is_file() {
        return Some(Framework::Cargo);
    }
    if let Ok(pkg) = std::fs::read_to_string(dir.join("package.json")) {
        if pkg.contains("\"vitest\"") {
            return Some(Framework::Vitest);
        }
        if pkg.contains("\"jest\"") {
            return Some(Framework::Jest);
        }
    }
    let python_markers = [
        "pyproject.toml",
        "pytest.ini",
        "setup.cfg",
        "conftest.py",
        "setup.py",
    ];
    if python_markers.iter().any(|m| dir.join(m).is_file()) || has_python_tests(dir) {
        return Some(Framework::Pytest);
    }
    None
}

pub(super) fn has_python_tests(dir: &Path) -> bool {
    let looks = |p: &Path| {
        std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.ends_with(".py") && (n.starts_with("test_") || n.ends_with("_test.py"))
            })
    };
    looks(dir) || looks(&dir.join("tests"))
}

/// Builds the command line for a framework.
fn test_command(
    framework: Framework,
    dir: &Path,
    test_path: Option<&str>,
    coverage: bool,
    timeout: Duration,
) -> (Command, Option<PathBuf>) {
    let mut cov_file = None;
    let (program, args): (&str, Vec<String>) = match framework {
        Framework::Cargo | Framework::Auto => {
            let mut a: Vec<String> = ["test", "--no-fail-fast", "--message-format=json"]
                .map(String::from)
                .to_vec();
            if let Some(filter) = test_path {
                a.extend(["--".into(), filter.into()]);
            }
            ("cargo", a)
        }
        Framework::Nextest => {
            let mut a: Vec<String> = ["nextest", "run", "--no-fail-fast", "--color", "never"]
                .map(String::from)
                .to_vec();
            if let Some(filter) = test_path {
                a.push(filter.into());
            }
            ("cargo", a)
        }
        Framework::Pytest => {
            let mut a: Vec<String> = [
                "-m",
                "pytest",
                "-v",
                "-rN",
                "--color=no",
                "-p",
                "no:cacheprovider",
            ]
            .map(String::from)
            .to_vec();
            if let Some(p) = test_path {
                a.push(p.into());
            }
            ("python3", a)
        }
        Framework::Jest | Framework::Vitest => {
            let file = std::env::temp_dir().join(format!(
                "cortex-mvp-{}-{}.json",
                if framework == Framework::Jest {
                    "jest"
                } else {
                    "vitest"
                },
                uuid::Uuid::new_v4()
            ));
            let mut a: Vec<String> = if framework == Framework::Jest {
                vec![
                    "jest".into(),
                    "--json".into(),
                    format!("--outputFile={}", file.display()),
                ]
            } else {
                vec![
                    "vitest".into(),
                    "run".into(),
                    "--reporter=json".into(),
                    format!("--outputFile={}", file.display()),
                ]
            };
            if coverage {
                a.push("--coverage".into());
            }
            if let Some(p) = test_path {
                a.push(p.into());
            }
            cov_file = Some(file);
            ("npx", a)
        }
    };
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    (Command::new(program, &refs, dir, timeout), cov_file)
}

/// Incremental parse state shared with the line sink.
#[derive(Default)]
struct LiveTests {
    totals: Totals,
    failures: Vec<TestFailure>,
    build_errors: Vec<String>,
    /// cargo: the failure section being collected (`---- name stdout ----`).
    section: Option<(String, String)>,
    /// cargo: names of failed tests, in order.
    failed_names: Vec<String>,
}

impl LiveTests {
    /// Feeds one line; returns the name of a test that just finished, if any.
    fn feed(&mut self, framework: Framework, stream: Stream, line: &str) -> Option<String> {
        match framework {
            Framework::Cargo | Framework::Auto => self.feed_cargo(stream, line),
            Framework::Nextest => self.feed_nextest(line),
            Framework::Pytest => self.feed_pytest(line),
            Framework::Jest | Framework::Vitest => None,
        }
    }

    fn feed_cargo(&mut self, stream: Stream, line: &str) -> Option<String> {
        if stream == Stream::Stdout && line.starts_with('{') {
            if let Ok(msg) = serde_json::from_str::<Value>(line)
                && msg["reason"] == "compiler-message"
                && msg["message"]["level"] == "error"
            {
                let rendered = msg["message"]["rendered"]
                    .as_str()
                    .or(msg["message"]["message"].as_str())
                    .unwrap_or("compile error");
                self.build_errors
                    .push(cap_text(rendered, MAX_FAILURE_OUTPUT));
            }
            return None;
        }
        if let Some((name, body)) = &mut self.section {
            if line.starts_with("---- ") || line == "failures:" || line.starts_with("test result:")
            {
                let (name, body) = (name.clone(), body.clone());
                self.section = None;
                if let Some(f) = self.failures.iter_mut().find(|f| f.name == name) {
                    f.message = cap_text(body.trim_end(), MAX_FAILURE_OUTPUT);
                }
            } else {
                if body.len() < MAX_FAILURE_OUTPUT {
                    body.push_str(line);
                    body.push('\n');
                }
                return None;
            }
        }
        if let Some(rest) = line.strip_prefix("---- ")
            && let Some(name) = rest.strip_suffix(" stdout ----")
        {
            self.section = Some((name.to_string(), String::new()));
            return None;
        }
        let rest = line.strip_prefix("test ")?;
        let (name, outcome) = rest.rsplit_once(" ... ")?;
        let name = name.trim().to_string();
        match outcome.trim() {
            "ok" => self.totals.passed += 1,
            "FAILED" => {
                self.totals.failed += 1;
                self.failed_names.push(name.clone());
                if self.failures.len() < MAX_FAILURES {
                    self.failures.push(TestFailure {
                        name: name.clone(),
                        message: String::new(),
                    });
                }
            }
            o if o.starts_with("ignored") => self.totals.ignored += 1,
            _ => return None,
        }
        self.totals.total += 1;
        Some(name)
    }

    fn feed_nextest(&mut self, line: &str) -> Option<String> {
        let t = line.trim_start();
        let (status, rest) = t.split_once(' ')?;
        if !matches!(
            status,
            "PASS" | "FAIL" | "SIGSEGV" | "SIGABRT" | "TIMEOUT" | "LEAK-FAIL"
        ) {
            return None;
        }
        // "[   0.004s] crate::bin tests::name"
        let rest = rest.trim_start();
        let after = rest.strip_prefix('[')?.split_once(']')?.1.trim();
        let name = after.split_whitespace().last()?.to_string();
        self.totals.total += 1;
        if status == "PASS" {
            self.totals.passed += 1;
        } else {
            self.totals.failed += 1;
            if self.failures.len() < MAX_FAILURES {
                self.failures.push(TestFailure {
                    name: name.clone(),
                    message: status.to_string(),
                });
            }
        }
        Some(name)
    }

    fn feed_pytest(&mut self, line: &str) -> Option<String> {
        // Verbose lines: "tests/test_x.py::test_y PASSED    [ 50%]".
        if line.starts_with("FAILED ") || line.starts_with("ERROR ") {
            return None; // short summary lines repeat what was seen
        }
        let (name, rest) = line.split_once(' ')?;
        if !name.contains("::") {
            return None;
        }
        let outcome = rest.split_whitespace().next()?;
        match outcome {
            "PASSED" | "XPASS" => self.totals.passed += 1,
            "FAILED" | "ERROR" => {
                self.totals.failed += 1;
                if self.failures.len() < MAX_FAILURES {
                    self.failures.push(TestFailure {
                        name: name.to_string(),
                        message: String::new(),
                    });
                }
            }
            "SKIPPED" | "XFAIL" => self.totals.ignored += 1,
            _ => return None,
        }
        self.totals.total += 1;
        Some(name.to_string())
    }
}

fn cap_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(super) fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

/// Fills pytest failure messages from the `____ test_name ____` sections of stdout.
fn pytest_failure_details(stdout: &str, failures: &mut [TestFailure]) {
    let mut current: Option<(String, String)> = None;
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        let t = line.trim();
        if t.starts_with("___") && t.ends_with("___") {
            if let Some(s) = current.take() {
                sections.push(s);
            }
            let name = t.trim_matches('_').trim().to_string();
            current = Some((name, String::new()));
        } else if t.starts_with("===") {
            if let Some(s) = current.take() {
                sections.push(s);
            }
        } else if let Some((_, body)) = &mut current
            && body.len() < MAX_FAILURE_OUTPUT
        {
            body.push_str(line);
            body.push('\n');
        }
    }
    for f in failures.iter_mut() {
        let short = f.name.rsplit("::").next().unwrap_or(&f.name);
        if let Some((_, body)) = sections
            .iter()
            .find(|(n, _)| n == short || n.ends_with(short))
        {
            f.message = cap_text(body.trim_end(), MAX_FAILURE_OUTPUT);
        }
    }
}

/// Parses jest/vitest `--json` reports (same top-level shape).
fn parse_js_report(path: &Path) -> Option<(Totals, Vec<TestFailure>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let totals = Totals {
        passed: n("numPassedTests"),
        failed: n("numFailedTests"),
        total: n("numTotalTests"),
        ignored: n("numPendingTests") + n("numTodoTests"),
    };
    let mut failures = Vec::new();
    for file in v["testResults"].as_array().into_iter().flatten() {
        for a in file["assertionResults"].as_array().into_iter().flatten() {
            if a["status"] == "failed" && failures.len() < MAX_FAILURES {
                let msg = a["failureMessages"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                failures.push(TestFailure {
                    name: a["fullName"].as_str().unwrap_or("?").to_string(),
                    message: cap_text(&msg, MAX_FAILURE_OUTPUT),
                });
            }
        }
    }
    Some((totals, failures))
}

fn js_coverage(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("coverage/coverage-summary.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["total"]["lines"]["pct"].as_f64()
}

/// Runs the tests of `dir`, reporting progress as tests finish.
pub async fn run_tests(
    exec: &SecureExec,
    ctx: &CallCtx,
    dir: &Path,
    framework: Framework,
    test_path: Option<&str>,
    coverage: bool,
    timeout: Option<Duration>,
) -> Result<TestReport, ToolError> {
    let framework = match framework {
        Framework::Auto => detect_framework(dir).ok_or_else(|| {
            ToolError::business(format!(
                "no test framework detected in {} (looked for Cargo.toml, package.json with jest/vitest, pyproject.toml/pytest.ini/conftest.py/test_*.py); pass `framework`",
                dir.display()
            ))
        })?,
        f => f,
    };
    if let Some(p) = test_path
        && (p.starts_with('-') || p.len() > 1000)
    {
        return Err(ToolError::input(
            "testPath: must be a test path or filter, not an option (no leading '-')",
        ));
    }
    let timeout = timeout
        .unwrap_or(DEFAULT_TEST_TIMEOUT)
        .min(ctx.remaining().saturating_sub(Duration::from_millis(250)));
    let (mut cmd, report_file) = test_command(framework, dir, test_path, coverage, timeout);
    cmd.output_cap = 4 * 1024 * 1024;
    let live = Arc::new(Mutex::new(LiveTests::default()));
    let sink_live = live.clone();
    let progress = ctx.progress.clone();
    let sink: LineSink = Arc::new(move |stream, line| {
        let mut l = sink_live.lock();
        if let Some(name) = l.feed(framework, stream, line) {
            let done = l.totals.total;
            drop(l);
            progress.report(
                done as f64,
                None,
                format!("{done} tests done; last: {name}"),
            );
        }
    });
    let started = Instant::now();
    let out = exec
        .run(&cmd, ctx.deadline, &ctx.cancel, Some(sink))
        .await
        .map_err(exec_err)?;
    let mut live = std::mem::take(&mut *live.lock());
    if let Some((name, body)) = live.section.take()
        && let Some(f) = live.failures.iter_mut().find(|f| f.name == name)
    {
        f.message = cap_text(body.trim_end(), MAX_FAILURE_OUTPUT);
    }
    let mut cov = None;
    match framework {
        Framework::Pytest => pytest_failure_details(&out.stdout, &mut live.failures),
        Framework::Jest | Framework::Vitest => {
            if let Some(file) = &report_file {
                if let Some((t, f)) = parse_js_report(file) {
                    live.totals = t;
                    live.failures = f;
                }
                let _ = std::fs::remove_file(file);
            }
            if coverage {
                let pct = js_coverage(dir);
                cov = Some(Coverage {
                    available: pct.is_some(),
                    lines_pct: pct,
                    note: if pct.is_some() {
                        "from coverage/coverage-summary.json".into()
                    } else {
                        "coverage requested; no coverage/coverage-summary.json was written (add the json-summary reporter)".into()
                    },
                });
            }
        }
        _ => {}
    }
    if coverage && cov.is_none() {
        cov = Some(Coverage {
            available: false,
            lines_pct: None,
            note: match framework {
                Framework::Pytest => "coverage needs pytest-cov; run with `--cov` through run_command if it is installed".into(),
                _ => "cargo has no built-in coverage; use cargo-llvm-cov through run_command if it is installed".into(),
            },
        });
    }
    finish_report(framework, dir, started, out, live, cov)
}

fn finish_report(
    framework: Framework,
    dir: &Path,
    started: Instant,
    out: Output,
    mut live: LiveTests,
    coverage: Option<Coverage>,
) -> Result<TestReport, ToolError> {
    if !live.build_errors.is_empty() {
        live.totals.failed += 1;
        live.totals.total += 1;
        live.failures.insert(
            0,
            TestFailure {
                name: "build".into(),
                message: cap_text(&live.build_errors.join("\n"), MAX_FAILURE_OUTPUT),
            },
        );
    } else if !out.success() && live.totals.failed == 0 && !out.timed_out {
        // The runner failed without reporting a failing test (collection error, crash).
        let exit = out
            .exit_code
            .map_or("a signal".to_string(), |c| format!("exit code {c}"));
        let no_tests = framework == Framework::Pytest && out.exit_code == Some(5);
        if !no_tests {
            live.totals.failed += 1;
            live.totals.total += 1;
            live.failures.push(TestFailure {
                name: "runner".into(),
                message: format!(
                    "{} ended with {exit}: {}",
                    out.command,
                    tail(&out.stderr, 1024).trim()
                ),
            });
        }
    }
    if out.timed_out {
        live.failures.push(TestFailure {
            name: "timeout".into(),
            message: format!(
                "the test run passed its timeout after {} ms and was killed",
                out.duration_ms
            ),
        });
        live.totals.failed += 1;
        live.totals.total += 1;
    }
    Ok(TestReport {
        framework,
        command: out.command.clone(),
        cwd: dir.display().to_string(),
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code: out.exit_code,
        timed_out: out.timed_out,
        totals: live.totals,
        failures: live.failures,
        coverage,
        stderr_tail: tail(&out.stderr, 2048),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lines_are_parsed_as_they_come() {
        let mut l = LiveTests::default();
        let f = Framework::Cargo;
        assert_eq!(
            l.feed(f, Stream::Stdout, "test a::ok_one ... ok")
                .as_deref(),
            Some("a::ok_one")
        );
        l.feed(f, Stream::Stdout, "test a::bad ... FAILED");
        l.feed(f, Stream::Stdout, "test a::skip ... ignored, slow");
        l.feed(f, Stream::Stdout, "failures:");
        l.feed(f, Stream::Stdout, "---- a::bad stdout ----");
        l.feed(f, Stream::Stdout, "assertion failed: 1 == 2");
        l.feed(f, Stream::Stdout, "failures:");
        assert_eq!(
            l.totals,
            Totals {
                passed: 1,
                failed: 1,
                total: 3,
                ignored: 1
            }
        );
        assert_eq!(l.failures[0].name, "a::bad");
        assert!(l.failures[0].message.contains("assertion failed"));
    }

    #[test]
    fn pytest_and_nextest_lines_are_parsed() {
        let mut l = LiveTests::default();
        l.feed(
            Framework::Pytest,
            Stream::Stdout,
            "tests/test_a.py::test_ok PASSED      [ 50%]",
        );
        l.feed(
            Framework::Pytest,
            Stream::Stdout,
            "tests/test_a.py::test_bad FAILED     [100%]",
        );
        l.feed(
            Framework::Pytest,
            Stream::Stdout,
            "FAILED tests/test_a.py::test_bad - assert 1 == 2",
        );
        assert_eq!(l.totals.total, 2);
        assert_eq!(l.failures[0].name, "tests/test_a.py::test_bad");
        let mut n = LiveTests::default();
        n.feed(
            Framework::Nextest,
            Stream::Stderr,
            "        PASS [   0.004s] fx tests::a",
        );
        n.feed(
            Framework::Nextest,
            Stream::Stderr,
            "        FAIL [   0.004s] fx tests::b",
        );
        assert_eq!(
            n.totals,
            Totals {
                passed: 1,
                failed: 1,
                total: 2,
                ignored: 0
            }
        );
    }
}
