//! The security-scan tool: `run_security_scan` over a directory inside the workspace
//! roots, on the executor's `cpu` lane, publishing `asbr.security.scan_executed`.
//!
//! Owns its input, handler and registration; the rules, walk and advisories live in
//! `asbr::scan`.

use crate::runtime::tool_tasks::TaskSupport;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{A, Out};
use crate::asbr::scan::{self, Finding, ScanError, ScanSummary, ScanType, Severity};

pub(super) fn register(t: &Tools<A>) -> Vec<ToolDef> {
    let read = Hints::read();
    vec![
        t.tool(
            "run_security_scan",
            read,
            run_security_scan,
            "Scan a workspace directory for secrets (redacted), SAST issues, vulnerable dependencies (OSV advisories in ASBR_ADVISORIES_DIR) or `all`; returns a summary and up to 1,000 findings, most severe first.",
        )
        .titled("Run security scan")
        .with_task_support(TaskSupport::Optional),
    ]
}

impl From<ScanError> for ToolError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Path(_) | ScanError::NotFound(_) => ToolError::Input(e.to_string()),
            ScanError::Advisories(_) => ToolError::Business(e.to_string()),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanIn {
    /// A directory inside the workspace roots (absolute, or relative to the first root).
    #[schemars(length(min = 1, max = 4096))]
    pub target_path: String,
    #[serde(default)]
    pub scan_type: ScanType,
    /// Lowest severity to report.
    #[serde(default)]
    pub severity: Option<Severity>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanOut {
    pub findings: Vec<Finding>,
    pub summary: ScanSummary,
    pub duration_ms: u64,
}

pub(super) async fn run_security_scan(a: A, i: ScanIn, ctx: CallCtx) -> Out<ScanOut> {
    let root = scan::resolve_target(&a.scanner.roots, &i.target_path)?;
    let wants_deps = matches!(i.scan_type, ScanType::Dependency | ScanType::All);
    let advisories = match (&a.scanner.advisories_dir, wants_deps) {
        (Some(dir), true) => scan::load_advisories(dir)?,
        (None, true) if i.scan_type == ScanType::Dependency => {
            return Err(ToolError::business(
                "dependency scans need OSV advisories: set ASBR_ADVISORIES_DIR (or --advisories-dir) to a directory of OSV *.json files",
            ));
        }
        _ => Vec::new(),
    };
    let rules = a.scanner.rules.clone();
    let progress = ctx.progress.clone();
    let (scan_type, min) = (i.scan_type, i.severity);
    let started = std::time::Instant::now();
    let work_root = root.clone();
    let stop = ctx.stop.clone();
    let outcome = a
        .executor
        .run_cpu(ctx.deadline, &ctx.cancel, move || {
            let on_file = |n: u64| {
                if n.is_multiple_of(200) {
                    progress.report(n as f64, None, format!("{n} files scanned"));
                }
            };
            scan::scan_dir(
                &rules,
                &work_root,
                scan_type,
                min,
                &advisories,
                &stop,
                &on_file,
            )
        })
        .await
        .map_err(|e| match e {
            crate::runtime::executor::ExecError::Aborted { .. } => {
                ToolError::Internal(format!("scan stopped: {e}"))
            }
            e => ToolError::Deadline(e.to_string()),
        })??;
    let duration_ms = started.elapsed().as_millis() as u64;
    let data = crate::asbr::events::ScanExecuted {
        target_path: root.display().to_string(),
        scan_type,
        findings: outcome.findings.len(),
        by_severity: &outcome.summary.by_severity,
        files_scanned: outcome.summary.files_scanned,
        duration_ms,
    };
    if let Err(e) = a
        .events
        .publish_as("cortex-mcp/asbr", &data, ctx.principal.owner())
        .await
    {
        tracing::warn!("could not journal asbr.security.scan_executed: {e}");
    }
    Ok(ScanOut {
        findings: outcome.findings,
        summary: outcome.summary,
        duration_ms,
    })
}

// ---------------------------------------------------------------- registration
