//! The review tools: `create_review` (a local directory or a pull request read through
//! the github tools, by name), `get_review_status`, `submit_feedback`, `list_reviews`.
//!
//! Owns their inputs and handlers; the review records live in `reviews.rs`, the rule
//! packs in `review_rules.rs`, pull-request checkouts in `pr_checkout.rs`. Owns their
//! registration too. It must not touch journals directly.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::{
    page::{self, Page},
    principal::Principal,
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{A, Out};
use crate::asbr::{
    pr_checkout::{self, CheckoutError},
    reviews::{
        self, Comment, Feedback, FindingSummary, Review, ReviewError, ReviewFinding, ReviewStatus,
        ReviewSummary, ReviewerKind, ScopeMode, Verdict,
    },
    scan::{self, ScanError},
    tasks::{self, AgentEventKind, TaskInput},
};

pub(super) fn register(t: &Tools<A>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "create_review",
            write,
            create_review,
            "Review a local directory inside the workspace roots, or a GitHub pull request (`repositoryUrl` \"owner/name\" with `pullRequestId`), with security, performance, architecture and style reviewers run as a task; returns the summary by severity and reviewer and the 20 most severe findings.",
        )
        .titled("Create review"),
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
            "Record your verdict on a finished review as the \"ai\" reviewer (or another named one): approve, request_changes (needs a comment) or comment, with comments {file?, line?, severity, message}; returns the feedback and the review.",
        )
        .titled("Submit review feedback"),
        t.tool(
            "list_reviews",
            read,
            list_reviews,
            "List reviews newest first (summaries without findings), by status and reviewer; returns a page and `next_cursor` to pass back as `cursor`.",
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
    /// A local directory inside the workspace roots (absolute, or relative to the first
    /// root); or, with pullRequestId, the GitHub repository "owner/name" (a
    /// https://github.com/owner/name URL is accepted too).
    #[schemars(length(min = 1, max = 4096))]
    pub repository_url: String,
    /// Review this pull request of repositoryUrl: its changed files are read at the head
    /// commit through the github toolset (which must be enabled, with GITHUB_TOKEN set).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub pull_request_id: Option<u64>,
    /// full: every file; incremental (default): a pull request's changed files, or for a
    /// local directory the files modified since its last completed review (every file
    /// the first time); security-only: every file, security reviewer only.
    #[serde(default)]
    pub scope: ScopeMode,
    /// Limit the review to these globs or paths relative to the repository (gitignore
    /// syntax; a directory covers everything under it). Default: no limit.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub paths: Vec<String>,
    /// Which analysers run: security (the security scan), performance, architecture,
    /// style; `ai` is you, answering with submit_feedback. Default: security,
    /// performance, architecture, style.
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

/// "owner/name" from "owner/name", "https://github.com/owner/name" or "...name.git".
fn owner_repo(url: &str) -> Option<String> {
    let u = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let u = ["https://github.com/", "http://github.com/", "github.com/"]
        .iter()
        .find_map(|p| u.strip_prefix(p))
        .unwrap_or(u);
    let parts: Vec<&str> = u.split('/').collect();
    let valid = parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != ".."
                && *p != "."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    valid.then(|| u.to_string())
}

fn looks_remote(url: &str) -> bool {
    let u = url.trim();
    ["http://", "https://", "git@", "ssh://", "git://"]
        .iter()
        .any(|p| u.starts_with(p))
}

const HOW_TO_POINT: &str = "give a local directory inside the workspace roots, or \"owner/name\" with pullRequestId to review a pull request";

/// What a review runs over.
struct ReviewTarget {
    root: std::path::PathBuf,
    /// repository_path of the review: the directory, or "owner/name#N".
    label: String,
    scope: Arc<reviews::Scope>,
    pull_request: Option<reviews::PullRequestSource>,
    incremental_since: Option<reviews::IncrementalBase>,
    /// A scratch checkout to delete when the review is done.
    scratch: Option<std::path::PathBuf>,
}

async fn review_target(a: &A, i: &CreateReviewIn, id: &str, ctx: &CallCtx) -> Out<ReviewTarget> {
    match i.pull_request_id {
        Some(number) => pull_request_target(a, i, number, id, ctx).await,
        None => local_target(a, i, &ctx.principal),
    }
}

async fn pull_request_target(
    a: &A,
    i: &CreateReviewIn,
    number: u64,
    id: &str,
    ctx: &CallCtx,
) -> Out<ReviewTarget> {
    let Some(repository) = owner_repo(&i.repository_url) else {
        return Err(ToolError::input(format!(
            "repositoryUrl: with pullRequestId, give the GitHub repository as \"owner/name\" (got `{}`)",
            i.repository_url
        )));
    };
    if ctx.registry.get("get_pull_request").is_none() {
        return Err(ToolError::Business(format!(
            "pullRequestId: reviewing {repository}#{number} reads it through the github toolset, which is not enabled; start the server with github in --toolsets (and GITHUB_TOKEN set), or check the pull request out locally and pass its directory without pullRequestId"
        )));
    }
    let dir = a.checkouts.join(id);
    let checkout = match pr_checkout::fetch(ctx, &repository, number, &dir).await {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(match e {
                CheckoutError::Github { .. } => ToolError::Upstream(format!(
                    "pull request {repository}#{number} could not be read through the github toolset: {e}"
                )),
                CheckoutError::Shape { .. } => ToolError::Upstream(e.to_string()),
                CheckoutError::Io { .. } | CheckoutError::Write(_) => {
                    ToolError::Internal(e.to_string())
                }
            });
        }
    };
    let scope = reviews::Scope::new(&checkout.root, &i.paths)?.only_files(checkout.files.clone());
    Ok(ReviewTarget {
        scope: Arc::new(scope),
        label: format!("{repository}#{number}"),
        pull_request: Some(reviews::PullRequestSource {
            repository,
            pull_request_id: number,
            head_sha: checkout.head_sha,
            files: checkout.files.len() as u64,
            skipped: checkout.skipped,
        }),
        incremental_since: None,
        scratch: Some(checkout.root.clone()),
        root: checkout.root,
    })
}

