//! File-change tools: create or update one file, delete one file (contents API, guarded
//! by the blob sha), and push several files in one commit through the Git Data API
//! (tree with inline contents on the branch head's tree, commit, fast-forward-only ref
//! update: a branch that moved meanwhile is an error, never a force).
//!
//! Owns these tools' inputs, outputs, handlers and registration; requests go through
//! the client only.

use base64::Engine;

use super::super::client::ACCEPT_JSON;
use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(REPOS);
    let write = Hints::write_remote();
    vec![
        t.tool(
            "create_or_update_file",
            write.destructive(),
            create_or_update_file,
            "Write one file's full text in one commit on a branch. Updating needs the file's current blob `sha` (from `get_file_contents`); a stale sha is refused with the current one. For several files use `push_files`."
        )
        .titled("Create or update file"),
        t.tool(
            "delete_file",
            write.destructive(),
            delete_file,
            "Delete one file in one commit on a branch; needs its current blob `sha` (a stale sha is refused with the current one)."
        )
        .titled("Delete file"),
        t.tool(
            "push_files",
            write.destructive(),
            push_files,
            "Write (and optionally delete) several files in ONE commit on an existing branch, fast-forward only: if the branch moved meanwhile nothing is pushed and the error says so. Returns the commit sha."
        )
        .titled("Push files in one commit"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteFileIn {
    /// owner/name
    pub repository: String,
    /// File path in the repository.
    pub path: String,
    /// The file's complete new text (UTF-8).
    pub content: String,
    /// Commit message.
    pub message: String,
    /// Branch to commit to (default: the default branch).
    #[serde(default)]
    pub branch: Option<String>,
    /// Current blob sha: required to update, omitted to create.
    #[serde(default)]
    pub sha: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteFileIn {
    /// owner/name
    pub repository: String,
    /// File path in the repository.
    pub path: String,
    /// Commit message.
    pub message: String,
    /// Blob sha of the file (from `get_file_contents`).
    pub sha: String,
    /// Branch to commit to (default: the default branch).
    #[serde(default)]
    pub branch: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct PushFile {
    /// File path in the repository.
    pub path: String,
    /// The file's complete new text (UTF-8).
    pub content: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushFilesIn {
    /// owner/name
    pub repository: String,
    /// Existing branch to push to; it only moves forward.
    pub branch: String,
    /// Commit message.
    pub message: String,
    /// Files to create or replace.
    #[schemars(length(max = 100))]
    #[serde(default)]
    pub files: Vec<PushFile>,
    /// Paths to delete in the same commit.
    #[schemars(length(max = 100))]
    #[serde(default)]
    pub delete: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct CommitRef {
    pub sha: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct FileWritten {
    pub path: String,
    /// True when the file did not exist before.
    pub created: bool,
    /// The file's new blob sha (pass it as `sha` to change it again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    pub commit: CommitRef,
}

#[derive(Serialize, JsonSchema)]
pub struct FilesPushed {
    pub branch: String,
    pub commit: CommitRef,
    /// The branch head the commit was made on.
    pub parent: String,
    pub written: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
}

#[derive(Deserialize)]
struct WriteReply {
    #[serde(default)]
    content: Option<ShaOnly>,
    commit: CommitRef,
}

#[derive(Deserialize)]
struct ShaOnly {
    sha: String,
}

fn file_path(raw: &str) -> Result<String, ToolError> {
    let p = raw.trim().trim_matches('/');
    if p.is_empty() {
        return Err(ToolError::input(
            "path: give the file's path, e.g. src/lib.rs",
        ));
    }
    Ok(p.to_string())
}

/// The blob sha of `path` at `branch` (default branch when `None`), `None` when absent.
async fn current_sha(
    gh: &SharedGithub,
    ctx: &CallCtx,
    repo: &str,
    path: &str,
    branch: Option<&str>,
) -> Result<Option<String>, ToolError> {
    let query: Vec<(&str, String)> = branch.map(|b| ("ref", b.to_string())).into_iter().collect();
    let url = gh.client.url(
        "repos/{repository}/contents/{path}",
        &[("repository", repo), ("path", path)],
        &query,
    )?;
    match gh.client.get_json::<Value>(ctx, url, LaneKind::Read).await {
        Ok(v) => Ok(v.get("sha").and_then(Value::as_str).map(String::from)),
        Err(GhError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The error for a refused contents write: names the file's current blob sha.
async fn sha_conflict(
    gh: &SharedGithub,
    ctx: &CallCtx,
    repo: &str,
    path: &str,
    branch: Option<&str>,
    given: Option<&str>,
    upstream: &str,
) -> ToolError {
    let on = branch.map_or("the default branch".to_string(), |b| {
        format!("branch `{b}`")
    });
    match current_sha(gh, ctx, repo, path, branch).await {
        Ok(Some(cur)) => match given {
            Some(g) => ToolError::business(format!(
                "`{path}` on {on} has changed: its current blob sha is {cur}, not {g}. Nothing was written. Re-read it with get_file_contents, re-apply your change, and pass sha \"{cur}\"."
            )),
            None => ToolError::business(format!(
                "`{path}` already exists on {on} (current blob sha {cur}). Nothing was written. To replace it, read it with get_file_contents and pass sha \"{cur}\"."
            )),
        },
        Ok(None) => ToolError::business(format!(
            "`{path}` does not exist on {on}, so there is no sha to match. Nothing was written. Omit `sha` to create it."
        )),
        Err(_) => ToolError::business(format!(
            "GitHub refused the write of `{path}` on {on} ({upstream}); re-read the file with get_file_contents and pass its current sha."
        )),
    }
}

fn branch_missing(repo: &str, branch: Option<&str>) -> ToolError {
    match branch {
        Some(b) => ToolError::business(format!(
            "{repo} has no branch `{b}` (or the repository is not visible); create it with create_branch or check the name"
        )),
        None => ToolError::business(format!(
            "{repo} was not found; check the owner/name and that the credential can see it"
        )),
    }
}

pub(super) async fn create_or_update_file(
    gh: SharedGithub,
    i: WriteFileIn,
    ctx: CallCtx,
) -> Out<FileWritten> {
    let repo = repo(&i.repository)?;
    let path = file_path(&i.path)?;
    let branch = i
        .branch
        .as_deref()
        .map(|b| git_ref("branch", b))
        .transpose()?;
    let mut body = json!({
        "message": i.message,
        "content": base64::engine::general_purpose::STANDARD.encode(i.content.as_bytes()),
    });
    if let Some(b) = &branch {
        body["branch"] = json!(b);
    }
    if let Some(s) = &i.sha {
        body["sha"] = json!(s.trim());
    }
    let c = &gh.client;
    let url = c.url(
        "repos/{repository}/contents/{path}",
        &[("repository", &repo), ("path", &path)],
        &[],
    )?;
    let reply = match c
        .request(
            &ctx,
            Method::PUT,
            url,
            LaneKind::Write,
            ACCEPT_JSON,
            Some(&body),
        )
        .await
    {
        Ok(r) => r,
        Err(GhError::Rejected {
            status: status @ (409 | 422),
            message,
        }) if status == 409 || message.contains("sha") => {
            let upstream = format!("{status}: {message}");
            return Err(sha_conflict(
                &gh,
                &ctx,
                &repo,
                &path,
                branch.as_deref(),
                i.sha.as_deref(),
                &upstream,
            )
            .await);
        }
        Err(GhError::NotFound { .. }) => return Err(branch_missing(&repo, branch.as_deref())),
        Err(e) => return Err(e.into()),
    };
    let created = reply.status == 201;
    let written: WriteReply = reply.json()?;
    publish(
        &gh,
        ContentsAction::File {
            repository: &repo,
            action: if created { "create" } else { "update" },
            path: &path,
            branch: branch.as_deref(),
            commit: &written.commit.sha,
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(FileWritten {
        path,
        created,
        sha: written.content.map(|c| c.sha),
        commit: written.commit,
    })
}

pub(super) async fn delete_file(
    gh: SharedGithub,
    i: DeleteFileIn,
    ctx: CallCtx,
) -> Out<FileWritten> {
    let repo = repo(&i.repository)?;
    let path = file_path(&i.path)?;
    let branch = i
        .branch
        .as_deref()
        .map(|b| git_ref("branch", b))
        .transpose()?;
    let mut body = json!({"message": i.message, "sha": i.sha.trim()});
    if let Some(b) = &branch {
        body["branch"] = json!(b);
    }
    let c = &gh.client;
    let url = c.url(
        "repos/{repository}/contents/{path}",
        &[("repository", &repo), ("path", &path)],
        &[],
    )?;
    let reply = match c
        .request(
            &ctx,
            Method::DELETE,
            url,
            LaneKind::Write,
            ACCEPT_JSON,
            Some(&body),
        )
        .await
    {
        Ok(r) => r,
        Err(GhError::Rejected {
            status: status @ (409 | 422),
            message,
        }) => {
            let upstream = format!("{status}: {message}");
            return Err(sha_conflict(
                &gh,
                &ctx,
                &repo,
                &path,
                branch.as_deref(),
                Some(i.sha.trim()),
                &upstream,
            )
            .await);
        }
        Err(GhError::NotFound { .. }) => {
            let on = branch
                .as_deref()
                .map_or("the default branch".to_string(), |b| {
                    format!("branch `{b}`")
                });
            return Err(ToolError::business(format!(
                "`{path}` does not exist on {on} of {repo} (or the branch does not); nothing was deleted"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let written: WriteReply = reply.json()?;
    publish(
        &gh,
        ContentsAction::File {
            repository: &repo,
            action: "delete",
            path: &path,
            branch: branch.as_deref(),
            commit: &written.commit.sha,
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(FileWritten {
        path,
        created: false,
        sha: None,
        commit: written.commit,
    })
}

pub(super) async fn push_files(gh: SharedGithub, i: PushFilesIn, ctx: CallCtx) -> Out<FilesPushed> {
    #[derive(Deserialize)]
    struct Obj {
        sha: String,
    }
    #[derive(Deserialize)]
    struct RefReply {
        object: Obj,
    }
    #[derive(Deserialize)]
    struct GitCommit {
        tree: Obj,
    }
    let repo = repo(&i.repository)?;
    let branch = git_ref("branch", &i.branch)?;
    if i.files.is_empty() && i.delete.is_empty() {
        return Err(ToolError::input(
            "files: give at least one file to write (or a path in `delete`)",
        ));
    }
    if i.files.len() + i.delete.len() > 100 {
        return Err(ToolError::input(
            "files: at most 100 files (writes and deletes together) per push",
        ));
    }
    let mut written = Vec::with_capacity(i.files.len());
    let mut entries = Vec::with_capacity(i.files.len() + i.delete.len());
    for f in &i.files {
        let p = file_path(&f.path)?;
        if written.contains(&p) {
            return Err(ToolError::input(format!("files: `{p}` is given twice")));
        }
        entries.push(json!({"path": p, "mode": "100644", "type": "blob", "content": f.content}));
        written.push(p);
    }
    let mut deleted = Vec::with_capacity(i.delete.len());
    for d in &i.delete {
        let p = file_path(d)?;
        if written.contains(&p) || deleted.contains(&p) {
            return Err(ToolError::input(format!(
                "delete: `{p}` is also written or given twice"
            )));
        }
        entries.push(json!({"path": p, "mode": "100644", "type": "blob", "sha": null}));
        deleted.push(p);
    }
    let c = &gh.client;
    let ref_url = || {
        c.url(
            "repos/{repository}/git/ref/heads/{branch}",
            &[("repository", &repo), ("branch", &branch)],
            &[],
        )
    };
    let head = match c
        .get_json::<RefReply>(&ctx, ref_url()?, LaneKind::Read)
        .await
    {
        Ok(r) => r.object.sha,
        Err(GhError::NotFound { .. }) => return Err(branch_missing(&repo, Some(&branch))),
        Err(e) => return Err(e.into()),
    };
    let base: GitCommit = c
        .get_json(
            &ctx,
            c.url(
                "repos/{repository}/git/commits/{sha}",
                &[("repository", &repo), ("sha", &head)],
                &[],
            )?,
            LaneKind::Read,
        )
        .await?;
    let tree: Obj = match c
        .send_json(
            &ctx,
            Method::POST,
            c.url(
                "repos/{repository}/git/trees",
                &[("repository", &repo)],
                &[],
            )?,
            &json!({"base_tree": base.tree.sha, "tree": entries}),
        )
        .await
    {
        Ok(t) => t,
        Err(GhError::Rejected {
            status: 422,
            message,
        }) => {
            return Err(ToolError::business(format!(
                "GitHub refused the new tree (422: {message}); a path in `delete` may not exist on `{branch}` — check the paths with get_file_contents. Nothing was pushed."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let commit: CommitRef = c
        .send_json(
            &ctx,
            Method::POST,
            c.url(
                "repos/{repository}/git/commits",
                &[("repository", &repo)],
                &[],
            )?,
            &json!({"message": i.message, "tree": tree.sha, "parents": [head]}),
        )
        .await?;
    let update = c
        .request(
            &ctx,
            Method::PATCH,
            c.url(
                "repos/{repository}/git/refs/heads/{branch}",
                &[("repository", &repo), ("branch", &branch)],
                &[],
            )?,
            LaneKind::Write,
            ACCEPT_JSON,
            Some(&json!({"sha": commit.sha, "force": false})),
        )
        .await;
    match update {
        Ok(_) => {}
        Err(GhError::Rejected {
            status: 422,
            message,
        }) => {
            let now = c
                .get_json::<RefReply>(&ctx, ref_url()?, LaneKind::Read)
                .await
                .map(|r| r.object.sha)
                .unwrap_or_else(|_| "an unknown commit".into());
            return Err(ToolError::business(format!(
                "branch `{branch}` moved from {head} to {now} while pushing (422: {message}); nothing was pushed and the branch was not forced. Re-read the files you change at `{branch}` (get_file_contents), re-apply your edits and call push_files again."
            )));
        }
        Err(e) => return Err(e.into()),
    }
    publish(
        &gh,
        ContentsAction::Push {
            repository: &repo,
            action: "push",
            branch: &branch,
            commit: &commit.sha,
            written: &written,
            deleted: &deleted,
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(FilesPushed {
        branch,
        commit,
        parent: head,
        written,
        deleted,
    })
}
