//! The tools that run programs in the workspace — `run_command`, `test_runner`,
//! `code_analysis` — with their inputs, handlers and registration.
//!
//! Owns tool semantics only: processes go through `mvp::exec`, paths through
//! `mvp::workspace`, runners and linters through `mvp::runners`.

use crate::runtime::tool_tasks::TaskSupport;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{M, Out, RUNS, track, ws_err};
use crate::mvp::events::MetricDetail;
use crate::{
    mvp::{
        coverage::CoverageWant,
        exec::{self, Command, Output},
        runners::{self, AnalysisReport, Framework, TestReport, exec_err},
    },
    runtime::{
        registry::{CallCtx, ToolDef},
        toolset::Tools,
    },
};

pub(super) fn register(t: &Tools<M>) -> Vec<ToolDef> {
    let runs = RUNS;
    vec![
        t.tool(
            "run_command",
            runs.destructive(),
            run_command,
            "Run an allow-listed program (argv, no shell) in a workspace directory, sandboxed and with a timeout; returns the exit code and capped, redacted stdout and stderr.",
        )
        .titled("Run command"),
        t.tool(
            "test_runner",
            runs.destructive(),
            test_runner,
            "Run the project's tests (cargo, nextest, vitest, jest or pytest; detected by default); returns totals, failures (a compile error is one named `build`) and coverage when asked.",
        )
        .titled("Run tests")
        .with_task_support(TaskSupport::Optional),
        t.tool(
            "code_analysis",
            runs.destructive().idempotent(),
            code_analysis,
            "Lint the project with cargo clippy, eslint or ruff (detected from its files); returns counts and issues with file, rule, severity and position. Cached by content.",
        )
        .titled("Analyse code")
        .with_task_support(TaskSupport::Optional),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunCommandIn {
    /// An allow-listed program name (see `health` → processes.allowList); no paths, no shell.
    #[schemars(length(min = 1, max = 64))]
    pub program: String,
    /// Arguments, passed as-is (no shell expansion); each at most 1000 bytes.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub args: Vec<String>,
    /// Working directory inside the workspace roots (default: the first root).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the process group after this many ms (default: the server's, 30 s).
    #[serde(default)]
    #[schemars(range(min = 1, max = 3600000))]
    pub timeout_ms: Option<u64>,
    /// Extra environment variables; names must be allow-listed.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Cap of each of stdout and stderr in bytes (default 1 MiB).
    #[serde(default)]
    #[schemars(range(min = 256, max = 8388608))]
    pub max_output_bytes: Option<usize>,
}

pub(super) async fn run_command(mvp: M, input: RunCommandIn, ctx: CallCtx) -> Out<Output> {
    let cwd = mvp.roots.dir(input.cwd.as_deref()).map_err(ws_err)?;
    let timeout = input
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(mvp.exec.default_timeout);
    let mut cmd = Command::new(&input.program, &[], &cwd, timeout);
    cmd.args = input.args;
    cmd.env = input.env;
    cmd.output_cap = input.max_output_bytes.unwrap_or(exec::DEFAULT_OUTPUT_CAP);
    let progress = ctx.progress.clone();
    let lines = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink: exec::LineSink = Arc::new(move |_, line| {
        let n = lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress.report(n as f64, None, line.chars().take(200).collect::<String>());
    });
    let out = mvp
        .exec
        .run(&cmd, ctx.deadline, &ctx.cancel, Some(sink))
        .await
        .map_err(exec_err)?;
    track(
        &mvp,
        "run_command",
        out.duration_ms as f64,
        MetricDetail::Command {
            program: cmd.program.clone(),
            exit_code: out.exit_code,
            timed_out: out.timed_out,
        },
        ctx.principal.owner(),
    );
    Ok(out)
}

// ------------------------------------------------------------------ test_runner

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestRunnerIn {
    /// A test file, directory or name filter passed to the runner.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub test_path: Option<String>,
    /// auto (default) detects from the project files.
    #[serde(default)]
    pub framework: Framework,
    /// Line coverage: omitted, best effort (a missing tool is named in `coverage.note`);
    /// `true` requires it; `false` skips it.
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub coverage: Option<bool>,
    /// Project directory inside the workspace roots (default: the first root).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill the run after this many milliseconds (default 600000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 3600000))]
    pub timeout_ms: Option<u64>,
}

pub(super) async fn test_runner(mvp: M, input: TestRunnerIn, ctx: CallCtx) -> Out<TestReport> {
    let dir = mvp.roots.dir(input.cwd.as_deref()).map_err(ws_err)?;
    let report = runners::run_tests(
        &mvp.exec,
        &ctx,
        &dir,
        input.framework,
        input.test_path.as_deref(),
        CoverageWant::from_input(input.coverage),
        input.timeout_ms.map(Duration::from_millis),
    )
    .await?;
    track(
        &mvp,
        "test_runner",
        report.duration_ms as f64,
        MetricDetail::Tests {
            framework: report.framework,
            totals: report.totals.clone(),
        },
        ctx.principal.owner(),
    );
    Ok(report)
}

// ------------------------------------------------------------------ code_analysis

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeAnalysisIn {
    /// Files to lint (inside the roots); default: the whole project.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub files: Option<Vec<String>>,
    /// Project directory inside the workspace roots (default: the first root).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Linter configuration file inside the roots (ruff --config, eslint -c).
    #[serde(default)]
    pub config_path: Option<String>,
}

pub(super) async fn code_analysis(
    mvp: M,
    input: CodeAnalysisIn,
    ctx: CallCtx,
) -> Out<AnalysisReport> {
    let dir = mvp.roots.dir(input.cwd.as_deref()).map_err(ws_err)?;
    let mut rel = Vec::new();
    let mut abs = Vec::new();
    for f in input.files.unwrap_or_default() {
        let p = if Path::new(&f).is_absolute() {
            f.clone()
        } else {
            dir.join(&f).display().to_string()
        };
        let canonical = mvp.roots.resolve(&p).map_err(ws_err)?;
        let shown = canonical
            .strip_prefix(&dir)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| canonical.display().to_string());
        rel.push(shown);
        abs.push(canonical);
    }
    let config: Option<PathBuf> = match input.config_path {
        Some(c) => Some(mvp.roots.resolve(&c).map_err(ws_err)?),
        None => None,
    };
    let report = runners::analyse(
        &mvp.roots,
        &mvp.runtime.executor,
        &mvp.exec,
        &mvp.analysis_cache,
        &ctx,
        &dir,
        &rel,
        &abs,
        config.as_deref(),
    )
    .await?;
    track(
        &mvp,
        "code_analysis",
        report.duration_ms as f64,
        MetricDetail::Analysis {
            tool: report.tool,
            errors: report.error_count,
            cached: report.cached,
        },
        ctx.principal.owner(),
    );
    Ok(report)
}
