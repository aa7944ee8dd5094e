//! Test runners and linters: project detection, the command for each, and parsers of
//! their machine-readable output (libtest lines and cargo JSON messages, nextest
//! status lines, pytest verbose lines, jest/vitest JSON; clippy JSON, ruff JSON,
//! eslint JSON). Lint results are cached by (content hash of the inputs, config hash).
//!
//! Every process goes through [`super::exec::SecureExec`]; this module never spawns.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::exec::{Command, ExecError, LineSink, Output, SecureExec, Stream};
use crate::runtime::registry::{CallCtx, ToolError};

/// Test runs default to 10 minutes (still bounded by the request deadline).
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Most failures listed in a result.
const MAX_FAILURES: usize = 100;
/// Bytes of a failure's captured output kept.
const MAX_FAILURE_OUTPUT: usize = 4096;
/// Most lint issues listed in a result.
const MAX_ISSUES: usize = 500;
/// Files hashed for the lint cache key at most (beyond: sizes and mtimes stand in).
const MAX_HASHED_BYTES: u64 = 64 * 1024 * 1024;
const SKIP_DIRS: &[&str] = &[
    "target",
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
    "build",
];

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

fn has_python_tests(dir: &Path) -> bool {
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

fn tail(s: &str, max: usize) -> String {
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

// ---------------------------------------------------------------- code analysis

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Linter {
    Clippy,
    Eslint,
    Ruff,
}

impl Linter {
    fn program(self) -> &'static str {
        match self {
            Linter::Clippy => "cargo",
            Linter::Eslint => "npx",
            Linter::Ruff => "ruff",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Linter::Clippy => "clippy",
            Linter::Eslint => "eslint",
            Linter::Ruff => "ruff",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub file_path: String,
    pub rule_id: Option<String>,
    /// error | warning
    pub severity: String,
    pub message: String,
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisReport {
    pub tool: Linter,
    pub command: String,
    pub error_count: u64,
    pub warning_count: u64,
    pub issues: Vec<Issue>,
    pub summary: String,
    /// Served from the cache (inputs and config unchanged).
    pub cached: bool,
    pub duration_ms: u64,
}

/// Lint results by (linter, content hash of inputs, config hash).
#[derive(Clone)]
pub struct AnalysisCache(moka::sync::Cache<String, Arc<AnalysisReport>>);

impl Default for AnalysisCache {
    fn default() -> Self {
        AnalysisCache(moka::sync::Cache::new(256))
    }
}

pub fn detect_linter(dir: &Path, files: &[String]) -> Option<Linter> {
    let ext_of = |f: &String| {
        Path::new(f)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_string)
    };
    if let Some(ext) = files.iter().find_map(ext_of) {
        return match ext.as_str() {
            "rs" => Some(Linter::Clippy),
            "py" => Some(Linter::Ruff),
            "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => Some(Linter::Eslint),
            _ => None,
        };
    }
    if dir.join("Cargo.toml").is_file() {
        Some(Linter::Clippy)
    } else if dir.join("package.json").is_file() {
        Some(Linter::Eslint)
    } else if ["pyproject.toml", "ruff.toml", ".ruff.toml", "setup.py"]
        .iter()
        .any(|m| dir.join(m).is_file())
        || has_python_tests(dir)
    {
        Some(Linter::Ruff)
    } else {
        None
    }
}

/// Hash of every source file under `dir` (or of `files`), skipping build outputs.
pub fn content_hash(dir: &Path, files: &[PathBuf], config: Option<&Path>) -> String {
    let mut h = Sha256::new();
    let mut budget = MAX_HASHED_BYTES;
    let mut paths: Vec<PathBuf> = if files.is_empty() {
        let mut all = Vec::new();
        walk(dir, &mut all, 0);
        all
    } else {
        files.to_vec()
    };
    paths.sort();
    for p in &paths {
        h.update(p.to_string_lossy().as_bytes());
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        if meta.len() <= budget {
            if let Ok(bytes) = std::fs::read(p) {
                budget -= bytes.len() as u64;
                h.update(&bytes);
            }
        } else {
            h.update(meta.len().to_le_bytes());
            if let Ok(m) = meta.modified() {
                h.update(format!("{m:?}").as_bytes());
            }
        }
    }
    h.update(b"\0config\0");
    if let Some(c) = config
        && let Ok(bytes) = std::fs::read(c)
    {
        h.update(&bytes);
    }
    hex::encode(&h.finalize()[..16])
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 24 || out.len() > 50_000 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.') {
                walk(&e.path(), out, depth + 1);
            }
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

fn lint_command(
    linter: Linter,
    dir: &Path,
    files: &[String],
    config: Option<&Path>,
    timeout: Duration,
) -> Command {
    let mut args: Vec<String> = match linter {
        Linter::Clippy => [
            "clippy",
            "--message-format=json",
            "--quiet",
            "--all-targets",
        ]
        .map(String::from)
        .to_vec(),
        Linter::Ruff => {
            let mut a: Vec<String> = ["check", "--output-format=json", "--no-cache", "--exit-zero"]
                .map(String::from)
                .to_vec();
            if let Some(c) = config {
                a.extend(["--config".into(), c.display().to_string()]);
            }
            a
        }
        Linter::Eslint => {
            let mut a: Vec<String> = ["--no-install", "eslint", "-f", "json"]
                .map(String::from)
                .to_vec();
            if let Some(c) = config {
                a.extend(["-c".into(), c.display().to_string()]);
            }
            a
        }
    };
    match linter {
        Linter::Clippy => {}
        _ if files.is_empty() => args.push(".".into()),
        _ => args.extend(files.iter().cloned()),
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Command::new(linter.program(), &refs, dir, timeout)
}

fn parse_clippy(stdout: &str, dir: &Path, files: &[String]) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut seen = BTreeSet::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-message" {
            continue;
        }
        let m = &v["message"];
        let severity = match m["level"].as_str() {
            Some("error") => "error",
            Some("warning") => "warning",
            _ => continue,
        };
        let Some(span) = m["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["is_primary"] == true))
        else {
            continue; // summary lines such as "N warnings emitted"
        };
        let file = span["file_name"].as_str().unwrap_or("?").to_string();
        if !files.is_empty()
            && !files
                .iter()
                .any(|f| file.ends_with(f.trim_start_matches("./")))
        {
            continue;
        }
        let issue = Issue {
            file_path: dir.join(&file).display().to_string(),
            rule_id: m["code"]["code"].as_str().map(str::to_string),
            severity: severity.into(),
            message: m["message"].as_str().unwrap_or("").to_string(),
            line: span["line_start"].as_u64().unwrap_or(0),
            column: span["column_start"].as_u64().unwrap_or(0),
        };
        let key = format!(
            "{}:{}:{}:{}",
            issue.file_path, issue.line, issue.column, issue.message
        );
        if seen.insert(key) {
            issues.push(issue);
        }
    }
    issues
}

fn parse_ruff(stdout: &str) -> Result<Vec<Issue>, String> {
    let v: Value =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("ruff output is not JSON: {e}"))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let code = d["code"].as_str().map(str::to_string);
            // Syntax errors and pyflakes findings (F…, E9…) are errors; style is a warning.
            let severity = match code.as_deref() {
                None => "error",
                Some(c) if c.starts_with('F') || c.starts_with("E9") => "error",
                Some(_) => "warning",
            };
            Issue {
                file_path: d["filename"].as_str().unwrap_or("?").to_string(),
                rule_id: code,
                severity: severity.into(),
                message: d["message"].as_str().unwrap_or("").to_string(),
                line: d["location"]["row"].as_u64().unwrap_or(0),
                column: d["location"]["column"].as_u64().unwrap_or(0),
            }
        })
        .collect())
}

