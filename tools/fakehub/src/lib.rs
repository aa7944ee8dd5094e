//! fakehub: a fake GitHub REST API (and the two GraphQL mutations REST lacks) on
//! loopback that behaves like the real one.
//!
//! Used in-process by integration tests (as a library) and by benchmark scripts (as the
//! `fakehub` binary). It serves deterministic seed data (`octo/hello`, `octo/tools`) and
//! imitates the parts of GitHub a careful client must handle: primary rate limits with
//! `x-ratelimit-*` headers on every answer, secondary limits (concurrency and points per
//! minute per endpoint, with an optional `retry-after` and a penalty window), ETag /
//! `Last-Modified` conditional requests (304 not charged), `link` pagination, GitHub App
//! installation tokens (RS256 JWT verification) and the `/api/v3` Enterprise layout.
//!
//! # Library API
//!
//! ```text
//! pub struct AppConfig { pub app_id: u64, pub installation_id: u64, pub public_key_pem: String, pub token_ttl: Duration }
//! #[derive(Clone)] pub struct FakeConfig {
//!     pub latency: Duration,             // slept before answering every request (default 0)
//!     pub max_concurrent: usize,         // in-flight requests per token (default 100)
//!     pub points_per_minute: u32,        // per token per endpoint, GET/HEAD 1, writes 5 (default 900)
//!     pub retry_after_secs: Option<u64>, // retry-after on secondary answers; None = absent (default Some(60))
//!     pub core_limit: u32, pub search_limit: u32, pub code_search_limit: u32, // 5000/h, 30/min, 10/min
//!     pub app: Option<AppConfig>,
//!     pub ignore_accept: bool,           // answer JSON whatever the Accept (default false)
//! }
//! pub async fn spawn(config: FakeConfig, addr: SocketAddr) -> std::io::Result<FakeHub>;
//! impl FakeHub {
//!     pub fn addr(&self) -> SocketAddr;
//!     pub fn base_url(&self) -> String;            // "http://127.0.0.1:PORT"
//!     pub fn stats(&self) -> Stats;                // snapshot
//!     pub fn reset_stats(&self);                   // zero stats AND limiter state (budgets, windows, penalties)
//!     pub fn inject_server_errors(&self, n: u32, status: u16);
//!     pub fn force_secondary(&self, n: u32);
//!     pub fn set_latency(&self, d: Duration);
//!     pub fn set_retry_after(&self, secs: Option<u64>);
//!     pub fn set_ignore_accept(&self, on: bool);
//!     pub fn set_job_log(&self, repo: &str, job_id: u64, log: String) -> bool;
//!     pub fn rename_default_branch(&self, repo: &str, branch: &str);
//!     pub fn set_merge_methods(&self, repo: &str, merge: bool, squash: bool, rebase: bool);
//!     pub fn revoke_installation_tokens(&self);
//!     pub fn shutdown(&self);
//! }
//! ```
//!
//! The server runs on a tokio task and stops on [`FakeHub::shutdown`] or when the last
//! clone of the [`FakeHub`] handle is dropped.
//!
//! # HTTP control endpoints (for scripts; never counted)
//!
//! * `GET /_fake/stats` → [`Stats`] as JSON
//! * `POST /_fake/reset` → same as [`FakeHub::reset_stats`]
//! * `POST /_fake/control` with JSON `{inject_server_errors?: {n, status}, force_secondary?: n,
//!   latency_ms?: n, retry_after_secs?: n|null, revoke_installation_tokens?: bool}`
//! * `POST /_fake/control` with JSON `{red_build: {repository?, branch}}` → opens a pull
//!   request from the new `branch` whose CI run failed in `test` (its log names
//!   `src/lib.rs` and `src/main.rs`); answers `{number, branch, head_sha, run_id}`
//!   (`scenarios.rs`; for tools/bench/red_build_bench.py)
//!
//! # Pipeline of one request
//!
//! route match → auth (`bad`, revoked or expired installation token → 401) → secondary
//! admission (forced, penalty window, concurrency, points) → latency → injected 5xx →
//! primary budget (403 at remaining 0) → handler → conditional check (304, not charged
//! when `Authorization` was sent) → headers.
//!
//! Details worth knowing:
//! * Requests without credentials share the key `anonymous` (core 60/h, search 10/min).
//! * Refused requests (401, secondary) also wait `latency`, but outside the in-flight count.
//! * A secondary refusal opens a penalty window (`retry_after_secs`, or 60 s when `None`)
//!   during which every request of that token is refused too; refusals inside the
//!   window do not extend it. Secondary answers are always 403.
//! * Injected 5xx answers are charged one unit, like any answered request.
//!   Forced secondaries and injected errors skip `/rate_limit`.
//! * Unknown routes answer 404 and are charged to `core` (route key `METHOD (unmatched)`).
//! * GraphQL (`graphql.rs`): `POST /graphql`, or `/api/graphql` beside the `/api/v3`
//!   layout (both counted as route `POST /graphql`), serves only the mutations
//!   `convertPullRequestToDraft` and `markPullRequestReadyForReview` (pull request by
//!   `pullRequestId`, the `node_id` of its REST JSON; answer `{"data": {"<mutation>":
//!   {"pullRequest": {"id", "number", "isDraft", "updatedAt"}}}}`). It goes through the
//!   same pipeline (secondary admission at 5 points, rate-limit headers) and is charged
//!   to the `graphql` bucket (`x-ratelimit-resource: graphql`, `core_limit` per hour).
//!   Errors are HTTP 200 with `data: null` and `errors` (`NOT_FOUND` for an unknown node
//!   id; any other document is refused naming the two mutations); no token → 401.
//! * `link` URLs keep the request's query parameters (in order) and replace or append `page`.
//! * Extra route beyond the REST API: `GET /raw/{owner}/{repo}/{ref}/{path}` (GHES raw
//!   layout used by the official MCP server; `download_url` points there). Also
//!   `GET /repos/{owner}/{repo}/actions/workflows` and `.../workflows/{id or file
//!   name}/runs`. Dispatched workflow runs move from
//!   `queued` (< 5 s) to `in_progress` (< 15 s) to `completed`/`success`.
//! * Runs have jobs (build, test, lint; seeded run 9003's `test` fails and its log names
//!   `src/lib.rs` and `src/main.rs`), served as jobs, as check runs of the head commit
//!   and as artifacts; re-run, re-run failed jobs and cancel change them. Job logs answer
//!   302 to a second loopback listener (the log host, `logs.rs`) that refuses any request
//!   carrying `Authorization`.
//! * One git object model: the contents API writes (`PUT`/`DELETE /contents/{path}`) and
//!   the Git Data API (`/git/blobs`, `/git/trees`, `/git/commits`, `PATCH /git/refs`, fast
//!   forward unless `force`) make commits whose trees the contents API then serves; every
//!   push to a branch queues a CI run. Commit statuses are seeded on two `main` commits.
//! * Tags and releases (`releases.rs`): `octo/hello` has tags v0.0.1, v0.1.0, v0.2.0
//!   (annotated: `/git/ref/tags/v0.2.0` points at a tag object served by `/git/tags/{sha}`)
//!   and v0.3.0-rc.1, and releases v0.1.0, v0.2.0 (the latest), v0.3.0-rc.1 (prerelease)
//!   and a v0.3.0 draft. `POST /releases` answers 422 `already_exists` for a tag that has
//!   a release and creates a missing tag from `target_commitish` unless the release is a draft.
//! * Pull request writes and reviews (`reviews.rs`): `PATCH /pulls/{n}`, `PUT
//!   /pulls/{n}/update-branch` (a merge commit of the base on the head; 422 when
//!   `expected_head_sha` is stale or both sides changed a path), requested reviewers
//!   (collaborators octocat, alice, bob; teams core, docs), reviews whose inline comments
//!   must address lines of the diff (422 "Pull request review thread line must be part
//!   of the diff" otherwise), review comments and threaded replies.
//! * Triage (`triage.rs`, forks and new repositories in `forks.rs`): notifications of the token's user (`octocat`; six seeded, five
//!   unread) with `all`/`participating`/`since`/`before` and mark-read (global or per
//!   repository); labels (list, get by name case-insensitively, create, 422
//!   `already_exists`); code scanning, Dependabot and secret scanning alerts on
//!   `octo/hello` (secret alerts carry `secret`, as GitHub's do; other repositories answer
//!   404/403 as when the feature is off); forks (`POST /forks`, 202, a new repository
//!   `octocat/{name}` or `octo/{name}` with the source's branches and commits) and new
//!   repositories (`POST /user/repos`, `/orgs/octo/repos`; 422 when the name is taken).

