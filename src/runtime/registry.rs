//! The tool registry: typed tool definitions, argument validation, and the one call path
//! shared by MCP clients, the `batch` tool and any toolset that calls another toolset's
//! tool by name.
//!
//! Owns tool metadata (schemas, annotations), input validation (JSON Schema of the input
//! type, then typed deserialisation naming the failing field), error mapping to
//! `isError` results, and per-tool metrics. It must not know any toolset.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, OnceLock},
    time::Instant,
};

use futures::future::BoxFuture;
use rmcp::{
    handler::server::common::{schema_for_input, schema_for_output},
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{budget::Budget, progress::Progress, stop::Stop};

/// Errors a tool reports to the model as `isError` results.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// The arguments are wrong; the message names the field.
    #[error("invalid arguments: {0}")]
    Input(String),
    /// The request is well-formed but the operation cannot be done in the current state.
    #[error("{0}")]
    Business(String),
    /// An upstream service failed.
    #[error("upstream error: {0}")]
    Upstream(String),
    /// The request deadline passed.
    #[error("deadline exceeded: {0}")]
    Deadline(String),
    /// The client cancelled the request.
    #[error("cancelled by the client")]
    Cancelled,
    /// A fault of this server; the message says what failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// Not an error: the tool needs input from the client first (MCP 2026-07-28
    /// `input_required`, see [`super::rounds`]); the server answers with the ask.
    #[error("the tool needs input from the client first (input_required)")]
    NeedsInput(Box<super::rounds::Ask>),
    /// The client's `inputResponses` or `requestState` are unusable: a protocol error,
    /// answered as a JSON-RPC error rather than a result.
    #[error(transparent)]
    Round(#[from] super::rounds::RoundError),
}

impl ToolError {
    pub fn input(msg: impl Into<String>) -> Self {
        Self::Input(msg.into())
    }
    pub fn business(msg: impl Into<String>) -> Self {
        Self::Business(msg.into())
    }
    /// Short machine-readable kind, used in batch results and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Input(_) => "input",
            Self::Business(_) => "business",
            Self::Upstream(_) => "upstream",
            Self::Deadline(_) => "deadline",
            Self::Cancelled => "cancelled",
            Self::Internal(_) => "internal",
            Self::NeedsInput(_) => "input_required",
            Self::Round(_) => "input_response",
        }
    }

    /// Asks the client `ask` before going on (see [`super::rounds`]).
    pub fn needs_input(ask: super::rounds::Ask) -> Self {
        Self::NeedsInput(Box::new(ask))
    }
    pub fn into_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.to_string())])
    }
}

impl From<super::budget::BudgetExceeded> for ToolError {
    fn from(e: super::budget::BudgetExceeded) -> Self {
        ToolError::Business(e.to_string())
    }
}

/// A cursor that does not decode is the caller's input error.
impl From<super::page::PageError> for ToolError {
    fn from(e: super::page::PageError) -> Self {
        ToolError::Input(format!("cursor: {e}"))
    }
}

impl From<super::stop::Stopped> for ToolError {
    fn from(_: super::stop::Stopped) -> Self {
        ToolError::Deadline(
            "the work was stopped at the call's deadline (or its cancellation); narrow the input, or raise the tool's timeoutMs or request-timeout-secs".into(),
        )
    }
}

/// Behaviour hints published as MCP tool annotations (those that differ from the MCP
/// defaults, see [`super::schema_compact::hints`]); `read_only` also drives `--read-only`.
#[derive(Debug, Clone, Copy)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl Hints {
    /// Reads local state only.
    pub const fn read() -> Self {
        Hints {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        }
    }
    /// Reads from an outside service.
    pub const fn read_remote() -> Self {
        Hints {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: true,
        }
    }
    /// Creates or changes local state without destroying anything.
    pub const fn write() -> Self {
        Hints {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: false,
        }
    }
    /// Creates or changes state in an outside service.
    pub const fn write_remote() -> Self {
        Hints {
            read_only: false,
            destructive: false,
            idempotent: false,
            open_world: true,
        }
    }
    pub const fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }
    pub const fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
    fn annotations(self) -> ToolAnnotations {
        ToolAnnotations::new()
            .read_only(self.read_only)
            .destructive(self.destructive)
            .idempotent(self.idempotent)
            .open_world(self.open_world)
    }
}

