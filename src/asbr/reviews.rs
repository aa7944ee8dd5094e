//! Reviews: a local repository path inside the workspace roots (or a pull request's
//! changed files, fetched by `pr_checkout.rs`), a scope mode (`full`, `incremental`,
//! `security-only`), optional path globs and reviewers. The deterministic reviewers
//! (`security` through the security scan; `performance`, `architecture` and `style`
//! through `review_rules.rs`) run as one asbr task; the model is the `ai` reviewer and
//! answers with `submit_feedback`. Scopes live in `reviews/scope.rs`, running the
//! analysers in `reviews/analysis.rs`.
//!
//! Owns the `reviews` stream of the runtime's store under `<state-dir>/asbr/` (one full
//! review record per change, last write wins; compacted in the background, once the log
//! passes [`MAX_LOG_BYTES`], to the last record of each review the memory bounds keep)
//! and the bounded in-memory index rebuilt from it on start. A review found
//! running at start-up was interrupted by a restart and is marked failed. Must not touch
//! tool registration or other toolsets.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    principal::Principal,
    store::{Backend, Compaction, Fold, Fsync, Replicated, StreamOptions},
};

mod analysis;
mod scope;

pub use analysis::{
    Analysers, ReviewerOutcome, run_pack, run_security, severity_name, summarise, to_value,
};
pub use scope::Scope;

use super::{AsbrError, open_replicated, scan::Severity};

const STREAM: &str = "reviews";
/// Most reviews kept in memory (the oldest finished ones leave first).
pub const MAX_REVIEWS: usize = 2_000;
/// Most memory the kept reviews may take (estimated from their text), so 2,000 reviews
/// of 1,000 findings each cannot hold hundreds of MiB.
pub const MAX_REVIEW_BYTES: usize = 64 << 20;
/// Most findings kept per review.
pub const MAX_REVIEW_FINDINGS: usize = 1_000;
/// Most feedback entries kept per review.
pub const MAX_FEEDBACK: usize = 100;
/// Log size past which the stream is compacted to the last record of each kept review.
pub const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(
        "reviewId: review {0} not found (only the newest reviews are kept, at most {MAX_REVIEWS} and 64 MiB); call list_reviews"
    )]
    NotFound(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Business(String),
    #[error("could not journal the review: {0}")]
    Journal(String),
}

#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum ReviewerKind {
    // The security scan (secrets, SAST, dependencies when advisories are configured).
    Security,
    // Nested loops, queries/requests inside loops, unbounded reads.
    Performance,
    // Large modules, functions with many parameters, deep nesting, wildcard imports.
    Architecture,
    // Long lines, long functions, TODO/FIXME markers, trailing whitespace.
    Style,
    // The model itself: runs no analyser, answers with submit_feedback.
    Ai,
}

impl ReviewerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Security => "security",
            Self::Performance => "performance",
            Self::Architecture => "architecture",
            Self::Style => "style",
            Self::Ai => "ai",
        }
    }
}

/// Which files a review covers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeMode {
    /// Every file (within `paths` when given).
    Full,
    /// A pull request's changed files; for a local directory, the files modified since
    /// the last completed review of the same directory (every file the first time).
    #[default]
    Incremental,
    /// Every file, security reviewer only.
    SecurityOnly,
}

/// Reads the scope of records written before scope modes existed (a list of globs,
/// which always meant the whole selection) as `full`.
fn scope_mode_compat<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ScopeMode, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Mode(ScopeMode),
        Globs(#[allow(dead_code)] Vec<serde::de::IgnoredAny>),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Mode(m) => m,
        Stored::Globs(_) => ScopeMode::Full,
    })
}

/// Where a pull-request review's files came from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestSource {
    /// owner/name
    pub repository: String,
    pub pull_request_id: u64,
    /// The head commit the files were read at.
    pub head_sha: String,
    /// Changed files fetched and reviewed.
    pub files: u64,
    /// Changed files not reviewed, each with why (removed, binary, too large, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    RequestChanges,
    Comment,
}

