//! The rmcp `ServerHandler`: assembles the enabled toolsets into one registry, serves
//! tools, the `cortex://` resources, instructions and logging level. Nothing
//! domain-specific lives here.
#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 but legacy clients (Inspector) need it

use std::{collections::HashMap, sync::Arc, time::Instant};

use tokio_util::sync::CancellationToken;

use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, model::*, service::RequestContext};

use crate::{
    asbr,
    config::Config,
    fixtures, github, integrations, mvp, patchkit,
    runtime::{
        Runtime, batch,
        progress::Progress,
        registry::{CallCtx, Registry, ToolDef, into_call_result},
        resources::ResourceSource,
    },
};

const BASE_INSTRUCTIONS: &str = "cortex-mcp serves the Cortex-OS toolsets on one runtime. Tool errors are results with isError and a message saying what to do next. List tools take `limit` and `cursor` and return `next_cursor` when more remain.";

/// Why the server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Github(#[from] github::GithubError),
    #[error(transparent)]
    Asbr(#[from] asbr::AsbrError),
    #[error(transparent)]
    Mvp(#[from] mvp::MvpError),
    #[error(transparent)]
    Integrations(#[from] integrations::IntegrationsError),
    #[error("tool `{name}` is defined by both the {first} and the {second} toolset")]
    DuplicateTool {
        name: String,
        first: &'static str,
        second: &'static str,
    },
}

/// Two toolsets defining one tool name would shadow each other in the registry.
fn reject_duplicate_names(toolsets: &[Toolset]) -> Result<(), BuildError> {
    let mut owners: HashMap<&str, &'static str> = HashMap::new();
    for ts in toolsets {
        for tool in &ts.tools {
            if let Some(first) = owners.insert(tool.name(), ts.name) {
                return Err(BuildError::DuplicateTool {
                    name: tool.name().to_string(),
                    first,
                    second: ts.name,
                });
            }
        }
    }
    Ok(())
}

/// One enabled toolset's contribution.
pub struct Toolset {
    pub name: &'static str,
    pub instructions: &'static str,
    pub tools: Vec<ToolDef>,
    /// MCP resources this toolset serves (may be empty).
    pub resources: Vec<Arc<dyn ResourceSource>>,
}

/// State shared by every session and request (the HTTP factory clones this cheaply).
pub struct Shared {
    pub runtime: Runtime,
    pub registry: Arc<Registry>,
    pub instructions: String,
    /// Resources contributed by the enabled toolsets.
    pub resources: Vec<Arc<dyn ResourceSource>>,
    /// Extra HTTP routes of the enabled toolsets (served next to /mcp in HTTP mode).
    pub routes: axum::Router,
}

/// The server handler; cheap to clone.
#[derive(Clone)]
pub struct CortexServer {
    shared: Arc<Shared>,
    /// Resource subscriptions of this session: uri → the task forwarding updates.
    subscriptions: Arc<parking_lot::Mutex<HashMap<String, CancellationToken>>>,
}

impl CortexServer {
    /// Builds the runtime and registry from a validated configuration.
    /// Must run inside a tokio runtime (journals replay here).
    pub fn build(config: Config) -> Result<Self, BuildError> {
        let config = Arc::new(config);
        let runtime = Runtime::new(config.clone())?;
        let mut toolsets = Vec::new();
        let mut routes = axum::Router::new();
        if config.toolset_enabled("github") {
            toolsets.push(github::toolset(&runtime)?);
        }
        if config.toolset_enabled("asbr") {
            toolsets.push(asbr::toolset(&runtime)?);
        }
        if config.toolset_enabled("mvp") {
            toolsets.push(mvp::toolset(&runtime)?);
        }
        if config.toolset_enabled("patchkit") {
            toolsets.push(patchkit::toolset(&runtime));
        }
        if config.toolset_enabled("integrations") {
            let built = integrations::toolset(&runtime)?;
            toolsets.push(built.toolset);
            routes = routes.merge(built.hooks);
        }
        if config.toolset_enabled("batch") {
            toolsets.push(Toolset {
                name: "batch",
                instructions: "batch: run up to 50 independent calls in one request with `batch`.",
                tools: vec![batch::batch_tool()],
                resources: Vec::new(),
            });
        }
        if config.conformance_fixtures {
            toolsets.push(fixtures::toolset(&runtime));
        }
        reject_duplicate_names(&toolsets)?;
        Ok(Self::assemble(runtime, toolsets, routes))
    }

    fn assemble(runtime: Runtime, toolsets: Vec<Toolset>, routes: axum::Router) -> Self {
        let config = runtime.config.clone();
        let order: Vec<&str> = toolsets.iter().map(|t| t.name).collect();
        let mut instructions = String::from(BASE_INSTRUCTIONS);
        let mut tools = Vec::new();
        let mut resources = Vec::new();
        for ts in toolsets {
            resources.extend(ts.resources);
            instructions.push_str("\n\n");
            instructions.push_str(ts.instructions);
            tools.extend(ts.tools.into_iter().filter(|t| selected(&config, t)));
        }
        let registry = Arc::new(Registry::new(tools, &order));
        CortexServer {
            shared: Arc::new(Shared {
                runtime,
                registry,
                instructions,
                resources,
                routes,
            }),
            subscriptions: Arc::default(),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// HTTP routes the toolsets serve besides /mcp (e.g. `/hooks/{id}`); they carry
    /// their own authentication.
    pub fn routes(&self) -> axum::Router {
        self.shared.routes.clone()
    }

    /// The MCP `Tool` list in catalog order.
    pub fn catalog(&self) -> Vec<Tool> {
        self.shared
            .registry
            .tools()
            .iter()
            .map(|t| t.tool.clone())
            .collect()
    }

    fn call_ctx(&self, ctx: &RequestContext<RoleServer>) -> CallCtx {
        let deadline = Instant::now() + self.shared.runtime.config.request_timeout;
        CallCtx {
            cancel: ctx.ct.clone(),
            deadline,
            progress: Progress::new(ctx.peer.clone(), ctx.meta.get_progress_token()),
            meta: Arc::new(match serde_json::to_value(&ctx.meta) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => Default::default(),
            }),
            registry: self.shared.registry.clone(),
            in_batch: false,
            budget: crate::runtime::budget::Budget::new(
                self.shared.runtime.config.call_memory_budget,
            ),
            stop: crate::runtime::stop::Stop::new(deadline),
            depth: 0,
        }
    }

    fn fixtures_on(&self) -> bool {
        self.shared.runtime.config.conformance_fixtures
    }

    fn read_builtin(&self, uri: &str) -> Option<String> {
        match uri {
            "cortex://metrics" => Some(self.shared.runtime.metrics.snapshot().to_string()),
            "cortex://config" => Some(self.shared.runtime.config.redacted().to_string()),
            other => other
                .strip_prefix(EVENTS_SCHEME)
                .map(|rest| self.read_events(rest)),
        }
    }
}

const EVENTS_SCHEME: &str = "events://";

impl CortexServer {
    /// Sends `notifications/resources/updated` for `uri` whenever `changes` moves, until
    /// unsubscribed or the peer goes away.
    fn forward_changes(
        &self,
        uri: String,
        mut changes: tokio::sync::watch::Receiver<u64>,
        peer: rmcp::Peer<RoleServer>,
    ) {
        let stop = CancellationToken::new();
        if let Some(old) = self.subscriptions.lock().insert(uri.clone(), stop.clone()) {
            old.cancel();
        }
        changes.mark_unchanged();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    changed = changes.changed() => {
                        if changed.is_err() { break; }
                        let note = ResourceUpdatedNotificationParam::new(uri.clone());
                        if peer.notify_resource_updated(note).await.is_err() { break; }
                    }
                }
            }
        });
    }
}
const EVENTS_PAGE: usize = 500;

