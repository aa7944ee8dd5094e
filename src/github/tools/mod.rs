//! The GitHub tools, one file or folder per topic (`pulls`, `repos`, `issues`,
//! `actions`, `files`, `releases`, `triage`): each holds its tools' inputs (contract names and
//! defaults kept), handlers and registration with annotations, descriptions and group
//! (`let t = t.group(ACTIONS);` at the top of its `register`). This module holds what
//! the handlers share, the groups and the toolset's tool list. Writes publish `github.*`
//! events.
//!
//! Owns tool semantics only: requests go through `client.rs`, shapes come from
//! `model.rs`. It must not touch lanes or rate-limit state directly.

use std::{collections::BTreeMap, sync::Arc};

use reqwest::Method;

use schemars::JsonSchema;

use serde::{Deserialize, Serialize};

use serde_json::{Value, json};

use crate::runtime::{
    events::{EventBus, EventPayload},
    executor::LaneStats,
    page::Page,
    registry::{CallCtx, Group, Hints, ToolDef, ToolError},
    toolset::Tools,
};

mod actions;
mod files;
mod issues;
mod pulls;
mod releases;
mod repos;
mod triage;

use super::{
    client::{ACCEPT_DIFF, GhError, GithubClient, TextWindow, window},
    events::{ContentsAction, IssueAction, PullRequestAction, RepositoryAction, WorkflowStatus},
    limits::{Bucket, LaneKind},
    model::*,
};

const SOURCE: &str = "cortex-mcp/github";

// The groups of the toolset (`--toolsets github.actions`); every tool is in exactly one,
// set where it is registered.

/// Repositories, branches, commits, file reads and writes, code and repository search.
const REPOS: Group = Group {
    name: "github.repos",
    about: "Repositories, branches, commits, file reads and writes (push_files), code and repository search",
};
/// Issues, their comments and issue search.
const ISSUES: Group = Group {
    name: "github.issues",
    about: "Issues, issue comments and issue search",
};
/// Pull requests: open, list, read, files, diff, merge, update, reviews, search.
const PULLS: Group = Group {
    name: "github.pulls",
    about: "Pull requests: open, list, read, changed files, diff, merge, update, reviewers, reviews and review comments, search",
};
/// GitHub Actions and CI: workflows, runs, jobs, logs, checks, reruns, artifacts.
const ACTIONS: Group = Group {
    name: "github.actions",
    about: "Actions and CI: workflows, runs, jobs, logs, commit checks, dispatch, reruns, cancel, artifacts",
};
/// Tags and releases: list, read, create.
const RELEASES: Group = Group {
    name: "github.releases",
    about: "Tags and releases: list, read one, create a release",
};

/// Notifications, labels and security alerts (opt-in).
const TRIAGE: Group = Group {
    name: "github.triage",
    about: "Notifications, labels and code, dependabot and secret scanning alerts",
};

const DEFAULT_BODY_BYTES: usize = 16 * 1024;

const DEFAULT_PATCH_BYTES: usize = 4 * 1024;

const DEFAULT_WINDOW_BYTES: usize = 64 * 1024;

/// What every GitHub handler holds.
pub struct Github {
    pub client: GithubClient,
    pub events: EventBus,
}

type SharedGithub = Arc<Github>;

use crate::runtime::toolset::Out;

fn repo(raw: &str) -> Result<String, ToolError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.len() <= 100
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match raw.trim().split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(format!("{owner}/{name}")),
        _ => Err(ToolError::input(format!(
            "repository: `{raw}` must be \"owner/name\" (letters, digits, '-', '_', '.')"
        ))),
    }
}

fn git_ref(field: &str, raw: &str) -> Result<String, ToolError> {
    let bad = raw.is_empty()
        || raw.len() > 255
        || raw.contains("..")
        || raw.starts_with('/')
        || raw.ends_with('/')
        || raw
            .chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    if bad {
        return Err(ToolError::input(format!(
            "{field}: `{raw}` is not a valid branch or ref name"
        )));
    }
    Ok(raw.to_string())
}

/// The object a Git ref names: its SHA and type (`commit`, or `tag` for an annotated tag).
#[derive(Deserialize)]
struct RefObject {
    sha: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// A Git ref as the refs API answers it (`GET git/ref/..`, `POST git/refs`).
#[derive(Deserialize)]
struct GitRef {
    #[serde(rename = "ref")]
    name: String,
    object: RefObject,
}

/// Reads one Git ref, `{namespace}/{name}` (`heads/main`, `tags/v1.0.0`), through the refs
/// API. `field` names the input `name` came from (in a refusal of its characters);
/// a missing ref is `NotFound` with `missing` as what was not found.
async fn get_ref(
    c: &GithubClient,
    ctx: &CallCtx,
    repo: &str,
    namespace: &str,
    (field, name): (&str, &str),
    missing: impl FnOnce() -> String,
) -> Result<GitRef, GhError> {
    let template = format!("repos/{{repository}}/git/ref/{namespace}/{{{field}}}");
    let url = c.url(&template, &[("repository", repo), (field, name)], &[])?;
    c.get_json(ctx, url, LaneKind::Read)
        .await
        .map_err(|e| match e {
            GhError::NotFound { .. } => GhError::NotFound { what: missing() },
            other => other,
        })
}

fn cap(text: Option<String>, max: usize) -> (Option<String>, bool) {
    match text {
        Some(mut t) if t.len() > max => {
            let mut end = max;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
            (Some(t), true)
        }
        other => (other, false),
    }
}

/// Publishes a GitHub event shown only to `owner`, the caller whose action it records.
async fn publish<P: EventPayload>(gh: &SharedGithub, event: P, owner: Option<String>) {
    if let Err(e) = gh.events.publish_as(SOURCE, &event, owner).await {
        tracing::warn!(
            event = event.event_type(),
            "could not journal the GitHub event: {e}"
        );
    }
}

fn default_limit_30() -> u32 {
    30
}

fn default_body() -> u32 {
    DEFAULT_BODY_BYTES as u32
}

fn default_patch() -> u32 {
    DEFAULT_PATCH_BYTES as u32
}

fn default_window() -> u32 {
    DEFAULT_WINDOW_BYTES as u32
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    Open,
    Closed,
    All,
}

impl IssueState {
    fn as_str(self) -> &'static str {
        match self {
            IssueState::Open => "open",
            IssueState::Closed => "closed",
            IssueState::All => "all",
        }
    }
}

