//! The rmcp `ServerHandler`: assembles the enabled toolsets (their tools, resources,
//! prompts, instructions and HTTP routes) into one registry, serves them next to the
//! built-in `cortex://` and `events://` resources, and keeps each session's
//! subscriptions and logging level. Nothing domain-specific lives here: every toolset,
//! the conformance fixtures included, contributes through [`Toolset`] only. The MCP
//! requests themselves are answered in `server/handler.rs`.
#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 but legacy clients (Inspector) need it

use std::{collections::HashMap, sync::Arc, time::Instant};

use tokio_util::sync::CancellationToken;

use rmcp::{ErrorData as McpError, RoleServer, model::*, service::RequestContext};

use crate::{
    asbr,
    config::Config,
    dynamic, github, integrations, mvp, patchkit,
    runtime::{
        Runtime, batch,
        client::Client,
        principal::Principal,
        progress::Progress,
        prompts::PromptSource,
        registry::{CallCtx, Registry, ToolDef},
        resources::ResourceSource,
        tool_tasks::ToolTasks,
        toolset::Toolset,
    },
};

mod completion;
mod handler;
mod listen;
mod tasks;

const BASE_INSTRUCTIONS: &str = "cortex-mcp: Cortex-OS toolsets on one server. Tool errors are results with isError and a message saying what to do next. Lists take `limit` and `cursor` and return `next_cursor` while more remain.";

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
    #[error("tool tasks journal in {dir}: {source}")]
    Tasks {
        dir: String,
        source: crate::runtime::store::StoreError,
    },
    #[error(
        "--conformance-fixtures needs a build with the `conformance-fixtures` feature (cargo build --features conformance-fixtures)"
    )]
    FixturesNotBuilt,
    #[error("option toolsets: unknown group `{group}`; the groups are: {known}")]
    UnknownGroup { group: String, known: String },
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

/// Every group named in `--toolsets` must be one the built toolsets define.
fn reject_unknown_groups(config: &Config, toolsets: &[Toolset]) -> Result<(), BuildError> {
    let known: Vec<&str> = toolsets
        .iter()
        .flat_map(|ts| ts.groups())
        .map(|g| g.name)
        .collect();
    match config
        .toolset_groups
        .iter()
        .find(|g| !known.contains(&g.as_str()))
    {
        Some(group) => Err(BuildError::UnknownGroup {
            group: group.clone(),
            known: if known.is_empty() {
                "none among the toolsets named".to_string()
            } else {
                known.join(", ")
            },
        }),
        None => Ok(()),
    }
}

/// `build(runtime)`, or, when the toolset's state cannot load, [`unavailable`]: one
/// toolset's damage never stops the server.
fn or_unavailable<E: std::fmt::Display>(
    runtime: &Runtime,
    name: &'static str,
    build: impl Fn(&Runtime) -> Result<Toolset, E>,
) -> Toolset {
    match build(runtime) {
        Ok(toolset) => toolset,
        Err(e) => unavailable(runtime, name, &e, |rt| build(rt).ok()),
    }
}