/// Per-call context: cancellation, deadline, progress, request `_meta`, and the registry
/// for calls to other tools; the memory budget and the stop flag of the client's call.
#[derive(Clone)]
pub struct CallCtx {
    pub cancel: tokio_util::sync::CancellationToken,
    pub deadline: Instant,
    pub progress: Progress,
    pub meta: Arc<JsonObject>,
    pub registry: Arc<Registry>,
    /// True inside a `batch`: nested batches are refused.
    pub in_batch: bool,
    /// Who made the request (see [`super::principal`]).
    pub principal: super::principal::Principal,
    /// The byte budget of the client's call, shared by every nested call.
    pub budget: Budget,
    /// Raised when this call ends or is dropped, or at its deadline; CPU work polls it.
    /// [`Registry::run`] gives each call a child of its caller's.
    pub stop: Stop,
    /// 0 for a client's call; each call through the registry runs its handler one deeper.
    pub depth: u32,
    /// The client of the call (peer, stateless HTTP, log level).
    pub client: super::client::Client,
    /// What the client can be asked and what it answered (MCP 2026-07-28
    /// `input_required`); empty inside a nested call (see [`Registry::run`]).
    pub rounds: super::rounds::Rounds,
}

impl CallCtx {
    /// Time left before the deadline.
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A validated call, ready to run: the typed input is already parsed.
pub type PreparedCall =
    Box<dyn FnOnce(CallCtx) -> BoxFuture<'static, Result<Value, ToolError>> + Send>;
type Preparer = Arc<dyn Fn(JsonObject) -> Result<PreparedCall, ToolError> + Send + Sync>;

/// One tool: its MCP description and its typed handler.
#[derive(Clone)]
pub struct ToolDef {
    pub tool: Tool,
    pub toolset: &'static str,
    /// The part of its toolset the tool sits in (`github.actions`), for toolsets that
    /// can be enabled a part at a time; set by [`super::toolset::Tools::group`].
    pub group: Option<Group>,
    pub read_only: bool,
    /// The compiled input schema; `None` for a [`raw_tool`], which reads its own
    /// arguments.
    validator:
        Option<Arc<OnceLock<Result<jsonschema::Validator, jsonschema::ValidationError<'static>>>>>,
    /// The input schema as generated, which arguments are checked against: the published
    /// one is compacted (see [`super::schema_compact`]) and, unlike this one, does not
    /// spell out that an optional field may be an explicit `null`.
    validation_schema: Arc<JsonObject>,
    prepare: Preparer,
    /// The handler answers with MCP content of its own (see [`raw_tool`]).
    raw: bool,
    /// The text a model reads for a successful result, when the tool has a better one
    /// than the result's JSON (see [`ToolDef::with_model_text`]).
    model_text: Option<ModelText>,
    /// Whether the tool can run as a task (see [`super::tool_tasks`]).
    task_support: super::tool_tasks::TaskSupport,
}

/// A named part of a toolset (`--toolsets github.actions`): its name, `toolset.part`,
/// and a few words on what its tools are for (read by people and by
/// `list_available_toolsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub name: &'static str,
    pub about: &'static str,
}

impl Group {
    /// The toolset the group is part of: its name up to the first `.`.
    pub fn toolset(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(t, _)| t)
    }
}

/// Renders a successful result as the text block a model reads; `None` keeps the JSON.
pub type ModelText = fn(&Value) -> Option<String>;

impl ToolDef {
    /// Sends `render`'s text as the result's text block instead of the result's JSON
    /// (the JSON stays in `structuredContent`, which clients that validate read): for
    /// results whose point is a text of their own, such as a file, which as a JSON string
    /// would reach the model escaped and wrapped.
    /// The tool can run as a task (a long one: tests, scans, reviews, workflows).
    pub fn with_task_support(mut self, support: super::tool_tasks::TaskSupport) -> ToolDef {
        self.task_support = support;
        self
    }

