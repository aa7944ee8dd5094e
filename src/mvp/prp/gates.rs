//! The PRP gates: strategy (the blueprint), build (the project's tests and linter, run
//! through `runners.rs` when a workspace is given) and evaluation (the evidence gathered,
//! each requirement traced to it through `trace.rs`), and the `cerebrum` decision over the
//! phases run.
//!
//! Owns how each gate finds its blockers, majors and minors; it must not order the phases,
//! keep history or publish events (that is `prp.rs`, `prp_store.rs` and the caller).

use std::{collections::HashMap, path::Path};

use super::{Blueprint, Cerebrum, Decision, Gate, GateLimits, MAX_FINDINGS, PhaseRecord};
use crate::mvp::{
    Mvp,
    coverage::CoverageWant,
    runners::{self, AnalysisReport, Framework, TestReport},
    trace::{self, EvidenceItem},
};
use crate::runtime::registry::{CallCtx, ToolError};

#[derive(Default)]
pub(super) struct Findings {
    pub(super) blockers: Vec<String>,
    pub(super) majors: Vec<String>,
    pub(super) minors: Vec<String>,
    pub(super) evidence: Vec<String>,
}

impl Findings {
    pub(super) fn gate(self, limits: GateLimits) -> Gate {
        let (b, m, n) = (
            self.blockers.len() as u64,
            self.majors.len() as u64,
            self.minors.len() as u64,
        );
        let cut = |mut v: Vec<String>| {
            v.truncate(MAX_FINDINGS);
            v
        };
        Gate {
            passed: b <= limits.max_blockers as u64 && m <= limits.max_majors as u64,
            blocker_count: b,
            major_count: m,
            minor_count: n,
            blockers: cut(self.blockers),
            majors: cut(self.majors),
            minors: cut(self.minors),
            evidence: self.evidence,
            trace: Vec::new(),
        }
    }
}

/// Evidence carried from build to evaluation.
#[derive(Default)]
pub(super) struct BuildEvidence {
    tests: Option<TestReport>,
    lint: Option<AnalysisReport>,
    workspace: bool,
    /// What requirements are traced to: tests that ran, test files, gate results.
    items: Vec<EvidenceItem>,
}

pub fn strategy_gate(bp: &Blueprint, limits: GateLimits) -> Gate {
    let mut f = Findings::default();
    if bp.title.trim().is_empty() {
        f.blockers.push("blueprint has no title".into());
    }
    if bp.description.trim().is_empty() {
        f.blockers.push("blueprint has no description".into());
    }
    if bp.requirements.iter().all(|r| r.trim().is_empty()) {
        f.blockers
            .push("blueprint lists no requirements: nothing can be verified".into());
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, r) in bp.requirements.iter().enumerate() {
        let norm = r.trim().to_lowercase();
        if norm.is_empty() {
            f.majors.push(format!("requirement {} is empty", i + 1));
            continue;
        }
        if let Some(first) = seen.insert(norm.clone(), i) {
            f.majors.push(format!(
                "requirement {} repeats requirement {}",
                i + 1,
                first + 1
            ));
        }
        if norm.split_whitespace().count() < 3 {
            f.minors.push(format!(
                "requirement {} (\"{}\") is too short to verify",
                i + 1,
                r.trim()
            ));
        }
    }
    f.evidence.push(format!(
        "{} requirements, description {} characters",
        bp.requirements.len(),
        bp.description.chars().count()
    ));
    f.gate(limits)
}

/// Whether `tool` is offered by this server (not excluded, selected, allowed by
/// read-only): the registry in `ctx` holds exactly the offered tools.
fn offered(ctx: &CallCtx, tool: &str) -> Result<(), ToolError> {
    if ctx.registry.get(tool).is_some() {
        Ok(())
    } else {
        Err(ToolError::business(format!(
            "{tool} is not offered by this server (excluded or not selected)"
        )))
    }
}