/// One finding of a review.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewFinding {
    /// security | performance | style
    pub reviewer: ReviewerKind,
    pub rule: String,
    pub severity: Severity,
    /// Path relative to the repository.
    pub file: String,
    pub line: u64,
    pub message: String,
    /// The line concerned (secrets redacted).
    pub excerpt: String,
}

/// Finding counts of a review.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingSummary {
    pub total: u64,
    pub by_severity: BTreeMap<String, u64>,
    pub by_reviewer: BTreeMap<String, u64>,
    pub files_scanned: u64,
    /// More findings existed than the 1,000 kept.
    pub truncated: bool,
}

/// One comment of a feedback.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Comment {
    /// Path relative to the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub line: Option<u64>,
    pub severity: Severity,
    #[schemars(length(min = 1, max = 10000))]
    pub message: String,
}

/// Feedback a reviewer submitted.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    pub id: String,
    pub reviewer: String,
    pub verdict: Verdict,
    pub comments: Vec<Comment>,
    pub submitted_at: String,
}

/// A review without its findings and feedback bodies.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewSummary {
    pub id: String,
    /// The canonical repository path, or "owner/name#N" for a pull request.
    pub repository_path: String,
    #[serde(deserialize_with = "scope_mode_compat")]
    pub scope: ScopeMode,
    /// Path globs the review was limited to (empty: no limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// For an incremental review of a local directory: the earlier review whose start
    /// bounds which files count as modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_since: Option<IncrementalBase>,
    /// For a pull-request review: what was fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestSource>,
    pub reviewers: Vec<ReviewerKind>,
    pub status: ReviewStatus,
    /// The asbr task tracking the review's work (see watch_task_events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub findings: FindingSummary,
    /// The latest feedback verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    pub feedback_count: u64,
    /// Why the review failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The principal that created the review; only it may see the review (absent on
    /// reviews recorded before owners were kept: everyone may see those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl ReviewSummary {
    fn visible_to(&self, principal: &Principal) -> bool {
        principal.may_access(self.owner.as_deref(), false)
    }
}

/// The earlier review an incremental review starts from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IncrementalBase {
    pub review_id: String,
    /// Files modified at or after this time were reviewed.
    pub created_at: String,
}

/// A full review (one journal record).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    #[serde(flatten)]
    pub summary: ReviewSummary,
    pub details: Vec<ReviewFinding>,
    pub feedback: Vec<Feedback>,
}

/// A review's memory, estimated from its text (strings dominate; a fixed cost per
/// finding and comment covers the rest).
fn estimated_bytes(r: &Review) -> usize {
    let findings: usize = r
        .details
        .iter()
        .map(|f| 64 + f.rule.len() + f.file.len() + f.message.len() + f.excerpt.len())
        .sum();
    let feedback: usize = r
        .feedback
        .iter()
        .flat_map(|f| &f.comments)
        .map(|c| 64 + c.message.len() + c.file.as_ref().map_or(0, String::len))
        .sum();
    512 + r.summary.repository_path.len() + findings + feedback
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Keeps at most `limits` = (reviews, estimated bytes) of `reviews`, dropping the oldest
/// finished ones first.
fn evict(reviews: &mut HashMap<String, Review>, (max_reviews, max_bytes): (usize, usize)) {
    let mut bytes: usize = reviews.values().map(estimated_bytes).sum();
    if reviews.len() <= max_reviews && bytes <= max_bytes {
        return;
    }
    let mut done: Vec<(String, usize)> = reviews
        .values()
        .filter(|r| {
            matches!(
                r.summary.status,
                ReviewStatus::Completed | ReviewStatus::Failed
            )
        })
        .map(|r| (r.summary.id.clone(), estimated_bytes(r)))
        .collect();
    done.sort();
    for (id, size) in done {
        if reviews.len() <= max_reviews && bytes <= max_bytes {
            break;
        }
        reviews.remove(&id);
        bytes -= size;
    }
}

/// The compaction rule: the last record of each review that the memory bounds keep (what
/// a replay rebuilds), in the order of those records.
fn kept_records(records: Vec<Review>, limits: (usize, usize)) -> Vec<Review> {
    let mut last = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        last.insert(r.summary.id.clone(), i);
    }
    let mut kept: HashMap<String, Review> = records
        .into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(&r.summary.id) == Some(i))
        .map(|(_, r)| (r.summary.id.clone(), r))
        .collect();
    evict(&mut kept, limits);
    let mut out: Vec<(usize, Review)> = kept
        .into_values()
        .map(|r| (last[&r.summary.id], r))
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

