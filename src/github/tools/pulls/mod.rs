//! Pull request tools: open, list and read (body, files, diff windows) here, merge in
//! `merge.rs`;
//! changing one, updating its branch, requesting reviewers and search in `update.rs`
//! (the draft state through GraphQL in `draft.rs`);
//! reviews, review comments and replies in `reviews.rs`, whose inline comments are
//! checked against the diff by `diff_lines.rs`.
//!
//! Owns their inputs, outputs, handlers and registration; requests go through the
//! client only.

use super::*;

mod diff_lines;
mod draft;
mod merge;
mod reviews;
mod update;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    [own(t), update::register(t), reviews::register(t)].concat()
}

fn own(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(PULLS);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "create_pull_request",
            write,
            create_pull_request,
            "Open a pull request from a pushed branch `head` into `base` (default: the default branch)."
        )
        .titled("Create pull request"),
        t.tool(
            "list_pull_requests",
            read,
            list_pull_requests,
            "Find pull requests by state, head and base branch. Details: `get_pull_request`."
        )
        .titled("List pull requests"),
        t.tool(
            "get_pull_request",
            read,
            get_pull_request,
            "Read one pull request: branches, merge state and mergeability, change counts and body (cut at `maxBodyBytes`). For its changes use `get_pull_request_files` or `get_pull_request_diff`."
        )
        .titled("Get pull request"),
        t.tool(
            "get_pull_request_files",
            read,
            get_pull_request_files,
            "Review a pull request file by file: path, status, additions, deletions and patch (each cut at `maxPatchBytes`)."
        )
        .titled("Get pull request files"),
        t.tool(
            "get_pull_request_diff",
            read,
            get_pull_request_diff,
            "Read a pull request's whole unified diff, `maxBytes` at a time from `offset`. Returns the text, `total_bytes` and `next_offset` to pass back while more remains."
        )
        .titled("Get pull request diff"),
        t.tool(
            "merge_pull_request",
            write.destructive(),
            merge::merge_pull_request,
            "Merge a pull request into its base (merge, squash or rebase); pass `sha` to merge only if the head has not moved."
        )
        .titled("Merge pull request"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatePullRequestIn {
    /// owner/name
    pub repository: String,
    pub title: String,
    /// Markdown description.
    #[serde(default)]
    pub body: Option<String>,
    /// Branch with the changes (or "user:branch" for a fork).
    pub head: String,
    /// Branch to merge into (default: the default branch).
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub draft: bool,
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListPullsIn {
        /// owner/name
        pub repository: String,
        #[serde(default = "default_issue_state")]
        pub state: IssueState,
        /// Filter by head ("user:branch").
        #[serde(default)]
        pub head: Option<String>,
        /// Filter by base branch.
        #[serde(default)]
        pub base: Option<String>,
        ..page_args,
    }
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PrFilesIn {
        /// owner/name
        pub repository: String,
        #[schemars(range(min = 1))]
        pub number: u64,
        ..page_args {
            limit(default = "default_limit_30", max = 100),
            cursor,
        },
        /// Longest patch per file, in bytes (default 4096).
        #[serde(default = "default_patch")]
        #[schemars(range(min = 0, max = 1048576))]
        pub max_patch_bytes: u32,
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrDiffIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    /// Byte offset to continue from (the previous `next_offset`).
    #[serde(default)]
    pub offset: u64,
    /// Bytes to return (default 65536).
    #[serde(default = "default_window")]
    #[schemars(range(min = 1024, max = 1048576))]
    pub max_bytes: u32,
}

#[derive(Serialize, JsonSchema)]
pub struct DiffWindow {
    pub number: u64,
    #[serde(flatten)]
    pub window: TextWindow,
}

pub(super) fn pr_event<'a>(
    action: &'a str,
    repo: &'a str,
    pr: &'a PullRequest,
) -> PullRequestAction<'a> {
    PullRequestAction::changed(action, repo, pr)
}

