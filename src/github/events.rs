//! The events the GitHub tools publish (`github.issue.action`,
//! `github.pull_request.action`, `github.workflow.status`, `github.contents.action`,
//! `github.release.action`, `github.notifications.read`, `github.label.action`,
//! `github.repository.action`): payload shapes and their
//! versions only. Must not publish anything itself; the handlers do.

use serde::Serialize;

use crate::runtime::events::EventPayload;

use super::model::{Comment, Issue, PullRequest};

/// `github.issue.action`: an issue opened, edited, closed, reopened or commented on.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum IssueAction<'a> {
    /// opened / edited / closed / reopened: the issue as it now is.
    Changed {
        action: &'a str,
        repository: &'a str,
        number: u64,
        title: &'a str,
        state: &'a str,
        author: Option<&'a str>,
        labels: Vec<&'a str>,
        html_url: &'a str,
        updated_at: &'a str,
    },
    /// commented: the new comment.
    Commented {
        action: &'a str,
        repository: &'a str,
        number: u64,
        comment_id: u64,
        author: Option<&'a str>,
        html_url: &'a str,
    },
}

impl<'a> IssueAction<'a> {
    pub fn changed(action: &'a str, repository: &'a str, issue: &'a Issue) -> Self {
        IssueAction::Changed {
            action,
            repository,
            number: issue.number,
            title: &issue.title,
            state: &issue.state,
            author: issue.user.as_ref().map(|u| u.login.as_str()),
            labels: issue.labels.iter().map(|l| l.name.as_str()).collect(),
            html_url: &issue.html_url,
            updated_at: &issue.updated_at,
        }
    }

    pub fn commented(repository: &'a str, number: u64, comment: &'a Comment) -> Self {
        IssueAction::Commented {
            action: "commented",
            repository,
            number,
            comment_id: comment.id,
            author: comment.user.as_ref().map(|u| u.login.as_str()),
            html_url: &comment.html_url,
        }
    }
}

impl EventPayload for IssueAction<'_> {
    const TYPE: &'static str = "github.issue.action";
    const VERSION: u32 = 1;
}

/// `github.pull_request.action`: a pull request opened, edited, closed, reopened,
/// converted to a draft, marked ready for review or merged, its branch updated,
/// reviewers requested, a review submitted or a review comment replied to.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PullRequestAction<'a> {
    /// opened / edited / closed / reopened / converted_to_draft / ready_for_review
    /// (GitHub's action names): the pull request as it now is.
    Changed {
        action: &'a str,
        repository: &'a str,
        number: u64,
        title: &'a str,
        state: &'a str,
        author: Option<&'a str>,
        head: &'a str,
        base: &'a str,
        html_url: &'a str,
        updated_at: &'a str,
        /// The fields `update_pull_request` set (`title`, `body`, `base`, `state`,
        /// `draft`); left out when empty (every other action).
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        changes: Vec<&'a str>,
    },
    /// merged: how, and the merge commit.
    Merged {
        action: &'a str,
        repository: &'a str,
        number: u64,
        merge_method: &'a str,
        sha: Option<&'a str>,
    },
    /// branch_updated: the base merged into the head (GitHub does it asynchronously).
    BranchUpdated {
        action: &'a str,
        repository: &'a str,
        number: u64,
        expected_head_sha: Option<&'a str>,
    },
    /// reviewers_requested: who is now asked to review.
    ReviewersRequested {
        action: &'a str,
        repository: &'a str,
        number: u64,
        reviewers: Vec<&'a str>,
        team_reviewers: Vec<&'a str>,
    },
    /// review_submitted: the review (`state` APPROVED, CHANGES_REQUESTED or COMMENTED)
    /// and how many inline comments it carries.
    ReviewSubmitted {
        action: &'a str,
        repository: &'a str,
        number: u64,
        review_id: u64,
        state: &'a str,
        comments: usize,
    },
    /// review_comment_replied: the reply and the thread's first comment.
    ReviewCommentReplied {
        action: &'a str,
        repository: &'a str,
        number: u64,
        comment_id: u64,
        in_reply_to_id: u64,
    },
}

impl<'a> PullRequestAction<'a> {
    pub fn changed(action: &'a str, repository: &'a str, pr: &'a PullRequest) -> Self {
        PullRequestAction::Changed {
            action,
            repository,
            number: pr.number,
            title: &pr.title,
            state: &pr.state,
            author: pr.user.as_ref().map(|u| u.login.as_str()),
            head: &pr.head.branch,
            base: &pr.base.branch,
            html_url: &pr.html_url,
            updated_at: &pr.updated_at,
            changes: Vec::new(),
        }
    }

    /// The same event naming the fields the call set.
    pub fn with_changes(mut self, fields: Vec<&'a str>) -> Self {
        if let PullRequestAction::Changed { changes, .. } = &mut self {
            *changes = fields;
        }
        self
    }
}

impl EventPayload for PullRequestAction<'_> {
    const TYPE: &'static str = "github.pull_request.action";
    const VERSION: u32 = 1;
}