fn default_issue_state() -> IssueState {
    IssueState::Open
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssueNumberIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    /// Longest body returned, in bytes (default 16384).
    #[serde(default = "default_body")]
    #[schemars(range(min = 256, max = 1048576))]
    pub max_body_bytes: u32,
}

impl<T> SearchPage<T> {
    /// A page of items with the totals GitHub put beside them in `envelope`
    /// (`total_count`, `incomplete_results`; absent ones read as 0 and false).
    fn from_envelope(page: Page<T>, envelope: &Value) -> Self {
        SearchPage {
            items: page.items,
            next_cursor: page.next_cursor,
            total_count: envelope
                .get("total_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            incomplete_results: envelope
                .get("incomplete_results")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct SearchPage<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub total_count: u64,
    /// GitHub timed out part of the search; results may be missing.
    pub incomplete_results: bool,
}

/// The HTTP header (`Mcp-Param-Repository`) that carries a tool's `repository` argument
/// ("owner/name") under protocol 2026-07-28, so a gateway can route or authorise calls by
/// repository without parsing the body (SEP-2243 `x-mcp-header`).
pub const REPOSITORY_HEADER: &str = "Repository";

pub fn all(gh: &SharedGithub) -> Vec<ToolDef> {
    let t = Tools::new("github", gh);
    [
        pulls::register(&t),
        repos::register(&t),
        issues::register(&t),
        actions::register(&t),
        files::register(&t),
        releases::register(&t),
        triage::register(&t),
    ]
    .concat()
    .into_iter()
    .map(|tool| tool.with_param_header("repository", REPOSITORY_HEADER))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_checked() {
        assert_eq!(repo("octo/hello").unwrap(), "octo/hello");
        assert!(repo("octo").is_err());
        assert!(repo("../etc/passwd").is_err());
        assert!(repo("octo/hello/extra").is_err());
        assert!(repo("octo/..").is_err());
    }

    /// The github toolset's tools, built over a fresh state directory (kept alive by the
    /// returned guard).
    fn github_tools() -> (tempfile::TempDir, Vec<crate::runtime::registry::ToolDef>) {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            crate::config::Config::from_layers(Default::default(), Default::default()).unwrap();
        config.state_dir = dir.path().to_path_buf();
        let runtime = crate::runtime::Runtime::new(Arc::new(config)).unwrap();
        let tools = crate::github::toolset(&runtime).unwrap().tools;
        (dir, tools)
    }

    #[tokio::test]
    async fn every_tool_is_in_one_github_group() {
        let (_dir, tools) = github_tools();
        assert!(tools.len() > 20, "{}", tools.len());
        for def in &tools {
            let group = def.group.unwrap_or_else(|| {
                panic!(
                    "github tool `{}` has no group: start its file's `register` with `let t = t.group(..);`",
                    def.name()
                )
            });
            assert!(
                [REPOS, ISSUES, PULLS, ACTIONS, RELEASES, TRIAGE].contains(&group),
                "{}: {}",
                def.name(),
                group.name
            );
        }
        for group in [REPOS, ISSUES, PULLS, ACTIONS, RELEASES, TRIAGE] {
            assert!(
                tools.iter().any(|t| t.group == Some(group)),
                "{} has no tools",
                group.name
            );
        }
    }

    #[tokio::test]
    async fn every_repository_argument_is_published_as_a_routing_header() {
        let (_dir, tools) = github_tools();
        let mut routed = 0;
        for def in &tools {
            let properties = def
                .tool
                .input_schema
                .get("properties")
                .and_then(Value::as_object);
            for (name, property) in properties.into_iter().flatten() {
                let header = property.get("x-mcp-header");
                if name == "repository" {
                    assert_eq!(property["type"], "string", "{}", def.name());
                    assert_eq!(header, Some(&json!(REPOSITORY_HEADER)), "{}", def.name());
                    routed += 1;
                } else {
                    assert_eq!(header, None, "{}.{name}", def.name());
                }
            }
        }
        assert!(routed > 40, "{routed} tools take a repository");
    }

    #[test]
    fn ref_names_are_checked() {
        assert!(git_ref("ref", "feature/x").is_ok());
        assert!(git_ref("ref", "a..b").is_err());
    }
}
