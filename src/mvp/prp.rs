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
//! `prp` stream) is `prp_store.rs`; the gates themselves are `prp/gates.rs`. Runs the build tools through `runners.rs`; publishes no events itself
//! (the caller does, from the returned phases).

use std::{path::PathBuf, time::Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use super::prp_store::PrpStore;
use super::{Mvp, trace::RequirementTrace};
use crate::runtime::registry::{CallCtx, ToolError};

mod gates;

pub use gates::strategy_gate;
use gates::{BuildEvidence, build_gate, cerebrum, evaluation_gate};

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
    use super::gates::Findings;
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
