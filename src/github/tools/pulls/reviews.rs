//! Pull request reviews: listing reviews and review comments, submitting a review with
//! inline comments (each checked against the pull request's diff before anything is
//! sent, see `diff_lines.rs`) and replying to a review comment.
//!
//! Owns these tools' inputs, outputs, handlers and registration; requests go through
//! the client only.

use super::diff_lines::{self, DiffSide};
use super::*;

/// Longest review body returned, in bytes.
const REVIEW_BODY_BYTES: usize = 2048;
/// Changed files listed when a comment names a path the pull request does not change.
const FILES_NAMED: usize = 20;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(PULLS);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    vec![
        t.tool(
            "list_pull_request_reviews",
            read,
            list_pull_request_reviews,
            "Reviews of a pull request, oldest first: reviewer, state and body.",
        )
        .titled("List pull request reviews"),
        t.tool(
            "list_pull_request_review_comments",
            read,
            list_pull_request_review_comments,
            "Inline review comments of a pull request, oldest first: file, line, body, thread.",
        )
        .titled("List pull request review comments"),
        t.tool(
            "create_pull_request_review",
            write,
            create_pull_request_review,
            "Submit a review, optionally with inline comments on lines of the diff (side RIGHT: new line numbers, LEFT: old).",
        )
        .titled("Create pull request review"),
        t.tool(
            "reply_to_review_comment",
            write,
            reply_to_review_comment,
            "Reply in the thread of an inline review comment.",
        )
        .titled("Reply to review comment"),
    ]
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PullListIn {
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

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReviewEvent {
    Approve,
    RequestChanges,
    Comment,
}

#[derive(Deserialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Left,
    #[default]
    Right,
}

impl From<Side> for DiffSide {
    fn from(s: Side) -> Self {
        match s {
            Side::Left => DiffSide::Left,
            Side::Right => DiffSide::Right,
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct InlineComment {
    pub path: String,
    #[schemars(range(min = 1))]
    pub line: u32,
    #[serde(default)]
    pub side: Side,
    pub body: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateReviewIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    pub event: ReviewEvent,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub comments: Vec<InlineComment>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplyIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    pub comment_id: u64,
    pub body: String,
}

/// A review.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Review {
    pub id: u64,
    pub user: Option<User>,
    pub state: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    /// Empty while PENDING.
    #[serde(default, deserialize_with = "null_as_default")]
    pub submitted_at: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub commit_id: String,
}

/// The reply just posted.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Replied {
    pub id: u64,
    /// The thread's first comment.
    pub in_reply_to_id: u64,
    pub html_url: String,
}

/// The review just submitted.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Submitted {
    pub id: u64,
    pub state: String,
    pub html_url: String,
}

impl Review {
    fn capped(mut self) -> Self {
        (self.body, self.body_truncated) = cap(self.body.take(), REVIEW_BODY_BYTES);
        self
    }
}

/// An inline review comment.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ReviewComment {
    pub id: u64,
    pub path: String,
    /// Null when the line is no longer in the diff (outdated).
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub side: String,
    pub body: String,
    pub user: Option<User>,
    /// The thread's first comment (absent on a first comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to_id: Option<u64>,
    pub created_at: String,
}

fn pull_url(
    gh: &SharedGithub,
    repo: &str,
    number: u64,
    tail: &str,
    query: &[(&str, String)],
) -> Result<reqwest::Url, GhError> {
    gh.client.url(
        &format!("repos/{{repository}}/pulls/{{number}}{tail}"),
        &[("repository", repo), ("number", &number.to_string())],
        query,
    )
}

