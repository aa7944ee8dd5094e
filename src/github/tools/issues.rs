//! Issue, comment and search tools.
//!
//! Owns their inputs, outputs, handlers and registration; requests go through the
//! client only.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(ISSUES);
    // Code and repository search are about repositories, not issues.
    let repos = &t.group(REPOS);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "list_issues",
            read,
            list_issues,
            "Find issues (pull requests left out) by state, labels (all must match) and assignee, newest first. No bodies (see `get_issue`)."
        )
        .titled("List issues"),
        t.tool(
            "get_issue",
            read,
            get_issue,
            "Read one issue in full: state, labels, assignees, dates and body (cut at `maxBodyBytes`; `body_truncated` says so)."
        )
        .titled("Get issue"),
        t.tool(
            "create_issue",
            write,
            create_issue,
            "Open an issue with a title and optional body, labels and assignees. Returns the new issue with its number and html_url."
        )
        .titled("Create issue"),
        t.tool(
            "update_issue",
            write.destructive().idempotent(),
            update_issue,
            "Change an issue's title, body, state (open|closed, with stateReason), labels or assignees; given fields and lists replace the current ones. Returns the updated issue."
        )
        .titled("Update issue"),
        t.tool(
            "add_issue_comment",
            write,
            add_issue_comment,
            "Comment on an issue or pull request (Markdown). Returns the comment with its id and html_url."
        )
        .titled("Add issue comment"),
        t.tool(
            "list_issue_comments",
            read,
            list_issue_comments,
            "Read the discussion of an issue or pull request: comments oldest first with author, dates and body."
        )
        .titled("List issue comments"),
        t.tool(
            "search_issues",
            read,
            search_issues,
            "Search issues and pull requests with GitHub's query syntax (`repo:o/r is:open label:bug words`). Returns the matches and `total_count`; search allows 30 requests a minute and calls queue rather than fail."
        )
        .titled("Search issues"),
        repos.tool(
            "search_code",
            read,
            search_code,
            "Search code with GitHub's query syntax (`repo:o/r fn main`). Returns matching files and `total_count`; code search allows about 9 requests a minute and calls queue rather than fail."
        )
        .titled("Search code"),
        repos.tool(
            "search_repositories",
            read,
            search_repositories,
            "Find repositories with GitHub's query syntax (`topic:rust stars:>100`). Returns the matches and `total_count`."
        )
        .titled("Search repositories"),
    ]
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListIssuesIn {
        /// owner/name
        pub repository: String,
        #[serde(default = "default_issue_state")]
        pub state: IssueState,
        /// Only issues carrying every one of these labels.
        #[serde(default)]
        pub labels: Option<Vec<String>>,
        /// Only issues assigned to this login (`none` for unassigned, `*` for any).
        #[serde(default)]
        pub assignee: Option<String>,
        ..page_args {
            /// Issues to return (1–100). Pull requests are left out.
            limit,
            /// `next_cursor` of the previous page.
            cursor,
        },
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateIssueIn {
    /// owner/name
    pub repository: String,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Logins to assign.
    #[serde(default)]
    pub assignees: Option<Vec<String>>,
}

#[derive(Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum OpenClosed {
    Open,
    Closed,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateIssueIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub state: Option<OpenClosed>,
    /// With `state: closed`: `completed` or `not_planned`.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// Replaces the labels.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Replaces the assignees.
    #[serde(default)]
    pub assignees: Option<Vec<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddCommentIn {
    /// owner/name
    pub repository: String,
    /// Issue or pull request number.
    #[schemars(range(min = 1))]
    pub number: u64,
    /// Markdown text.
    pub body: String,
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListCommentsIn {
        /// owner/name
        pub repository: String,
        #[schemars(range(min = 1))]
        pub number: u64,
        ..page_args {
            limit(default = "default_limit_30", max = 100),
            cursor,
        },
    }
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct SearchIn {
        /// GitHub search syntax.
        pub query: String,
        ..page_args,
    }
}

pub(super) fn issue_event<'a>(action: &'a str, repo: &'a str, issue: &'a Issue) -> IssueAction<'a> {
    IssueAction::changed(action, repo, issue)
}

pub(super) async fn list_issues(
    gh: SharedGithub,
    i: ListIssuesIn,
    ctx: CallCtx,
) -> Out<Page<Issue>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![
        ("state", i.state.as_str().to_string()),
        // A little headroom: pull requests share the issues list and are dropped.
        (
            "per_page",
            (i.limit + i.limit / 4).clamp(10, 100).to_string(),
        ),
    ];
    if let Some(labels) = i.labels.as_ref().filter(|l| !l.is_empty()) {
        query.push(("labels", labels.join(",")));
    }
    if let Some(a) = i.assignee.as_ref().filter(|a| !a.is_empty()) {
        query.push(("assignee", a.clone()));
    }
    let url = gh.client.url(
        "repos/{repository}/issues",
        &[("repository", &repo)],
        &query,
    )?;
    let keep = |v: Value| {
        serde_json::from_value::<Issue>(v)
            .ok()
            .filter(|i| !i.is_pull_request())
    };
    let (page, _) = gh
        .client
        .collect(
            &ctx,
            "list_issues",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            LaneKind::Read,
            None,
            keep,
        )
        .await?;
    Ok(page)
}