    pub fn task_support(&self) -> super::tool_tasks::TaskSupport {
        self.task_support
    }

    pub fn with_model_text(mut self, render: ModelText) -> ToolDef {
        self.model_text = Some(render);
        self
    }

    /// Gives the tool a human title, shown by clients instead of the name (the top-level
    /// `title`; not repeated in the annotations, which clients read only without it).
    pub fn titled(mut self, title: &str) -> ToolDef {
        self.tool.title = Some(title.to_string());
        if let Some(annotations) = self.tool.annotations.as_mut() {
            annotations.title = None;
        }
        self
    }

    /// Publishes the top-level string argument `property` as the HTTP header
    /// `Mcp-Param-{header}` (SEP-2243 `x-mcp-header`, protocol 2026-07-28): clients copy
    /// its value into that header so a gateway can route without reading the body, and
    /// the HTTP transport refuses a call whose header is missing or differs from the
    /// argument. `header` must be an HTTP token, unique in the tool (rmcp's client drops
    /// a tool whose annotations break that). A tool without such a property is unchanged.
    pub fn with_param_header(mut self, property: &str, header: &'static str) -> ToolDef {
        debug_assert!(
            !header.is_empty()
                && header
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "x-mcp-header `{header}` is not a plain HTTP token"
        );
        let schema = Arc::make_mut(&mut self.tool.input_schema);
        if let Some(Value::Object(prop)) = schema
            .get_mut("properties")
            .and_then(|properties| properties.get_mut(property))
            && prop.get("type").and_then(Value::as_str) == Some("string")
        {
            prop.insert("x-mcp-header".into(), Value::from(header));
        }
        self
    }

    /// The same tool (name, schemas, annotations) answering every call with `message` as
    /// an `isError` result: for a toolset whose state could not load.
    pub fn unavailable(mut self, message: Arc<str>) -> ToolDef {
        self.prepare = Arc::new(move |_args: JsonObject| {
            let message = message.clone();
            Ok(Box::new(
                move |_ctx: CallCtx| -> BoxFuture<'static, Result<Value, ToolError>> {
                    Box::pin(async move { Err(ToolError::Business(message.to_string())) })
                },
            ) as PreparedCall)
        });
        self
    }
}

/// Builds a tool from a typed async handler. The input schema comes from `I`, the output
/// schema from `O`; arguments are checked against the schema (bounds, enums, required
/// fields) and then deserialised into `I`.
pub fn tool<I, O, F, Fut>(
    toolset: &'static str,
    name: &'static str,
    description: &str,
    hints: Hints,
    handler: F,
) -> ToolDef
where
    I: DeserializeOwned + JsonSchema + Send + 'static,
    O: Serialize + JsonSchema + 'static,
    F: Fn(I, CallCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
{
    let mut validation_schema =
        schema_for_input::<I>().unwrap_or_else(|e| panic!("tool {name}: {e}"));
    super::schema_compact::portable(Arc::make_mut(&mut validation_schema));
    let mut input_schema = validation_schema.clone();
    super::schema_compact::input(Arc::make_mut(&mut input_schema));
    let mut output_schema = schema_for_output::<O>();
    super::schema_compact::portable(Arc::make_mut(&mut output_schema));
    super::schema_compact::output(Arc::make_mut(&mut output_schema));
    let title = name.replace('_', " ");
    let mut tool = Tool::new(name, description.to_string(), input_schema)
        .with_raw_output_schema(output_schema)
        .with_title(title);
    tool.annotations = Some(super::schema_compact::hints(hints.annotations()));
    let handler = Arc::new(handler);
    let prepare: Preparer = Arc::new(move |args: JsonObject| {
        let input: I = parse_arguments(args)?;
        let handler = handler.clone();
        Ok(Box::new(
            move |ctx: CallCtx| -> BoxFuture<'static, Result<Value, ToolError>> {
                let fut = handler(input, ctx);
                Box::pin(async move {
                    let out = fut.await?;
                    serde_json::to_value(out)
                        .map_err(|e| ToolError::Internal(format!("serialising output: {e}")))
                })
            },
        ) as PreparedCall)
    });
    ToolDef {
        tool,
        toolset,
        group: None,
        read_only: hints.read_only,
        validator: Some(Arc::new(OnceLock::new())),
        validation_schema,
        prepare,
        raw: false,
        model_text: None,
        task_support: Default::default(),
    }
}