pub struct ReviewStore {
    log: Replicated<Review>,
    reviews: RwLock<HashMap<String, Review>>,
    /// Serialises read-modify-write changes so concurrent feedback is never lost.
    gate: tokio::sync::Mutex<()>,
    /// (most reviews, most estimated bytes) kept in memory.
    limits: (usize, usize),
}

impl Fold<Review> for ReviewStore {
    fn apply(&self, review: Review) {
        let mut reviews = self.reviews.write();
        reviews.insert(review.summary.id.clone(), review);
        evict(&mut reviews, self.limits);
    }

    fn reset(&self, records: Vec<Review>) {
        let mut reviews = by_id(records);
        evict(&mut reviews, self.limits);
        *self.reviews.write() = reviews;
    }
}

fn by_id(records: Vec<Review>) -> HashMap<String, Review> {
    records
        .into_iter()
        .map(|r| (r.summary.id.clone(), r))
        .collect()
}

impl ReviewStore {
    pub fn open(backend: &dyn Backend, policy: Fsync) -> Result<Self, AsbrError> {
        Self::open_with_limits(backend, policy, (MAX_REVIEWS, MAX_REVIEW_BYTES))
    }

    /// [`ReviewStore::open`] keeping at most `limits` = (reviews, estimated bytes).
    pub fn open_with_limits(
        backend: &dyn Backend,
        policy: Fsync,
        limits: (usize, usize),
    ) -> Result<Self, AsbrError> {
        Self::open_with(backend, StreamOptions::new(policy, MAX_LOG_BYTES), limits)
    }

    /// [`ReviewStore::open_with_limits`] with explicit stream options (tests use a small
    /// log). A review found pending or running on a local store was interrupted by the
    /// restart and is marked failed; on a shared store another replica may be running
    /// it, so it is left as it is.
    pub fn open_with(
        backend: &dyn Backend,
        options: StreamOptions,
        limits: (usize, usize),
    ) -> Result<Self, AsbrError> {
        let compaction = Compaction::new(move |records| kept_records(records, limits));
        let (log, records) = open_replicated(backend, STREAM, options, compaction)?;
        let mut reviews = by_id(records);
        if !log.is_shared() {
            mark_interrupted(&mut reviews);
        }
        evict(&mut reviews, limits);
        Ok(ReviewStore {
            log,
            reviews: RwLock::new(reviews),
            gate: tokio::sync::Mutex::new(()),
            limits,
        })
    }

    /// On a shared store, keeps this replica's copy current (see [`Replicated::follow`]).
    pub fn follow(self: &Arc<Self>) {
        self.log.follow(self);
    }

    /// Applies what other replicas wrote before this call (shared store only), for a
    /// read that must see it.
    pub async fn catch_up(&self) {
        self.log.catch_up_or_log(self).await
    }

    /// Journals `review`, then makes it visible (keeping at most [`MAX_REVIEWS`] reviews
    /// and [`MAX_REVIEW_BYTES`] of them in memory, the oldest finished ones leaving
    /// first).
    pub async fn put(&self, mut review: Review) -> Result<Review, ReviewError> {
        review.summary.updated_at = now();
        review.summary.feedback_count = review.feedback.len() as u64;
        self.log
            .append(review.clone(), self)
            .await
            .map_err(|e| ReviewError::Journal(e.to_string()))?;
        Ok(review)
    }

