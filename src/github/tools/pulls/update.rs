//! Changing a pull request: title, body, base and state through REST, draft state
//! through GraphQL (`draft.rs`) (`update_pull_request`), bringing its branch up to date
//! with the base (`update_pull_request_branch`), requesting reviewers, and pull request
//! search.
//!
//! `update_pull_request` makes as few requests as it can: the PATCH's answer (or, when
//! only `draft` is given, one conditional GET) carries the draft state and the `node_id`
//! the mutation needs, and no mutation is sent when the pull request is already in the
//! wanted state. Each change publishes GitHub's action: `edited` (or `closed` /
//! `reopened`) naming the REST fields set, then `converted_to_draft` /
//! `ready_for_review`.
//!
//! Owns these tools' inputs, outputs, handlers and registration; requests go through
//! the client only.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(PULLS);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "update_pull_request",
            write,
            update_pull_request,
            "Change a pull request's title, body, base, state or draft.",
        )
        .titled("Update pull request"),
        t.tool(
            "update_pull_request_branch",
            write,
            update_pull_request_branch,
            "Merge the base branch into a pull request's head (only if still at `expectedHeadSha`, when given).",
        )
        .titled("Update pull request branch"),
        t.tool(
            "request_reviewers",
            write,
            request_reviewers,
            "Ask collaborators (logins) or teams (slugs) to review a pull request.",
        )
        .titled("Request reviewers"),
        t.tool(
            "search_pull_requests",
            read,
            search_pull_requests,
            "Search pull requests with GitHub's query syntax (`repo:o/r is:open author:me`).",
        )
        .titled("Search pull requests"),
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePullIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub state: Option<super::super::issues::OpenClosed>,
    #[serde(default)]
    pub draft: Option<bool>,
}

