//! The review tools: `create_review` (a local directory or a pull request read through
//! the github tools, by name), `get_review_status`, `submit_feedback`, `list_reviews`.
//!
//! Owns their inputs and handlers; the review records live in `reviews.rs`, the rule
//! packs in `review_rules.rs`, pull-request checkouts in `pr_checkout.rs`. Owns their
//! registration too. What a review runs over is resolved in `reviews/target.rs`, the run
//! itself is `reviews/run.rs`. It must not touch journals directly.

use crate::runtime::tool_tasks::TaskSupport;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::asbr::events::FeedbackSubmitted;
use crate::runtime::events::EventPayload;

use crate::runtime::{
    page::{self, Page},
    principal::Principal,
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{A, Out};
use crate::asbr::{
    reviews::{
        self, Comment, Feedback, ReviewError, ReviewFinding, ReviewStatus, ReviewSummary,
        ReviewerKind, ScopeMode, Verdict,
    },
    tasks,
};

mod run;
mod target;

use run::run_review;
use target::review_target;

pub(super) fn register(t: &Tools<A>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "create_review",
            write,
            create_review,
            "Review a workspace directory or a GitHub pull request (`repositoryUrl` with `pullRequestId`) with security, performance, architecture and style reviewers; returns a summary by severity and reviewer and the 20 most severe findings.",
        )
        .titled("Create review")
        .with_task_support(TaskSupport::Optional),
        t.tool(
            "get_review_status",
            read,
            get_review_status,
            "Get a review's status and findings summary by severity and reviewer; with `includeDetails`, also a page of findings (most severe first; pass `detailsNextCursor` back as `cursor`) and the submitted feedback.",
        )
        .titled("Get review status"),
        t.tool(
            "submit_feedback",
            write,
            submit_feedback,
            "Record your verdict on a finished review as the \"ai\" reviewer (or another named one): approve, request_changes (needs a comment) or comment; returns the feedback and the review.",
        )
        .titled("Submit review feedback"),
        t.tool(
            "list_reviews",
            read,
            list_reviews,
            "List reviews newest first (summaries without findings), by status and reviewer.",
        )
        .titled("List reviews"),
    ]
}

impl From<ReviewError> for ToolError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Input(m) => ToolError::Input(m),
            ReviewError::Business(m) => ToolError::Business(m),
            ReviewError::Journal(_) => ToolError::Internal(e.to_string()),
            ReviewError::NotFound(_) => ToolError::Business(e.to_string()),
        }
    }
}