impl CortexServer {
    /// A new session over the same shared state (own resource subscriptions).
    pub fn for_session(&self) -> Self {
        CortexServer {
            shared: self.shared.clone(),
            subscriptions: Arc::default(),
        }
    }

    fn source_for(&self, uri: &str) -> Option<&Arc<dyn ResourceSource>> {
        self.shared.resources.iter().find(|s| s.handles(uri))
    }

    /// `events://{topic}[?since_seq=N]`: up to 500 events after `since_seq`, oldest first.
    fn read_events(&self, rest: &str) -> String {
        let (topic, since) = parse_events_uri(rest);
        let events = self
            .shared
            .runtime
            .events
            .read_since(&topic, since, EVENTS_PAGE);
        let next_seq = events.last().map_or(since, |e| e.seq);
        serde_json::json!({ "topic": topic, "events": events, "next_seq": next_seq }).to_string()
    }
}

/// Splits `topic?since_seq=N` (topic `*` or empty means every topic).
fn parse_events_uri(rest: &str) -> (String, u64) {
    let (topic, query) = rest.split_once('?').unwrap_or((rest, ""));
    let since = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("since_seq="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let topic = if topic.is_empty() {
        "*".to_string()
    } else {
        topic.to_string()
    };
    (topic, since)
}

fn selected(config: &Config, tool: &ToolDef) -> bool {
    if config.read_only && !tool.read_only {
        return false;
    }
    if config.exclude_tools.contains(tool.name()) {
        return false;
    }
    config
        .tools
        .as_ref()
        .is_none_or(|only| only.contains(tool.name()))
}

fn json_resource(uri: &str, name: &str, description: &str) -> Resource {
    Resource::new(uri, name)
        .with_description(description)
        .with_mime_type("application/json")
}

// rmcp result types are #[non_exhaustive]: they can only be built from Default and then filled.
#[allow(clippy::field_reassign_with_default)]
impl ServerHandler for CortexServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(self.shared.instructions.clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut result = ListToolsResult::default();
        result.tools = self.catalog();
        if self.fixtures_on() {
            result.tools.extend(fixtures::conformance::tools());
        }
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared.registry.get(name).map(|t| t.tool.clone())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let mut result = ListPromptsResult::default();
        if self.fixtures_on() {
            result.prompts = fixtures::conformance::prompts();
        }
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if !self.fixtures_on() {
            return Err(McpError::invalid_params(
                format!("no prompt `{}`; this server has none", request.name),
                None,
            ));
        }
        let args = request.arguments.unwrap_or_default();
        Ok(fixtures::conformance::get_prompt(&request.name, &args)?.into())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let registry = &self.shared.registry;
        if self.fixtures_on() && registry.get(&request.name).is_none() {
            let args = request.arguments.clone().unwrap_or_default();
            if let Some(result) = fixtures::conformance::call(&request.name, &args, &ctx).await {
                return Ok(result.into());
            }
        }
        if registry.get(&request.name).is_none() {
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool `{}`; call tools/list for the enabled tools",
                    request.name
                ),
                None,
            ));
        }
        let args = request.arguments.unwrap_or_default();
        let call_ctx = self.call_ctx(&ctx);
        let progress = call_ctx.progress.clone();
        let result = registry.call(&request.name, args, call_ctx).await;
        // Progress after the result would be dropped by the client: send it first.
        progress.flush().await;
        Ok(into_call_result(result).into())
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
        ];
        if self.shared.runtime.config.conformance_fixtures {
            result.resources.extend(fixtures::resources());
        }
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if let Some(source) = self.source_for(&request.uri) {
            let text = source
                .read(&request.uri)
                .map_err(|e| McpError::resource_not_found(e.to_string(), None))?;
            return Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, request.uri.clone())
                    .with_mime_type("application/json"),
            ])
            .into());
        }
        let contents = self
            .read_builtin(&request.uri)
            .map(|text| {
                ResourceContents::text(text, request.uri.clone()).with_mime_type("application/json")
            })
            .or_else(|| {
                self.fixtures_on()
                    .then(|| fixtures::read(&request.uri))
                    .flatten()
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
        if self.fixtures_on() {
            result
                .resource_templates
                .extend(fixtures::conformance::templates());
        }
        Ok(result)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Some(source) = self.source_for(&request.uri) {
            let changes = source
                .watch(&request.uri)
                .map_err(|e| McpError::resource_not_found(e.to_string(), None))?;
            self.forward_changes(request.uri, changes, ctx.peer.clone());
            return Ok(());
        }
        if self.fixtures_on() && fixtures::conformance::subscribable(&request.uri) {
            // Fixture resources never change: track the subscription, nothing to forward.
            self.subscriptions
                .lock()
                .insert(request.uri.clone(), CancellationToken::new());
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
        let stop = CancellationToken::new();
        if let Some(old) = self
            .subscriptions
            .lock()
            .insert(request.uri.clone(), stop.clone())
        {
            old.cancel();
        }
        let mut sub = self.shared.runtime.events.subscribe(&topic, 1024);
        let peer = ctx.peer.clone();
        let uri = request.uri.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    next = sub.recv() => {
                        if next.is_none() { break; }
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
        if let Some(stop) = self.subscriptions.lock().remove(&request.uri) {
            stop.cancel();
        }
        Ok(())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        crate::transport::set_log_level(request.level);
        Ok(())
    }
}
