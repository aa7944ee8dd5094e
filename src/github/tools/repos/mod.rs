//! Repository, branch, file, commit, Actions and account tools.
//!
//! Owns their inputs, outputs, handlers and registration; requests go through the
//! client only. The workflow-run, commit and file-contents handlers, each registered
//! beside it, are in `workflow_runs.rs`, `commits.rs` and `files.rs`; the inputs and
//! outputs of all of them stay here. Forking and creating repositories, with their own
//! inputs and outputs, are in `create.rs`.

use super::*;

mod commits;
mod create;
mod files;
mod workflow_runs;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(REPOS);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    [
        vec![
            t.tool(
                "get_repository_info",
                read,
                get_repository_info,
                "Start here to learn a repository: default branch, visibility, description, topics, license and counts. `includeStats` adds languages; `includeBranches` adds the first branches (continue with `list_branches`)."
            )
            .titled("Get repository info"),
            t.tool(
                "create_branch",
                write,
                create_branch,
                "Create branch `branchName` at the head of `fromBranch` (default: the default branch), e.g. before opening a pull request."
            )
            .titled("Create branch"),
            t.tool(
                "list_branches",
                read,
                list_branches,
                "Branches of a repository with their head SHAs and protection."
            )
            .titled("List branches"),
            t.tool(
                "get_me",
                read,
                get_me,
                "Check which GitHub account the configured credential acts as: login, name, type and URL."
            )
            .titled("Get my account"),
            t.tool(
                "get_rate_limit",
                read,
                get_rate_limit,
                "Check the remaining GitHub budget per bucket (core, search, code_search, graphql), this server's request lanes and any pause after a secondary limit. Costs no budget."
            )
            .titled("Get rate limit"),
        ],
        workflow_runs::register(t),
        files::register(t),
        commits::register(t),
        create::register(t),
    ]
    .concat()
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryInfoIn {
    /// owner/name
    pub repository: String,
    /// Add languages (bytes per language) and counts.
    #[serde(default)]
    pub include_stats: bool,
    /// Add the first page of branches, with a cursor for `list_branches`.
    #[serde(default)]
    pub include_branches: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBranchIn {
    /// owner/name
    pub repository: String,
    /// The new branch's name.
    pub branch_name: String,
    /// Branch to start from (default: the repository's default branch).
    #[serde(default)]
    pub from_branch: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunActionIn {
    /// owner/name
    pub repository: String,
    /// Workflow file name (e.g. `ci.yml`) or numeric id.
    pub workflow: String,
    /// Branch or tag to run on (default: the repository's default branch).
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Workflow inputs.
    #[serde(default)]
    pub inputs: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileContentsIn {
    /// owner/name
    pub repository: String,
    /// File or directory path ("" for the root).
    #[serde(default)]
    pub path: String,
    /// Branch, tag or SHA; the default branch when absent.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Byte offset into the file (the previous `next_offset`).
    #[serde(default)]
    pub offset: u64,
    /// Bytes of content to return (default 65536).
    #[serde(default = "default_window")]
    #[schemars(range(min = 1024, max = 1048576))]
    pub max_bytes: u32,
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListCommitsIn {
        /// owner/name
        pub repository: String,
        /// Branch or SHA to start from (default branch when absent).
        #[serde(default)]
        pub sha: Option<String>,
        /// Only commits touching this path.
        #[serde(default)]
        pub path: Option<String>,
        ..page_args {
            limit(default = "default_limit_30", max = 100),
            cursor,
        },
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetCommitIn {
    /// owner/name
    pub repository: String,
    /// Commit SHA, branch or tag.
    pub sha: String,
    #[serde(default = "default_patch")]
    #[schemars(range(min = 0, max = 1048576))]
    pub max_patch_bytes: u32,
    /// Files to list (default 100).
    #[serde(default = "default_files")]
    #[schemars(range(min = 0, max = 300))]
    pub file_limit: u32,
}

pub(super) fn default_files() -> u32 {
    100
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompareIn {
    /// owner/name
    pub repository: String,
    pub base: String,
    pub head: String,
    #[serde(default = "default_patch")]
    #[schemars(range(min = 0, max = 1048576))]
    pub max_patch_bytes: u32,
    #[serde(default = "default_files")]
    #[schemars(range(min = 0, max = 300))]
    pub file_limit: u32,
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListBranchesIn {
        /// owner/name
        pub repository: String,
        ..page_args {
            limit(default = "default_limit_30", max = 100),
            cursor,
        },
    }
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListRunsIn {
        /// owner/name
        pub repository: String,
        #[serde(default)]
        pub branch: Option<String>,
        /// queued, in_progress, completed, success, failure, ...
        #[serde(default)]
        pub status: Option<String>,
        ..page_args,
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetRunIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub run_id: u64,
}

#[derive(Deserialize, JsonSchema)]
pub struct NoInput {}

#[derive(Serialize, JsonSchema)]
pub struct RepoStats {
    /// Bytes of code per language.
    pub languages: BTreeMap<String, u64>,
    pub stargazers: u64,
    pub forks: u64,
    pub open_issues: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct RepositoryInfo {
    pub repository: Repository,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<RepoStats>,
    /// First page of branches; continue with `list_branches` and its `cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branches: Option<Page<Branch>>,
}

#[derive(Serialize, JsonSchema)]
pub struct BranchCreated {
    pub branch: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ActionDispatched {
    pub dispatched: bool,
    pub workflow: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Where to watch the runs.
    pub runs_url: String,
}

#[derive(Serialize, JsonSchema)]
pub struct DirEntry {
    pub name: String,
    pub path: String,
    /// file, dir, symlink or submodule.
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct FileContents {
    pub path: String,
    /// The ref asked for, or the default branch when known.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// `file` or `dir`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// UTF-8 text of a file, windowed by `offset`/`maxBytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<TextWindow>,
    /// Base64 of a binary file's window (same offsets, over the raw bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<DirEntry>>,
}

#[derive(Serialize, JsonSchema)]
pub struct CommitDetail {
    #[serde(flatten)]
    pub commit: Commit,
    pub message: String,
    pub stats: Option<CommitStats>,
    pub files: Vec<ChangedFile>,
    pub files_truncated: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct Comparison {
    /// ahead, behind, identical or diverged.
    pub status: String,
    pub ahead_by: u64,
    pub behind_by: u64,
    pub total_commits: u64,
    pub commits: Vec<Commit>,
    pub files: Vec<ChangedFile>,
    pub files_truncated: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct RateLimitOut {
    /// `token` or `app`.
    pub credential: &'static str,
    /// Budgets as GitHub reports them (`/rate_limit` plus every response seen).
    pub buckets: Vec<Bucket>,
    /// This credential's lanes: running, waiting and pauses.
    pub lanes: Vec<LaneStats>,
    /// Milliseconds left of a credential-wide pause after a secondary limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_for_ms: Option<u64>,
    pub secondary_limits_seen: u64,
}

pub(super) async fn get_repository_info(
    gh: SharedGithub,
    i: RepositoryInfoIn,
    ctx: CallCtx,
) -> Out<RepositoryInfo> {
    let repo = repo(&i.repository)?;
    let c = &gh.client;
    let repo_url = c.url("repos/{repository}", &[("repository", &repo)], &[])?;
    let langs_url = c.url(
        "repos/{repository}/languages",
        &[("repository", &repo)],
        &[],
    )?;
    let (repository, languages, branches) = tokio::try_join!(
        c.get_json::<Repository>(&ctx, repo_url, LaneKind::Read),
        async {
            if i.include_stats {
                c.get_json::<BTreeMap<String, u64>>(&ctx, langs_url, LaneKind::Read)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        },
        async {
            if i.include_branches {
                branches_page(c, &ctx, &repo, 30, None).await.map(Some)
            } else {
                Ok(None)
            }
        },
    )?;
    c.remember_default_branch(&repo, &repository.default_branch);
    let stats = languages.map(|languages| RepoStats {
        languages,
        stargazers: repository.stargazers_count,
        forks: repository.forks_count,
        open_issues: repository.open_issues_count,
    });
    Ok(RepositoryInfo {
        repository,
        stats,
        branches,
    })
}

pub(super) async fn branches_page(
    c: &GithubClient,
    ctx: &CallCtx,
    repo: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Branch>, GhError> {
    let url = c.url(
        "repos/{repository}/branches",
        &[("repository", repo)],
        &[("per_page", limit.to_string())],
    )?;
    let keep = |v: Value| serde_json::from_value::<Branch>(v).ok();
    let (page, _) = c
        .collect(
            ctx,
            "list_branches",
            url,
            cursor,
            limit as usize,
            LaneKind::Read,
            None,
            keep,
        )
        .await?;
    Ok(page)
}

pub(super) async fn list_branches(
    gh: SharedGithub,
    i: ListBranchesIn,
    ctx: CallCtx,
) -> Out<Page<Branch>> {
    let repo = repo(&i.repository)?;
    Ok(branches_page(&gh.client, &ctx, &repo, i.limit, i.cursor.as_deref()).await?)
}

pub(super) async fn create_branch(
    gh: SharedGithub,
    i: CreateBranchIn,
    ctx: CallCtx,
) -> Out<BranchCreated> {
    let repo = repo(&i.repository)?;
    let name = git_ref("branchName", &i.branch_name)?;
    let c = &gh.client;
    let from = match &i.from_branch {
        Some(b) => git_ref("fromBranch", b)?,
        None => c.default_branch(&ctx, &repo).await?,
    };
    let source = get_ref(c, &ctx, &repo, "heads", ("fromBranch", &from), || {
        format!("branch `{from}` in {repo} (fromBranch)")
    })
    .await?;
    let body = json!({"ref": format!("refs/heads/{name}"), "sha": source.object.sha});
    let created: GitRef = c
        .send_json(
            &ctx,
            Method::POST,
            c.url("repos/{repository}/git/refs", &[("repository", &repo)], &[])?,
            &body,
        )
        .await?;
    Ok(BranchCreated {
        branch: name,
        git_ref: created.name,
        sha: created.object.sha,
    })
}

pub(super) async fn get_me(gh: SharedGithub, _: NoInput, ctx: CallCtx) -> Out<Me> {
    let url = gh.client.url("user", &[], &[])?;
    Ok(gh.client.get_json(&ctx, url, LaneKind::Read).await?)
}

pub(super) async fn get_rate_limit(
    gh: SharedGithub,
    _: NoInput,
    ctx: CallCtx,
) -> Out<RateLimitOut> {
    #[derive(Deserialize, Default)]
    struct RateLimits {
        resources: BTreeMap<String, Bucket>,
    }
    let c = &gh.client;
    // `/rate_limit` is free against the primary budget, but not exempt from a
    // secondary-limit pause: while paused, answer from what the headers told us.
    let fresh = if c.limits().paused_for().is_some() {
        RateLimits::default()
    } else {
        c.get_json(&ctx, c.url("rate_limit", &[], &[])?, LaneKind::Read)
            .await?
    };
    let mut buckets: BTreeMap<String, Bucket> = c
        .limits()
        .buckets()
        .into_iter()
        .map(|b| (b.resource.clone(), b))
        .collect();
    for (name, mut b) in fresh.resources {
        b.resource = name.clone();
        buckets.insert(name, b);
    }
    Ok(RateLimitOut {
        credential: c.credential_kind(),
        buckets: buckets.into_values().collect(),
        lanes: c.limits().lane_stats(),
        paused_for_ms: c.limits().paused_for().map(|d| d.as_millis() as u64),
        secondary_limits_seen: c.limits().secondary_hits(),
    })
}