fn default_reviewers() -> Vec<ReviewerKind> {
    vec![
        ReviewerKind::Security,
        ReviewerKind::Performance,
        ReviewerKind::Architecture,
        ReviewerKind::Style,
    ]
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateReviewIn {
    /// A directory inside the workspace roots (absolute, or relative to the first root);
    /// or, with pullRequestId, a GitHub "owner/name" or its https://github.com URL.
    #[schemars(length(min = 1, max = 4096))]
    pub repository_url: String,
    /// A pull request of repositoryUrl; its files are read at the head commit (needs the
    /// github toolset and GITHUB_TOKEN).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub pull_request_id: Option<u64>,
    /// full: every file; incremental (default): a pull request's changed files, or a
    /// directory's files modified since its last completed review; security-only: every
    /// file, security reviewer only.
    #[serde(default)]
    pub scope: ScopeMode,
    /// Limit the review to these globs or paths relative to the repository (gitignore
    /// syntax; a directory covers everything under it). Default: no limit.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub paths: Vec<String>,
    /// Analysers to run (default: all but `ai`); `ai` is you, answering with
    /// submit_feedback.
    #[serde(default = "default_reviewers")]
    #[schemars(length(min = 1, max = 5))]
    pub reviewers: Vec<ReviewerKind>,
}

/// Most findings shown by create_review (the rest through get_review_status).
const TOP_FINDINGS: usize = 20;

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateReviewOut {
    pub review: ReviewSummary,
    /// The most severe findings (at most 20); all of them with get_review_status
    /// includeDetails=true.
    pub top_findings: Vec<ReviewFinding>,
}

/// Publishes a review event shown only to `owner`, the review's.
async fn publish_review_event<P: EventPayload>(a: &A, owner: &Principal, data: P) {
    if let Err(e) = a
        .events
        .publish_as("cortex-mcp/asbr", &data, owner.owner())
        .await
    {
        tracing::warn!("could not journal {}: {e}", data.event_type());
    }
}

pub(super) async fn create_review(a: A, i: CreateReviewIn, ctx: CallCtx) -> Out<CreateReviewOut> {
    let id = uuid::Uuid::now_v7().to_string();
    let target = review_target(&a, &i, &id, &ctx).await?;
    let outcome = run_review(&a, i, &id, &target, &ctx).await;
    if let Some(dir) = &target.scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

fn default_details_limit() -> u32 {
    100
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ReviewStatusIn {
        #[schemars(length(min = 1, max = 64))]
        pub review_id: String,
        /// Also return the findings (a page of `limit`) and the feedback.
        #[serde(default)]
        pub include_details: bool,
        ..page_args {
            /// Findings per page when includeDetails is true.
            limit(default = "default_details_limit", max = 500),
            /// From `detailsNextCursor`.
            cursor,
        },
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStatusOut {
    pub review: ReviewSummary,
    /// Findings, most severe first (with includeDetails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ReviewFinding>>,
    /// Pass back as `cursor` for the next page of details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_next_cursor: Option<String>,
    /// Submitted feedback, oldest first (with includeDetails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Vec<Feedback>>,
}

pub(super) async fn get_review_status(
    a: A,
    i: ReviewStatusIn,
    ctx: CallCtx,
) -> Out<ReviewStatusOut> {
    a.reviews.catch_up().await;
    let review = a.reviews.get(&i.review_id, &ctx.principal)?;
    if !i.include_details {
        return Ok(ReviewStatusOut {
            review: review.summary,
            details: None,
            details_next_cursor: None,
            feedback: None,
        });
    }
    let page = page::offset_page(
        "get_review_status",
        &review.details,
        i.limit as usize,
        i.cursor.as_deref(),
    )
    .map_err(ToolError::from)?;
    Ok(ReviewStatusOut {
        review: review.summary,
        details: Some(page.items),
        details_next_cursor: page.next_cursor,
        feedback: Some(review.feedback),
    })
}

fn default_reviewer_name() -> String {
    "ai".into()
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitFeedbackIn {
    #[schemars(length(min = 1, max = 64))]
    pub review_id: String,
    /// Who gives the feedback; you are the "ai" reviewer.
    #[serde(default = "default_reviewer_name")]
    #[schemars(length(min = 1, max = 64))]
    pub reviewer: String,
    /// Comments, each optionally on a file (relative to the repository) and line.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub comments: Vec<Comment>,
    pub verdict: Verdict,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmitFeedbackOut {
    pub feedback: Feedback,
    pub review: ReviewSummary,
}

pub(super) async fn submit_feedback(
    a: A,
    i: SubmitFeedbackIn,
    ctx: CallCtx,
) -> Out<SubmitFeedbackOut> {
    if i.reviewer.trim().is_empty() {
        return Err(ToolError::input("reviewer: must not be blank; use \"ai\""));
    }
    for (n, c) in i.comments.iter().enumerate() {
        if c.message.trim().is_empty() {
            return Err(ToolError::input(format!(
                "comments[{n}].message: must not be blank"
            )));
        }
        if c.line == Some(0) {
            return Err(ToolError::input(format!(
                "comments[{n}].line: lines start at 1"
            )));
        }
        if let Some(f) = &c.file
            && (f.starts_with('/') || f.split(['/', '\\']).any(|p| p == ".."))
        {
            return Err(ToolError::input(format!(
                "comments[{n}].file: `{f}` must be relative to the reviewed repository, without `..`"
            )));
        }
    }
    if i.verdict == Verdict::RequestChanges && i.comments.is_empty() {
        return Err(ToolError::input(
            "comments: request_changes needs at least one comment saying what to change",
        ));
    }
    let feedback = Feedback {
        id: uuid::Uuid::now_v7().to_string(),
        reviewer: i.reviewer.trim().to_string(),
        verdict: i.verdict,
        comments: i.comments,
        submitted_at: reviews::now(),
    };
    let fb = feedback.clone();
    let review = a
        .reviews
        .update(&i.review_id, &ctx.principal, move |r| {
            if matches!(
                r.summary.status,
                ReviewStatus::Pending | ReviewStatus::InProgress
            ) {
                return Err(ReviewError::Business(format!(
                    "review {} is still running; wait until get_review_status shows completed",
                    r.summary.id
                )));
            }
            if r.feedback.len() >= reviews::MAX_FEEDBACK {
                return Err(ReviewError::Business(format!(
                    "review {} already holds {} feedback entries; create a new review",
                    r.summary.id,
                    reviews::MAX_FEEDBACK
                )));
            }
            r.summary.verdict = Some(fb.verdict);
            r.feedback.push(fb.clone());
            Ok(())
        })
        .await?;
    let verdict = reviews::to_value(&feedback.verdict);
    publish_review_event(
        &a,
        &ctx.principal,
        FeedbackSubmitted {
            review_id: &review.summary.id,
            feedback_id: &feedback.id,
            reviewer: &feedback.reviewer,
            verdict: feedback.verdict,
            comments: feedback.comments.len(),
            aria_live_hint: format!(
                "Reviewer {} submitted {} with {} comment(s).",
                feedback.reviewer,
                verdict.as_str().unwrap_or("feedback").replace('_', " "),
                feedback.comments.len()
            ),
            timestamp: &feedback.submitted_at,
            traceparent: &tasks::traceparent(&ctx.meta),
        },
    )
    .await;
    Ok(SubmitFeedbackOut {
        feedback,
        review: review.summary,
    })
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ListReviewsIn {
        #[serde(default)]
        pub status: Option<ReviewStatus>,
        /// Only reviews that ran this reviewer.
        #[serde(default)]
        pub reviewer: Option<ReviewerKind>,
        ..page_args,
    }
}

pub(super) async fn list_reviews(a: A, i: ListReviewsIn, ctx: CallCtx) -> Out<Page<ReviewSummary>> {
    let before: Option<String> = i
        .cursor
        .as_deref()
        .map(|c| page::decode("list_reviews", c))
        .transpose()
        .map_err(ToolError::from)?;
    a.reviews.catch_up().await;
    let (items, more) = a.reviews.list(
        &ctx.principal,
        i.status,
        i.reviewer,
        before.as_deref(),
        i.limit as usize,
    );
    let next_cursor = more
        .then(|| items.last().map(|r| page::encode("list_reviews", &r.id)))
        .flatten();
    Ok(Page { items, next_cursor })
}