pub(super) async fn get_issue(
    gh: SharedGithub,
    i: IssueNumberIn,
    ctx: CallCtx,
) -> Out<IssueDetail> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/issues/{number}",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[],
    )?;
    let mut detail: IssueDetail = gh.client.get_json(&ctx, url, LaneKind::Read).await?;
    (detail.body, detail.body_truncated) = cap(detail.body.take(), i.max_body_bytes as usize);
    Ok(detail)
}

pub(super) async fn create_issue(gh: SharedGithub, i: CreateIssueIn, ctx: CallCtx) -> Out<Issue> {
    let repo = repo(&i.repository)?;
    if i.title.trim().is_empty() {
        return Err(ToolError::input("title: must not be empty"));
    }
    let url = gh
        .client
        .url("repos/{repository}/issues", &[("repository", &repo)], &[])?;
    let body = json!({"title": i.title, "body": i.body, "labels": i.labels.unwrap_or_default(), "assignees": i.assignees.unwrap_or_default()});
    let issue: Issue = gh.client.send_json(&ctx, Method::POST, url, &body).await?;
    publish(
        &gh,
        issue_event("opened", &repo, &issue),
        ctx.principal.owner(),
    )
    .await;
    Ok(issue)
}

pub(super) async fn update_issue(gh: SharedGithub, i: UpdateIssueIn, ctx: CallCtx) -> Out<Issue> {
    let repo = repo(&i.repository)?;
    let mut body = serde_json::Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.to_string(), v);
        }
    };
    set("title", i.title.map(Value::from));
    set("body", i.body.map(Value::from));
    set(
        "state",
        i.state.map(|s| {
            Value::from(match s {
                OpenClosed::Open => "open",
                OpenClosed::Closed => "closed",
            })
        }),
    );
    set("state_reason", i.state_reason.map(Value::from));
    set("labels", i.labels.map(|l| json!(l)));
    set("assignees", i.assignees.map(|a| json!(a)));
    if body.is_empty() {
        return Err(ToolError::input(
            "nothing to change: give at least one of title, body, state, stateReason, labels, assignees",
        ));
    }
    let url = gh.client.url(
        "repos/{repository}/issues/{number}",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[],
    )?;
    let issue: Issue = gh
        .client
        .send_json(&ctx, Method::PATCH, url, &Value::Object(body))
        .await?;
    let action = match i.state {
        Some(OpenClosed::Closed) => "closed",
        Some(OpenClosed::Open) => "reopened",
        None => "edited",
    };
    publish(
        &gh,
        issue_event(action, &repo, &issue),
        ctx.principal.owner(),
    )
    .await;
    Ok(issue)
}

pub(super) async fn add_issue_comment(
    gh: SharedGithub,
    i: AddCommentIn,
    ctx: CallCtx,
) -> Out<Comment> {
    let repo = repo(&i.repository)?;
    if i.body.trim().is_empty() {
        return Err(ToolError::input("body: must not be empty"));
    }
    let url = gh.client.url(
        "repos/{repository}/issues/{number}/comments",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[],
    )?;
    let comment: Comment = gh
        .client
        .send_json(&ctx, Method::POST, url, &json!({"body": i.body}))
        .await?;
    publish(
        &gh,
        IssueAction::commented(&repo, i.number, &comment),
        ctx.principal.owner(),
    )
    .await;
    Ok(comment)
}

pub(super) async fn list_issue_comments(
    gh: SharedGithub,
    i: ListCommentsIn,
    ctx: CallCtx,
) -> Out<Page<Comment>> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/issues/{number}/comments",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[("per_page", i.limit.to_string())],
    )?;
    Ok(gh
        .client
        .list::<Comment>(
            &ctx,
            "list_issue_comments",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
        )
        .await?)
}

pub(super) async fn search<T: serde::de::DeserializeOwned>(
    gh: &SharedGithub,
    ctx: &CallCtx,
    kind: &str,
    endpoint: &str,
    lane: LaneKind,
    i: SearchIn,
) -> Out<SearchPage<T>> {
    if i.query.trim().is_empty() {
        return Err(ToolError::input("query: must not be empty"));
    }
    let url = gh.client.url(
        endpoint,
        &[],
        &[("q", i.query.clone()), ("per_page", i.limit.to_string())],
    )?;
    let keep = |v: Value| serde_json::from_value::<T>(v).ok();
    let (page, envelope) = gh
        .client
        .collect(
            ctx,
            kind,
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            lane,
            Some("items"),
            keep,
        )
        .await?;
    Ok(SearchPage::from_envelope(page, &envelope))
}

pub(super) async fn search_issues(
    gh: SharedGithub,
    i: SearchIn,
    ctx: CallCtx,
) -> Out<SearchPage<Issue>> {
    search(
        &gh,
        &ctx,
        "search_issues",
        "search/issues",
        LaneKind::Search,
        i,
    )
    .await
}

pub(super) async fn search_code(
    gh: SharedGithub,
    i: SearchIn,
    ctx: CallCtx,
) -> Out<SearchPage<CodeHit>> {
    search(
        &gh,
        &ctx,
        "search_code",
        "search/code",
        LaneKind::CodeSearch,
        i,
    )
    .await
}

pub(super) async fn search_repositories(
    gh: SharedGithub,
    i: SearchIn,
    ctx: CallCtx,
) -> Out<SearchPage<RepoHit>> {
    search(
        &gh,
        &ctx,
        "search_repositories",
        "search/repositories",
        LaneKind::Search,
        i,
    )
    .await
}
