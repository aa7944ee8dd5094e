//! Commit handlers: listing commits, one commit with its changed files, and comparing
//! two refs.
//!
//! Owns these handlers and their registration only (their inputs and outputs are in
//! `mod.rs`); requests go through the client only.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(REPOS);
    let read = Hints::read_remote();
    vec![
        t.tool(
            "list_commits",
            read,
            list_commits,
            "History of a branch or SHA, optionally only commits touching `path`, newest first: SHA, title, author and date per commit."
        )
        .titled("List commits"),
        t.tool(
            "get_commit",
            read,
            get_commit,
            "Read one commit: message, author, date, stats and changed files with patches (cut at `maxPatchBytes`, at most `fileLimit` files)."
        )
        .titled("Get commit"),
        t.tool(
            "compare_commits",
            read,
            compare_commits,
            "Compare two refs (`base...head`): ahead/behind counts, the commits between them and the changed files with patches cut at `maxPatchBytes`."
        )
        .titled("Compare commits"),
    ]
}

pub(in crate::github::tools) async fn list_commits(
    gh: SharedGithub,
    i: ListCommitsIn,
    ctx: CallCtx,
) -> Out<Page<Commit>> {
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

pub(in crate::github::tools) async fn get_commit(
    gh: SharedGithub,
    i: GetCommitIn,
    ctx: CallCtx,
) -> Out<CommitDetail> {
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

pub(in crate::github::tools) async fn compare_commits(
    gh: SharedGithub,
    i: CompareIn,
    ctx: CallCtx,
) -> Out<Comparison> {
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