/// A pull request answer with the id GraphQL addresses it by.
#[derive(Deserialize)]
struct PullWithNode {
    #[serde(flatten)]
    pr: PullRequest,
    node_id: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBranchIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    #[serde(default)]
    pub expected_head_sha: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct UpdateBranchResult {
    pub message: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestReviewersIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    #[serde(default)]
    pub reviewers: Vec<String>,
    #[serde(default)]
    pub team_reviewers: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct RequestedReviewers {
    pub number: u64,
    /// Logins.
    pub reviewers: Vec<String>,
    /// Team slugs.
    pub teams: Vec<String>,
}

/// A pull request found by search.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct PullHit {
    pub number: u64,
    pub title: String,
    pub state: String,
    pub user: Option<User>,
    pub updated_at: String,
    pub html_url: String,
}

fn pull_url(
    gh: &SharedGithub,
    repo: &str,
    number: u64,
    tail: &str,
) -> Result<reqwest::Url, GhError> {
    gh.client.url(
        &format!("repos/{{repository}}/pulls/{{number}}{tail}"),
        &[("repository", repo), ("number", &number.to_string())],
        &[],
    )
}

/// The REST body of an update and the names of the fields it sets.
fn rest_changes(
    i: &UpdatePullIn,
) -> Result<(serde_json::Map<String, Value>, Vec<&'static str>), ToolError> {
    use super::super::issues::OpenClosed;
    let mut body = serde_json::Map::new();
    if let Some(t) = &i.title {
        if t.trim().is_empty() {
            return Err(ToolError::input("title: must not be empty"));
        }
        body.insert("title".into(), t.as_str().into());
    }
    if let Some(b) = &i.body {
        body.insert("body".into(), b.as_str().into());
    }
    if let Some(b) = &i.base {
        body.insert("base".into(), git_ref("base", b)?.into());
    }
    if let Some(s) = i.state {
        let s = match s {
            OpenClosed::Open => "open",
            OpenClosed::Closed => "closed",
        };
        body.insert("state".into(), s.into());
    }
    let fields = ["title", "body", "base", "state"]
        .into_iter()
        .filter(|f| body.contains_key(*f))
        .collect();
    Ok((body, fields))
}

/// PATCHes the REST fields and publishes `edited` / `closed` / `reopened`.
async fn patch_pull(
    gh: &SharedGithub,
    ctx: &CallCtx,
    repo: &str,
    i: &UpdatePullIn,
    body: serde_json::Map<String, Value>,
    fields: &[&'static str],
) -> Result<PullWithNode, ToolError> {
    use super::super::issues::OpenClosed;
    let url = pull_url(gh, repo, i.number, "")?;
    let pull: PullWithNode = gh
        .client
        .send_json(ctx, Method::PATCH, url, &Value::Object(body))
        .await
        .map_err(|e| match e {
            GhError::Rejected {
                status: 422,
                message,
            } if message.contains("base") => GhError::Rejected {
                status: 422,
                message: format!(
                    "{message} (base `{}` must be an existing branch of {repo}; see list_branches)",
                    i.base.as_deref().unwrap_or("")
                ),
            },
            other => other,
        })?;
    let action = match i.state {
        Some(OpenClosed::Closed) => "closed",
        Some(OpenClosed::Open) => "reopened",
        None => "edited",
    };
    let event = pr_event(action, repo, &pull.pr).with_changes(fields.to_vec());
    publish(gh, event, ctx.principal.owner()).await;
    Ok(pull)
}

pub(super) async fn update_pull_request(
    gh: SharedGithub,
    i: UpdatePullIn,
    ctx: CallCtx,
) -> Out<PullRequest> {
    let repo = repo(&i.repository)?;
    let (body, fields) = rest_changes(&i)?;
    let pull = if !body.is_empty() {
        patch_pull(&gh, &ctx, &repo, &i, body, &fields).await?
    } else if i.draft.is_some() {
        // Only the draft state: one (conditional) read gives it and the node id.
        let url = pull_url(&gh, &repo, i.number, "")?;
        gh.client.get_json(&ctx, url, LaneKind::Read).await?
    } else {
        return Err(ToolError::input(
            "nothing to change: give at least one of title, body, base, state, draft",
        ));
    };
    let PullWithNode { mut pr, node_id } = pull;
    let Some(draft) = i.draft.filter(|d| *d != pr.draft) else {
        return Ok(pr);
    };
    let now = draft::set_draft(&gh, &ctx, &node_id, draft)
        .await
        .map_err(|e| draft::draft_error(e, &repo, i.number, draft, &fields))?;
    pr.draft = now.is_draft;
    if let Some(at) = now.updated_at {
        pr.updated_at = at;
    }
    let event = pr_event(draft::action_name(pr.draft), &repo, &pr).with_changes(vec!["draft"]);
    publish(&gh, event, ctx.principal.owner()).await;
    Ok(pr)
}

pub(super) async fn update_pull_request_branch(
    gh: SharedGithub,
    i: UpdateBranchIn,
    ctx: CallCtx,
) -> Out<UpdateBranchResult> {
    let repo = repo(&i.repository)?;
    let mut body = json!({});
    if let Some(sha) = &i.expected_head_sha {
        if sha.len() < 7 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ToolError::input(format!(
                "expectedHeadSha: `{sha}` is not a commit SHA"
            )));
        }
        body["expected_head_sha"] = json!(sha);
    }
    let url = pull_url(&gh, &repo, i.number, "/update-branch")?;
    let result: UpdateBranchResult = match gh.client.send_json(&ctx, Method::PUT, url, &body).await
    {
        Ok(r) => r,
        Err(GhError::Rejected {
            status: 422,
            message,
        }) if message.contains("expected head sha") => {
            return Err(ToolError::business(format!(
                "the head of #{} in {repo} is no longer {} (expectedHeadSha): someone pushed to it. Nothing was merged; read its head again with get_pull_request and decide whether to retry.",
                i.number,
                i.expected_head_sha.as_deref().unwrap_or("")
            )));
        }
        Err(GhError::Rejected {
            status: 422,
            message,
        }) if message.contains("conflict") => {
            return Err(ToolError::business(format!(
                "GitHub cannot merge the base of #{} into its head: {message}. Resolve the conflict locally and push.",
                i.number
            )));
        }
        Err(e) => return Err(e.into()),
    };
    publish(
        &gh,
        PullRequestAction::BranchUpdated {
            action: "branch_updated",
            repository: &repo,
            number: i.number,
            expected_head_sha: i.expected_head_sha.as_deref(),
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(result)
}

pub(super) async fn request_reviewers(
    gh: SharedGithub,
    i: RequestReviewersIn,
    ctx: CallCtx,
) -> Out<RequestedReviewers> {
    #[derive(Deserialize)]
    struct Team {
        slug: String,
    }
    #[derive(Deserialize)]
    struct Answer {
        number: u64,
        #[serde(default)]
        requested_reviewers: Vec<User>,
        #[serde(default)]
        requested_teams: Vec<Team>,
    }
    let repo = repo(&i.repository)?;
    if i.reviewers.is_empty() && i.team_reviewers.is_empty() {
        return Err(ToolError::input(
            "give `reviewers` (logins) or `teamReviewers` (team slugs)",
        ));
    }
    let url = pull_url(&gh, &repo, i.number, "/requested_reviewers")?;
    let body = json!({"reviewers": i.reviewers, "team_reviewers": i.team_reviewers});
    let a: Answer = gh
        .client
        .send_json(&ctx, Method::POST, url, &body)
        .await
        .map_err(|e| match e {
            GhError::Rejected { status: 422, message } => GhError::Rejected {
                status: 422,
                message: format!(
                    "{message} (nobody was requested; ask only collaborators of {repo} other than the author)"
                ),
            },
            other => other,
        })?;
    let out = RequestedReviewers {
        number: a.number,
        reviewers: a.requested_reviewers.into_iter().map(|u| u.login).collect(),
        teams: a.requested_teams.into_iter().map(|t| t.slug).collect(),
    };
    publish(
        &gh,
        PullRequestAction::ReviewersRequested {
            action: "reviewers_requested",
            repository: &repo,
            number: i.number,
            reviewers: i.reviewers.iter().map(String::as_str).collect(),
            team_reviewers: i.team_reviewers.iter().map(String::as_str).collect(),
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(out)
}

pub(super) async fn search_pull_requests(
    gh: SharedGithub,
    i: super::super::issues::SearchIn,
    ctx: CallCtx,
) -> Out<SearchPage<PullHit>> {
    let words: Vec<String> = i
        .query
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        return Err(ToolError::input("query: must not be empty"));
    }
    if words.iter().any(|w| w == "is:issue" || w == "type:issue") {
        return Err(ToolError::input(
            "query: search_pull_requests finds pull requests only; use search_issues for issues",
        ));
    }
    let mut query = i.query.trim().to_string();
    if !words.iter().any(|w| w == "is:pr" || w == "type:pr") {
        query.push_str(" is:pr");
    }
    let url = gh.client.url(
        "search/issues",
        &[],
        &[("q", query), ("per_page", i.limit.to_string())],
    )?;
    let keep = |v: Value| {
        v.get("pull_request")?;
        serde_json::from_value::<PullHit>(v).ok()
    };
    let (page, envelope) = gh
        .client
        .collect(
            &ctx,
            "search_pull_requests",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            LaneKind::Search,
            Some("items"),
            keep,
        )
        .await?;
    Ok(SearchPage::from_envelope(page, &envelope))
}