mod data;
mod forks;
mod git;
mod graphql;
mod limits;
mod logs;
mod releases;
mod reviews;
mod routes;
mod scenarios;
mod server;
mod triage;
mod writes;

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// GitHub App settings: enables `POST /app/installations/{id}/access_tokens`.
#[derive(Clone, Debug)]
pub struct AppConfig {
    pub app_id: u64,
    pub installation_id: u64,
    /// RSA public key (PEM, SPKI or PKCS#1) that verifies the app's RS256 JWTs.
    pub public_key_pem: String,
    /// Lifetime of the installation tokens handed out.
    pub token_ttl: Duration,
}

/// Behaviour knobs of the fake. See the crate docs for defaults.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Added before answering every request (default 0).
    pub latency: Duration,
    /// Secondary limit: in-flight requests per token (default 100).
    pub max_concurrent: usize,
    /// Secondary limit: points per token per endpoint per 60 s sliding window;
    /// GET/HEAD/OPTIONS 1 point, writes 5 (default 900).
    pub points_per_minute: u32,
    /// `retry-after` on secondary-limit answers; `None` = header absent (default `Some(60)`).
    pub retry_after_secs: Option<u64>,
    /// Primary budget per token per hour (default 5000).
    pub core_limit: u32,
    /// Primary budget per token per minute for search (default 30).
    pub search_limit: u32,
    /// Primary budget per token per minute for code search (default 10).
    pub code_search_limit: u32,
    /// GitHub App installation-token support (default `None`: the endpoint answers 404).
    pub app: Option<AppConfig>,
    /// Answer as if every request asked for JSON, whatever its `Accept` (a proxy or
    /// upstream that ignores media types; default false).
    pub ignore_accept: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            latency: Duration::ZERO,
            max_concurrent: 100,
            points_per_minute: 900,
            retry_after_secs: Some(60),
            core_limit: 5000,
            search_limit: 30,
            code_search_limit: 10,
            app: None,
            ignore_accept: false,
        }
    }
}

