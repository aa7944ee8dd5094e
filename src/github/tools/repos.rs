//! Repository, branch, file, commit, Actions and account tools.
//!
//! Owns their inputs, outputs and handlers; requests go through the client only.

use super::*;

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryInfoIn {
    /// "owner/name".
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
    /// "owner/name".
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
    /// "owner/name".
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
    /// "owner/name".
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
        /// "owner/name".
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
    /// "owner/name".
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
    /// "owner/name".
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
        /// "owner/name".
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
        /// "owner/name".
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
    /// "owner/name".
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
    gh: Gh,
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

pub(super) async fn list_branches(gh: Gh, i: ListBranchesIn, ctx: CallCtx) -> Out<Page<Branch>> {
    let repo = repo(&i.repository)?;
    Ok(branches_page(&gh.client, &ctx, &repo, i.limit, i.cursor.as_deref()).await?)
}

pub(super) async fn create_branch(gh: Gh, i: CreateBranchIn, ctx: CallCtx) -> Out<BranchCreated> {
    let repo = repo(&i.repository)?;
    let name = git_ref("branchName", &i.branch_name)?;
    let c = &gh.client;
    let from = match &i.from_branch {
        Some(b) => git_ref("fromBranch", b)?,
        None => c.default_branch(&ctx, &repo).await?,
    };
    #[derive(Deserialize)]
    struct Obj {
        sha: String,
    }
    #[derive(Deserialize)]
    struct GitRef {
        #[serde(rename = "ref")]
        name: String,
        object: Obj,
    }
    let source: GitRef = c
        .get_json(
            &ctx,
            c.url(
                "repos/{repository}/git/ref/heads/{fromBranch}",
                &[("repository", &repo), ("fromBranch", &from)],
                &[],
            )?,
            LaneKind::Read,
        )
        .await
        .map_err(|e| match e {
            GhError::NotFound { .. } => GhError::NotFound {
                what: format!("branch `{from}` in {repo} (fromBranch)"),
            },
            other => other,
        })?;
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

pub(super) async fn run_action(gh: Gh, i: RunActionIn, ctx: CallCtx) -> Out<ActionDispatched> {
    let repo = repo(&i.repository)?;
    let git_ref = match &i.git_ref {
        Some(r) => git_ref("ref", r)?,
        None => gh.client.default_branch(&ctx, &repo).await?,
    };
    let workflow = i.workflow.trim();
    if workflow.is_empty() || workflow.contains('/') {
        return Err(ToolError::input(
            "workflow: give the workflow file name (e.g. ci.yml) or its numeric id",
        ));
    }
    let c = &gh.client;
    let url = c.url(
        "repos/{repository}/actions/workflows/{workflow}/dispatches",
        &[("repository", &repo), ("workflow", workflow)],
        &[],
    )?;
    let body = json!({"ref": git_ref, "inputs": i.inputs.unwrap_or_default()});
    c.request(
        &ctx,
        Method::POST,
        url,
        LaneKind::Write,
        super::super::client::ACCEPT_JSON,
        Some(&body),
    )
    .await?;
    publish(
        &gh,
        "github.workflow.status",
        json!({"repository": repo, "workflow": i.workflow, "ref": git_ref, "status": "dispatched"}),
        ctx.principal.owner(),
    )
    .await;
    Ok(ActionDispatched {
        dispatched: true,
        workflow: i.workflow,
        runs_url: format!("https://github.com/{repo}/actions"),
        git_ref,
    })
}

pub(super) async fn get_file_contents(
    gh: Gh,
    i: FileContentsIn,
    ctx: CallCtx,
) -> Out<FileContents> {
    let repo = repo(&i.repository)?;
    let mut query = Vec::new();
    if let Some(r) = &i.git_ref {
        query.push(("ref", git_ref("ref", r)?));
    }
    let c = &gh.client;
    // Without a ref GitHub reads the default branch: one request, no lookup first.
    let url = c.url(
        "repos/{repository}/contents/{path}",
        &[("repository", &repo), ("path", &i.path)],
        &query,
    )?;
    let body: Value = c.get_json(&ctx, url, LaneKind::Read).await?;
    let git_ref = i.git_ref.clone().or_else(|| c.known_default_branch(&repo));
    if let Value::Array(entries) = body {
        let entries = entries
            .into_iter()
            .filter_map(|e| {
                Some(DirEntry {
                    name: e.get("name")?.as_str()?.to_string(),
                    path: e.get("path")?.as_str()?.to_string(),
                    kind: e.get("type")?.as_str()?.to_string(),
                    size: e.get("size").and_then(Value::as_u64).unwrap_or(0),
                })
            })
            .collect();
        return Ok(FileContents {
            path: i.path,
            git_ref,
            kind: "dir".into(),
            sha: None,
            size: None,
            content: None,
            content_base64: None,
            entries: Some(entries),
        });
    }
    file_window(i, git_ref, body)
}

pub(super) fn file_window(
    i: FileContentsIn,
    git_ref: Option<String>,
    body: Value,
) -> Out<FileContents> {
    use base64::Engine;
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("file");
    if kind != "file" {
        return Err(ToolError::business(format!(
            "`{}` is a {kind}, not a file or directory",
            i.path
        )));
    }
    let encoded = body.get("content").and_then(Value::as_str).unwrap_or("");
    if encoded.is_empty() && body.get("size").and_then(Value::as_u64).unwrap_or(0) > 0 {
        return Err(ToolError::business(format!(
            "`{}` is larger than the contents API serves (1 MB); clone the repository or use the raw URL",
            i.path
        )));
    }
    let cleaned: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_err(|e| ToolError::Upstream(format!("file content is not valid base64: {e}")))?;
    let (content, content_base64) = match String::from_utf8(bytes) {
        Ok(text) => (
            Some(window(&text, i.offset as usize, i.max_bytes as usize)?),
            None,
        ),
        Err(e) => {
            let bytes = e.into_bytes();
            let start = (i.offset as usize).min(bytes.len());
            let end = (start + i.max_bytes as usize).min(bytes.len());
            (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&bytes[start..end])),
            )
        }
    };
    Ok(FileContents {
        path: i.path,
        git_ref,
        kind: "file".into(),
        sha: body.get("sha").and_then(Value::as_str).map(str::to_string),
        size: body.get("size").and_then(Value::as_u64),
        content,
        content_base64,
        entries: None,
    })
}

