//! The Toolset shape every toolset returns, and the one registration builder its tools
//! go through.
//!
//! A toolset contributes tools, resources, prompts, instructions and HTTP routes (e.g.
//! inbound webhooks, served next to `/mcp` in HTTP mode); the server only assembles
//! them. Owns only the shape and the registration helper; it must not know any toolset,
//! the server or a transport.

use std::{future::Future, sync::Arc};

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    prompts::PromptSource,
    registry::{CallCtx, Group, Hints, ToolDef, ToolError, tool},
    resources::ResourceSource,
};

/// What every tool handler returns.
pub type Out<T> = Result<T, ToolError>;

/// One enabled toolset's contribution.
pub struct Toolset {
    pub name: &'static str,
    pub instructions: &'static str,
    pub tools: Vec<ToolDef>,
    /// MCP resources this toolset serves (may be empty).
    pub resources: Vec<Arc<dyn ResourceSource>>,
    /// MCP prompts this toolset serves (may be empty).
    pub prompts: Vec<Arc<dyn PromptSource>>,
    /// HTTP routes served next to `/mcp` in HTTP mode; they carry their own
    /// authentication. Empty for most toolsets.
    pub routes: axum::Router,
}

impl Toolset {
    /// A toolset with `tools` and nothing else.
    pub fn new(name: &'static str, instructions: &'static str, tools: Vec<ToolDef>) -> Self {
        Toolset {
            name,
            instructions,
            tools,
            resources: Vec::new(),
            prompts: Vec::new(),
            routes: axum::Router::new(),
        }
    }

    /// The groups its tools sit in, each once, in catalog order.
    pub fn groups(&self) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for group in self.tools.iter().filter_map(|t| t.group) {
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }

    /// Its instructions when only `groups` of it are enabled. Instructions start with
    /// `name: what it covers.`; that first sentence becomes the names of the groups
    /// (their tools say the rest), so the text names no tool the session does not have. All groups, or none given:
    /// the instructions as written.
    pub fn instructions_for(&self, groups: &[Group]) -> String {
        if groups.is_empty() || groups.len() == self.groups().len() {
            return self.instructions.to_string();
        }
        let covers = groups.iter().map(|g| g.name).collect::<Vec<_>>().join(", ");
        let rest = self
            .instructions
            .strip_prefix(self.name)
            .and_then(|r| r.strip_prefix(": "))
            .and_then(|r| r.split_once(". ").map(|(_, rest)| rest))
            .unwrap_or(self.instructions);
        format!("{}: only the groups {covers}. {rest}", self.name)
    }

    /// Adds a family of resources.
    pub fn with_resources(mut self, source: Arc<dyn ResourceSource>) -> Self {
        self.resources.push(source);
        self
    }

    /// Adds a family of prompts.
    pub fn with_prompts(mut self, source: Arc<dyn PromptSource>) -> Self {
        self.prompts.push(source);
        self
    }

    /// Adds HTTP routes (served only in HTTP mode).
    pub fn with_routes(mut self, routes: axum::Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }
}

/// The registration builder: binds a toolset's name and its shared state `S` to each
/// handler `async fn(S, Input, CallCtx) -> Out<Output>`, so a tool's registration is its
/// name, hints, handler and description.
#[derive(Clone)]
pub struct Tools<S> {
    toolset: &'static str,
    group: Option<Group>,
    state: S,
}

impl<S: Clone + Send + Sync + 'static> Tools<S> {
    pub fn new(toolset: &'static str, state: &S) -> Self {
        Tools {
            toolset,
            group: None,
            state: state.clone(),
        }
    }

    /// The same builder putting every tool it registers in `group` (whose name must be
    /// `toolset.part`): a topic file's `register` starts with `let t = t.group(G);`.
    pub fn group(&self, group: Group) -> Self {
        assert_eq!(
            group.toolset(),
            self.toolset,
            "group {} is not a part of the {} toolset",
            group.name,
            self.toolset
        );
        Tools {
            group: Some(group),
            ..self.clone()
        }
    }

    /// One tool whose handler gets a clone of the state, the typed input and the call
    /// context (see [`tool`] for validation and schemas).
    pub fn tool<I, O, F, Fut>(
        &self,
        name: &'static str,
        hints: Hints,
        handler: F,
        description: &str,
    ) -> ToolDef
    where
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(S, I, CallCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Out<O>> + Send + 'static,
    {
        let state = self.state.clone();
        let mut def = tool(self.toolset, name, description, hints, move |input, ctx| {
            handler(state.clone(), input, ctx)
        });
        def.group = self.group;
        def
    }
}