/// Counters since start or the last reset.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Every request except `/_fake/*`.
    pub requests: u64,
    /// 304 answers.
    pub not_modified: u64,
    /// Secondary-limit answers.
    pub secondary_limited: u64,
    /// 403 answers with remaining 0.
    pub primary_limited: u64,
    /// Injected 5xx answers.
    pub server_errors: u64,
    /// Highest number of concurrent admitted requests observed (any token).
    pub max_in_flight: u64,
    /// `POST /app/installations/{id}/access_tokens` requests.
    pub token_requests: u64,
    /// Requests to the log host (job-log downloads after the API's 302).
    pub log_requests: u64,
    /// Log-host requests refused because they carried an `Authorization` header.
    pub log_authorization_rejected: u64,
    /// `"GET /repos/{owner}/{repo}/issues/{number}"` → count (route template).
    pub by_route: BTreeMap<String, u64>,
    /// Token's first 8 chars + `…` (or `anonymous`) → per-token counters.
    pub by_token: BTreeMap<String, TokenStats>,
}

/// Per-token counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TokenStats {
    pub requests: u64,
    /// Bucket (`core`, `search`, `code_search`, `graphql`) → units charged to the primary budget.
    pub charged: BTreeMap<String, u64>,
    pub not_modified: u64,
    pub secondary_limited: u64,
    pub max_in_flight: u64,
}

struct Handle {
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A running fake. Cheap to clone; the server stops on [`FakeHub::shutdown`] or when
/// the last clone is dropped.
#[derive(Clone)]
pub struct FakeHub {
    handle: Arc<Handle>,
}

/// Bind `addr` (port 0 allowed) and serve the fake on a tokio task.
pub async fn spawn(config: FakeConfig, addr: SocketAddr) -> std::io::Result<FakeHub> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(server::Shared::new(config, addr));
    // The log host: same IP, another port (another origin), like GitHub's blob storage.
    let log_listener = tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?;
    let _ = shared
        .log_base
        .set(format!("http://{}", log_listener.local_addr()?));
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let mut log_rx = rx.clone();
    let log_app = logs::router(shared.clone());
    tokio::spawn(async move {
        let stopped = async move {
            let _ = log_rx.wait_for(|s| *s).await;
        };
        let _ = axum::serve(log_listener, log_app)
            .with_graceful_shutdown(stopped)
            .await;
    });
    let app = server::router(shared.clone());
    tokio::spawn(async move {
        let stopped = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
    });
    Ok(FakeHub {
        handle: Arc::new(Handle { shared, addr, stop }),
    })
}