pub(super) async fn list_commits(gh: Gh, i: ListCommitsIn, ctx: CallCtx) -> Out<Page<Commit>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![("per_page", i.limit.to_string())];
    if let Some(s) = i.sha {
        query.push(("sha", git_ref("sha", &s)?));
    }
    if let Some(p) = i.path {
        query.push(("path", p));
    }
    let url = gh.client.url(
        "repos/{repository}/commits",
        &[("repository", &repo)],
        &query,
    )?;
    Ok(gh
        .client
        .list::<Commit>(
            &ctx,
            "list_commits",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
        )
        .await?)
}

pub(super) fn files_of(v: &mut Value, limit: usize, max_patch: usize) -> (Vec<ChangedFile>, bool) {
    let files: Vec<ChangedFile> = v
        .get_mut("files")
        .map(Value::take)
        .and_then(|f| serde_json::from_value(f).ok())
        .unwrap_or_default();
    let truncated = files.len() > limit;
    (
        files
            .into_iter()
            .take(limit)
            .map(|f| f.cap_patch(max_patch))
            .collect(),
        truncated,
    )
}

pub(super) async fn get_commit(gh: Gh, i: GetCommitIn, ctx: CallCtx) -> Out<CommitDetail> {
    let repo = repo(&i.repository)?;
    let sha = git_ref("sha", &i.sha)?;
    let url = gh.client.url(
        "repos/{repository}/commits/{sha}",
        &[("repository", &repo), ("sha", &sha)],
        &[],
    )?;
    let mut raw: Value = gh.client.get_json(&ctx, url, LaneKind::Read).await?;
    let (files, files_truncated) =
        files_of(&mut raw, i.file_limit as usize, i.max_patch_bytes as usize);
    let message = raw
        .pointer("/commit/message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let stats = raw
        .get_mut("stats")
        .map(Value::take)
        .and_then(|s| serde_json::from_value(s).ok());
    let commit: Commit = serde_json::from_value(raw).map_err(|e| GhError::Decode(e.to_string()))?;
    Ok(CommitDetail {
        commit,
        message,
        stats,
        files,
        files_truncated,
    })
}

pub(super) async fn compare_commits(gh: Gh, i: CompareIn, ctx: CallCtx) -> Out<Comparison> {
    let repo = repo(&i.repository)?;
    let base = git_ref("base", &i.base)?;
    let head = git_ref("head", &i.head)?;
    let url = gh.client.url(
        "repos/{repository}/compare/{base}...{head}",
        &[("repository", &repo), ("base", &base), ("head", &head)],
        &[],
    )?;
    let mut raw: Value = gh.client.get_json(&ctx, url, LaneKind::Read).await?;
    let (files, files_truncated) =
        files_of(&mut raw, i.file_limit as usize, i.max_patch_bytes as usize);
    let num = |k: &str| raw.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(Comparison {
        status: raw
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        ahead_by: num("ahead_by"),
        behind_by: num("behind_by"),
        total_commits: num("total_commits"),
        commits: raw
            .get_mut("commits")
            .map(Value::take)
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or_default(),
        files,
        files_truncated,
    })
}

pub(super) async fn list_workflow_runs(
    gh: Gh,
    i: ListRunsIn,
    ctx: CallCtx,
) -> Out<SearchPage<WorkflowRun>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![("per_page", i.limit.to_string())];
    if let Some(b) = i.branch {
        query.push(("branch", b));
    }
    if let Some(s) = i.status {
        query.push(("status", s));
    }
    let url = gh.client.url(
        "repos/{repository}/actions/runs",
        &[("repository", &repo)],
        &query,
    )?;
    let keep = |v: Value| serde_json::from_value::<WorkflowRun>(v).ok();
    let (page, envelope) = gh
        .client
        .collect(
            &ctx,
            "list_workflow_runs",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            LaneKind::Read,
            Some("workflow_runs"),
            keep,
        )
        .await?;
    Ok(SearchPage {
        items: page.items,
        next_cursor: page.next_cursor,
        total_count: envelope
            .get("total_count")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        incomplete_results: false,
    })
}

pub(super) async fn get_workflow_run(gh: Gh, i: GetRunIn, ctx: CallCtx) -> Out<WorkflowRun> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/actions/runs/{run_id}",
        &[("repository", &repo), ("run_id", &i.run_id.to_string())],
        &[],
    )?;
    Ok(gh.client.get_json(&ctx, url, LaneKind::Read).await?)
}

pub(super) async fn get_me(gh: Gh, _: NoInput, ctx: CallCtx) -> Out<Me> {
    let url = gh.client.url("user", &[], &[])?;
    Ok(gh.client.get_json(&ctx, url, LaneKind::Read).await?)
}

pub(super) async fn get_rate_limit(gh: Gh, _: NoInput, ctx: CallCtx) -> Out<RateLimitOut> {
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