    /// Makes queued writes (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.log.close().await
    }

    /// The newest completed review `principal` may see of the whole of
    /// `repository_path` (no `paths` limit), the base of an incremental review.
    pub fn last_completed(
        &self,
        repository_path: &str,
        principal: &Principal,
    ) -> Option<IncrementalBase> {
        self.reviews
            .read()
            .values()
            .map(|r| &r.summary)
            .filter(|s| s.visible_to(principal))
            .filter(|s| s.repository_path == repository_path && s.paths.is_empty())
            .filter(|s| s.status == ReviewStatus::Completed)
            .max_by(|a, b| a.id.cmp(&b.id))
            .map(|s| IncrementalBase {
                review_id: s.id.clone(),
                created_at: s.created_at.clone(),
            })
    }

    /// Applies `change` to review `id`, when `principal` may see it, and journals the
    /// result, one change at a time: on a shared store, on the review as every replica
    /// wrote it, again when another replica changed the reviews meanwhile (so
    /// concurrent feedback through two replicas is never lost); `change` may run more
    /// than once.
    pub async fn update(
        &self,
        id: &str,
        principal: &Principal,
        change: impl Fn(&mut Review) -> Result<(), ReviewError>,
    ) -> Result<Review, ReviewError> {
        let _gate = self.gate.lock().await;
        let make = || {
            let mut review = self.get(id, principal)?;
            change(&mut review)?;
            review.summary.updated_at = now();
            review.summary.feedback_count = review.feedback.len() as u64;
            Ok(review)
        };
        let mut made = None;
        let appended = self
            .log
            .append_current(self, || {
                let review = make()?;
                made = Some(review.clone());
                Ok(review)
            })
            .await
            .map_err(|e| ReviewError::Journal(e.to_string()))?;
        appended?;
        made.ok_or_else(|| ReviewError::Journal("no review was written".into()))
    }

    /// Review `id` when `principal` may see it; not found (as a missing one) otherwise.
    pub fn get(&self, id: &str, principal: &Principal) -> Result<Review, ReviewError> {
        self.reviews
            .read()
            .get(id)
            .filter(|r| r.summary.visible_to(principal))
            .cloned()
            .ok_or_else(|| ReviewError::NotFound(id.to_string()))
    }

    /// Summaries `principal` may see, newest first (ids are time-ordered), after
    /// `before` when given.
    pub fn list(
        &self,
        principal: &Principal,
        status: Option<ReviewStatus>,
        reviewer: Option<ReviewerKind>,
        before: Option<&str>,
        limit: usize,
    ) -> (Vec<ReviewSummary>, bool) {
        let mut items: Vec<ReviewSummary> = self
            .reviews
            .read()
            .values()
            .map(|r| &r.summary)
            .filter(|s| s.visible_to(principal))
            .filter(|s| status.is_none_or(|st| s.status == st))
            .filter(|s| reviewer.is_none_or(|k| s.reviewers.contains(&k)))
            .filter(|s| before.is_none_or(|b| s.id.as_str() < b))
            .cloned()
            .collect();
        items.sort_by(|a, b| b.id.cmp(&a.id));
        let more = items.len() > limit;
        items.truncate(limit);
        (items, more)
    }
}

fn mark_interrupted(reviews: &mut HashMap<String, Review>) {
    for r in reviews.values_mut() {
        if matches!(
            r.summary.status,
            ReviewStatus::Pending | ReviewStatus::InProgress
        ) {
            r.summary.status = ReviewStatus::Failed;
            r.summary.error =
                Some("interrupted by a server restart; call create_review again".into());
        }
    }
}

#[cfg(test)]
mod tests;
