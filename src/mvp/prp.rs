//! PRP workflows: strategy → build → evaluation → completed, or `recycled` at the first
//! gate that does not pass, with a `cerebrum` decision (promote | recycle) that lists its
//! reasons.
//!
//! Gates are real: the strategy gate checks the blueprint; with a workspace the build
//! gate runs the project's tests (each failing test is a blocker) and linter (each lint
//! error is a major); the evaluation gate checks the evidence gathered (tests ran,
//! lint gathered) and traces every requirement to it (`trace.rs`: test names, test
//! files, build gate results); each requirement not traced is a major. A gate passes
//! with at most `maxBlockers` blockers (default 0) and `maxMajors` majors (default 3).
//! No sleeps anywhere.
//!
//! Deterministic mode derives the run id from the input and fixes timestamps and
//! durations, so the same input gives byte-identical output.
//!
//! Owns the PRP model and the gates; the bounded history (a ring, journaled in the
//! `prp` stream) is `prp_store.rs`. Runs the build tools through `runners.rs`; publishes no events itself
//! (the caller does, from the returned phases).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Instant,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use super::prp_store::PrpStore;
use super::{
    Mvp,
    coverage::CoverageWant,
    runners::{self, AnalysisReport, Framework, TestReport},
    trace::{self, EvidenceItem, RequirementTrace},
};
use crate::runtime::registry::{CallCtx, ToolError};

