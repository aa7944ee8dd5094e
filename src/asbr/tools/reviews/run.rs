//! Running a review for `create_review`: the reviewers chosen, the asbr task and the
//! review record created, each analyser run on the executor's CPU lane with progress,
//! the task steps and review events recorded, and the outcome stored.
//!
//! Owns the run of one review over a resolved target; it must not resolve the target
//! (`reviews/target.rs`) nor touch journals directly (the review and task stores do).

use std::sync::Arc;

use serde_json::Value;

use super::target::ReviewTarget;
use super::{A, Out};
use super::{CreateReviewIn, CreateReviewOut, TOP_FINDINGS, publish_review_event};
use crate::asbr::events::{ReviewCompleted, ReviewCreated, ShownFinding};
use crate::asbr::{
    reviews::{self, FindingSummary, Review, ReviewStatus, ReviewSummary, ReviewerKind, ScopeMode},
    scan,
    tasks::{self, AgentEventKind, TaskInput},
};
use crate::runtime::{
    principal::Principal,
    registry::{CallCtx, ToolError},
};

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

pub(super) async fn run_review(
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
        ReviewCreated {
            review_id: &id,
            task_id: &task.id,
            repository_path: &path,
            scope: review.summary.scope,
            paths: &review.summary.paths,
            pull_request: review.summary.pull_request.as_ref(),
            reviewers: &reviewers,
            status: review.summary.status,
            aria_live_hint: format!(
                "Review of {name} started with {} reviewer(s).",
                kinds.join(", ")
            ),
            timestamp: &review.summary.created_at,
            traceparent: &tp,
        },
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
            r.summary.error = failed.clone();
            r.summary.findings = summary.clone();
            r.details = details.clone();
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
    let shown: Vec<ShownFinding> = review
        .details
        .iter()
        .take(100)
        .map(|f| ShownFinding {
            reviewer: f.reviewer,
            rule: &f.rule,
            severity: f.severity,
            message: &f.message,
            file: &f.file,
            line: f.line,
        })
        .collect();
    publish_review_event(
        a,
        &ctx.principal,
        ReviewCompleted {
            review_id: &id,
            task_id: &task.id,
            status: s.status,
            summary: &s.findings,
            findings: shown,
            error: s.error.as_deref(),
            aria_live_hint: hint,
            timestamp: &s.updated_at,
            traceparent: &tp,
        },
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