/// A tool that answers with MCP content of its own (images, audio, embedded resources)
/// rather than a typed JSON result, and whose hand-written input schema is published as
/// is and not enforced: the handler reads its arguments itself. For tools whose result
/// shape the protocol fixes (the conformance fixtures); product tools use [`tool`].
///
/// An `isError` result becomes a business error with its text; any other result is
/// passed through to the client unchanged (callers through the registry get it as JSON).
/// The handler's `Err` (e.g. [`ToolError::NeedsInput`]) is the call's.
pub fn raw_tool<F, Fut>(toolset: &'static str, tool: Tool, read_only: bool, handler: F) -> ToolDef
where
    F: Fn(JsonObject, CallCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let prepare: Preparer = Arc::new(move |args: JsonObject| {
        let handler = handler.clone();
        Ok(Box::new(
            move |ctx: CallCtx| -> BoxFuture<'static, Result<Value, ToolError>> {
                let fut = handler(args, ctx);
                Box::pin(async move {
                    let result = fut.await?;
                    if result.is_error == Some(true) {
                        let text: Vec<&str> = result
                            .content
                            .iter()
                            .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
                            .collect();
                        return Err(ToolError::Business(text.join("\n")));
                    }
                    serde_json::to_value(result)
                        .map_err(|e| ToolError::Internal(format!("serialising the result: {e}")))
                })
            },
        ) as PreparedCall)
    });
    ToolDef {
        validation_schema: tool.input_schema.clone(),
        tool,
        toolset,
        group: None,
        read_only,
        validator: None,
        prepare,
        raw: true,
        model_text: None,
        task_support: Default::default(),
    }
}

fn parse_arguments<I: DeserializeOwned>(args: JsonObject) -> Result<I, ToolError> {
    let value = Value::Object(args);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ToolError::Input(e.inner().to_string())
        } else {
            ToolError::Input(format!("{path}: {}", e.inner()))
        }
    })
}

impl ToolDef {
    pub fn name(&self) -> &str {
        &self.tool.name
    }

    /// Turns an outcome of this tool into the MCP result: structured content plus its
    /// JSON text, or for a [`raw_tool`] its own content.
    pub fn into_call_result(&self, result: Result<Value, ToolError>) -> CallToolResult {
        match result {
            Ok(value) if self.raw => serde_json::from_value(value).unwrap_or_else(|e| {
                ToolError::Internal(format!("tool {}: its result: {e}", self.name())).into_result()
            }),
            Ok(value) => match self.model_text.and_then(|render| render(&value)) {
                Some(text) => {
                    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                    result.structured_content = Some(value);
                    result
                }
                None => CallToolResult::structured(value),
            },
            Err(e) => e.into_result(),
        }
    }

    /// Validates arguments and parses them into the typed input; no side effects.
    pub fn prepare(&self, args: JsonObject) -> Result<PreparedCall, ToolError> {
        self.check_schema(&args)?;
        (self.prepare)(args)
    }

    fn check_schema(&self, args: &JsonObject) -> Result<(), ToolError> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        let compiled = validator.get_or_init(|| {
            jsonschema::options().build(&Value::Object((*self.validation_schema).clone()))
        });
        let validator = compiled
            .as_ref()
            .map_err(|e| ToolError::Internal(format!("input schema: {e}")))?;
        let instance = Value::Object(args.clone());
        let messages: Vec<String> = validator
            .iter_errors(&instance)
            .take(5)
            .map(|err| {
                let at = err.instance_path().to_string();
                // A long offending value (a 51-call batch) is named, not echoed back.
                let mut text = err.to_string();
                if text.len() > 300 {
                    text = err.masked_with("the value").to_string();
                }
                if at.is_empty() {
                    text
                } else {
                    format!("{at}: {text}")
                }
            })
            .collect();
        if messages.is_empty() {
            Ok(())
        } else {
            Err(ToolError::Input(messages.join("; ")))
        }
    }
}