const FIXED_TIME: &str = "1970-01-01T00:00:00.000Z";
/// Findings listed per severity in a gate (the counts stay exact).
const MAX_FINDINGS: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Blueprint {
    #[schemars(length(max = 500))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 20000))]
    pub description: String,
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub requirements: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GateLimits {
    /// Most blockers a passing gate may have (default 0).
    #[serde(default)]
    pub max_blockers: u32,
    /// Most majors a passing gate may have (default 3).
    #[serde(default = "three")]
    pub max_majors: u32,
}

fn three() -> u32 {
    3
}

impl Default for GateLimits {
    fn default() -> Self {
        GateLimits {
            max_blockers: 0,
            max_majors: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Strategy,
    Build,
    Evaluation,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Strategy => "strategy",
            Phase::Build => "build",
            Phase::Evaluation => "evaluation",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub passed: bool,
    pub blocker_count: u64,
    pub major_count: u64,
    pub minor_count: u64,
    pub blockers: Vec<String>,
    pub majors: Vec<String>,
    pub minors: Vec<String>,
    /// What the gate looked at.
    pub evidence: Vec<String>,
    /// Evaluation gate: each requirement and the evidence it was traced to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<RequirementTrace>,
}

#[derive(Default)]
struct Findings {
    blockers: Vec<String>,
    majors: Vec<String>,
    minors: Vec<String>,
    evidence: Vec<String>,
}

impl Findings {
    fn gate(self, limits: GateLimits) -> Gate {
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRecord {
    pub phase: Phase,
    pub gate: Gate,
    pub started_at: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Promote,
    Recycle,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Cerebrum {
    pub decision: Decision,
    pub reasons: Vec<String>,
    /// 0 to 1.
    pub confidence: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Completed,
    Recycled,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrpRun {
    pub run_id: String,
    pub title: String,
    pub status: RunStatus,
    /// The phase that recycled the run, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recycled_at: Option<Phase>,
    pub phases: Vec<PhaseRecord>,
    pub cerebrum: Cerebrum,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    pub deterministic: bool,
    pub gates: GateLimits,
    pub created_at: String,
    pub duration_ms: u64,
    /// The principal that ran it; only it sees the run (absent on runs recorded before
    /// owners were kept: everyone sees those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Evidence carried from build to evaluation.
#[derive(Default)]
struct BuildEvidence {
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

async fn build_gate(
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

fn evaluation_gate(bp: &Blueprint, evidence: &BuildEvidence, limits: GateLimits) -> Gate {
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

fn cerebrum(phases: &[PhaseRecord]) -> Cerebrum {
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

/// What `run_prp_workflow` was asked.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrpInput {
    pub blueprint: Blueprint,
    /// A project directory inside the workspace roots; its tests and linter feed the
    /// build gate.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Fixed run id (derived from the input), timestamps and durations.
    #[serde(default)]
    pub deterministic: bool,
    #[serde(default)]
    pub gates: Option<GateLimits>,
}

fn run_id(input: &PrpInput) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(input).unwrap_or_default());
    format!("prp-{}", &hex::encode(h.finalize())[..16])
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs the phases in order, stopping at the first gate that fails; `on_phase` sees
/// each phase as it completes.
pub async fn run(
    mvp: &Mvp,
    ctx: &CallCtx,
    input: &PrpInput,
    only: Option<Phase>,
    mut on_phase: impl FnMut(&str, &PhaseRecord),
) -> Result<PrpRun, ToolError> {
    let det = input.deterministic;
    let limits = input.gates.unwrap_or_default();
    let workspace: Option<PathBuf> = match &input.workspace {
        Some(w) => Some(
            mvp.roots
                .dir(Some(w))
                .map_err(|e| ToolError::input(format!("workspace: {e}")))?,
        ),
        None => None,
    };
    let id = if det {
        run_id(input)
    } else {
        format!("prp-{}", uuid::Uuid::now_v7().simple())
    };
    let started = Instant::now();
    let created_at = if det { FIXED_TIME.into() } else { now() };
    let mut phases = Vec::new();
    let mut evidence = BuildEvidence::default();
    let order = [Phase::Strategy, Phase::Build, Phase::Evaluation];
    for phase in order.into_iter().filter(|p| only.is_none_or(|o| o == *p)) {
        let t0 = Instant::now();
        let at = if det { FIXED_TIME.into() } else { now() };
        let gate = match phase {
            Phase::Strategy => strategy_gate(&input.blueprint, limits),
            Phase::Build => {
                build_gate(mvp, ctx, workspace.as_deref(), limits, &mut evidence).await?
            }
            Phase::Evaluation => evaluation_gate(&input.blueprint, &evidence, limits),
        };
        let record = PhaseRecord {
            phase,
            gate,
            started_at: at,
            duration_ms: if det {
                0
            } else {
                t0.elapsed().as_millis() as u64
            },
        };
        ctx.progress.report(
            phases.len() as f64 + 1.0,
            Some(3.0),
            format!(
                "{} gate {}",
                phase.as_str(),
                if record.gate.passed {
                    "passed"
                } else {
                    "failed"
                }
            ),
        );
        on_phase(&id, &record);
        let passed = record.gate.passed;
        phases.push(record);
        if !passed {
            break;
        }
    }
    let decision = cerebrum(&phases);
    let recycled_at = phases.iter().find(|p| !p.gate.passed).map(|p| p.phase);
    Ok(PrpRun {
        owner: ctx.principal.owner(),
        run_id: id,
        title: input.blueprint.title.clone(),
        status: if recycled_at.is_some() {
            RunStatus::Recycled
        } else {
            RunStatus::Completed
        },
        recycled_at,
        phases,
        cerebrum: decision,
        workspace: workspace.map(|w| w.display().to_string()),
        deterministic: det,
        gates: limits,
        created_at,
        duration_ms: if det {
            0
        } else {
            started.elapsed().as_millis() as u64
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_gate_counts_findings() {
        let bp = Blueprint {
            title: "t".into(),
            description: String::new(),
            requirements: vec!["a b c d".into(), "A B C D".into(), "x".into()],
        };
        let g = strategy_gate(&bp, GateLimits::default());
        assert!(!g.passed);
        assert_eq!(g.blocker_count, 1);
        assert_eq!(g.major_count, 1);
        assert_eq!(g.minor_count, 1);
    }

    #[test]
    fn cerebrum_lists_reasons() {
        let bad = PhaseRecord {
            phase: Phase::Build,
            gate: Findings {
                blockers: vec!["test failed: t::x".into()],
                ..Default::default()
            }
            .gate(GateLimits::default()),
            started_at: FIXED_TIME.into(),
            duration_ms: 0,
        };
        let c = cerebrum(&[bad]);
        assert_eq!(c.decision, Decision::Recycle);
        assert!(c.reasons.iter().any(|r| r.contains("t::x")));
    }
}