fn local_target(a: &A, i: &CreateReviewIn, principal: &Principal) -> Out<ReviewTarget> {
    if looks_remote(&i.repository_url) {
        return Err(ToolError::input(format!(
            "repositoryUrl: `{}` is remote; {HOW_TO_POINT}",
            i.repository_url
        )));
    }
    let root = match scan::resolve_target(&a.scanner.roots, &i.repository_url) {
        Ok(root) => root,
        Err(ScanError::NotFound(_)) if owner_repo(&i.repository_url).is_some() => {
            return Err(ToolError::input(format!(
                "repositoryUrl: `{}` is not a local directory; {HOW_TO_POINT}",
                i.repository_url
            )));
        }
        Err(ScanError::Path(m) | ScanError::NotFound(m)) => {
            return Err(ToolError::input(format!("repositoryUrl: {m}")));
        }
        Err(e) => return Err(e.into()),
    };
    let label = root.display().to_string();
    let mut scope = reviews::Scope::new(&root, &i.paths)?;
    let mut incremental_since = None;
    if i.scope == ScopeMode::Incremental
        && let Some(base) = a.reviews.last_completed(&label, principal)
        && let Ok(at) = chrono::DateTime::parse_from_rfc3339(&base.created_at)
    {
        scope = scope.modified_since(std::time::SystemTime::from(at));
        incremental_since = Some(base);
    }
    Ok(ReviewTarget {
        root,
        label,
        scope: Arc::new(scope),
        pull_request: None,
        incremental_since,
        scratch: None,
    })
}

async fn review_task_step(
    a: &A,
    principal: &Principal,
    task_id: &str,
    tp: &str,
    kind: AgentEventKind,
    step: Option<String>,
    data: Value,
) {
    let tp = tp.to_string();
    if let Err(e) = a
        .tasks
        .transition(task_id, principal, tp, move |t| {
            tasks::apply_agent_event(t, kind, step, Some(data))
        })
        .await
    {
        tracing::warn!("review task {task_id}: could not record {kind:?}: {e}");
    }
}

