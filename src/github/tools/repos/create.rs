//! Making repositories: `fork_repository` (`POST /repos/{o}/{r}/forks`, which GitHub
//! answers 202 and finishes in the background) and `create_repository` (`POST
//! /user/repos`, or `/orgs/{org}/repos`). Both publish `github.repository.action`.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let write = Hints::write_remote();
    vec![
        t.tool(
            "fork_repository",
            write,
            fork_repository,
            "Fork a repository to your account or `organization`. GitHub copies it in the background.",
        )
        .titled("Fork repository"),
        t.tool(
            "create_repository",
            write,
            create_repository,
            "Create a repository for your account or `organization`; `autoInit` adds a first commit with a README.",
        )
        .titled("Create repository"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForkIn {
    /// "owner/name" to fork.
    pub repository: String,
    #[serde(default)]
    pub organization: Option<String>,
    /// Name of the fork (default: the original's).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub default_branch_only: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepoIn {
    pub name: String,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub auto_init: bool,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct RepoMade {
    pub full_name: String,
    pub html_url: String,
    #[serde(default)]
    pub default_branch: String,
    #[serde(default)]
    pub private: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An account or organization login, or a repository name, as one path-safe part.
fn part<'a>(field: &str, raw: &'a str) -> Result<&'a str, ToolError> {
    let v = raw.trim();
    let ok = !v.is_empty()
        && v != "."
        && v != ".."
        && v.len() <= 100
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(v)
    } else {
        Err(ToolError::input(format!(
            "{field}: `{raw}` may hold only letters, digits, '-', '_' and '.'"
        )))
    }
}

async fn announce(
    gh: &SharedGithub,
    ctx: &CallCtx,
    action: &str,
    made: &RepoMade,
    source: Option<&str>,
) {
    publish(
        gh,
        RepositoryAction {
            action,
            repository: &made.full_name,
            source,
            private: made.private,
            html_url: &made.html_url,
        },
        ctx.principal.owner(),
    )
    .await;
}

pub(super) async fn fork_repository(gh: SharedGithub, i: ForkIn, ctx: CallCtx) -> Out<RepoMade> {
    let repo = repo(&i.repository)?;
    let mut body = json!({"default_branch_only": i.default_branch_only});
    if let Some(o) = &i.organization {
        body["organization"] = json!(part("organization", o)?);
    }
    if let Some(n) = &i.name {
        body["name"] = json!(part("name", n)?);
    }
    let c = &gh.client;
    let url = c.url("repos/{repository}/forks", &[("repository", &repo)], &[])?;
    let mut made: RepoMade = match c.send_json(&ctx, Method::POST, url, &body).await {
        Ok(r) => r,
        Err(GhError::Rejected {
            status: 422,
            message,
        }) if message.contains("already exists") || message.contains("already_exists") => {
            return Err(ToolError::business(format!(
                "{repo} could not be forked: {message}. Pass another `name`, or use the repository that exists (get_repository_info)."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    made.note = Some(
        "GitHub creates the fork in the background: it may take a moment (up to a few minutes) before its files and branches can be read.".into(),
    );
    announce(&gh, &ctx, "forked", &made, Some(&repo)).await;
    Ok(made)
}

pub(super) async fn create_repository(
    gh: SharedGithub,
    i: CreateRepoIn,
    ctx: CallCtx,
) -> Out<RepoMade> {
    let name = part("name", &i.name)?;
    let mut body = json!({"name": name, "private": i.private, "auto_init": i.auto_init});
    if let Some(d) = &i.description {
        body["description"] = json!(d);
    }
    let c = &gh.client;
    let url = match &i.organization {
        Some(o) => c.url(
            "orgs/{org}/repos",
            &[("org", part("organization", o)?)],
            &[],
        )?,
        None => c.url("user/repos", &[], &[])?,
    };
    let owner = i.organization.as_deref().unwrap_or("your account");
    let made: RepoMade = match c.send_json(&ctx, Method::POST, url, &body).await {
        Ok(r) => r,
        Err(GhError::Rejected {
            status: 422,
            message,
        }) if message.contains("already exists") || message.contains("already_exists") => {
            return Err(ToolError::business(format!(
                "{owner} already has a repository named `{name}`; nothing was created. Pick another name, or use the existing one (get_repository_info)."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    announce(&gh, &ctx, "created", &made, None).await;
    Ok(made)
}
