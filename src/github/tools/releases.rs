//! Tag and release tools: listing tags, resolving one tag (lightweight or annotated)
//! through the Git refs API, listing releases, reading the latest release or one by tag,
//! and creating a release (publishes `github.release.action`).
//!
//! Owns these tools' inputs, outputs, handlers and registration; requests go through
//! the client only.

use super::super::events::ReleaseAction;
use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(RELEASES);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "list_tags",
            read,
            list_tags,
            "Tags of a repository with the commit SHA each names, newest name first. Use `get_tag` for an annotated tag's message."
        )
        .titled("List tags"),
        t.tool(
            "get_tag",
            read,
            get_tag,
            "Resolve one tag to the commit it points at; an annotated tag also gives its tagger, date and message."
        )
        .titled("Get tag"),
        t.tool(
            "list_releases",
            read,
            list_releases,
            "Releases of a repository, newest first, drafts and prereleases included (flagged): tag, name, dates, URL. Read one with `get_release_by_tag`."
        )
        .titled("List releases"),
        t.tool(
            "get_latest_release",
            read,
            get_latest_release,
            "Read the latest published release (never a draft or prerelease): tag, name, notes (cut at `maxBodyBytes`) and assets with sizes and download counts."
        )
        .titled("Get latest release"),
        t.tool(
            "get_release_by_tag",
            read,
            get_release_by_tag,
            "Read the published release of one tag: name, notes (cut at `maxBodyBytes`), flags, dates and assets with sizes and download counts."
        )
        .titled("Get release by tag"),
        t.tool(
            "create_release",
            write,
            create_release,
            "Publish a release (or save a draft) for `tagName`; a missing tag is created at `targetCommitish` (default: the default branch). A tag that already has a release is refused, naming it."
        )
        .titled("Create release"),
    ]
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListTagsIn {
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
    pub struct ListReleasesIn {
        /// owner/name
        pub repository: String,
        ..page_args {
            limit(default = "default_limit_30", max = 100),
            cursor,
        },
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetTagIn {
    /// owner/name
    pub repository: String,
    /// Tag name, e.g. `v1.2.0`.
    pub tag: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatestReleaseIn {
    /// owner/name
    pub repository: String,
    /// Longest release notes returned, in bytes (default 16384).
    #[serde(default = "default_body")]
    #[schemars(range(min = 256, max = 1048576))]
    pub max_body_bytes: u32,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseByTagIn {
    /// owner/name
    pub repository: String,
    /// Tag name, e.g. `v1.2.0`.
    pub tag: String,
    /// Longest release notes returned, in bytes (default 16384).
    #[serde(default = "default_body")]
    #[schemars(range(min = 256, max = 1048576))]
    pub max_body_bytes: u32,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateReleaseIn {
    /// owner/name
    pub repository: String,
    /// Tag to release; created at `targetCommitish` when it does not exist.
    pub tag_name: String,
    /// Branch or commit SHA for a new tag (default: the default branch); ignored when
    /// the tag exists.
    #[serde(default)]
    pub target_commitish: Option<String>,
    /// Release title (default: the tag name).
    #[serde(default)]
    pub name: Option<String>,
    /// Release notes (Markdown).
    #[serde(default)]
    pub body: Option<String>,
    /// Save unpublished; a draft creates no tag.
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub prerelease: bool,
    /// Let GitHub write the notes from the changes since the previous release (used
    /// when `body` is absent).
    #[serde(default)]
    pub generate_release_notes: bool,
}

/// One tag: its name and the commit it names.
#[derive(Serialize, JsonSchema)]
pub struct TagItem {
    pub name: String,
    pub commit_sha: String,
}

#[derive(Serialize, JsonSchema)]
pub struct Tagger {
    pub name: String,
    pub date: String,
}

/// A tag resolved to its commit.
#[derive(Serialize, JsonSchema)]
pub struct TagDetail {
    pub name: String,
    /// The commit the tag points at (through its tag object when annotated).
    pub commit_sha: String,
    pub annotated: bool,
    /// The tag object's SHA (annotated tags only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagger: Option<Tagger>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A release in a list (no notes, no assets).
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ReleaseSummary {
    pub id: u64,
    pub tag_name: String,
    #[serde(default)]
    pub name: Option<String>,
    pub draft: bool,
    pub prerelease: bool,
    pub created_at: String,
    /// Null for a draft.
    #[serde(default)]
    pub published_at: Option<String>,
    pub html_url: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ReleaseAsset {
    pub name: String,
    /// Bytes.
    pub size: u64,
    pub download_count: u64,
    pub browser_download_url: String,
}

/// One release with its notes and assets.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ReleaseDetail {
    #[serde(flatten)]
    pub release: ReleaseSummary,
    /// Branch or SHA the tag was created from.
    #[serde(default)]
    pub target_commitish: Option<String>,
    /// Markdown notes, cut to `maxBodyBytes` (see `body_truncated`).
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_truncated: bool,
    #[serde(default)]
    pub assets: Vec<ReleaseAsset>,
}

fn tag_name(raw: &str) -> Result<String, ToolError> {
    let t = raw.trim().trim_start_matches("refs/tags/");
    git_ref("tag", t)
}

pub(super) async fn list_tags(gh: SharedGithub, i: ListTagsIn, ctx: CallCtx) -> Out<Page<TagItem>> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/tags",
        &[("repository", &repo)],
        &[("per_page", i.limit.to_string())],
    )?;
    let keep = |v: Value| {
        Some(TagItem {
            name: v.get("name")?.as_str()?.to_string(),
            commit_sha: v.pointer("/commit/sha")?.as_str()?.to_string(),
        })
    };
    let (page, _) = gh
        .client
        .collect(
            &ctx,
            "list_tags",
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

pub(super) async fn get_tag(gh: SharedGithub, i: GetTagIn, ctx: CallCtx) -> Out<TagDetail> {
    #[derive(Deserialize)]
    struct RawTagger {
        name: String,
        date: String,
    }
    #[derive(Deserialize)]
    struct TagObject {
        sha: String,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        tagger: Option<RawTagger>,
        object: RefObject,
    }
    let repo = repo(&i.repository)?;
    let tag = tag_name(&i.tag)?;
    let c = &gh.client;
    let found = get_ref(c, &ctx, &repo, "tags", ("tag", &tag), || {
        format!("tag `{tag}` in {repo}; list the tags with list_tags")
    })
    .await?;
    let mut out = TagDetail {
        name: tag,
        commit_sha: found.object.sha.clone(),
        annotated: false,
        tag_sha: None,
        tagger: None,
        message: None,
    };
    let mut object = found.object;
    // An annotated tag names a tag object, which may itself name another tag object.
    for _ in 0..4 {
        if object.kind != "tag" {
            out.commit_sha = object.sha;
            return Ok(out);
        }
        let t: TagObject = c
            .get_json(
                &ctx,
                c.url(
                    "repos/{repository}/git/tags/{sha}",
                    &[("repository", &repo), ("sha", &object.sha)],
                    &[],
                )?,
                LaneKind::Read,
            )
            .await?;
        if !out.annotated {
            out.annotated = true;
            out.tag_sha = Some(t.sha);
            out.message = t.message;
            out.tagger = t.tagger.map(|x| Tagger {
                name: x.name,
                date: x.date,
            });
        }
        object = t.object;
    }
    Err(ToolError::business(format!(
        "tag `{}` in {repo} is a chain of more than 4 tag objects; read it with git locally",
        out.name
    )))
}

pub(super) async fn list_releases(
    gh: SharedGithub,
    i: ListReleasesIn,
    ctx: CallCtx,
) -> Out<Page<ReleaseSummary>> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/releases",
        &[("repository", &repo)],
        &[("per_page", i.limit.to_string())],
    )?;
    Ok(gh
        .client
        .list::<ReleaseSummary>(
            &ctx,
            "list_releases",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
        )
        .await?)
}

async fn release_at(
    gh: &SharedGithub,
    ctx: &CallCtx,
    url: reqwest::Url,
    max_body: u32,
) -> Result<ReleaseDetail, GhError> {
    let mut r: ReleaseDetail = gh.client.get_json(ctx, url, LaneKind::Read).await?;
    (r.body, r.body_truncated) = cap(r.body.take(), max_body as usize);
    Ok(r)
}

pub(super) async fn get_latest_release(
    gh: SharedGithub,
    i: LatestReleaseIn,
    ctx: CallCtx,
) -> Out<ReleaseDetail> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/releases/latest",
        &[("repository", &repo)],
        &[],
    )?;
    match release_at(&gh, &ctx, url, i.max_body_bytes).await {
        Err(GhError::NotFound { .. }) => Err(ToolError::business(format!(
            "{repo} has no published release that is not a prerelease (or the repository is not visible); list_releases shows drafts and prereleases"
        ))),
        other => Ok(other?),
    }
}

pub(super) async fn get_release_by_tag(
    gh: SharedGithub,
    i: ReleaseByTagIn,
    ctx: CallCtx,
) -> Out<ReleaseDetail> {
    let repo = repo(&i.repository)?;
    let tag = tag_name(&i.tag)?;
    let url = gh.client.url(
        "repos/{repository}/releases/tags/{tag}",
        &[("repository", &repo), ("tag", &tag)],
        &[],
    )?;
    match release_at(&gh, &ctx, url, i.max_body_bytes).await {
        Err(GhError::NotFound { .. }) => Err(ToolError::business(format!(
            "{repo} has no published release for tag `{tag}`; drafts are not found by tag — list_releases shows every release"
        ))),
        other => Ok(other?),
    }
}

pub(super) async fn create_release(
    gh: SharedGithub,
    i: CreateReleaseIn,
    ctx: CallCtx,
) -> Out<ReleaseDetail> {
    let repo = repo(&i.repository)?;
    let tag = tag_name(&i.tag_name)?;
    let mut body = json!({
        "tag_name": tag,
        "draft": i.draft,
        "prerelease": i.prerelease,
        "generate_release_notes": i.generate_release_notes,
    });
    if let Some(t) = &i.target_commitish {
        body["target_commitish"] = json!(git_ref("targetCommitish", t)?);
    }
    if let Some(n) = &i.name {
        body["name"] = json!(n);
    }
    if let Some(b) = &i.body {
        body["body"] = json!(b);
    }
    let c = &gh.client;
    let url = c.url("repos/{repository}/releases", &[("repository", &repo)], &[])?;
    let mut created: ReleaseDetail = match c.send_json(&ctx, Method::POST, url, &body).await {
        Ok(r) => r,
        Err(GhError::Rejected {
            status: 422,
            message,
        }) if message.contains("already_exists") => {
            return Err(existing_release(&gh, &ctx, &repo, &tag).await);
        }
        Err(GhError::Rejected {
            status: 422,
            message,
        }) if message.contains("target_commitish") => {
            return Err(ToolError::business(format!(
                "targetCommitish `{}` is not a branch or commit of {repo}; nothing was created. Pass an existing branch (list_branches) or a commit SHA.",
                i.target_commitish.as_deref().unwrap_or("")
            )));
        }
        Err(e) => return Err(e.into()),
    };
    (created.body, created.body_truncated) = cap(created.body.take(), DEFAULT_BODY_BYTES);
    let r = &created.release;
    publish(
        &gh,
        ReleaseAction {
            action: "created",
            repository: &repo,
            release_id: r.id,
            tag_name: &r.tag_name,
            name: r.name.as_deref(),
            draft: r.draft,
            prerelease: r.prerelease,
            html_url: &r.html_url,
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(created)
}

/// The error for a tag that already has a release: names that release when it can.
async fn existing_release(gh: &SharedGithub, ctx: &CallCtx, repo: &str, tag: &str) -> ToolError {
    let found = match gh.client.url(
        "repos/{repository}/releases/tags/{tag}",
        &[("repository", repo), ("tag", tag)],
        &[],
    ) {
        Ok(url) => release_at(gh, ctx, url, 256).await.ok(),
        Err(_) => None,
    };
    match found {
        Some(r) => ToolError::business(format!(
            "tag `{tag}` of {repo} already has a release: \"{}\" (id {}, {}). Nothing was created. Read it with get_release_by_tag, or release a new tag.",
            r.release.name.as_deref().unwrap_or(tag),
            r.release.id,
            r.release.html_url
        )),
        None => ToolError::business(format!(
            "tag `{tag}` of {repo} already has a release (a draft, which get_release_by_tag cannot read). Nothing was created. Find it with list_releases, or release a new tag."
        )),
    }
}