impl FakeHub {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// `http://IP:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.handle.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.handle.shared.gate.lock().stats.clone()
    }

    /// Zero the counters and the limiter state (primary budgets, point windows,
    /// secondary penalties); seed data and issued tokens are kept.
    pub fn reset_stats(&self) {
        self.handle.shared.gate.lock().reset();
    }

    /// The next `n` requests (excluding `/_fake/*` and `/rate_limit`) answer `status`.
    pub fn inject_server_errors(&self, n: u32, status: u16) {
        self.handle.shared.gate.lock().inject = (n, status);
    }

    /// The next `n` requests (excluding `/_fake/*` and `/rate_limit`) answer a
    /// secondary-limit 403 (which also opens the token's penalty window).
    pub fn force_secondary(&self, n: u32) {
        self.handle.shared.gate.lock().force_secondary = n;
    }

    pub fn set_latency(&self, d: Duration) {
        self.handle.shared.config.lock().latency = d;
    }

    pub fn set_retry_after(&self, secs: Option<u64>) {
        self.handle.shared.config.lock().retry_after_secs = secs;
    }

    /// Which merge methods `owner/name` allows (`allow_merge_commit`,
    /// `allow_squash_merge`, `allow_rebase_merge`); a merge by another is refused (405).
    pub fn set_merge_methods(&self, repo: &str, merge: bool, squash: bool, rebase: bool) {
        let mut world = self.handle.shared.world.lock();
        if let Some(r) = world
            .repos
            .iter_mut()
            .find(|r| format!("{}/{}", r.owner, r.name) == repo)
        {
            r.merge_methods = [merge, squash, rebase];
        }
    }

    /// Renames `owner/name`'s default branch (with its head) to `branch`, so a client
    /// that assumes `main` finds no such branch.
    pub fn rename_default_branch(&self, repo: &str, branch: &str) {
        let mut world = self.handle.shared.world.lock();
        if let Some(r) = world
            .repos
            .iter_mut()
            .find(|r| format!("{}/{}", r.owner, r.name) == repo)
        {
            if let Some(head) = r.branches.remove(&r.default_branch) {
                r.branches.insert(branch.to_string(), head);
            }
            r.default_branch = branch.to_string();
        }
    }

    /// Replaces the raw log of job `job_id` in `repo` (e.g. with one far longer than a
    /// client should hold in memory). False when there is no such job.
    pub fn set_job_log(&self, repo: &str, job_id: u64, log: String) -> bool {
        let mut world = self.handle.shared.world.lock();
        let Some((owner, name)) = repo.split_once('/') else {
            return false;
        };
        let Some(ri) = world.repo_index(owner, name) else {
            return false;
        };
        let job = world.repos[ri]
            .runs
            .iter_mut()
            .flat_map(|run| run.jobs.iter_mut())
            .find(|j| j.id == job_id);
        match job {
            Some(j) => {
                j.log = log;
                true
            }
            None => false,
        }
    }

    /// Answer JSON whatever the request's `Accept` (see [`FakeConfig::ignore_accept`]).
    pub fn set_ignore_accept(&self, on: bool) {
        self.handle.shared.config.lock().ignore_accept = on;
    }

    /// The next `PATCH /git/refs/heads/{branch}` of any repository first moves `branch`
    /// of `repo` by one commit (adding `CONCURRENT.md`), as a concurrent push would.
    pub fn move_branch_before_next_ref_update(&self, repo: &str, branch: &str) {
        let mut world = self.handle.shared.world.lock();
        if let Some((owner, name)) = repo.split_once('/')
            && let Some(ri) = world.repo_index(owner, name)
        {
            world.intrude_on_ref_update = Some((ri, branch.to_string()));
        }
    }

    /// Head commit sha of `branch` in `repo` ("owner/name").
    pub fn branch_head(&self, repo: &str, branch: &str) -> Option<String> {
        let world = self.handle.shared.world.lock();
        let (owner, name) = repo.split_once('/')?;
        let r = &world.repos[world.repo_index(owner, name)?];
        r.branches.get(branch).cloned()
    }

    /// (parents, paths changed) of commit `sha` in `repo`.
    pub fn commit_changes(&self, repo: &str, sha: &str) -> Option<(Vec<String>, Vec<String>)> {
        let world = self.handle.shared.world.lock();
        let (owner, name) = repo.split_once('/')?;
        let r = &world.repos[world.repo_index(owner, name)?];
        let c = r.commits.get(sha)?;
        let parent = c.parents.first().map(|p| r.tree_of(p)).unwrap_or_default();
        let files = git::diff_trees(&parent, &c.tree)
            .into_iter()
            .map(|f| f.filename)
            .collect();
        Some((c.parents.clone(), files))
    }

    /// Commits `content` to `path` on `branch` directly (as another user's push would).
    /// Returns the new blob sha.
    pub fn commit_file(
        &self,
        repo: &str,
        branch: &str,
        path: &str,
        content: &str,
    ) -> Option<String> {
        let mut world = self.handle.shared.world.lock();
        let (owner, name) = repo.split_once('/')?;
        let ri = world.repo_index(owner, name)?;
        let r = &mut world.repos[ri];
        let head = r.branches.get(branch)?.clone();
        let mut tree = (*r.tree_of(&head)).clone();
        let b = data::blob(content.to_string());
        let sha = b.sha.clone();
        tree.insert(path.to_string(), b);
        r.push_commit(
            branch,
            Arc::new(tree),
            &format!("Update {path}"),
            "bob",
            chrono::Utc::now(),
        )?;
        Some(sha)
    }

    /// Outstanding installation tokens now answer 401 Bad credentials.
    pub fn revoke_installation_tokens(&self) {
        for t in self.handle.shared.gate.lock().install_tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Stop accepting connections (idempotent).
    pub fn shutdown(&self) {
        let _ = self.handle.stop.send(true);
    }
}