/// `github.workflow.status`: a workflow dispatched, or a run's re-run or cancel
/// requested.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum WorkflowStatus<'a> {
    /// run_action: the workflow dispatched on a ref (`status`: `dispatched`).
    Dispatched {
        repository: &'a str,
        workflow: &'a str,
        #[serde(rename = "ref")]
        git_ref: &'a str,
        status: &'a str,
    },
    /// rerun_workflow_run / rerun_failed_jobs / cancel_workflow_run: the request GitHub
    /// accepted (`status`: `rerun_requested`, `rerun_failed_jobs_requested` or
    /// `cancel_requested`).
    Run {
        repository: &'a str,
        run_id: u64,
        status: &'a str,
    },
}

impl EventPayload for WorkflowStatus<'_> {
    const TYPE: &'static str = "github.workflow.status";
    const VERSION: u32 = 1;
}

/// `github.contents.action`: files written to a branch.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ContentsAction<'a> {
    /// create_or_update_file / delete_file: one file (`action`: `create`, `update` or
    /// `delete`); `branch` null for the default branch.
    File {
        repository: &'a str,
        action: &'a str,
        path: &'a str,
        branch: Option<&'a str>,
        commit: &'a str,
    },
    /// push_files: one commit writing and deleting several files (`action`: `push`).
    Push {
        repository: &'a str,
        action: &'a str,
        branch: &'a str,
        commit: &'a str,
        written: &'a [String],
        deleted: &'a [String],
    },
}

impl EventPayload for ContentsAction<'_> {
    const TYPE: &'static str = "github.contents.action";
    const VERSION: u32 = 1;
}

/// `github.release.action`: a release created (`action`: `created`; a draft stays
/// unpublished, `draft` says so).
#[derive(Debug, Serialize)]
pub struct ReleaseAction<'a> {
    pub action: &'a str,
    pub repository: &'a str,
    pub release_id: u64,
    pub tag_name: &'a str,
    pub name: Option<&'a str>,
    pub draft: bool,
    pub prerelease: bool,
    pub html_url: &'a str,
}

impl EventPayload for ReleaseAction<'_> {
    const TYPE: &'static str = "github.release.action";
    const VERSION: u32 = 1;
}

/// `github.notifications.read`: notifications marked read up to `last_read_at`, of one
/// repository (`repository`) or all (`null`).
#[derive(Debug, Serialize)]
pub struct NotificationsRead<'a> {
    pub repository: Option<&'a str>,
    pub last_read_at: &'a str,
}

impl EventPayload for NotificationsRead<'_> {
    const TYPE: &'static str = "github.notifications.read";
    const VERSION: u32 = 1;
}

/// `github.label.action`: a label created (`action`: `created`).
#[derive(Debug, Serialize)]
pub struct LabelAction<'a> {
    pub action: &'a str,
    pub repository: &'a str,
    pub name: &'a str,
    pub color: &'a str,
}

impl EventPayload for LabelAction<'_> {
    const TYPE: &'static str = "github.label.action";
    const VERSION: u32 = 1;
}

/// `github.repository.action`: a repository forked (`action`: `forked`, `source` the
/// original) or created (`created`, `source` null).
#[derive(Debug, Serialize)]
pub struct RepositoryAction<'a> {
    pub action: &'a str,
    pub repository: &'a str,
    pub source: Option<&'a str>,
    pub private: bool,
    pub html_url: &'a str,
}