fn parse_eslint(stdout: &str) -> Result<Vec<Issue>, String> {
    let v: Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("eslint output is not JSON: {e}"))?;
    let mut issues = Vec::new();
    for file in v.as_array().into_iter().flatten() {
        let path = file["filePath"].as_str().unwrap_or("?");
        for m in file["messages"].as_array().into_iter().flatten() {
            issues.push(Issue {
                file_path: path.to_string(),
                rule_id: m["ruleId"].as_str().map(str::to_string),
                severity: if m["severity"].as_u64() == Some(2) {
                    "error"
                } else {
                    "warning"
                }
                .into(),
                message: m["message"].as_str().unwrap_or("").to_string(),
                line: m["line"].as_u64().unwrap_or(0),
                column: m["column"].as_u64().unwrap_or(0),
            });
        }
    }
    Ok(issues)
}

/// Runs the project's linter (or serves the cached result for unchanged inputs).
#[allow(clippy::too_many_arguments)]
pub async fn analyse(
    executor: &crate::runtime::executor::Executor,
    exec: &SecureExec,
    cache: &AnalysisCache,
    ctx: &CallCtx,
    dir: &Path,
    files: &[String],
    file_paths: &[PathBuf],
    config: Option<&Path>,
) -> Result<AnalysisReport, ToolError> {
    let linter = detect_linter(dir, files).ok_or_else(|| {
        ToolError::business(format!(
            "no linter applies to {} (Cargo.toml → clippy, package.json → eslint, pyproject.toml/*.py → ruff)",
            dir.display()
        ))
    })?;
    let timeout =
        DEFAULT_TEST_TIMEOUT.min(ctx.remaining().saturating_sub(Duration::from_millis(250)));
    let cmd = lint_command(linter, dir, files, config, timeout);
    // A missing linter is an error that names it.
    exec.resolve(&cmd.program).map_err(|e| {
        ToolError::business(format!(
            "{} is needed for {}: {e}",
            linter.name(),
            dir.display()
        ))
    })?;
    let dir2 = dir.to_path_buf();
    let paths = file_paths.to_vec();
    let cfg = config.map(Path::to_path_buf);
    let hash = executor
        .run_cpu(ctx.deadline, &ctx.cancel, move || {
            content_hash(&dir2, &paths, cfg.as_deref())
        })
        .await
        .map_err(|e| ToolError::Deadline(e.to_string()))?;
    let key = format!(
        "{}|{}|{}|{}",
        linter.name(),
        dir.display(),
        files.join(","),
        hash
    );
    if let Some(hit) = cache.0.get(&key) {
        let mut r = (*hit).clone();
        r.cached = true;
        return Ok(r);
    }
    let started = Instant::now();
    let out = exec
        .run(&cmd, ctx.deadline, &ctx.cancel, None)
        .await
        .map_err(exec_err)?;
    if out.timed_out {
        return Err(ToolError::Deadline(format!(
            "{} timed out after {} ms",
            linter.name(),
            out.duration_ms
        )));
    }
    let issues = match linter {
        Linter::Clippy => {
            let issues = parse_clippy(&out.stdout, dir, files);
            if issues.is_empty() && !out.success() {
                return Err(ToolError::business(format!(
                    "cargo clippy failed ({}): {}",
                    out.exit_code
                        .map_or("signal".into(), |c| format!("exit code {c}")),
                    tail(&out.stderr, 1500).trim()
                )));
            }
            issues
        }
        Linter::Ruff => parse_ruff(&out.stdout).map_err(|e| {
            ToolError::business(format!("{e}; stderr: {}", tail(&out.stderr, 800).trim()))
        })?,
        Linter::Eslint => parse_eslint(&out.stdout).map_err(|e| {
            ToolError::business(format!("{e}; stderr: {}", tail(&out.stderr, 800).trim()))
        })?,
    };
    let error_count = issues.iter().filter(|i| i.severity == "error").count() as u64;
    let warning_count = issues.len() as u64 - error_count;
    let shown: Vec<Issue> = issues.into_iter().take(MAX_ISSUES).collect();
    let report = AnalysisReport {
        tool: linter,
        command: out.command.clone(),
        error_count,
        warning_count,
        summary: format!(
            "{}: {error_count} errors, {warning_count} warnings{}",
            linter.name(),
            if (error_count + warning_count) as usize > shown.len() {
                format!(" (first {} listed)", shown.len())
            } else {
                String::new()
            }
        ),
        issues: shown,
        cached: false,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    cache.0.insert(key, Arc::new(report.clone()));
    Ok(report)
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

    #[test]
    fn linter_outputs_are_parsed() {
        let ruff = r#"[{"code":"F401","message":"`os` imported but unused","filename":"/w/a.py","location":{"row":1,"column":8}},{"code":"E501","message":"long","filename":"/w/a.py","location":{"row":2,"column":1}}]"#;
        let issues = parse_ruff(ruff).unwrap();
        assert_eq!(issues[0].severity, "error");
        assert_eq!(issues[1].severity, "warning");
        let eslint = r#"[{"filePath":"/w/a.js","messages":[{"ruleId":"no-unused-vars","severity":2,"message":"x","line":3,"column":5}]}]"#;
        assert_eq!(
            parse_eslint(eslint).unwrap()[0].rule_id.as_deref(),
            Some("no-unused-vars")
        );
        let clippy = r#"{"reason":"compiler-message","message":{"level":"warning","message":"unused variable: `x`","code":{"code":"unused_variables"},"spans":[{"is_primary":true,"file_name":"src/lib.rs","line_start":2,"column_start":9}]}}"#;
        let issues = parse_clippy(clippy, Path::new("/w"), &[]);
        assert_eq!(issues[0].rule_id.as_deref(), Some("unused_variables"));
        assert_eq!(issues[0].line, 2);
    }
}