pub(super) async fn create_pull_request(
    gh: SharedGithub,
    i: CreatePullRequestIn,
    ctx: CallCtx,
) -> Out<PullRequest> {
    let repo = repo(&i.repository)?;
    let base = match &i.base {
        Some(b) => git_ref("base", b)?,
        None => gh.client.default_branch(&ctx, &repo).await?,
    };
    let url = gh
        .client
        .url("repos/{repository}/pulls", &[("repository", &repo)], &[])?;
    let body =
        json!({"title": i.title, "body": i.body, "head": i.head, "base": base, "draft": i.draft});
    let pr: PullRequest = gh.client.send_json(&ctx, Method::POST, url, &body).await?;
    publish(&gh, pr_event("opened", &repo, &pr), ctx.principal.owner()).await;
    Ok(pr)
}

pub(super) async fn list_pull_requests(
    gh: SharedGithub,
    i: ListPullsIn,
    ctx: CallCtx,
) -> Out<Page<PullRequest>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![
        ("state", i.state.as_str().to_string()),
        ("per_page", i.limit.to_string()),
    ];
    if let Some(h) = i.head {
        query.push(("head", h));
    }
    if let Some(b) = i.base {
        query.push(("base", b));
    }
    let url = gh
        .client
        .url("repos/{repository}/pulls", &[("repository", &repo)], &query)?;
    Ok(gh
        .client
        .list::<PullRequest>(
            &ctx,
            "list_pull_requests",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
        )
        .await?)
}

pub(super) async fn get_pull_request(
    gh: SharedGithub,
    i: IssueNumberIn,
    ctx: CallCtx,
) -> Out<PullRequestDetail> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/pulls/{number}",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[],
    )?;
    let mut pr: PullRequestDetail = gh.client.get_json(&ctx, url, LaneKind::Read).await?;
    (pr.body, pr.body_truncated) = cap(pr.body.take(), i.max_body_bytes as usize);
    Ok(pr)
}

pub(super) async fn get_pull_request_files(
    gh: SharedGithub,
    i: PrFilesIn,
    ctx: CallCtx,
) -> Out<Page<ChangedFile>> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/pulls/{number}/files",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[("per_page", i.limit.to_string())],
    )?;
    let max = i.max_patch_bytes as usize;
    let keep = |v: Value| {
        serde_json::from_value::<ChangedFile>(v)
            .ok()
            .map(|f| f.cap_patch(max))
    };
    let (page, _) = gh
        .client
        .collect(
            &ctx,
            "get_pull_request_files",
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

/// The answer to `Accept: application/vnd.github.diff` must be a diff: an upstream or
/// proxy that ignores the media type sends the pull request's JSON instead.
fn check_diff_media_type(headers: &http::HeaderMap, body: &[u8]) -> Result<(), GhError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media = ct.split(';').next().unwrap_or("").trim();
    let diff = matches!(
        media,
        "application/vnd.github.diff"
            | "application/vnd.github.v3.diff"
            | "text/x-diff"
            | "text/x-patch"
            | "text/plain"
    ) || (media.is_empty() && body.first() != Some(&b'{'));
    if diff {
        Ok(())
    } else {
        Err(GhError::Decode(format!(
            "asked for a diff (Accept: {ACCEPT_DIFF}) but the answer is `{}`; the upstream or a proxy ignored the media type — use get_pull_request_files for per-file patches",
            if media.is_empty() {
                "without a content type"
            } else {
                media
            }
        )))
    }
}

pub(super) async fn get_pull_request_diff(
    gh: SharedGithub,
    i: PrDiffIn,
    ctx: CallCtx,
) -> Out<DiffWindow> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/pulls/{number}",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[],
    )?;
    let reply = gh
        .client
        .request(
            &ctx,
            Method::GET,
            url.clone(),
            LaneKind::Read,
            ACCEPT_DIFF,
            None,
        )
        .await?;
    if let Err(e) = check_diff_media_type(&reply.headers, &reply.body) {
        gh.client.forget(&url, ACCEPT_DIFF).await;
        return Err(e.into());
    }
    let text = reply.text();
    Ok(DiffWindow {
        number: i.number,
        window: window(&text, i.offset as usize, i.max_bytes as usize)?,
    })
}
