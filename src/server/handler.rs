//! The MCP requests of [`CortexServer`] (`impl ServerHandler`): server info, tools,
//! prompts, resources (the built-in `cortex://` ones and the toolsets'), subscriptions
//! (`resources/subscribe` before 2026-07-28, `subscriptions/listen` from it, see
//! `listen.rs`), logging level and custom-request answers; each `tools/call` runs in its
//! exported span (`runtime::telemetry`), child of the caller's `_meta` trace context.
//!
//! Owns how each request is answered from the shared state; it must not assemble the
//! server or hold state of its own (that is `server.rs`), and nothing domain-specific.
#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 but legacy clients (Inspector) need it

use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, model::*, service::RequestContext};

use super::{CortexServer, EVENTS_SCHEME, modern_era, parse_events_uri, stateless_http};
use crate::runtime::{
    principal::{Principal, ToolAccess},
    prompts::PromptError,
    registry::ToolError,
    resources::ResourceError,
    rounds::{Askable, Origin, RoundError, Rounds},
    telemetry,
};

/// What the client of `ctx` can be asked through `input_required`.
fn askable(ctx: &RequestContext<RoleServer>) -> Askable {
    Askable::of(modern_era(ctx), ctx.client_capabilities().as_ref())
}

/// A round that cannot go on, as the JSON-RPC error the spec names: a state or answer
/// the client spoiled is invalid params, an ask it cannot answer -32021.
pub(super) fn round_error(e: RoundError) -> McpError {
    match e {
        RoundError::MissingCapability(caps) => McpError::missing_required_client_capability(*caps),
        RoundError::NotModern => McpError::invalid_request(e.to_string(), None),
        RoundError::Internal(_) => McpError::internal_error(e.to_string(), None),
        _ => McpError::invalid_params(e.to_string(), None),
    }
}

/// Standard MCP requests: rmcp hands one whose params do not parse to
/// `on_custom_request`, which must then answer -32602, not -32601.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "logging/setLevel",
    "completion/complete",
];