/// Publishes a review event shown only to `owner`, the review's.
async fn publish_review_event(a: &A, owner: &Principal, r#type: &str, data: Value) {
    if let Err(e) = a
        .events
        .publish_owned(r#type, "cortex-mcp/asbr", data, owner.owner())
        .await
    {
        tracing::warn!("could not journal {type}: {e}");
    }
}

/// The reviewers that run: deduplicated and sorted; `security-only` keeps security (and
/// `ai`, which runs nothing) whatever else was asked.
fn chosen_reviewers(mut reviewers: Vec<ReviewerKind>, scope: ScopeMode) -> Out<Vec<ReviewerKind>> {
    reviewers.sort();
    reviewers.dedup();
    if scope == ScopeMode::SecurityOnly {
        reviewers.retain(|r| *r == ReviewerKind::Ai);
        reviewers.insert(0, ReviewerKind::Security);
    }
    if reviewers.is_empty() {
        return Err(ToolError::input(
            "reviewers: give at least one of security, performance, architecture, style, ai",
        ));
    }
    Ok(reviewers)
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

async fn run_review(
    a: &A,
    i: CreateReviewIn,
    id: &str,
    target: &ReviewTarget,
    ctx: &CallCtx,
) -> Out<CreateReviewOut> {
    let reviewers = chosen_reviewers(i.reviewers, i.scope)?;
    let scope = target.scope.clone();
    let root = &target.root;
    let advisories = match (
        &a.scanner.advisories_dir,
        reviewers.contains(&ReviewerKind::Security),
    ) {
        (Some(dir), true) => scan::load_advisories(dir)?,
        _ => Vec::new(),
    };
    let tp = tasks::traceparent(&ctx.meta);
    let id = id.to_string();
    let path = target.label.clone();
    let name = match &target.pull_request {
        Some(_) => path.clone(),
        None => root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| path.clone()),
    };
    let kinds: Vec<&str> = reviewers.iter().map(|r| r.as_str()).collect();
    let scope_name = serde_json::to_value(i.scope)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let task = a
        .tasks
        .create(
            TaskInput {
                title: format!("Review of {name}"),
                brief: format!(
                    "Review {path} (scope: {scope_name}{}) by {}",
                    if i.paths.is_empty() {
                        String::new()
                    } else {
                        format!(", paths: {}", i.paths.join(", "))
                    },
                    kinds.join(", ")
                ),
                inputs: vec![tasks::TaskInputItem::Repo { path: path.clone() }],
                scopes: vec!["review".into()],
                deadlines: None,
                a11y_profile_id: None,
                preferences: None,
            },
            Some(format!("review:{id}")),
            tp.clone(),
            &ctx.principal,
            false,
        )
        .await?
        .task;
    let at = reviews::now();
    let review = a
        .reviews
        .put(Review {
            summary: ReviewSummary {
                id: id.clone(),
                repository_path: path.clone(),
                scope: i.scope,
                paths: i.paths.clone(),
                incremental_since: target.incremental_since.clone(),
                pull_request: target.pull_request.clone(),
                reviewers: reviewers.clone(),
                status: ReviewStatus::InProgress,
                task_id: Some(task.id.clone()),
                findings: FindingSummary::default(),
                verdict: None,
                feedback_count: 0,
                error: None,
                created_at: at.clone(),
                updated_at: at,
                owner: ctx.principal.owner(),
            },
            details: Vec::new(),
            feedback: Vec::new(),
        })
        .await?;
    publish_review_event(
        a,
        &ctx.principal,
        "asbr.review.created",
        serde_json::json!({
            "reviewId": id,
            "taskId": task.id,
            "repositoryPath": path,
            "scope": review.summary.scope,
            "paths": review.summary.paths,
            "pullRequest": review.summary.pull_request,
            "reviewers": reviewers,
            "status": review.summary.status,
            "ariaLiveHint": format!("Review of {name} started with {} reviewer(s).", kinds.join(", ")),
            "timestamp": review.summary.created_at,
            "traceparent": tp,
        }),
    )
    .await;

    let analysers: Vec<ReviewerKind> = reviewers
        .iter()
        .copied()
        .filter(|r| *r != ReviewerKind::Ai)
        .collect();
    let total = analysers.len() as f64;
    let advisories = Arc::new(advisories);
    let mut findings = Vec::new();
    let mut files_scanned = 0u64;
    let mut failure = None;
    for (n, kind) in analysers.iter().copied().enumerate() {
        ctx.progress.report(
            n as f64,
            Some(total),
            format!("{} reviewer running", kind.as_str()),
        );
        let (an, root, scope, adv, progress) = (
            a.analysers.clone(),
            root.clone(),
            scope.clone(),
            advisories.clone(),
            ctx.progress.clone(),
        );
        let stop = ctx.stop.clone();
        let run = a
            .executor
            .run_cpu(ctx.deadline, &ctx.cancel, move || {
                let on_file = |f: u64| {
                    if f.is_multiple_of(200) {
                        progress.report(
                            n as f64,
                            Some(total),
                            format!("{}: {f} files", kind.as_str()),
                        );
                    }
                };
                match kind {
                    ReviewerKind::Security => {
                        reviews::run_security(&an.security, &root, &scope, &adv, &stop, &on_file)
                    }
                    _ => reviews::run_pack(&an.packs, kind, &root, &scope, &stop, &on_file),
                }
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match run {
            Ok(out) => {
                files_scanned = files_scanned.max(out.files_scanned);
                review_task_step(
                    a,
                    &ctx.principal,
                    &task.id,
                    &tp,
                    AgentEventKind::StepCompleted,
                    Some(format!("{} review", kind.as_str())),
                    serde_json::json!({"reviewId": id, "findings": out.findings.len()}),
                )
                .await;
                findings.extend(out.findings);
            }
            Err(e) => {
                failure = Some(format!("{} reviewer stopped: {e}", kind.as_str()));
                break;
            }
        }
    }
    ctx.progress.report(total, Some(total), "review done");
    let (details, summary) = reviews::summarise(findings, files_scanned);
    let failed = failure.clone();
    let review = a
        .reviews
        .update(&id, &ctx.principal, move |r| {
            r.summary.status = if failed.is_some() {
                ReviewStatus::Failed
            } else {
                ReviewStatus::Completed
            };
            r.summary.error = failed;
            r.summary.findings = summary;
            r.details = details;
            Ok(())
        })
        .await?;
    let s = &review.summary;
    let (kind, hint) = match &failure {
        Some(_) => (AgentEventKind::Failed, format!("Review of {name} failed.")),
        None => (
            AgentEventKind::DeliverableReady,
            format!(
                "Review of {name} finished with {} finding(s).",
                s.findings.total
            ),
        ),
    };
    review_task_step(
        a,
        &ctx.principal,
        &task.id,
        &tp,
        kind,
        None,
        serde_json::json!({"reviewId": id, "findings": s.findings.total, "error": failure}),
    )
    .await;
    let shown: Vec<Value> = review
        .details
        .iter()
        .take(100)
        .map(|f| {
            serde_json::json!({
                "type": f.reviewer, "rule": f.rule, "severity": f.severity,
                "message": f.message, "file": f.file, "line": f.line,
            })
        })
        .collect();
    publish_review_event(
        a,
        &ctx.principal,
        "asbr.review.completed",
        serde_json::json!({
            "reviewId": id,
            "taskId": task.id,
            "status": s.status,
            "summary": s.findings,
            "findings": shown,
            "error": s.error,
            "ariaLiveHint": hint,
            "timestamp": s.updated_at,
            "traceparent": tp,
        }),
    )
    .await;
    if let Some(e) = failure {
        return Err(ToolError::Deadline(format!(
            "review {id}: {e}; the findings so far are kept; narrow the scope or call create_review again"
        )));
    }
    let top_findings = review.details.iter().take(TOP_FINDINGS).cloned().collect();
    Ok(CreateReviewOut {
        review: review.summary,
        top_findings,
    })
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
            r.feedback.push(fb);
            Ok(())
        })
        .await?;
    let verdict = reviews::to_value(&feedback.verdict);
    publish_review_event(
        &a,
        &ctx.principal,
        "asbr.feedback.submitted",
        serde_json::json!({
            "reviewId": review.summary.id,
            "feedbackId": feedback.id,
            "reviewer": feedback.reviewer,
            "verdict": verdict,
            "comments": feedback.comments.len(),
            "ariaLiveHint": format!(
                "Reviewer {} submitted {} with {} comment(s).",
                feedback.reviewer,
                verdict.as_str().unwrap_or("feedback").replace('_', " "),
                feedback.comments.len()
            ),
            "timestamp": feedback.submitted_at,
            "traceparent": tasks::traceparent(&ctx.meta),
        }),
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
