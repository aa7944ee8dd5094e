//! Test coverage for `test_runner`: which tool collects it for each framework (jest's
//! built-in istanbul, `@vitest/coverage-v8`, `pytest-cov`, `cargo-llvm-cov`), whether
//! that tool is installed, the runner arguments that write a machine-readable summary
//! to a private temporary location, and reading the line percentage back.
//!
//! Coverage omitted by the caller is best effort (a missing tool is noted in the
//! result); `coverage: true` requires it (a missing tool is an error naming it). Probes
//! run through [`super::exec::SecureExec`]; this module never spawns by itself and
//! never writes into the project except what the coverage tool itself writes (pytest-cov
//! keeps its `.coverage` data file in the project directory, as it always does).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use super::{
    exec::{Command, SecureExec},
    runners::{Coverage, Framework},
};
use crate::runtime::{
    registry::{CallCtx, ToolError},
    workspace::Beneath,
};

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverageWant {
    Off,
    /// `coverage` omitted: collect it when the tool is installed, else say why not.
    BestEffort,
    /// `coverage: true`: a missing tool is an error.
    Required,
}

impl CoverageWant {
    pub fn from_input(coverage: Option<bool>) -> Self {
        match coverage {
            None => CoverageWant::BestEffort,
            Some(true) => CoverageWant::Required,
            Some(false) => CoverageWant::Off,
        }
    }
}

/// How this run collects coverage.
#[derive(Debug, Clone)]
pub enum CoveragePlan {
    None,
    /// Not collected; the note says why.
    Missing(String),
    /// jest/vitest json-summary reporter into this directory.
    JsSummary(PathBuf),
    /// pytest-cov JSON report at this path.
    PytestJson(PathBuf),
    /// cargo-llvm-cov JSON summary at this path.
    LlvmCov(PathBuf),
}

/// A fresh report path in `dir` (the executor's scratch directory, which sandboxed
/// children may write).
fn temp_path(dir: &Path, kind: &str) -> PathBuf {
    dir.join(format!("cortex-mvp-cov-{kind}-{}", uuid::Uuid::new_v4()))
}

/// Decides how coverage is collected, probing for the tool it needs.
pub async fn plan(
    exec: &SecureExec,
    ctx: &CallCtx,
    framework: Framework,
    dir: &Path,
    want: CoverageWant,
) -> Result<CoveragePlan, ToolError> {
    if want == CoverageWant::Off {
        return Ok(CoveragePlan::None);
    }
    let missing = |tool: &str| {
        let msg = format!(
            "coverage for {} needs {tool}, which is not installed",
            framework.name()
        );
        match want {
            CoverageWant::Required => Err(ToolError::business(format!(
                "{msg}; install it, or call test_runner with coverage: false"
            ))),
            _ => Ok(CoveragePlan::Missing(format!(
                "{msg}; coverage was not collected"
            ))),
        }
    };
    match framework {
        Framework::Jest => Ok(CoveragePlan::JsSummary(temp_path(exec.scratch(), "jest"))),
        Framework::Vitest => {
            let providers = ["@vitest/coverage-v8", "@vitest/coverage-istanbul"];
            if providers
                .iter()
                .any(|p| dir.join("node_modules").join(p).is_dir())
            {
                Ok(CoveragePlan::JsSummary(temp_path(exec.scratch(), "vitest")))
            } else {
                missing("the npm package @vitest/coverage-v8 in the project")
            }
        }
        Framework::Pytest => {
            if pytest_cov_installed(exec, ctx, dir).await {
                Ok(CoveragePlan::PytestJson(temp_path(
                    exec.scratch(),
                    "pytest",
                )))
            } else {
                missing("pytest-cov (pip install pytest-cov)")
            }
        }
        Framework::Cargo | Framework::Nextest | Framework::Auto => {
            if exec.on_path("cargo-llvm-cov").is_some() {
                Ok(CoveragePlan::LlvmCov(temp_path(exec.scratch(), "llvm")))
            } else {
                missing(
                    "cargo-llvm-cov (cargo install cargo-llvm-cov, plus the rustup component llvm-tools-preview)",
                )
            }
        }
    }
}

async fn pytest_cov_installed(exec: &SecureExec, ctx: &CallCtx, dir: &Path) -> bool {
    let cmd = Command::new(
        "python3",
        &["-c", "import pytest_cov"],
        dir,
        Duration::from_secs(20),
    );
    matches!(exec.run(&cmd, ctx.deadline, &ctx.cancel, None).await, Ok(out) if out.success())
}

