//! The events the asbr tools publish on the bus: task events (`asbr.task.<Kind>`, data
//! [`TaskEventData`], kept with the task model), `asbr.security.scan_executed`,
//! `asbr.review.created`, `asbr.review.completed` and `asbr.feedback.submitted`:
//! payload shapes and their versions only. Must not publish anything itself; the
//! handlers and the task store do.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::runtime::events::EventPayload;

use super::reviews::{
    FindingSummary, PullRequestSource, ReviewStatus, ReviewerKind, ScopeMode, Verdict,
};
use super::scan::{ScanType, Severity};
use super::tasks::TaskEventData;

/// Task events: one payload type under one event type per kind (`asbr.task.PlanStarted`, …).
impl EventPayload for TaskEventData {
    const TYPE: &'static str = "asbr.task.*";
    const VERSION: u32 = 1;

    fn event_type(&self) -> &str {
        self.r#type.bus_type()
    }
}

/// `asbr.security.scan_executed`: one per security scan.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanExecuted<'a> {
    pub target_path: String,
    pub scan_type: ScanType,
    /// How many findings the scan returned.
    pub findings: usize,
    pub by_severity: &'a BTreeMap<String, u64>,
    pub files_scanned: u64,
    pub duration_ms: u64,
}

impl EventPayload for ScanExecuted<'_> {
    const TYPE: &'static str = "asbr.security.scan_executed";
    const VERSION: u32 = 1;
}

/// `asbr.review.created`: a review started (as a task).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewCreated<'a> {
    pub review_id: &'a str,
    pub task_id: &'a str,
    pub repository_path: &'a str,
    pub scope: ScopeMode,
    pub paths: &'a [String],
    pub pull_request: Option<&'a PullRequestSource>,
    pub reviewers: &'a [ReviewerKind],
    pub status: ReviewStatus,
    pub aria_live_hint: String,
    pub timestamp: &'a str,
    pub traceparent: &'a str,
}

impl EventPayload for ReviewCreated<'_> {
    const TYPE: &'static str = "asbr.review.created";
    const VERSION: u32 = 1;
}

/// `asbr.review.completed`: a review finished or failed, with its first findings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewCompleted<'a> {
    pub review_id: &'a str,
    pub task_id: &'a str,
    pub status: ReviewStatus,
    pub summary: &'a FindingSummary,
    /// The first 100 findings.
    pub findings: Vec<ShownFinding<'a>>,
    pub error: Option<&'a str>,
    pub aria_live_hint: String,
    pub timestamp: &'a str,
    pub traceparent: &'a str,
}

impl EventPayload for ReviewCompleted<'_> {
    const TYPE: &'static str = "asbr.review.completed";
    const VERSION: u32 = 1;
}

/// One finding of [`ReviewCompleted`].
#[derive(Debug, Serialize)]
pub struct ShownFinding<'a> {
    /// The reviewer that found it.
    #[serde(rename = "type")]
    pub reviewer: ReviewerKind,
    pub rule: &'a str,
    pub severity: Severity,
    pub message: &'a str,
    pub file: &'a str,
    pub line: u64,
}

/// `asbr.feedback.submitted`: a reviewer's verdict on a review.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackSubmitted<'a> {
    pub review_id: &'a str,
    pub feedback_id: &'a str,
    pub reviewer: &'a str,
    pub verdict: Verdict,
    /// How many comments the feedback holds.
    pub comments: usize,
    pub aria_live_hint: String,
    pub timestamp: &'a str,
    pub traceparent: &'a str,
}

impl EventPayload for FeedbackSubmitted<'_> {
    const TYPE: &'static str = "asbr.feedback.submitted";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data<T: Serialize>(payload: &T) -> serde_json::Value {
        serde_json::to_value(payload).unwrap()
    }

    /// Each payload serializes exactly as the `json!` it replaced, built from the same
    /// values (subscribers depend on these shapes).
    #[test]
    fn asbr_event_data_keeps_its_shape() {
        let by_severity = BTreeMap::from([("high".to_string(), 2)]);
        let scan = ScanExecuted {
            target_path: "/w".into(),
            scan_type: ScanType::All,
            findings: 2,
            by_severity: &by_severity,
            files_scanned: 7,
            duration_ms: 5,
        };
        assert_eq!(
            data(&scan),
            json!({"targetPath": "/w", "scanType": ScanType::All, "findings": 2,
                   "bySeverity": by_severity, "filesScanned": 7, "durationMs": 5})
        );

        let paths = vec!["src/**".to_string()];
        let reviewers = vec![ReviewerKind::Security, ReviewerKind::Ai];
        let created = ReviewCreated {
            review_id: "r1",
            task_id: "t1",
            repository_path: "/w",
            scope: ScopeMode::Full,
            paths: &paths,
            pull_request: None,
            reviewers: &reviewers,
            status: ReviewStatus::InProgress,
            aria_live_hint: "h".into(),
            timestamp: "now",
            traceparent: "tp",
        };
        assert_eq!(
            data(&created),
            json!({"reviewId": "r1", "taskId": "t1", "repositoryPath": "/w",
                   "scope": ScopeMode::Full, "paths": paths, "pullRequest": null,
                   "reviewers": reviewers, "status": ReviewStatus::InProgress,
                   "ariaLiveHint": "h", "timestamp": "now", "traceparent": "tp"})
        );

        let summary = FindingSummary::default();
        let completed = ReviewCompleted {
            review_id: "r1",
            task_id: "t1",
            status: ReviewStatus::Completed,
            summary: &summary,
            findings: vec![ShownFinding {
                reviewer: ReviewerKind::Style,
                rule: "long-line",
                severity: Severity::Low,
                message: "m",
                file: "a.rs",
                line: 4,
            }],
            error: None,
            aria_live_hint: "h".into(),
            timestamp: "now",
            traceparent: "tp",
        };
        assert_eq!(
            data(&completed),
            json!({"reviewId": "r1", "taskId": "t1", "status": ReviewStatus::Completed,
                   "summary": summary,
                   "findings": [{"type": ReviewerKind::Style, "rule": "long-line",
                                 "severity": Severity::Low, "message": "m", "file": "a.rs",
                                 "line": 4}],
                   "error": null, "ariaLiveHint": "h", "timestamp": "now",
                   "traceparent": "tp"})
        );

        let feedback = FeedbackSubmitted {
            review_id: "r1",
            feedback_id: "f1",
            reviewer: "ai",
            verdict: Verdict::RequestChanges,
            comments: 2,
            aria_live_hint: "h".into(),
            timestamp: "now",
            traceparent: "tp",
        };
        assert_eq!(
            data(&feedback),
            json!({"reviewId": "r1", "feedbackId": "f1", "reviewer": "ai",
                   "verdict": "request_changes", "comments": 2, "ariaLiveHint": "h",
                   "timestamp": "now", "traceparent": "tp"})
        );
    }

    #[test]
    fn task_events_are_published_under_their_kind() {
        use crate::asbr::tasks::TaskEventKind;
        let mut event: TaskEventData = serde_json::from_value(json!({
            "taskId": "t1", "type": "StepCompleted", "status": "running",
            "ariaLiveHint": "h", "timestamp": "now", "traceparent": "tp"
        }))
        .unwrap();
        assert_eq!(event.event_type(), "asbr.task.StepCompleted");
        event.r#type = TaskEventKind::Failed;
        assert_eq!(event.event_type(), "asbr.task.Failed");
        assert_eq!(TaskEventData::VERSION, 1);
    }
}