/// Requests the 2026-07-28 protocol removed (SEP-2575): a client of that era gets
/// -32601 for them (rmcp hands them to `on_custom_request` too).
const REMOVED_IN_2026: &[&str] = &[
    "initialize",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

fn json_resource(uri: &str, name: &str, description: &str) -> Resource {
    Resource::new(uri, name)
        .with_description(description)
        .with_mime_type("application/json")
}

// rmcp result types are #[non_exhaustive]: they can only be built from Default and then filled.
#[allow(clippy::field_reassign_with_default)]
impl ServerHandler for CortexServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_prompts()
            .enable_logging()
            .enable_completions()
            .build();
        if self.shared.dynamic.is_some()
            && let Some(tools) = capabilities.tools.as_mut()
        {
            tools.list_changed = Some(true);
        }
        super::tasks::advertise(&mut capabilities);
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                    .with_title("Cortex-OS MCP server")
                    .with_description(env!("CARGO_PKG_DESCRIPTION"))
                    .with_website_url(env!("CARGO_PKG_REPOSITORY")),
            )
            .with_instructions(self.shared.instructions.clone())
    }

    /// `resources.subscribe` is advertised for `subscriptions/listen` (every transport);
    /// a 2025-11-25 client over stateless HTTP, where `resources/subscribe` is refused,
    /// is not offered it.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        ctx.peer.set_peer_info(request.clone());
        let mut result = self.negotiate_initialize(&request)?;
        if self.legacy_subscribe_refused(&ctx)
            && let Some(resources) = result.capabilities.resources.as_mut()
        {
            resources.subscribe = None;
        }
        // Tasks (SEP-2663) start with 2026-07-28, which has no `initialize`.
        if let Some(extensions) = result.capabilities.extensions.as_mut() {
            extensions.remove(TASKS_EXTENSION_ID);
        }
        if result
            .capabilities
            .extensions
            .as_ref()
            .is_some_and(|e| e.is_empty())
        {
            result.capabilities.extensions = None;
        }
        Ok(result)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut result = ListToolsResult::default();
        result.tools = match &self.shared.dynamic {
            Some(dynamic) => dynamic.tools(&self.session.toolsets, &self.shared.registry),
            None => self.catalog(),
        };
        // An OAuth token with `cortex:read` alone sees the read-only tools only (the
        // discovery tools of dynamic mode, not in the registry, stay).
        let access = ToolAccess::of_request(&ctx.extensions);
        if access != ToolAccess::All {
            let registry = &self.shared.registry;
            result.tools.retain(|t| {
                registry
                    .get(&t.name)
                    .is_none_or(|d| access.allows(d.read_only))
            });
        }
        Ok(result)
    }

    /// The tool whose `x-mcp-header` annotations rmcp's HTTP transport checks the
    /// `Mcp-Param-*` headers of a `tools/call` against, before dispatch. rmcp asks a fresh
    /// service, not the caller's session, so in dynamic mode this is any tool the server
    /// has: the headers are the tool's, enabled in the session or not (a call to a tool
    /// the session has not enabled is refused after the check).
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared
            .dynamic
            .as_ref()
            .and_then(|dynamic| dynamic.discovery_tool(name).cloned())
            .or_else(|| self.shared.registry.get(name).map(|d| d.tool.clone()))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let mut result = ListPromptsResult::default();
        result.prompts = self
            .shared
            .prompts
            .iter()
            .flat_map(|p| p.prompts())
            .collect();
        Ok(result)
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if self.shared.prompts.is_empty() {
            return Err(McpError::invalid_params(
                format!("no prompt `{}`; this server has none", request.name),
                None,
            ));
        }
        let Some(source) = self
            .shared
            .prompts
            .iter()
            .find(|p| p.prompts().iter().any(|p| p.name == request.name))
        else {
            return Err(McpError::invalid_params(
                format!("no prompt `{}`; call prompts/list", request.name),
                None,
            ));
        };
        let args = request.arguments.take().unwrap_or_default();
        let principal = Principal::of_request(&ctx.extensions);
        let origin = Origin::new("prompts/get", &request.name, Some(&args), &principal);
        let askable = askable(&ctx);
        let rounds = Rounds::open(
            &origin,
            askable,
            request.input_responses.take(),
            request.request_state.as_deref(),
        )
        .map_err(round_error)?;
        match source.get(&request.name, &args, &rounds) {
            Ok(result) => Ok(result.into()),
            Err(PromptError::NeedsInput(ask)) => ask
                .into_result(&origin, askable)
                .map(Into::into)
                .map_err(round_error),
            Err(PromptError::Round(e)) => Err(round_error(e)),
            Err(e) => Err(McpError::invalid_params(e.to_string(), None)),
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        use tracing::Instrument;
        let span = self.tool_call_span(&request.name);
        telemetry::adopt_parent(&span, ctx.meta.get_traceparent(), ctx.meta.get_tracestate());
        let result = self
            .answer_tool_call(request, ctx)
            .instrument(span.clone())
            .await;
        telemetry::record_tool_outcome(&span, tool_outcome(&result));
        result
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.complete_argument(&request, &Principal::of_request(&ctx.extensions))
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        self.get_tool_task(&request.task_id, &ctx)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.update_tool_task(&request.task_id, request.input_responses, &ctx)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.cancel_tool_task(&request.task_id, &ctx)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut result = ListResourcesResult::default();
        result.resources = vec![
            json_resource(
                "cortex://config",
                "config",
                "Effective configuration, secrets redacted",
            ),
            json_resource(
                "cortex://metrics",
                "metrics",
                "Tool, lane, cache and upstream metrics as JSON",
            ),
            json_resource(
                "cortex://health",
                "health",
                "ok, or degraded with the damaged state found at start (quarantined journal records and files, toolsets that could not load)",
            ),
        ];
        for source in &self.shared.resources {
            result.resources.extend(source.resources());
        }
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let principal = Principal::of_request(&ctx.extensions);
        if let Some(source) = self.source_for(&request.uri) {
            let contents = source
                .read_contents(&request.uri, &principal)
                .map_err(|e| McpError::resource_not_found(e.to_string(), None))?;
            return Ok(ReadResourceResult::new(vec![contents]).into());
        }
        let contents = self.read_builtin(&request.uri, &principal).map(|text| {
            ResourceContents::text(text, request.uri.clone()).with_mime_type("application/json")
        });
        match contents {
            Some(contents) => Ok(ReadResourceResult::new(vec![contents]).into()),
            None => Err(McpError::resource_not_found(
                format!("no resource {}; call resources/list", request.uri),
                Some(serde_json::json!({ "uri": request.uri })),
            )),
        }
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let mut result = ListResourceTemplatesResult::default();
        result.resource_templates = vec![
            ResourceTemplate::new("events://{topic}", "events")
                .with_description("Events of a topic (`github.issue.action`, a prefix like `asbr.*`, or `*`), oldest first, up to 500 after `?since_seq=N`; subscribe to be notified of new ones")
                .with_mime_type("application/json"),
        ];
        for source in &self.shared.resources {
            result.resource_templates.extend(source.templates());
        }
        Ok(result)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let candidate = self.listenable(requested);
        self.prepare_listen(requested, &candidate);
        Some(candidate)
    }

    async fn listen(&self, ctx: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        self.run_listen(ctx).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if stateless_http(&ctx) {
            return Err(McpError::invalid_request(
                format!(
                    "resources/subscribe needs a session, and this is stateless HTTP (no stream outlives a request), so {} was not subscribed; poll it with resources/read (events://{{topic}}?since_seq=N returns what is new), or connect over stdio or to a server started with --http-sessions",
                    request.uri
                ),
                None,
            ));
        }
        let principal = Principal::of_request(&ctx.extensions);
        if let Some(source) = self.source_for(&request.uri) {
            let changes = source
                .watch(&request.uri, &principal)
                .map_err(|e| match e {
                    ResourceError::NotSubscribable(_) => {
                        McpError::invalid_params(e.to_string(), None)
                    }
                    ResourceError::NotFound(_) => McpError::resource_not_found(e.to_string(), None),
                })?;
            let stop = self.session.track(&request.uri)?;
            self.forward_changes(request.uri, changes, ctx.peer.clone(), stop);
            return Ok(());
        }
        let Some(rest) = request.uri.strip_prefix(EVENTS_SCHEME) else {
            return Err(McpError::invalid_params(
                format!(
                    "{} cannot be subscribed; events://{{topic}} can",
                    request.uri
                ),
                None,
            ));
        };
        let (topic, _) = parse_events_uri(rest);
        let stop = self.session.track(&request.uri)?;
        let mut sub = self.shared.runtime.events.subscribe(&topic, 1024);
        let peer = ctx.peer.clone();
        let uri = request.uri.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    next = sub.recv() => {
                        let Some(event) = next else { break };
                        if !event.visible_to(&principal) { continue; }
                        let note = ResourceUpdatedNotificationParam::new(uri.clone());
                        if peer.notify_resource_updated(note).await.is_err() { break; }
                    }
                }
            }
        });
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Some(stop) = self.session.subscriptions.lock().remove(&request.uri) {
            stop.cancel();
        }
        Ok(())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // This client's notifications/message only: the process's stderr log keeps the
        // operator's --log-level.
        *self.session.log_level.lock() = Some(request.level);
        Ok(())
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        let method = request.method.as_str();
        let removed = REMOVED_IN_2026.contains(&method) && modern_era(&ctx);
        if KNOWN_METHODS.contains(&method) && !removed {
            let what = if request.params.is_none() {
                "are missing"
            } else {
                "do not match its schema"
            };
            return Err(McpError::invalid_params(
                format!(
                    "the params of {} {what}; see the MCP specification of this method",
                    request.method
                ),
                None,
            ));
        }
        Err(McpError::new(
            ErrorCode::METHOD_NOT_FOUND,
            request.method,
            None,
        ))
    }
}