pub(super) async fn build_gate(
    mvp: &Mvp,
    ctx: &CallCtx,
    workspace: Option<&Path>,
    limits: GateLimits,
    evidence: &mut BuildEvidence,
) -> Result<Gate, ToolError> {
    let mut f = Findings::default();
    let Some(dir) = workspace else {
        f.minors
            .push("no workspace given: build not verified by tests or lint".into());
        f.evidence.push("no workspace".into());
        return Ok(f.gate(limits));
    };
    evidence.workspace = true;
    // Tests and lint run only where their tools are offered: an excluded `test_runner`
    // or `code_analysis` is not reachable through a PRP run either.
    let tests = match offered(ctx, "test_runner") {
        Err(e) => Err(e),
        Ok(()) => {
            runners::run_tests(
                &mvp.exec,
                ctx,
                dir,
                Framework::Auto,
                None,
                CoverageWant::Off,
                None,
            )
            .await
        }
    };
    match tests {
        Ok(report) => {
            for failure in &report.failures {
                f.blockers.push(format!("test failed: {}", failure.name));
            }
            f.evidence.push(format!(
                "tests ({}): {} passed, {} failed, {} total",
                report.command, report.totals.passed, report.totals.failed, report.totals.total
            ));
            evidence.items.extend(
                report
                    .test_names
                    .iter()
                    .map(|n| EvidenceItem::new(format!("test {n}"), n)),
            );
            evidence.tests = Some(report);
        }
        Err(ToolError::Cancelled) => return Err(ToolError::Cancelled),
        Err(ToolError::Deadline(m)) => return Err(ToolError::Deadline(m)),
        Err(e) => f.majors.push(format!("tests could not run: {e}")),
    }
    let lint = match offered(ctx, "code_analysis") {
        Err(e) => Err(e),
        Ok(()) => {
            runners::analyse(
                &mvp.roots,
                &mvp.runtime.executor,
                &mvp.exec,
                &mvp.analysis_cache,
                ctx,
                dir,
                &[],
                &[],
                None,
            )
            .await
        }
    };
    match lint {
        Ok(report) => {
            for issue in report.issues.iter().filter(|i| i.severity == "error") {
                f.majors.push(format!(
                    "lint error {}: {}:{}: {}",
                    issue.rule_id.as_deref().unwrap_or("-"),
                    relative(dir, &issue.file_path),
                    issue.line,
                    issue.message
                ));
            }
            if report.warning_count > 0 {
                f.minors
                    .push(format!("{} lint warnings", report.warning_count));
            }
            f.evidence.push(format!(
                "lint ({}): {} errors, {} warnings",
                report.command, report.error_count, report.warning_count
            ));
            evidence.lint = Some(report);
        }
        Err(ToolError::Cancelled) => return Err(ToolError::Cancelled),
        Err(ToolError::Deadline(m)) => return Err(ToolError::Deadline(m)),
        Err(e) => f.majors.push(format!("lint could not run: {e}")),
    }
    let root = dir.to_path_buf();
    let files = mvp
        .runtime
        .executor
        .run_cpu(ctx.deadline, &ctx.cancel, move || {
            trace::scan_test_files(&root)
        })
        .await
        .map_err(|e| ToolError::Deadline(e.to_string()))?;
    f.evidence
        .push(format!("{} test files read for tracing", files.len()));
    evidence.items.extend(files);
    evidence.items.extend(
        f.evidence
            .iter()
            .map(|line| EvidenceItem::new(format!("gate {line}"), line)),
    );
    Ok(f.gate(limits))
}

fn relative(dir: &Path, file: &str) -> String {
    Path::new(file)
        .strip_prefix(dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.to_string())
}

pub(super) fn evaluation_gate(
    bp: &Blueprint,
    evidence: &BuildEvidence,
    limits: GateLimits,
) -> Gate {
    let mut f = Findings::default();
    let traces = trace::trace(&bp.requirements, &evidence.items);
    if !evidence.workspace {
        f.majors.push(
            "no build evidence: pass a workspace so tests and lint verify the requirements".into(),
        );
        f.evidence
            .push("requirements checked against: nothing".into());
        let mut gate = f.gate(limits);
        gate.trace = traces;
        return gate;
    }
    match &evidence.tests {
        Some(t) if t.totals.total == 0 => f
            .majors
            .push("the test run found no tests: nothing verifies the requirements".into()),
        Some(t) => f.evidence.push(format!("{} tests ran", t.totals.total)),
        None => f.majors.push("no test evidence was gathered".into()),
    }
    if evidence.lint.is_none() {
        f.minors.push("no lint evidence was gathered".into());
    }
    for t in &traces {
        if t.keywords.is_empty() {
            f.minors.push(format!(
                "requirement {} has no checkable terms",
                t.requirement
            ));
        } else if !t.traced {
            f.majors.push(format!(
                "requirement {} (\"{}\") is not traced to any test, test file or gate result (keywords: {})",
                t.requirement,
                t.text,
                t.keywords.join(", ")
            ));
        }
    }
    f.evidence.push(format!(
        "{} of {} requirements traced to {} evidence items ({} tests, {} lint issues)",
        traces.iter().filter(|t| t.traced).count(),
        bp.requirements.len(),
        evidence.items.len(),
        evidence.tests.as_ref().map_or(0, |t| t.totals.total),
        evidence
            .lint
            .as_ref()
            .map_or(0, |l| l.error_count + l.warning_count)
    ));
    let mut gate = f.gate(limits);
    gate.trace = traces;
    gate
}

pub(super) fn cerebrum(phases: &[PhaseRecord]) -> Cerebrum {
    let failed = phases.iter().find(|p| !p.gate.passed);
    let majors: u64 = phases.iter().map(|p| p.gate.major_count).sum();
    let minors: u64 = phases.iter().map(|p| p.gate.minor_count).sum();
    match failed {
        None => {
            let mut reasons: Vec<String> = phases
                .iter()
                .map(|p| {
                    format!(
                        "{} gate passed ({} blockers, {} majors, {} minors)",
                        p.phase.as_str(),
                        p.gate.blocker_count,
                        p.gate.major_count,
                        p.gate.minor_count
                    )
                })
                .collect();
            for p in phases {
                reasons.extend(
                    p.gate
                        .majors
                        .iter()
                        .map(|m| format!("{} (accepted major): {m}", p.phase.as_str())),
                );
            }
            let confidence = (1.0 - 0.1 * majors as f64 - 0.02 * minors as f64).max(0.5);
            Cerebrum {
                decision: Decision::Promote,
                reasons,
                confidence: (confidence * 100.0).round() / 100.0,
            }
        }
        Some(p) => {
            let mut reasons = vec![format!(
                "{} gate failed: {} blockers, {} majors",
                p.phase.as_str(),
                p.gate.blocker_count,
                p.gate.major_count
            )];
            reasons.extend(p.gate.blockers.iter().map(|b| format!("blocker: {b}")));
            reasons.extend(p.gate.majors.iter().map(|m| format!("major: {m}")));
            let confidence = (0.6 + 0.1 * p.gate.blocker_count as f64).min(0.95);
            Cerebrum {
                decision: Decision::Recycle,
                reasons,
                confidence: (confidence * 100.0).round() / 100.0,
            }
        }
    }
}
