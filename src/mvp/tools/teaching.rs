//! The teaching tools — `capture_example`, `list_patterns`, `replay_example` — with
//! their inputs, handlers and registration; publishes `mvp.user.action`.
//!
//! Owns tool semantics only: storage and similarity are `mvp::teaching`'s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{M, Out, publish};
use crate::mvp::events::UserActionEvent;
use crate::mvp::teaching::{
    self, Example, ExampleContext, ExampleType, Outcome, Pattern, Similarity, UserAction,
};
use crate::runtime::{
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

pub(super) fn register(t: &Tools<M>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "capture_example",
            write,
            capture_example,
            "Record a teaching example (type, phase, context, userAction, outcome); returns its id and its updated pattern's confidence and effectiveness.",
        )
        .titled("Capture example"),
        t.tool(
            "list_patterns",
            read,
            list_patterns,
            "List teaching patterns by type or phase with example counts, confidence and effectiveness.",
        )
        .titled("List patterns"),
        t.tool(
            "replay_example",
            read,
            replay_example,
            "Compare a captured example with the current `state`: the similarity and, from 0.6, the example's action as a suggestion.",
        )
        .titled("Replay example"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureIn {
    /// workflow | validation | decision | correction.
    pub r#type: ExampleType,
    /// Workflow phase, e.g. strategy, build, evaluation.
    #[schemars(length(min = 1, max = 64))]
    pub phase: String,
    #[serde(default = "empty_context")]
    pub context: ExampleContext,
    pub user_action: UserAction,
    pub outcome: Outcome,
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub tags: Vec<String>,
}

fn empty_context() -> ExampleContext {
    ExampleContext {
        description: String::new(),
        state: Default::default(),
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Captured {
    pub example_id: String,
    pub pattern: Pattern,
    pub stored_examples: usize,
}

pub(super) async fn capture_example(mvp: M, input: CaptureIn, ctx: CallCtx) -> Out<Captured> {
    if !(0.0..=1.0).contains(&input.outcome.learning_value) {
        return Err(ToolError::input(
            "outcome.learningValue: must be between 0 and 1",
        ));
    }
    let e = Example {
        id: format!("ex-{}", uuid::Uuid::now_v7().simple()),
        r#type: input.r#type,
        phase: input.phase,
        context: input.context,
        user_action: input.user_action,
        outcome: input.outcome,
        tags: input.tags,
        captured_at: chrono::Utc::now().timestamp_millis(),
    };
    let id = e.id.clone();
    publish(
        &mvp,
        UserActionEvent {
            example_id: id.clone(),
            r#type: e.r#type,
            phase: e.phase.clone(),
            action_type: e.user_action.r#type.clone(),
            success: e.outcome.success,
        },
        ctx.principal.owner(),
    );
    let pattern = mvp
        .teaching
        .capture(e)
        .await
        .map_err(|e| ToolError::Internal(format!("journal: {e}")))?;
    Ok(Captured {
        example_id: id,
        pattern,
        stored_examples: mvp.teaching.len(),
    })
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ListPatternsIn {
        #[serde(default)]
        pub r#type: Option<ExampleType>,
        #[serde(default)]
        pub phase: Option<String>,
        ..page_args,
    }
}

pub(super) async fn list_patterns(
    mvp: M,
    input: ListPatternsIn,
    _ctx: CallCtx,
) -> Out<Page<Pattern>> {
    mvp.teaching.catch_up().await;
    let all = mvp.teaching.patterns(input.r#type, input.phase.as_deref());
    page::offset_page(
        "list_patterns",
        &all,
        input.limit as usize,
        input.cursor.as_deref(),
    )
    .map_err(ToolError::from)
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayIn {
    pub example_id: String,
    /// The current state: its `phase`, `description` and other keys are compared with
    /// the example.
    pub state: serde_json::Map<String, Value>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub example_id: String,
    pub similarity: Similarity,
    /// similarity ≥ 0.6.
    pub applies: bool,
    pub threshold: f64,
    /// The example's action, to repeat when it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_action: Option<UserAction>,
    pub pattern: Option<Pattern>,
}

pub(super) async fn replay_example(mvp: M, input: ReplayIn, _ctx: CallCtx) -> Out<Replay> {
    mvp.teaching.catch_up().await;
    let e = mvp.teaching.get(&input.example_id).ok_or_else(|| {
        ToolError::business(format!(
            "no example `{}` (evicted or never captured)",
            input.example_id
        ))
    })?;
    let sim = teaching::similarity(&e, &input.state);
    let applies = sim.score >= teaching::APPLY_THRESHOLD;
    Ok(Replay {
        example_id: e.id.clone(),
        applies,
        threshold: teaching::APPLY_THRESHOLD,
        suggested_action: applies.then(|| e.user_action.clone()),
        pattern: mvp.teaching.pattern(&e.pattern_key()),
        similarity: sim,
    })
}