impl CoveragePlan {
    /// Runner arguments that write the summary (the cargo plan changes the command
    /// instead, see `runners::test_command`).
    pub fn args(&self, framework: Framework) -> Vec<String> {
        match (self, framework) {
            (CoveragePlan::JsSummary(d), Framework::Jest) => vec![
                "--coverage".into(),
                "--coverageReporters=json-summary".into(),
                format!("--coverageDirectory={}", d.display()),
            ],
            (CoveragePlan::JsSummary(d), Framework::Vitest) => vec![
                "--coverage.enabled".into(),
                "--coverage.reporter=json-summary".into(),
                format!("--coverage.reportsDirectory={}", d.display()),
                "--coverage.reportOnFailure".into(),
            ],
            (CoveragePlan::PytestJson(f), _) => vec![
                "--cov=.".into(),
                format!("--cov-report=json:{}", f.display()),
            ],
            _ => Vec::new(),
        }
    }

    /// Reads the figures back and removes the temporary files.
    pub fn finish(&self) -> Option<Coverage> {
        let (pct, source) = match self {
            CoveragePlan::None => return None,
            CoveragePlan::Missing(note) => {
                return Some(Coverage {
                    available: false,
                    lines_pct: None,
                    note: note.clone(),
                });
            }
            CoveragePlan::JsSummary(d) => {
                let pct = d
                    .file_name()
                    .and_then(|name| {
                        read_json(d.parent()?, &Path::new(name).join("coverage-summary.json"))
                    })
                    .and_then(|v| v["total"]["lines"]["pct"].as_f64());
                let _ = std::fs::remove_dir_all(d);
                (pct, "the json-summary coverage reporter")
            }
            CoveragePlan::PytestJson(f) => {
                let pct = read_report(f).and_then(|v| v["totals"]["percent_covered"].as_f64());
                let _ = std::fs::remove_file(f);
                (pct, "pytest-cov's JSON report")
            }
            CoveragePlan::LlvmCov(f) => {
                let pct = read_report(f)
                    .and_then(|v| v["data"][0]["totals"]["lines"]["percent"].as_f64());
                let _ = std::fs::remove_file(f);
                (pct, "cargo llvm-cov --json --summary-only")
            }
        };
        Some(Coverage {
            available: pct.is_some(),
            lines_pct: pct.map(|p| (p * 100.0).round() / 100.0),
            note: match pct {
                Some(_) => format!("line coverage from {source}"),
                None => {
                    format!("coverage was requested but {source} wrote no summary (see stderrTail)")
                }
            },
        })
    }
}

/// The JSON of the summary `path` (in the scratch directory that sandboxed children may
/// write), read through a handle of its directory.
fn read_report(path: &Path) -> Option<Value> {
    read_json(path.parent()?, Path::new(path.file_name()?))
}

/// The JSON of the regular file `rel` beneath `base`, read through a handle of `base`:
/// a symlink a test process put in its place (final or on the way) is not followed out.
fn read_json(base: &Path, rel: &Path) -> Option<Value> {
    let bytes = Beneath::open_ambient(base).ok()?.read(rel).ok()??;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_read_and_removed() {
        let d = temp_path(&std::env::temp_dir(), "unit");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("coverage-summary.json"),
            r#"{"total":{"lines":{"total":3,"covered":2,"pct":66.666}}}"#,
        )
        .unwrap();
        let c = CoveragePlan::JsSummary(d.clone()).finish().unwrap();
        assert_eq!(c.lines_pct, Some(66.67));
        assert!(!d.exists());
        let f = temp_path(&std::env::temp_dir(), "unit-llvm");
        std::fs::write(&f, r#"{"data":[{"totals":{"lines":{"percent":50.0}}}]}"#).unwrap();
        assert_eq!(
            CoveragePlan::LlvmCov(f).finish().unwrap().lines_pct,
            Some(50.0)
        );
        // A symlink a test process left in place of the report is not followed.
        let base = tempfile::tempdir().unwrap();
        let secret = base.path().join("secret.json");
        std::fs::write(&secret, r#"{"totals":{"percent_covered":42.0}}"#).unwrap();
        let scratch = base.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let f = temp_path(&scratch, "pytest");
        std::os::unix::fs::symlink(&secret, &f).unwrap();
        let c = CoveragePlan::PytestJson(f).finish().unwrap();
        assert_eq!(c.lines_pct, None);
        let d = temp_path(&scratch, "jest");
        std::os::unix::fs::symlink(base.path(), &d).unwrap();
        std::fs::write(
            base.path().join("coverage-summary.json"),
            r#"{"total":{"lines":{"pct":42.0}}}"#,
        )
        .unwrap();
        let c = CoveragePlan::JsSummary(d).finish().unwrap();
        assert_eq!(c.lines_pct, None);
        assert!(secret.exists());
        let none = CoveragePlan::PytestJson(temp_path(&std::env::temp_dir(), "absent"))
            .finish()
            .unwrap();
        assert!(!none.available);
    }
}
