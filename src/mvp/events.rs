//! The events the mvp tools publish (`mvp.metric.tracked`, `mvp.prp.phase`,
//! `mvp.user.action`): payload shapes and their versions only. Must not publish anything
//! itself; the handlers do (through `tools.rs`).

use serde::Serialize;

use crate::runtime::events::EventPayload;

use super::{
    lint::Linter,
    prp::{Phase, RunStatus},
    runners::{Framework, Totals},
    teaching::ExampleType,
};

/// `mvp.metric.tracked`: how long a tool call took, with what it did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTracked {
    /// The tool (`execute_graph`, `run_command`, …).
    pub name: String,
    pub duration_ms: f64,
    pub detail: MetricDetail,
}

impl EventPayload for MetricTracked {
    const TYPE: &'static str = "mvp.metric.tracked";
    const VERSION: u32 = 1;
}

/// The tool-specific part of [`MetricTracked`] (untagged: the fields tell them apart).
#[derive(Debug, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum MetricDetail {
    /// `execute_graph`.
    GraphRun {
        graph_id: String,
        run_id: String,
        status: String,
    },
    /// `run_prp_workflow`.
    PrpRun { run_id: String, status: RunStatus },
    /// `run_command`.
    Command {
        program: String,
        exit_code: Option<i32>,
        timed_out: bool,
    },
    /// `test_runner`.
    Tests {
        framework: Framework,
        totals: Totals,
    },
    /// `code_analysis`.
    Analysis {
        tool: Linter,
        errors: u64,
        cached: bool,
    },
}

/// `mvp.prp.phase`: a PRP workflow phase finished, with its gate.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrpPhase {
    pub run_id: String,
    pub title: String,
    pub phase: Phase,
    pub passed: bool,
    pub blockers: u64,
    pub majors: u64,
}

impl EventPayload for PrpPhase {
    const TYPE: &'static str = "mvp.prp.phase";
    const VERSION: u32 = 1;
}

/// `mvp.user.action`: a teaching example captured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserActionEvent {
    pub example_id: String,
    pub r#type: ExampleType,
    pub phase: String,
    pub action_type: String,
    pub success: bool,
}

impl EventPayload for UserActionEvent {
    const TYPE: &'static str = "mvp.user.action";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data<T: Serialize>(payload: &T) -> serde_json::Value {
        serde_json::to_value(payload).unwrap()
    }

    /// Each payload serializes exactly as the `json!` it replaced, built from the same
    /// values (subscribers depend on these shapes).
    #[test]
    fn mvp_event_data_keeps_its_shape() {
        let tracked = |detail| MetricTracked {
            name: "tool".into(),
            duration_ms: 1.5,
            detail,
        };
        let details = [
            (
                MetricDetail::GraphRun {
                    graph_id: "g".into(),
                    run_id: "r".into(),
                    status: "completed".into(),
                },
                json!({"graphId": "g", "runId": "r", "status": "completed"}),
            ),
            (
                MetricDetail::PrpRun {
                    run_id: "r".into(),
                    status: RunStatus::Recycled,
                },
                json!({"runId": "r", "status": RunStatus::Recycled}),
            ),
            (
                MetricDetail::Command {
                    program: "ls".into(),
                    exit_code: None,
                    timed_out: true,
                },
                json!({"program": "ls", "exitCode": null, "timedOut": true}),
            ),
            (
                MetricDetail::Tests {
                    framework: Framework::Cargo,
                    totals: Totals::default(),
                },
                json!({"framework": Framework::Cargo, "totals": Totals::default()}),
            ),
            (
                MetricDetail::Analysis {
                    tool: Linter::Ruff,
                    errors: 3,
                    cached: false,
                },
                json!({"tool": Linter::Ruff, "errors": 3, "cached": false}),
            ),
        ];
        for (detail, old) in details {
            assert_eq!(
                data(&tracked(detail)),
                json!({"name": "tool", "durationMs": 1.5, "detail": old})
            );
        }
        let phase = PrpPhase {
            run_id: "r".into(),
            title: "t".into(),
            phase: Phase::Build,
            passed: true,
            blockers: 0,
            majors: 1,
        };
        assert_eq!(
            data(&phase),
            json!({"runId": "r", "title": "t", "phase": Phase::Build, "passed": true,
                   "blockers": 0, "majors": 1})
        );
        let action = UserActionEvent {
            example_id: "e".into(),
            r#type: ExampleType::Decision,
            phase: "build".into(),
            action_type: "edit".into(),
            success: true,
        };
        assert_eq!(
            data(&action),
            json!({"exampleId": "e", "type": ExampleType::Decision, "phase": "build",
                   "actionType": "edit", "success": true})
        );
    }
}