impl CortexServer {
    /// The exported span of a `tools/call` (not created unless traces are exported):
    /// named after a known tool only, never after a caller's unknown name.
    fn tool_call_span(&self, name: &str) -> tracing::Span {
        if let Some(def) = self.shared.registry.get(name) {
            return telemetry::tool_call_span(def.name(), def.toolset);
        }
        match self
            .shared
            .dynamic
            .as_ref()
            .and_then(|d| d.discovery_tool(name))
        {
            Some(tool) => telemetry::tool_call_span(&tool.name, "dynamic"),
            None => telemetry::tool_call_span("(unknown)", "(none)"),
        }
    }

    /// `tools/call`: dynamic discovery, access, rounds, then the registry (or a task).
    async fn answer_tool_call(
        &self,
        mut request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let registry = &self.shared.registry;
        if let Some(dynamic) = &self.shared.dynamic {
            let session = &self.session.toolsets;
            if dynamic.discovery_tool(&request.name).is_some() {
                let args = request.arguments.unwrap_or_default();
                let caller = crate::dynamic::Caller {
                    peer: &ctx.peer,
                    stateless: stateless_http(&ctx),
                    modern: modern_era(&ctx),
                };
                return Ok(dynamic
                    .call(&request.name, args, session, caller)
                    .await
                    .into());
            }
            if let Some(refused) = registry
                .get(&request.name)
                .and_then(|def| dynamic.not_enabled(session, def))
            {
                return Ok(refused.into());
            }
        }
        let Some(def) = registry.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool `{}`; call tools/list for the enabled tools",
                    request.name
                ),
                None,
            ));
        };
        // The HTTP transport answers 403 before this; kept for any other path in.
        if !ToolAccess::of_request(&ctx.extensions).allows(def.read_only) {
            return Err(McpError::invalid_request(
                format!(
                    "`{}` changes state and needs the OAuth scope {}; this token grants read-only tools",
                    request.name,
                    crate::config::SCOPE_WRITE
                ),
                None,
            ));
        }
        let mut call_ctx = self.call_ctx(&ctx);
        let askable = askable(&ctx);
        let origin = Origin::for_request(
            "tools/call",
            &request.name,
            request.arguments.as_ref(),
            &call_ctx.principal,
            askable,
            request.request_state.is_some(),
        );
        call_ctx.rounds = Rounds::open(
            &origin,
            askable,
            request.input_responses.take(),
            request.request_state.as_deref(),
        )
        .map_err(round_error)?;
        let args = request.arguments.take().unwrap_or_default();
        if let super::tasks::Dispatch::Task = super::tasks::dispatch(def.task_support(), &ctx)? {
            return self
                .call_as_task(&request.name, args, call_ctx, askable, &origin)
                .await;
        }
        let progress = call_ctx.progress.clone();
        let result = registry.call(&request.name, args, call_ctx).await;
        // Progress after the result would be dropped by the client: send it first.
        progress.flush().await;
        match result {
            Err(ToolError::NeedsInput(ask)) => ask
                .into_result(&origin, askable)
                .map(Into::into)
                .map_err(round_error),
            Err(ToolError::Round(e)) => Err(round_error(e)),
            other => Ok(def.into_call_result(other).into()),
        }
    }
}

/// How a `tools/call` ended, for its span.
fn tool_outcome(result: &Result<CallToolResponse, McpError>) -> telemetry::ToolOutcome {
    match result {
        Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
            telemetry::ToolOutcome::IsError
        }
        Ok(CallToolResponse::Complete(_)) => telemetry::ToolOutcome::Ok,
        Ok(CallToolResponse::InputRequired(_)) => telemetry::ToolOutcome::InputRequired,
        Ok(CallToolResponse::Task(_)) => telemetry::ToolOutcome::Task,
        Ok(_) => telemetry::ToolOutcome::Ok,
        Err(_) => telemetry::ToolOutcome::ProtocolError,
    }
}
