//! Dynamic toolsets (`--dynamic-toolsets`): a session starts with three discovery tools
//! (`list_available_toolsets`, `get_toolset_tools`, `enable_toolset`) plus the toolsets
//! and groups named in `--toolsets`, and enables more as it needs them — a whole toolset
//! or one group of it (`github.actions`) — each enabling followed by
//! `notifications/tools/list_changed` (for a 2026-07-28 client, on the session's
//! `subscriptions/listen` streams that asked for `toolsListChanged`). Modelled on the official GitHub MCP server's
//! `--dynamic-toolsets`; here the enabled set belongs to one session (one stdio peer, one
//! HTTP session), never to the process.
//!
//! Owns the discovery tools, the per-session enabled set and the error a tool of a
//! toolset not yet enabled answers. The server asks it what to list and whether a call
//! may run; it must not build toolsets, touch a transport or any toolset's state.

use std::collections::BTreeSet;

use rmcp::{
    Peer, RoleServer,
    model::{CallToolResult, JsonObject, Tool, ToolAnnotations},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::runtime::registry::{Group, Registry, ToolDef, ToolError};

pub const LIST_AVAILABLE_TOOLSETS: &str = "list_available_toolsets";
pub const GET_TOOLSET_TOOLS: &str = "get_toolset_tools";
pub const ENABLE_TOOLSET: &str = "enable_toolset";

/// Appended to the server instructions in dynamic mode.
pub const INSTRUCTIONS: &str = "Dynamic toolsets: this session lists some tools only; find the others with list_available_toolsets and get_toolset_tools, add them with enable_toolset (a whole toolset, or a group such as github.actions).";

/// One-line descriptions of the known toolsets; any other toolset (the conformance
/// fixtures) is described by the first sentence of its instructions.
const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "github",
        "GitHub repositories, issues, pull requests, files, commits, search and Actions",
    ),
    (
        "integrations",
        "Register and call external systems: HTTP APIs, webhooks, PostgreSQL (SQL), Redis Streams; credentials injected",
    ),
    (
        "asbr",
        "Durable agent tasks and their events, approvals, profiles, artifacts and the signed connector map",
    ),
    (
        "mvp",
        "Workflow graphs, PRP workflows, teaching, and sandboxed workspace commands and tests",
    ),
    (
        "patchkit",
        "Unified diffs: create, parse, check and apply; search/replace file edits; staged spool edits",
    ),
    (
        "batch",
        "Run up to 50 independent tool calls in one request",
    ),
];

/// What one session has enabled (toolsets and groups) beyond those enabled at start,
/// and a counter that moves each time its tool list changes.
#[derive(Default)]
pub struct Session {
    added: parking_lot::Mutex<BTreeSet<&'static str>>,
    changes: tokio::sync::watch::Sender<u64>,
}

impl Session {
    /// A receiver that changes whenever this session's tool list does (for
    /// `subscriptions/listen` streams asking for `toolsListChanged`).
    pub fn tool_list_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// Who runs a discovery tool: the session's peer, whether the call came over stateless
/// HTTP (nothing outlives it), and whether it speaks 2026-07-28 (no unsolicited
/// notifications: list changes reach its `subscriptions/listen` streams instead).
pub struct Caller<'a> {
    pub peer: &'a Peer<RoleServer>,
    pub stateless: bool,
    pub modern: bool,
}

/// A toolset, or a group of one (then `name` is `toolset.part`).
struct Entry {
    name: &'static str,
    /// The toolset: `name` itself, or the one the group is part of.
    toolset: &'static str,
    description: String,
    /// Tool name and the first sentence of its description, in catalog order.
    tools: Vec<(String, String)>,
}

/// The toolsets and groups a session may enable, which ones it starts with, and the
/// discovery tools.
pub struct Catalog {
    toolsets: Vec<Entry>,
    initial: BTreeSet<&'static str>,
    discovery: Vec<Tool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsetArg {
    toolset: String,
}

/// The first sentence of `text` (to ". " or a line break), at most 160 characters.
fn first_sentence(text: &str) -> String {
    let end = [text.find(". "), text.find('\n')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(text.len());
    let sentence = text[..end].trim_end_matches('.');
    match sentence.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &sentence[..cut]),
        None => sentence.to_string(),
    }
}