impl EventPayload for RepositoryAction<'_> {
    const TYPE: &'static str = "github.repository.action";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The data shapes subscribers saw before the payloads were typed.
    #[test]
    fn github_event_data_keeps_its_shape() {
        let changed = IssueAction::Changed {
            action: "opened",
            repository: "o/r",
            number: 3,
            title: "t",
            state: "open",
            author: None,
            labels: vec!["bug"],
            html_url: "h",
            updated_at: "u",
        };
        assert_eq!(
            data(&changed),
            json!({"action": "opened", "repository": "o/r", "number": 3, "title": "t",
                   "state": "open", "author": null, "labels": ["bug"], "html_url": "h",
                   "updated_at": "u"})
        );
        let commented = IssueAction::Commented {
            action: "commented",
            repository: "o/r",
            number: 3,
            comment_id: 9,
            author: Some("me"),
            html_url: "h",
        };
        assert_eq!(
            data(&commented),
            json!({"action": "commented", "repository": "o/r", "number": 3, "comment_id": 9,
                   "author": "me", "html_url": "h"})
        );
        let merged = PullRequestAction::Merged {
            action: "merged",
            repository: "o/r",
            number: 4,
            merge_method: "squash",
            sha: None,
        };
        assert_eq!(
            data(&merged),
            json!({"action": "merged", "repository": "o/r", "number": 4,
                   "merge_method": "squash", "sha": null})
        );
        let opened = PullRequestAction::Changed {
            action: "opened",
            repository: "o/r",
            number: 4,
            title: "t",
            state: "open",
            author: Some("me"),
            head: "f",
            base: "main",
            html_url: "h",
            updated_at: "u",
            changes: Vec::new(),
        };
        assert_eq!(
            data(&opened),
            json!({"action": "opened", "repository": "o/r", "number": 4, "title": "t",
                   "state": "open", "author": "me", "head": "f", "base": "main",
                   "html_url": "h", "updated_at": "u"})
        );
        let drafted = PullRequestAction::Changed {
            action: "converted_to_draft",
            repository: "o/r",
            number: 4,
            title: "t",
            state: "open",
            author: None,
            head: "f",
            base: "main",
            html_url: "h",
            updated_at: "u",
            changes: Vec::new(),
        }
        .with_changes(vec!["draft"]);
        assert_eq!(
            data(&drafted),
            json!({"action": "converted_to_draft", "repository": "o/r", "number": 4, "title": "t",
                   "state": "open", "author": null, "head": "f", "base": "main",
                   "html_url": "h", "updated_at": "u", "changes": ["draft"]})
        );
        let reviewed = PullRequestAction::ReviewSubmitted {
            action: "review_submitted",
            repository: "o/r",
            number: 4,
            review_id: 80,
            state: "APPROVED",
            comments: 2,
        };
        assert_eq!(
            wire(&reviewed),
            r#"{"action":"review_submitted","repository":"o/r","number":4,"review_id":80,"state":"APPROVED","comments":2}"#
        );
        let requested = PullRequestAction::ReviewersRequested {
            action: "reviewers_requested",
            repository: "o/r",
            number: 4,
            reviewers: vec!["alice"],
            team_reviewers: vec![],
        };
        assert_eq!(
            wire(&requested),
            r#"{"action":"reviewers_requested","repository":"o/r","number":4,"reviewers":["alice"],"team_reviewers":[]}"#
        );
        let workflow = WorkflowStatus::Dispatched {
            repository: "o/r",
            workflow: "ci.yml",
            git_ref: "main",
            status: "dispatched",
        };
        assert_eq!(
            wire(&workflow),
            r#"{"repository":"o/r","workflow":"ci.yml","ref":"main","status":"dispatched"}"#
        );
        let run = WorkflowStatus::Run {
            repository: "o/r",
            run_id: 12,
            status: "cancel_requested",
        };
        assert_eq!(
            wire(&run),
            r#"{"repository":"o/r","run_id":12,"status":"cancel_requested"}"#
        );
        let file = ContentsAction::File {
            repository: "o/r",
            action: "create",
            path: "a/b.md",
            branch: None,
            commit: "c1",
        };
        assert_eq!(
            wire(&file),
            r#"{"repository":"o/r","action":"create","path":"a/b.md","branch":null,"commit":"c1"}"#
        );
        let written = vec!["a".to_string()];
        let push = ContentsAction::Push {
            repository: "o/r",
            action: "push",
            branch: "main",
            commit: "c2",
            written: &written,
            deleted: &[],
        };
        assert_eq!(
            wire(&push),
            r#"{"repository":"o/r","action":"push","branch":"main","commit":"c2","written":["a"],"deleted":[]}"#
        );
        let release = ReleaseAction {
            action: "created",
            repository: "o/r",
            release_id: 7,
            tag_name: "v1.0.0",
            name: Some("One"),
            draft: false,
            prerelease: true,
            html_url: "h",
        };
        assert_eq!(
            wire(&release),
            r#"{"action":"created","repository":"o/r","release_id":7,"tag_name":"v1.0.0","name":"One","draft":false,"prerelease":true,"html_url":"h"}"#
        );
        assert_eq!(ReleaseAction::VERSION, 1);
        let read = NotificationsRead {
            repository: None,
            last_read_at: "2024-01-01T00:00:00Z",
        };
        assert_eq!(
            wire(&read),
            r#"{"repository":null,"last_read_at":"2024-01-01T00:00:00Z"}"#
        );
        let label = LabelAction {
            action: "created",
            repository: "o/r",
            name: "triage",
            color: "ededed",
        };
        assert_eq!(
            wire(&label),
            r#"{"action":"created","repository":"o/r","name":"triage","color":"ededed"}"#
        );
        let fork = RepositoryAction {
            action: "forked",
            repository: "me/r",
            source: Some("o/r"),
            private: false,
            html_url: "h",
        };
        assert_eq!(
            wire(&fork),
            r#"{"action":"forked","repository":"me/r","source":"o/r","private":false,"html_url":"h"}"#
        );
        assert_eq!(
            (
                IssueAction::VERSION,
                PullRequestAction::VERSION,
                WorkflowStatus::VERSION,
                ContentsAction::VERSION
            ),
            (1, 1, 1, 1)
        );
    }

    fn data<T: Serialize>(payload: &T) -> serde_json::Value {
        serde_json::to_value(payload).unwrap()
    }

    /// The data as sent, keys in order.
    fn wire<T: Serialize>(payload: &T) -> String {
        serde_json::to_string(&data(payload)).unwrap()
    }
}
