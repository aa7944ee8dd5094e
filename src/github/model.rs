//! Slim, documented output shapes for GitHub tools, deserialised straight from GitHub's
//! JSON (unknown fields are dropped), so a result carries what a model needs — numbers,
//! titles, states, users, labels, timestamps, `html_url` — and not raw payloads.
//!
//! Owns shapes only; no requests, no tool logic.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A GitHub account, by login.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct User {
    pub login: String,
}

/// A label, by name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Label {
    pub name: String,
}

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An issue (or, when `is_pull_request`, a pull request seen through the issues API).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    pub user: Option<User>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignees: Vec<User>,
    #[serde(default)]
    pub comments: u64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub closed_at: Option<String>,
    pub html_url: String,
    /// Present on pull requests listed through the issues API.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub pull_request: Option<Value>,
}

impl Issue {
    pub fn is_pull_request(&self) -> bool {
        self.pull_request.is_some()
    }
}

/// An issue with its body.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IssueDetail {
    #[serde(flatten)]
    pub issue: Issue,
    /// Markdown body, cut to `maxBodyBytes` (see `body_truncated`).
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_truncated: bool,
}

/// A comment on an issue or pull request.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Comment {
    pub id: u64,
    pub user: Option<User>,
    #[serde(default)]
    pub body: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub html_url: String,
}

/// One end of a pull request.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PrRef {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// A pull request, as listed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    pub user: Option<User>,
    pub head: PrRef,
    pub base: PrRef,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<Label>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub merged_at: Option<String>,
    pub html_url: String,
}

/// A pull request with body and change figures.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PullRequestDetail {
    #[serde(flatten)]
    pub pr: PullRequest,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_truncated: bool,
    #[serde(default)]
    pub merged: bool,
    #[serde(default)]
    pub mergeable: Option<bool>,
    #[serde(default)]
    pub mergeable_state: Option<String>,
    #[serde(default)]
    pub comments: u64,
    #[serde(default)]
    pub commits: u64,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    #[serde(default)]
    pub changed_files: u64,
}

/// A changed file of a pull request, commit or comparison.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChangedFile {
    pub filename: String,
    /// added, removed, modified, renamed, ...
    pub status: String,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    #[serde(default)]
    pub changes: u64,
    /// The file's unified patch, cut to `maxPatchBytes` (see `patch_truncated`).
    #[serde(default)]
    pub patch: Option<String>,
    #[serde(default)]
    pub patch_truncated: bool,
}

impl ChangedFile {
    pub fn cap_patch(mut self, max: usize) -> Self {
        if let Some(p) = &mut self.patch
            && p.len() > max
        {
            let mut end = max;
            while !p.is_char_boundary(end) {
                end -= 1;
            }
            p.truncate(end);
            self.patch_truncated = true;
        }
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct License {
    #[serde(default)]
    pub spdx_id: Option<String>,
}

/// A repository.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Repository {
    pub full_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub archived: bool,
    pub default_branch: String,
    pub html_url: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub topics: Vec<String>,
    #[serde(default)]
    pub license: Option<License>,
    #[serde(default)]
    pub stargazers_count: u64,
    #[serde(default)]
    pub forks_count: u64,
    #[serde(default)]
    pub open_issues_count: u64,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub pushed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CommitRef {
    pub sha: String,
}

/// A branch and its head commit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Branch {
    pub name: String,
    pub commit: CommitRef,
    #[serde(default)]
    pub protected: bool,
}

#[derive(Deserialize)]
struct RawCommitAuthor {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    date: Option<String>,
}

#[derive(Deserialize)]
struct RawCommitInner {
    message: String,
    #[serde(default)]
    author: Option<RawCommitAuthor>,
}

#[derive(Deserialize)]
struct RawCommit {
    sha: String,
    commit: RawCommitInner,
    #[serde(default)]
    author: Option<User>,
    #[serde(default)]
    html_url: Option<String>,
}

/// A commit, as listed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Commit {
    pub sha: String,
    /// The first line of the message.
    pub title: String,
    pub author_name: Option<String>,
    pub author_login: Option<String>,
    pub date: Option<String>,
    pub html_url: Option<String>,
}

impl<'de> Deserialize<'de> for Commit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawCommit::deserialize(d)?;
        let author = raw.commit.author;
        Ok(Commit {
            sha: raw.sha,
            title: raw.commit.message.lines().next().unwrap_or("").to_string(),
            author_name: author.as_ref().and_then(|a| a.name.clone()),
            date: author.and_then(|a| a.date),
            author_login: raw.author.map(|u| u.login),
            html_url: raw.html_url,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CommitStats {
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    #[serde(default)]
    pub total: u64,
}

/// A workflow run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    /// queued, in_progress, completed, ...
    #[serde(default)]
    pub status: Option<String>,
    /// success, failure, cancelled, ... (once completed)
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub run_number: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
    pub html_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RepoName {
    pub full_name: String,
}

/// A code search hit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CodeHit {
    pub name: String,
    pub path: String,
    pub sha: String,
    pub repository: RepoName,
    pub html_url: String,
}

/// A repository search hit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RepoHit {
    pub full_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub stargazers_count: u64,
    pub html_url: String,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The authenticated account.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    pub login: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type", default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub public_repos: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_takes_first_line_and_author() {
        let c: Commit = serde_json::from_value(serde_json::json!({
            "sha": "abc", "commit": {"message": "Fix it\n\nlong text", "author": {"name": "A", "date": "2026-01-01T00:00:00Z"}},
            "author": {"login": "a"}, "html_url": "https://github.com/o/r/commit/abc"
        }))
        .unwrap();
        assert_eq!(c.title, "Fix it");
        assert_eq!(c.author_login.as_deref(), Some("a"));
    }

    #[test]
    fn issue_marks_pull_requests() {
        let i: Issue = serde_json::from_value(serde_json::json!({
            "number": 1, "title": "t", "state": "open", "user": null, "labels": null,
            "created_at": "x", "updated_at": "y", "html_url": "h", "pull_request": {"url": "u"}
        }))
        .unwrap();
        assert!(i.is_pull_request());
        assert!(
            serde_json::to_value(&i)
                .unwrap()
                .get("pull_request")
                .is_none()
        );
    }
}