fn annotations(read_only: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

impl Catalog {
    /// `toolsets` are the built toolsets in catalog order with their instructions (each
    /// toolset is followed by the groups its registered tools sit in); `initial` the
    /// toolsets and groups a session starts with (any toolset the configuration cannot
    /// name, such as the conformance fixtures, starts enabled too).
    pub fn new(
        toolsets: &[(&'static str, &'static str)],
        registry: &Registry,
        initial: &[String],
    ) -> Self {
        let line = |t: &ToolDef| {
            let description = t.tool.description.as_deref().unwrap_or("");
            (t.name().to_string(), first_sentence(description))
        };
        let mut entries: Vec<Entry> = Vec::new();
        for &(name, instructions) in toolsets {
            let tools: Vec<&ToolDef> = registry
                .tools()
                .iter()
                .filter(|t| t.toolset == name)
                .collect();
            entries.push(Entry {
                name,
                toolset: name,
                description: DESCRIPTIONS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_else(|| first_sentence(instructions)),
                tools: tools.iter().map(|t| line(t)).collect(),
            });
            let mut groups: Vec<Group> = Vec::new();
            for group in tools.iter().filter_map(|t| t.group) {
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
            entries.extend(groups.into_iter().map(|group| {
                Entry {
                    name: group.name,
                    toolset: name,
                    description: group.about.to_string(),
                    tools: tools
                        .iter()
                        .filter(|t| t.group == Some(group))
                        .map(|t| line(t))
                        .collect(),
                }
            }));
        }
        let initial = entries
            .iter()
            .map(|e| e.name)
            .filter(|name| {
                initial.iter().any(|i| i == name)
                    || !name.contains('.') && !crate::config::ALL_TOOLSETS.contains(name)
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
        let toolset_input = object(json!({
            "type": "object",
            "properties": { "toolset": { "type": "string", "enum": names } },
            "required": ["toolset"],
            "additionalProperties": false,
        }));
        let tool_list = json!({
            "type": "array",
            "items": {
                "type": "object",
                "properties": { "name": { "type": "string" }, "description": { "type": "string" } },
                "required": ["name", "description"],
            },
        });
        let discovery = vec![
            Tool::new(
                LIST_AVAILABLE_TOOLSETS,
                "List every toolset of this server and the groups of the large ones (github.actions): name, what it is for, whether this session has it enabled, and its tool count. Start here when a tool you need is not listed.",
                object(json!({ "type": "object", "properties": {}, "additionalProperties": false })),
            )
            .with_title("List available toolsets")
            .with_annotations(annotations(true))
            .with_raw_output_schema(std::sync::Arc::new(object(json!({
                "type": "object",
                "properties": { "toolsets": { "type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "part_of": { "type": "string", "description": "the toolset of a group" },
                        "description": { "type": "string" },
                        "enabled": { "type": "boolean" },
                        "tools": { "type": "integer", "description": "tool count" },
                    },
                    "required": ["name", "description", "enabled", "tools"],
                } } },
                "required": ["toolsets"],
            })))),
            Tool::new(
                GET_TOOLSET_TOOLS,
                "The tools of one toolset or group, each with a one-line description, without enabling it.",
                toolset_input.clone(),
            )
            .with_title("Get toolset tools")
            .with_annotations(annotations(true))
            .with_raw_output_schema(std::sync::Arc::new(object(json!({
                "type": "object",
                "properties": {
                    "toolset": { "type": "string" },
                    "enabled": { "type": "boolean" },
                    "tools": tool_list,
                },
                "required": ["toolset", "enabled", "tools"],
            })))),
            Tool::new(
                ENABLE_TOOLSET,
                "Enable a toolset, or one group of it, for this session: its tools are added to the tool list (notifications/tools/list_changed) and can be called next. Needs a session (stdio, or HTTP with --http-sessions).",
                toolset_input,
            )
            .with_title("Enable toolset")
            .with_annotations(annotations(true))
            .with_raw_output_schema(std::sync::Arc::new(object(json!({
                "type": "object",
                "properties": {
                    "toolset": { "type": "string" },
                    "already_enabled": { "type": "boolean" },
                    "tools": { "type": "array", "items": { "type": "string" }, "description": "names now callable" },
                },
                "required": ["toolset", "already_enabled", "tools"],
            })))),
        ];
        Catalog {
            toolsets: entries,
            initial,
            discovery,
        }
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.toolsets.iter().find(|e| e.name == name)
    }

    /// Whether `name` (a toolset or group) is on for a session that added `added`.
    fn on(&self, added: &BTreeSet<&'static str>, name: &str) -> bool {
        self.initial.contains(name) || added.contains(name)
    }

    /// Whether `session` has `entry` enabled: itself, or the toolset it is a group of.
    fn entry_enabled(&self, session: &Session, entry: &Entry) -> bool {
        let added = session.added.lock();
        self.on(&added, entry.name) || self.on(&added, entry.toolset)
    }

    /// Whether `session` may list and call `def`: its toolset or its group is enabled.
    pub fn tool_enabled(&self, session: &Session, def: &ToolDef) -> bool {
        let added = session.added.lock();
        self.on(&added, def.toolset) || def.group.is_some_and(|g| self.on(&added, g.name))
    }

    /// The tools `session` sees: the discovery tools, then the enabled toolsets' and
    /// groups' tools.
    pub fn tools(&self, session: &Session, registry: &Registry) -> Vec<Tool> {
        self.discovery
            .iter()
            .cloned()
            .chain(
                registry
                    .tools()
                    .iter()
                    .filter(|t| self.tool_enabled(session, t))
                    .map(|t| t.tool.clone()),
            )
            .collect()
    }

    /// A discovery tool by name.
    pub fn discovery_tool(&self, name: &str) -> Option<&Tool> {
        self.discovery.iter().find(|t| t.name == name)
    }

    /// The answer to a call of `def` when `session` has not enabled its toolset or group.
    pub fn not_enabled(&self, session: &Session, def: &ToolDef) -> Option<CallToolResult> {
        if self.tool_enabled(session, def) {
            return None;
        }
        let (part, enable) = match def.group {
            Some(g) => (
                format!("the `{}` group of the `{}` toolset", g.name, def.toolset),
                g.name,
            ),
            None => (format!("the `{}` toolset", def.toolset), def.toolset),
        };
        Some(
            ToolError::input(format!(
                "tool `{}` belongs to {part}, which this session has not enabled; call enable_toolset with {{\"toolset\": \"{enable}\"}} first, then call `{}` again",
                def.name(),
                def.name(),
            ))
            .into_result(),
        )
    }

    /// Runs a discovery tool for `session`. `caller.stateless` is true over stateless
    /// HTTP, where no enabling can outlive the request.
    pub async fn call(
        &self,
        name: &str,
        args: JsonObject,
        session: &Session,
        caller: Caller<'_>,
    ) -> CallToolResult {
        match self.run(name, args, session, caller).await {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => e.into_result(),
        }
    }

    async fn run(
        &self,
        name: &str,
        args: JsonObject,
        session: &Session,
        caller: Caller<'_>,
    ) -> Result<Value, ToolError> {
        let args = Value::Object(args);
        match name {
            LIST_AVAILABLE_TOOLSETS => {
                serde_json::from_value::<NoArgs>(args)
                    .map_err(|e| ToolError::input(format!("{e}; this tool takes no arguments")))?;
                let toolsets: Vec<Value> = self
                    .toolsets
                    .iter()
                    .map(|e| {
                        let mut entry = json!({
                            "name": e.name,
                            "description": e.description,
                            "enabled": self.entry_enabled(session, e),
                            "tools": e.tools.len(),
                        });
                        if e.toolset != e.name {
                            entry["part_of"] = json!(e.toolset);
                        }
                        entry
                    })
                    .collect();
                Ok(json!({ "toolsets": toolsets }))
            }
            GET_TOOLSET_TOOLS => {
                let entry = self.toolset_arg(args)?;
                let tools: Vec<Value> = entry
                    .tools
                    .iter()
                    .map(|(name, description)| json!({ "name": name, "description": description }))
                    .collect();
                Ok(json!({
                    "toolset": entry.name,
                    "enabled": self.entry_enabled(session, entry),
                    "tools": tools,
                }))
            }
            ENABLE_TOOLSET => {
                let entry = self.toolset_arg(args)?;
                let already = self.entry_enabled(session, entry);
                if !already {
                    if caller.stateless {
                        return Err(ToolError::business(format!(
                            "enable_toolset needs a session, and this is stateless HTTP (every request starts afresh), so `{}` was not enabled; connect over stdio or to a server started with --http-sessions, or start this server with --toolsets {} to enable it from the start",
                            entry.name, entry.name
                        )));
                    }
                    session.added.lock().insert(entry.name);
                    session.changes.send_modify(|n| *n += 1);
                    // The client re-lists on this; a peer that is gone has no list to refresh.
                    if !caller.modern {
                        let _ = caller.peer.notify_tool_list_changed().await;
                    }
                }
                let tools: Vec<&str> = entry.tools.iter().map(|(n, _)| n.as_str()).collect();
                Ok(json!({ "toolset": entry.name, "already_enabled": already, "tools": tools }))
            }
            other => Err(ToolError::input(format!(
                "`{other}` is not a discovery tool"
            ))),
        }
    }

    fn toolset_arg(&self, args: Value) -> Result<&Entry, ToolError> {
        let known = || {
            self.toolsets
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let arg: ToolsetArg = serde_json::from_value(args).map_err(|e| {
            ToolError::input(format!(
                "{e}; pass {{\"toolset\": NAME}} with one of: {}",
                known()
            ))
        })?;
        self.entry(&arg.toolset).ok_or_else(|| {
            ToolError::input(format!(
                "no toolset `{}`; known: {} (list_available_toolsets describes them)",
                arg.toolset,
                known()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn first_sentence_stops_at_a_full_stop_or_line_break_and_is_bounded() {
        assert_eq!(first_sentence("Get an issue. Then more."), "Get an issue");
        assert_eq!(first_sentence("One line\nsecond"), "One line");
        assert_eq!(first_sentence("v1.2 is fine"), "v1.2 is fine");
        let long = "x".repeat(400);
        assert_eq!(first_sentence(&long).chars().count(), 161);
    }
}