pub(super) async fn list_pull_request_reviews(
    gh: SharedGithub,
    i: PullListIn,
    ctx: CallCtx,
) -> Out<Page<Review>> {
    let repo = repo(&i.repository)?;
    let url = pull_url(
        &gh,
        &repo,
        i.number,
        "/reviews",
        &[("per_page", i.limit.to_string())],
    )?;
    let keep = |v: Value| serde_json::from_value::<Review>(v).ok().map(Review::capped);
    let (page, _) = gh
        .client
        .collect(
            &ctx,
            "list_pull_request_reviews",
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

pub(super) async fn list_pull_request_review_comments(
    gh: SharedGithub,
    i: PullListIn,
    ctx: CallCtx,
) -> Out<Page<ReviewComment>> {
    let repo = repo(&i.repository)?;
    let url = pull_url(
        &gh,
        &repo,
        i.number,
        "/comments",
        &[("per_page", i.limit.to_string())],
    )?;
    Ok(gh
        .client
        .list::<ReviewComment>(
            &ctx,
            "list_pull_request_review_comments",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
        )
        .await?)
}

/// A changed file of the pull request and its patch (absent for binary or huge diffs).
#[derive(Deserialize)]
struct DiffFile {
    filename: String,
    #[serde(default)]
    patch: Option<String>,
}

/// Checks every inline comment against the pull request's diff; one message naming
/// each comment that cannot be placed, or `Ok`. Files without a patch, and paths the
/// file list did not reach (over 1,000 files), are left to GitHub.
async fn check_comments(
    gh: &SharedGithub,
    ctx: &CallCtx,
    repo: &str,
    number: u64,
    comments: &[InlineComment],
) -> Result<(), ToolError> {
    let url = pull_url(gh, repo, number, "/files", &[("per_page", "100".into())])?;
    let keep = |v: Value| serde_json::from_value::<DiffFile>(v).ok();
    let (files, _) = gh
        .client
        .collect(
            ctx,
            "create_pull_request_review",
            url,
            None,
            3000,
            LaneKind::Read,
            None,
            keep,
        )
        .await?;
    let complete = files.next_cursor.is_none();
    let mut problems = Vec::new();
    for c in comments {
        let Some(f) = files.items.iter().find(|f| f.filename == c.path) else {
            if complete {
                let mut names: Vec<&str> = files
                    .items
                    .iter()
                    .take(FILES_NAMED)
                    .map(|f| f.filename.as_str())
                    .collect();
                if files.items.len() > FILES_NAMED {
                    names.push("…");
                }
                problems.push(format!(
                    "{} is not changed by #{number}; changed files: {}",
                    c.path,
                    names.join(", ")
                ));
            }
            continue;
        };
        let Some(patch) = &f.patch else { continue };
        let lines = diff_lines::commentable(patch);
        if !lines.contains(c.side.into(), c.line) {
            problems.push(diff_lines::not_in_diff(
                &c.path,
                c.side.into(),
                c.line,
                &lines,
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ToolError::business(format!(
            "{}. Nothing was sent; fix these comments (get_pull_request_files shows the hunks) and submit the review again.",
            problems.join("; ")
        )))
    }
}

pub(super) async fn create_pull_request_review(
    gh: SharedGithub,
    i: CreateReviewIn,
    ctx: CallCtx,
) -> Out<Submitted> {
    let repo = repo(&i.repository)?;
    let body = i.body.as_deref().map(str::trim).filter(|b| !b.is_empty());
    if i.event != ReviewEvent::Approve && body.is_none() && i.comments.is_empty() {
        return Err(ToolError::input(
            "body: REQUEST_CHANGES and COMMENT need a body or inline comments",
        ));
    }
    for c in &i.comments {
        if c.body.trim().is_empty() {
            return Err(ToolError::input(format!(
                "comments: the comment on {} line {} has an empty body",
                c.path, c.line
            )));
        }
    }
    if !i.comments.is_empty() {
        check_comments(&gh, &ctx, &repo, i.number, &i.comments).await?;
    }
    let event = match i.event {
        ReviewEvent::Approve => "APPROVE",
        ReviewEvent::RequestChanges => "REQUEST_CHANGES",
        ReviewEvent::Comment => "COMMENT",
    };
    let comments: Vec<Value> = i
        .comments
        .iter()
        .map(|c| {
            json!({"path": c.path, "line": c.line, "side": DiffSide::from(c.side).as_str(), "body": c.body})
        })
        .collect();
    let mut payload = json!({"event": event, "comments": comments});
    if let Some(b) = &i.body {
        payload["body"] = json!(b);
    }
    let url = pull_url(&gh, &repo, i.number, "/reviews", &[])?;
    let review: Submitted = gh
        .client
        .send_json(&ctx, Method::POST, url, &payload)
        .await?;
    publish(
        &gh,
        PullRequestAction::ReviewSubmitted {
            action: "review_submitted",
            repository: &repo,
            number: i.number,
            review_id: review.id,
            state: &review.state,
            comments: i.comments.len(),
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(review)
}

pub(super) async fn reply_to_review_comment(
    gh: SharedGithub,
    i: ReplyIn,
    ctx: CallCtx,
) -> Out<Replied> {
    let repo = repo(&i.repository)?;
    if i.body.trim().is_empty() {
        return Err(ToolError::input("body: must not be empty"));
    }
    let url = pull_url(
        &gh,
        &repo,
        i.number,
        &format!("/comments/{}/replies", i.comment_id),
        &[],
    )?;
    let reply: Replied = gh
        .client
        .send_json(&ctx, Method::POST, url, &json!({"body": i.body}))
        .await
        .map_err(|e| match e {
            GhError::NotFound { .. } => GhError::NotFound {
                what: format!(
                    "review comment {} on #{} of {repo}; list them with list_pull_request_review_comments",
                    i.comment_id, i.number
                ),
            },
            other => other,
        })?;
    publish(
        &gh,
        PullRequestAction::ReviewCommentReplied {
            action: "review_comment_replied",
            repository: &repo,
            number: i.number,
            comment_id: reply.id,
            in_reply_to_id: reply.in_reply_to_id,
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(reply)
}