/// The enabled tools, in deterministic order (toolset order, then name).
pub struct Registry {
    tools: Vec<ToolDef>,
    by_name: BTreeMap<String, usize>,
}

impl Registry {
    pub fn new(mut tools: Vec<ToolDef>, toolset_order: &[&str]) -> Self {
        let rank = |t: &ToolDef| {
            toolset_order
                .iter()
                .position(|s| *s == t.toolset)
                .unwrap_or(usize::MAX)
        };
        tools.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.name().cmp(b.name())));
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().to_string(), i))
            .collect();
        Registry { tools, by_name }
    }

    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    pub fn get(&self, name: &str) -> Option<&ToolDef> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Runs a prepared call with metrics, cancellation, the request deadline and the
    /// call's memory budget.
    ///
    /// The handler gets a child [`Stop`] that is raised when this returns or is dropped,
    /// so blocking work it started gives the CPU back. A nested call (depth > 0: graph
    /// nodes, map items, batch items) charges its result to the shared budget, since its
    /// caller holds it; a client's call whose budget tripped anywhere inside it ends
    /// with the budget error even if a caller turned it into a partial result.
    pub async fn run(
        &self,
        name: &str,
        call: PreparedCall,
        mut ctx: CallCtx,
    ) -> Result<Value, ToolError> {
        let started = Instant::now();
        let cancel = ctx.cancel.clone();
        let deadline = tokio::time::Instant::from_std(ctx.deadline);
        let budget = ctx.budget.clone();
        let nested = ctx.depth > 0;
        let stop = ctx.stop.child(ctx.deadline);
        let _raise = stop.raise_on_drop();
        ctx.stop = stop;
        ctx.depth += 1;
        if nested {
            // Its caller could not relay a question to the client.
            ctx.rounds = ctx.rounds.nested();
        }
        let result = match budget.exceeded() {
            Some(over) if nested => Err(ToolError::Business(over.to_string())),
            // The call is polled first so one that completes at once never arms the timer.
            _ => tokio::select! {
                biased;
                r = call(ctx) => r,
                _ = cancel.cancelled() => Err(ToolError::Cancelled),
                _ = tokio::time::sleep_until(deadline) => Err(ToolError::Deadline(format!("tool {name} ran past the request timeout; narrow the request or raise request-timeout-secs"))),
            },
        };
        let result = match result {
            Ok(value) if nested => budget
                .charge_json(&value, &format!("the result of {name}"))
                .map(|_| value)
                .map_err(|e| ToolError::Business(e.to_string())),
            Ok(_) | Err(ToolError::Business(_)) | Err(ToolError::Internal(_)) if !nested => {
                match budget.exceeded() {
                    Some(over) => Err(ToolError::Business(over.to_string())),
                    None => result,
                }
            }
            other => other,
        };
        // Asking the client is a round of the call, not a failure.
        let failure = result
            .as_ref()
            .err()
            .filter(|e| !matches!(e, ToolError::NeedsInput(_)));
        super::metrics::record_tool_call(name, started.elapsed(), failure.map(|e| e.kind()));
        result
    }

    /// Validates and runs one call by name: the path every caller takes.
    pub async fn call(
        &self,
        name: &str,
        args: JsonObject,
        ctx: CallCtx,
    ) -> Result<Value, ToolError> {
        let def = self
            .get(name)
            .ok_or_else(|| ToolError::input(format!("unknown tool `{name}`")))?;
        let call = match def.prepare(args) {
            Ok(call) => call,
            Err(e) => {
                super::metrics::record_tool_call(name, std::time::Duration::ZERO, Some(e.kind()));
                return Err(e);
            }
        };
        self.run(name, call, ctx).await
    }
}

/// Turns a tool outcome into the MCP result: structured content plus its JSON text.
pub fn into_call_result(result: Result<Value, ToolError>) -> CallToolResult {
    match result {
        Ok(value) => CallToolResult::structured(value),
        Err(e) => e.into_result(),
    }
}
