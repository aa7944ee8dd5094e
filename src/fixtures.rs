//! Conformance fixtures: the tools and resources the official MCP conformance suite
//! expects (`test_simple_text`, `test_error_handling`, `test://static-text`, ...).
//!
//! Enabled only by `serve --conformance-fixtures`; never part of the normal catalog.
//! It uses the same registry path as product tools so the suite exercises real server code.

use std::time::Duration;

use rmcp::model::Resource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    runtime::{
        Runtime,
        registry::{CallCtx, Hints, ToolError, tool},
    },
    server::Toolset,
};

#[derive(Deserialize, JsonSchema)]
pub struct Empty {}

#[derive(Deserialize, JsonSchema)]
pub struct EchoIn {
    /// Text to echo back.
    pub message: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct SlowIn {
    /// Number of steps (1–100).
    #[schemars(range(min = 1, max = 100))]
    pub steps: u32,
    /// Milliseconds per step (0–1000, default 10).
    #[serde(default)]
    #[schemars(range(max = 1000))]
    pub delay_ms: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
pub struct TextOut {
    pub text: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct PublishIn {
    /// Any JSON object; journaled as the data of a `fixtures.event` event.
    pub data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, JsonSchema)]
pub struct PublishOut {
    /// Sequence number of the acknowledged (journaled) event.
    pub seq: u64,
    pub id: String,
}

pub fn toolset(runtime: &Runtime) -> Toolset {
    let bus = runtime.events.clone();
    Toolset {
        name: "fixtures",
        instructions: "fixtures: conformance test tools (test_*), enabled by --conformance-fixtures.",
        tools: vec![
            tool(
                "fixtures",
                "test_simple_text",
                "Returns a fixed text.",
                Hints::read(),
                |_: Empty, _| async {
                    Ok(TextOut {
                        text: "This is a simple text response for testing.".into(),
                    })
                },
            ),
            tool(
                "fixtures",
                "test_echo",
                "Echoes `message`.",
                Hints::read(),
                |i: EchoIn, _| async move { Ok(TextOut { text: i.message }) },
            ),
            tool(
                "fixtures",
                "test_error_handling",
                "Always fails with a tool error.",
                Hints::read(),
                |_: Empty, _| async {
                    Err::<TextOut, _>(ToolError::business(
                        "This tool intentionally returns an error for testing",
                    ))
                },
            ),
            tool(
                "fixtures",
                "test_publish_event",
                "Publishes `data` as a `fixtures.event` on the event bus; answers once it is journaled.",
                Hints::write(),
                move |i: PublishIn, _| {
                    let bus = bus.clone();
                    async move {
                        let data = serde_json::Value::Object(i.data);
                        let event = bus
                            .publish_value("fixtures.event", "cortex-mcp/fixtures", data)
                            .await
                            .map_err(|e| ToolError::Internal(e.to_string()))?;
                        Ok(PublishOut {
                            seq: event.seq,
                            id: event.id,
                        })
                    }
                },
            ),
            tool(
                "fixtures",
                "test_tool_with_progress",
                "Counts `steps` with progress notifications; stops when cancelled.",
                Hints::read(),
                slow_count,
            ),
        ],
        resources: Vec::new(),
    }
}

async fn slow_count(input: SlowIn, ctx: CallCtx) -> Result<TextOut, ToolError> {
    let delay = Duration::from_millis(input.delay_ms.unwrap_or(10));
    for step in 1..=input.steps {
        tokio::time::sleep(delay).await;
        ctx.progress.report(
            step as f64,
            Some(input.steps as f64),
            format!("step {step}/{}", input.steps),
        );
    }
    Ok(TextOut {
        text: format!("counted to {}", input.steps),
    })
}

pub fn resources() -> Vec<Resource> {
    vec![Resource::new("test://static-text", "static-text").with_mime_type("text/plain")]
}

pub fn read(uri: &str) -> Option<String> {
    (uri == "test://static-text")
        .then(|| "This is the content of the static text resource.".to_string())
}
