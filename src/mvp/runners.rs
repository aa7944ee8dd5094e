//! Test runners: framework detection, the command for each (machine-readable or
//! line-per-test output so progress streams as tests finish), the run itself and the
//! report. Output parsers are in `test_output.rs`, coverage in `coverage.rs`, linters in
//! `lint.rs`.
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

pub use super::lint::{AnalysisCache, AnalysisReport, Issue, Linter, analyse, detect_linter};

use super::{
    coverage::{self, CoveragePlan, CoverageWant},
    exec::{Command, ExecError, LineSink, Output, SecureExec},
    test_output::{
        LiveTests, MAX_FAILURE_OUTPUT, cap_text, parse_js_report, pytest_failure_details,
    },
};
use crate::runtime::registry::{CallCtx, ToolError};

/// Test runs default to 10 minutes (still bounded by the request deadline).
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(600);

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

impl Framework {
    pub fn name(self) -> &'static str {
        match self {
            Framework::Auto => "auto",
            Framework::Cargo => "cargo",
            Framework::Nextest => "nextest",
            Framework::Vitest => "vitest",
            Framework::Jest => "jest",
            Framework::Pytest => "pytest",
        }
    }
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
    /// Names of the tests that ran (capped); not part of the tool result, used by the
    /// PRP evaluation gate to trace requirements to tests.
    #[serde(skip)]
    #[schemars(skip)]
    pub test_names: Vec<String>,
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
    // Read through the directory's handle: a package.json symlinked out is not followed.
    let package = crate::runtime::workspace::Beneath::open_ambient(dir)
        .ok()
        .and_then(|d| d.read(Path::new("package.json")).ok().flatten())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some(pkg) = package {
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

/// Builds the command line for a framework. jest and vitest write their JSON report
/// to the returned file.
fn test_command(
    framework: Framework,
    dir: &Path,
    test_path: Option<&str>,
    cov: &CoveragePlan,
    timeout: Duration,
    scratch: &Path,
) -> (Command, Option<PathBuf>) {
    let mut report_file = None;
    let llvm = match cov {
        CoveragePlan::LlvmCov(f) => Some(f),
        _ => None,
    };
    let (program, mut args): (&str, Vec<String>) = match framework {
        Framework::Cargo | Framework::Auto => {
            let mut a: Vec<String> = match llvm {
                // cargo-llvm-cov runs `cargo test` and passes libtest's lines through.
                Some(f) => vec![
                    "llvm-cov".into(),
                    "--no-fail-fast".into(),
                    "--json".into(),
                    "--summary-only".into(),
                    format!("--output-path={}", f.display()),
                ],
                None => ["test", "--no-fail-fast", "--message-format=json"]
                    .map(String::from)
                    .to_vec(),
            };
            if let Some(filter) = test_path {
                a.extend(["--".into(), filter.into()]);
            }
            ("cargo", a)
        }
        Framework::Nextest => {
            let mut a: Vec<String> = match llvm {
                Some(f) => vec![
                    "llvm-cov".into(),
                    "nextest".into(),
                    "--json".into(),
                    "--summary-only".into(),
                    format!("--output-path={}", f.display()),
                ],
                None => vec!["nextest".into(), "run".into()],
            };
            a.extend(["--no-fail-fast", "--color", "never"].map(String::from));
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
            a.extend(cov.args(framework));
            if let Some(p) = test_path {
                a.push(p.into());
            }
            ("python3", a)
        }
        Framework::Jest | Framework::Vitest => {
            let file = scratch.join(format!(
                "cortex-mvp-{}-{}.json",
                framework.name(),
                uuid::Uuid::new_v4()
            ));
            // `--no-install`: never fetch a runner from the registry; use the project's.
            let mut a: Vec<String> = if framework == Framework::Jest {
                vec![
                    "--no-install".into(),
                    "jest".into(),
                    "--json".into(),
                    format!("--outputFile={}", file.display()),
                    // One `✓`/`✕` line per test on stderr as each file finishes.
                    "--verbose".into(),
                ]
            } else {
                vec![
                    "--no-install".into(),
                    "vitest".into(),
                    "run".into(),
                    "--reporter=json".into(),
                    format!("--outputFile={}", file.display()),
                    // One `✓`/`×` line per test on stdout as it finishes.
                    "--reporter=verbose".into(),
                ]
            };
            a.extend(cov.args(framework));
            if let Some(p) = test_path {
                a.push(p.into());
            }
            report_file = Some(file);
            ("npx", a)
        }
    };
    if framework == Framework::Jest {
        args.push("--ci".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    (Command::new(program, &refs, dir, timeout), report_file)
}

fn resolve_framework(dir: &Path, framework: Framework) -> Result<Framework, ToolError> {
    match framework {
        Framework::Auto => detect_framework(dir).ok_or_else(|| {
            ToolError::business(format!(
                "no test framework detected in {} (looked for Cargo.toml, package.json with jest/vitest, pyproject.toml/pytest.ini/conftest.py/test_*.py); pass `framework`",
                dir.display()
            ))
        }),
        f => Ok(f),
    }
}

/// Runs the tests of `dir`, reporting progress as tests finish.
pub async fn run_tests(
    exec: &SecureExec,
    ctx: &CallCtx,
    dir: &Path,
    framework: Framework,
    test_path: Option<&str>,
    coverage: CoverageWant,
    timeout: Option<Duration>,
) -> Result<TestReport, ToolError> {
    let framework = resolve_framework(dir, framework)?;
    if let Some(p) = test_path
        && (p.starts_with('-') || p.len() > 1000)
    {
        return Err(ToolError::input(
            "testPath: must be a test path or filter, not an option (no leading '-')",
        ));
    }
    // cargo starts cargo-nextest itself, so it need not be allow-listed, only installed.
    if framework == Framework::Nextest && exec.on_path("cargo-nextest").is_none() {
        return Err(ToolError::business(
            "framework nextest needs cargo-nextest, which is not installed on PATH; install it (cargo install cargo-nextest) or use framework cargo",
        ));
    }
    let cov = coverage::plan(exec, ctx, framework, dir, coverage).await?;
    let timeout = timeout
        .unwrap_or(DEFAULT_TEST_TIMEOUT)
        .min(ctx.remaining().saturating_sub(Duration::from_millis(250)));
    let (mut cmd, report_file) =
        test_command(framework, dir, test_path, &cov, timeout, exec.scratch());
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
    let run = exec.run(&cmd, ctx.deadline, &ctx.cancel, Some(sink)).await;
    let coverage = cov.finish();
    let out = match run {
        Ok(out) => out,
        Err(e) => {
            if let Some(file) = &report_file {
                let _ = std::fs::remove_file(file);
            }
            return Err(exec_err(e));
        }
    };
    let mut live = std::mem::take(&mut *live.lock());
    live.close_section();
    match framework {
        Framework::Pytest => pytest_failure_details(&out.stdout, &mut live.failures),
        Framework::Jest | Framework::Vitest => {
            if let Some(file) = &report_file {
                if let Some(report) = parse_js_report(file) {
                    live.totals = report.totals;
                    live.failures = report.failures;
                    live.names = report.names;
                }
                let _ = std::fs::remove_file(file);
            }
        }
        _ => {}
    }
    finish_report(framework, dir, started, out, live, coverage)
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
        test_names: live.names,
    })
}