/// A toolset whose state could not load (`error`): its catalog, built by `build` over an
/// empty scratch state directory and an in-memory bus, with every tool answering
/// `isError` naming the damage; no resources or routes. Reported as damage.
fn unavailable(
    runtime: &Runtime,
    name: &'static str,
    error: &dyn std::fmt::Display,
    build: impl Fn(&Runtime) -> Option<Toolset>,
) -> Toolset {
    use crate::runtime::damage;
    let state = runtime.config.state_dir.join(name);
    damage::report(damage::Damage::new(
        format!("toolset {name}"),
        &state,
        format!("{error}; its tools answer isError until it loads"),
    ));
    let message: Arc<str> = format!(
        "the {name} toolset is unavailable: its state under {} could not load: {error}. Restore or move the damaged file aside and restart the server (damage is listed in cortex://health); other toolsets are unaffected.",
        state.display()
    )
    .into();
    let scratch =
        std::env::temp_dir().join(format!("cortex-mcp-catalog-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut shadow = runtime.clone();
    let mut config = (*runtime.config).clone();
    config.state_dir = scratch.clone();
    config.store = crate::config::StoreSettings::Local;
    shadow.config = Arc::new(config);
    shadow.stores = crate::runtime::store::Stores::local(scratch.clone());
    let catalog = crate::runtime::events::EventBus::new(None, Default::default())
        .ok()
        .and_then(|bus| {
            shadow.events = bus;
            build(&shadow)
        });
    let _ = std::fs::remove_dir_all(&scratch);
    let (instructions, tools) = catalog.map_or(("", Vec::new()), |ts| (ts.instructions, ts.tools));
    Toolset::new(
        name,
        instructions,
        tools
            .into_iter()
            .map(|t| t.unavailable(message.clone()))
            .collect(),
    )
}

/// State shared by every session and request (the HTTP factory clones this cheaply).
pub struct Shared {
    pub runtime: Runtime,
    pub registry: Arc<Registry>,
    pub instructions: String,
    /// Resources contributed by the enabled toolsets.
    pub resources: Vec<Arc<dyn ResourceSource>>,
    /// Prompts contributed by the enabled toolsets.
    pub prompts: Vec<Arc<dyn PromptSource>>,
    /// Extra HTTP routes of the enabled toolsets (served next to /mcp in HTTP mode).
    pub routes: axum::Router,
    /// `--dynamic-toolsets`: the discovery tools and which toolsets a session starts with.
    pub dynamic: Option<Arc<dynamic::Catalog>>,
    /// Open `subscriptions/listen` streams (bounded process-wide).
    pub listen_streams: Arc<tokio::sync::Semaphore>,
    /// Tool calls run as tasks (shared by every session: a task outlives its request).
    pub tasks: crate::runtime::tool_tasks::ToolTasks,
}

/// The server handler; cheap to clone.
#[derive(Clone)]
pub struct CortexServer {
    shared: Arc<Shared>,
    /// What this session holds (one per stdio process, per HTTP session, per stateless
    /// request); released when the session's handler is dropped.
    session: Arc<SessionState>,
}

/// Resource subscriptions one session may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 256;

/// One session's state: its resource subscriptions (uri → the token that stops the task
/// forwarding updates) and the level of `notifications/message` its client asked for.
#[derive(Default)]
struct SessionState {
    subscriptions: parking_lot::Mutex<HashMap<String, CancellationToken>>,
    log_level: parking_lot::Mutex<Option<LoggingLevel>>,
    /// The toolsets this session enabled (`--dynamic-toolsets`).
    toolsets: dynamic::Session,
    /// Listen streams acknowledged and not yet started (their change feeds).
    listen_feeds: listen::PendingFeeds,
}

impl Drop for SessionState {
    /// The session is gone: its forwarding tasks stop now, not at their next event.
    fn drop(&mut self) {
        for (_, stop) in self.subscriptions.get_mut().drain() {
            stop.cancel();
        }
    }
}

impl SessionState {
    /// Registers a subscription to `uri` (replacing an older one to the same uri) and
    /// returns the token that stops its task; refused past [`MAX_SUBSCRIPTIONS`].
    fn track(&self, uri: &str) -> Result<CancellationToken, McpError> {
        let mut subs = self.subscriptions.lock();
        if !subs.contains_key(uri) && subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(McpError::invalid_request(
                format!(
                    "this session already holds {MAX_SUBSCRIPTIONS} resource subscriptions; resources/unsubscribe some before subscribing to {uri}"
                ),
                None,
            ));
        }
        let stop = CancellationToken::new();
        if let Some(old) = subs.insert(uri.to_string(), stop.clone()) {
            old.cancel();
        }
        Ok(stop)
    }
}

/// Whether this request came over stateless HTTP (no session): the client cannot
/// answer a server-to-client request (sampling, elicitation, roots) and no stream
/// outlives the response, so nothing may wait on either.
pub fn stateless_http(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.extensions
        .get::<http::request::Parts>()
        .is_some_and(|parts| !parts.headers.contains_key("mcp-session-id"))
}

impl CortexServer {
    /// A 2025-11-25 `initialize` over HTTP without `--http-sessions`: every request is
    /// its own session there, so `resources/subscribe` is refused.
    fn legacy_subscribe_refused(&self, ctx: &RequestContext<RoleServer>) -> bool {
        ctx.extensions.get::<http::request::Parts>().is_some()
            && !self.shared.runtime.config.http_sessions
    }
}

/// Whether this request speaks protocol 2026-07-28 or newer (per-request `_meta`, no
/// session): logs only when the request asks for a level, subscriptions through
/// `subscriptions/listen`.
pub fn modern_era(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

impl CortexServer {
    /// Builds the runtime and registry from a validated configuration.
    /// Must run inside a tokio runtime (journals replay here).
    pub fn build(config: Config) -> Result<Self, BuildError> {
        let config = Arc::new(config);
        let runtime = Runtime::new(config.clone())?;
        let mut toolsets = Vec::new();
        // Dynamic mode builds every toolset; sessions choose which ones they list.
        let wanted = |name: &str| config.dynamic_toolsets || config.toolset_wanted(name);
        if wanted("github") {
            toolsets.push(github::toolset(&runtime)?);
        }
        if wanted("asbr") {
            toolsets.push(or_unavailable(&runtime, "asbr", asbr::toolset));
        }
        if wanted("mvp") {
            toolsets.push(or_unavailable(&runtime, "mvp", mvp::toolset));
        }
        if wanted("patchkit") {
            toolsets.push(patchkit::toolset(&runtime));
        }
        if wanted("integrations") {
            toolsets.push(or_unavailable(
                &runtime,
                "integrations",
                integrations::toolset,
            ));
        }
        if wanted("batch") {
            toolsets.push(Toolset::new(
                "batch",
                "batch: run up to 50 independent calls in one request with `batch`.",
                vec![batch::batch_tool()],
            ));
        }
        if config.conformance_fixtures {
            // First in the catalog: suites that call "the first tool" (or the first with
            // an `x-mcp-header`) get a fixture made for it, not a product tool.
            #[cfg(feature = "conformance-fixtures")]
            toolsets.insert(0, crate::fixtures::toolset(&runtime));
            #[cfg(not(feature = "conformance-fixtures"))]
            return Err(BuildError::FixturesNotBuilt);
        }
        reject_duplicate_names(&toolsets)?;
        reject_unknown_groups(&config, &toolsets)?;
        let dir = config.state_dir.join("tool-tasks");
        let tasks = ToolTasks::open(&dir, config.fsync)
            .map_err(|source| BuildError::Tasks {
                dir: dir.display().to_string(),
                source,
            })?
            .on_replica(config.replica_id.as_deref());
        Ok(Self::assemble(runtime, toolsets, tasks))
    }

    fn assemble(runtime: Runtime, toolsets: Vec<Toolset>, tasks: ToolTasks) -> Self {
        let config = runtime.config.clone();
        let order: Vec<&str> = toolsets.iter().map(|t| t.name).collect();
        let described: Vec<(&'static str, &'static str)> =
            toolsets.iter().map(|t| (t.name, t.instructions)).collect();
        // In dynamic mode a session starts with the named toolsets only: their
        // instructions, and how to enable the others.
        let starts_with = |name: &str| {
            !config.dynamic_toolsets
                || config.toolset_wanted(name)
                || !crate::config::ALL_TOOLSETS.contains(&name)
        };
        let mut instructions = String::from(BASE_INSTRUCTIONS);
        let mut tools = Vec::new();
        let mut resources = Vec::new();
        let mut prompts = Vec::new();
        let mut routes = axum::Router::new();
        for ts in toolsets {
            if starts_with(ts.name) {
                // Enabled through some groups only: the instructions name those.
                let groups: Vec<_> = ts
                    .groups()
                    .into_iter()
                    .filter(|g| {
                        !config.toolset_enabled(ts.name)
                            && config.toolset_groups.iter().any(|n| n == g.name)
                    })
                    .collect();
                instructions.push_str("\n\n");
                instructions.push_str(&ts.instructions_for(&groups));
            }
            resources.extend(ts.resources);
            prompts.extend(ts.prompts);
            routes = routes.merge(ts.routes);
            tools.extend(ts.tools.into_iter().filter(|t| selected(&config, t)));
        }
        let registry = Arc::new(Registry::new(tools, &order));
        let dynamic = config.dynamic_toolsets.then(|| {
            instructions.push_str("\n\n");
            instructions.push_str(dynamic::INSTRUCTIONS);
            let initial: Vec<String> = config
                .toolsets
                .iter()
                .chain(&config.toolset_groups)
                .cloned()
                .collect();
            Arc::new(dynamic::Catalog::new(&described, &registry, &initial))
        });
        CortexServer {
            shared: Arc::new(Shared {
                runtime,
                registry,
                instructions,
                resources,
                prompts,
                routes,
                dynamic,
                listen_streams: listen::stream_slots(),
                tasks,
            }),
            session: Arc::default(),
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
            principal: Principal::of_request(&ctx.extensions),
            budget: crate::runtime::budget::Budget::new(
                self.shared.runtime.config.call_memory_budget,
            ),
            stop: crate::runtime::stop::Stop::new(deadline),
            depth: 0,
            client: Client {
                peer: Some(ctx.peer.clone()),
                stateless: stateless_http(ctx),
                log_level: self.log_level(ctx),
            },
            rounds: Default::default(),
        }
    }

    /// The lowest `notifications/message` level the client of `ctx` receives. 2026-07-28
    /// forbids unsolicited log messages: none unless the request's `_meta` names a level.
    /// Before it, the level of `logging/setLevel`, everything until one is set.
    fn log_level(&self, ctx: &RequestContext<RoleServer>) -> Option<LoggingLevel> {
        if modern_era(ctx) {
            ctx.meta.log_level()
        } else {
            Some(self.session.log_level.lock().unwrap_or(LoggingLevel::Debug))
        }
    }

    fn read_builtin(&self, uri: &str, principal: &Principal) -> Option<String> {
        match uri {
            "cortex://metrics" => Some(self.shared.runtime.metrics.snapshot().to_string()),
            "cortex://config" => Some(self.shared.runtime.config.redacted().to_string()),
            "cortex://health" => Some(health_report().to_string()),
            other => other
                .strip_prefix(EVENTS_SCHEME)
                .map(|rest| self.read_events(rest, principal)),
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
        stop: CancellationToken,
    ) {
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
            session: Arc::default(),
        }
    }

    fn source_for(&self, uri: &str) -> Option<&Arc<dyn ResourceSource>> {
        self.shared.resources.iter().find(|s| s.handles(uri))
    }

    /// `events://{topic}[?since_seq=N]`: up to 500 events after `since_seq`, oldest first,
    /// of those `principal` may see. Pages of events it may not see are passed over, so
    /// an empty page still means nothing newer is visible; `next_seq` is the last seq
    /// looked at.
    fn read_events(&self, rest: &str, principal: &Principal) -> String {
        let (topic, since) = parse_events_uri(rest);
        let mut next_seq = since;
        let mut events = Vec::new();
        loop {
            let page = self
                .shared
                .runtime
                .events
                .read_since(&topic, next_seq, EVENTS_PAGE);
            let Some(last) = page.last() else { break };
            next_seq = last.seq;
            events.extend(page.into_iter().filter(|e| e.visible_to(principal)));
            if !events.is_empty() {
                break;
            }
        }
        serde_json::json!({ "topic": topic, "events": events, "next_seq": next_seq }).to_string()
    }
}

/// `cortex://health`: `ok`, or `degraded` with every piece of damaged state reported.
fn health_report() -> serde_json::Value {
    let damage = crate::runtime::damage::reported();
    serde_json::json!({
        "status": if damage.is_empty() { "ok" } else { "degraded" },
        "damage": damage,
    })
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
    // `--toolsets github.actions`: in dynamic mode every group stays registered and
    // each session lists the groups it enabled.
    if !config.dynamic_toolsets && !config.group_selected(tool.toolset, tool.group.map(|g| g.name))
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_bounds_its_subscriptions_and_stops_them_when_dropped() {
        let session = SessionState::default();
        let first = session.track("events://a").unwrap();
        session.track("events://a").unwrap();
        assert!(first.is_cancelled(), "re-subscribing replaces the old task");
        for i in 1..MAX_SUBSCRIPTIONS {
            session.track(&format!("events://t{i}")).unwrap();
        }
        assert!(session.track("events://one-too-many").is_err());
        let held = session.track("events://a").unwrap();
        assert!(!held.is_cancelled());
        drop(session);
        assert!(
            held.is_cancelled(),
            "the session's end stops its forwarding tasks"
        );
    }
}
