//! Route table and handlers (synchronous; the world lock is held only inside a handler).

use crate::data::{self, Comment, Dt, Issue, Pull, Repo, Run, WEB, World};
use crate::git;
use crate::limits::{InstallToken, limit_for, now_epoch};
use crate::server::Shared;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::SystemTime;

/// Route templates (method, path). `{x*}` takes the rest of the path.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/rate_limit"),
    ("GET", "/user"),
    ("POST", "/graphql"),
    ("POST", "/app/installations/{id}/access_tokens"),
    ("GET", "/search/issues"),
    ("GET", "/search/code"),
    ("GET", "/search/repositories"),
    ("GET", "/notifications"),
    ("PUT", "/notifications"),
    ("POST", "/user/repos"),
    ("POST", "/orgs/{org}/repos"),
    ("PUT", "/repos/{owner}/{repo}/notifications"),
    ("GET", "/repos/{owner}/{repo}/labels"),
    ("GET", "/repos/{owner}/{repo}/labels/{name}"),
    ("POST", "/repos/{owner}/{repo}/labels"),
    ("GET", "/repos/{owner}/{repo}/code-scanning/alerts"),
    ("GET", "/repos/{owner}/{repo}/dependabot/alerts"),
    ("GET", "/repos/{owner}/{repo}/secret-scanning/alerts"),
    ("POST", "/repos/{owner}/{repo}/forks"),
    ("GET", "/repos/{owner}/{repo}"),
    ("GET", "/repos/{owner}/{repo}/languages"),
    ("GET", "/repos/{owner}/{repo}/branches"),
    ("GET", "/repos/{owner}/{repo}/branches/{branch*}"),
    ("GET", "/repos/{owner}/{repo}/git/ref/{ref*}"),
    ("POST", "/repos/{owner}/{repo}/git/refs"),
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref*}"),
    ("GET", "/repos/{owner}/{repo}/git/commits/{sha}"),
    ("GET", "/repos/{owner}/{repo}/git/tags/{sha}"),
    ("GET", "/repos/{owner}/{repo}/tags"),
    ("GET", "/repos/{owner}/{repo}/releases"),
    ("POST", "/repos/{owner}/{repo}/releases"),
    ("GET", "/repos/{owner}/{repo}/releases/latest"),
    ("GET", "/repos/{owner}/{repo}/releases/tags/{tag*}"),
    ("POST", "/repos/{owner}/{repo}/git/commits"),
    ("GET", "/repos/{owner}/{repo}/git/trees/{sha}"),
    ("POST", "/repos/{owner}/{repo}/git/trees"),
    ("GET", "/repos/{owner}/{repo}/git/blobs/{sha}"),
    ("POST", "/repos/{owner}/{repo}/git/blobs"),
    ("PUT", "/repos/{owner}/{repo}/contents/{path*}"),
    ("DELETE", "/repos/{owner}/{repo}/contents/{path*}"),
    ("GET", "/repos/{owner}/{repo}/issues"),
    ("POST", "/repos/{owner}/{repo}/issues"),
    ("GET", "/repos/{owner}/{repo}/issues/{number}"),
    ("PATCH", "/repos/{owner}/{repo}/issues/{number}"),
    ("GET", "/repos/{owner}/{repo}/issues/{number}/comments"),
    ("POST", "/repos/{owner}/{repo}/issues/{number}/comments"),
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}"),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}/files"),
    ("PUT", "/repos/{owner}/{repo}/pulls/{number}/merge"),
    ("PATCH", "/repos/{owner}/{repo}/pulls/{number}"),
    ("PUT", "/repos/{owner}/{repo}/pulls/{number}/update-branch"),
    (
        "GET",
        "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
    ),
    (
        "POST",
        "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
    ),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}/reviews"),
    ("POST", "/repos/{owner}/{repo}/pulls/{number}/reviews"),
    ("GET", "/repos/{owner}/{repo}/pulls/{number}/comments"),
    (
        "POST",
        "/repos/{owner}/{repo}/pulls/{number}/comments/{comment_id}/replies",
    ),
    ("GET", "/repos/{owner}/{repo}/contents"),
    ("GET", "/repos/{owner}/{repo}/contents/{path*}"),
    ("GET", "/repos/{owner}/{repo}/commits"),
    ("GET", "/repos/{owner}/{repo}/commits/{sha}"),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/status"),
    // The two above for refs with slashes (`feature/x`): `{rest}` ends in the suffix.
    ("GET", "/repos/{owner}/{repo}/commits/{rest*}"),
    ("GET", "/repos/{owner}/{repo}/compare/{basehead*}"),
    ("GET", "/repos/{owner}/{repo}/actions/workflows"),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
    ),
    (
        "GET",
        "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
    ),
    ("GET", "/repos/{owner}/{repo}/actions/runs"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"),
    (
        "GET",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
    ),
    ("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun"),
    (
        "POST",
        "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
    ),
    ("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel"),
    ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}"),
    // Answers 302 to the log host (see `crate::logs`).
    ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs"),
    // Raw file bodies, GHES layout (`http://HOST/raw/...`): used by the official MCP server.
    ("GET", "/raw/{owner}/{repo}/{rest*}"),
];

pub struct Matched {
    pub template: &'static str,
    pub params: Vec<(&'static str, String)>,
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn match_route(method: &str, path: &str) -> Option<Matched> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    'outer: for (m, t) in ROUTES {
        if *m != method {
            continue;
        }
        let tsegs: Vec<&'static str> = t.trim_matches('/').split('/').collect();
        let mut params = Vec::new();
        for (i, ts) in tsegs.iter().enumerate() {
            if let Some(name) = ts.strip_prefix('{').and_then(|s| s.strip_suffix("*}")) {
                if i >= segs.len() || segs[i..].iter().any(|s| s.is_empty()) {
                    continue 'outer;
                }
                params.push((name, pct_decode(&segs[i..].join("/"))));
                return Some(Matched {
                    template: t,
                    params,
                });
            }
            match segs.get(i) {
                Some(s) if ts.starts_with('{') && !s.is_empty() => {
                    params.push((&ts[1..ts.len() - 1], pct_decode(s)));
                }
                Some(s) if s == ts => {}
                _ => continue 'outer,
            }
        }
        if segs.len() == tsegs.len() {
            return Some(Matched {
                template: t,
                params,
            });
        }
    }
    None
}

/// The primary-limit bucket of a route.
pub fn bucket(template: Option<&str>) -> &'static str {
    match template {
        Some("/search/code") => "code_search",
        Some("/search/issues" | "/search/repositories") => "search",
        Some("/graphql") => "graphql",
        _ => "core",
    }
}

pub enum RBody {
    Json(Value),
    Text(String),
    Empty,
    /// An empty answer with this `location`.
    Redirect(String),
}

pub struct Reply {
    pub status: u16,
    pub body: RBody,
    pub last_modified: Option<Dt>,
    pub link: Option<String>,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            body: RBody::Json(v),
            last_modified: None,
            link: None,
        }
    }
    pub fn msg(status: u16, m: &str) -> Reply {
        Reply::json(
            status,
            json!({"message": m, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
        )
    }
    pub fn not_found() -> Reply {
        Reply::msg(404, "Not Found")
    }
    pub(crate) fn invalid(resource: &str, field: &str, code: &str) -> Reply {
        Reply::json(
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": resource, "field": field, "code": code}],
                                "documentation_url": "https://docs.github.com/rest", "status": "422"}),
        )
    }
    pub(crate) fn lm(mut self, d: Dt) -> Reply {
        self.last_modified = Some(d);
        self
    }
}

/// Everything a handler may look at.
pub struct Ctx {
    pub method: String,
    /// Path without the `/api/v3` prefix.
    pub path: String,
    pub params: Vec<(&'static str, String)>,
    pub query: Vec<(String, String)>,
    pub body: Value,
    pub accept: String,
    /// `http://HOST` + prefix; base of every API URL in answers.
    pub api: String,
    pub token: Option<String>,
    pub key: String,
    pub installation: bool,
}

impl Ctx {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
    pub(crate) fn p(&self, k: &str) -> &str {
        self.params
            .iter()
            .find(|(a, _)| *a == k)
            .map_or("", |(_, v)| v.as_str())
    }
    pub(crate) fn num(&self, k: &str) -> Option<u64> {
        self.p(k).parse().ok()
    }
    pub(crate) fn s(&self, k: &str) -> Option<&str> {
        self.body.get(k).and_then(Value::as_str)
    }
    pub(crate) fn strings(&self, k: &str) -> Option<Vec<String>> {
        self.body.get(k)?.as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().or_else(|| v.get("name").and_then(Value::as_str)))
                .map(String::from)
                .collect()
        })
    }

    /// Slice `items` for `per_page`/`page` and build the `link` header.
    pub(crate) fn paged<T>(&self, items: Vec<T>) -> (Vec<T>, Option<String>, usize) {
        let per = self
            .q("per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30usize)
            .clamp(1, 100);
        let page = self
            .q("page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        let total = items.len();
        let last = total.div_ceil(per).max(1);
        let rels: Vec<(usize, &str)> = [
            (page > 1).then(|| (page.saturating_sub(1).min(last).max(1), "prev")),
            (page < last).then_some((page + 1, "next")),
            (page < last).then_some((last, "last")),
            (page > 1).then_some((1, "first")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let link = (!rels.is_empty()).then(|| {
            rels.iter()
                .map(|(n, rel)| format!("<{}>; rel=\"{rel}\"", self.page_url(*n)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let items = items.into_iter().skip((page - 1) * per).take(per).collect();
        (items, link, total)
    }

    fn page_url(&self, page: usize) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        let mut seen = false;
        for (k, v) in &self.query {
            if k == "page" {
                seen = true;
                q.append_pair(k, &page.to_string());
            } else {
                q.append_pair(k, v);
            }
        }
        if !seen {
            q.append_pair("page", &page.to_string());
        }
        format!("{}{}?{}", self.api, self.path, q.finish())
    }

    /// Page first, then render only the page.
    pub(crate) fn list<T>(&self, items: Vec<T>, render: impl Fn(T) -> Value) -> Reply {
        let (items, link, _) = self.paged(items);
        Reply {
            link,
            ..Reply::json(200, Value::Array(items.into_iter().map(render).collect()))
        }
    }
}

pub fn dispatch(sh: &Shared, c: &Ctx, template: &str) -> Reply {
    match template {
        "/rate_limit" => rate_limit(sh, c),
        "/user" if c.token.is_none() => Reply::msg(401, "Requires authentication"),
        "/user" if c.installation => Reply::msg(403, "Resource not accessible by integration"),
        "/user" => {
            let mut u = data::user_json(&c.api, "octocat");
            u["name"] = json!("The Octocat");
            u["email"] = json!("octocat@example.com");
            u["public_repos"] = json!(2);
            u["created_at"] = json!(data::ts(&data::base_time()));
            Reply::json(200, u)
        }
        "/graphql" => crate::graphql::answer(&mut sh.world.lock(), c),
        "/app/installations/{id}/access_tokens" => access_token(sh, c),
        "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs" => {
            let w = sh.world.lock();
            let found = w.repo_index(c.p("owner"), c.p("repo")).and_then(|ri| {
                let r = &w.repos[ri];
                let id = c.num("job_id")?;
                r.runs.iter().flat_map(|x| &x.jobs).find(|j| j.id == id)?;
                Some(r.full())
            });
            match found {
                Some(full) => Reply {
                    status: 302,
                    body: RBody::Redirect(crate::logs::signed_url(
                        sh,
                        &full,
                        c.num("job_id").unwrap_or(0),
                    )),
                    last_modified: None,
                    link: None,
                },
                None => Reply::not_found(),
            }
        }
        _ => world_route(&mut sh.world.lock(), c, template),
    }
}

fn rate_limit(sh: &Shared, c: &Ctx) -> Reply {
    let cfg = sh.config.lock().clone();
    let mut g = sh.gate.lock();
    let mut resources = serde_json::Map::new();
    for b in ["core", "search", "code_search", "graphql"] {
        let i = g.rate(&c.key, b, limit_for(&cfg, c.token.is_none(), b));
        resources.insert(
            b.into(),
            json!({"limit": i.limit, "remaining": i.remaining, "reset": i.reset, "used": i.used, "resource": b}),
        );
    }
    let rate = resources["core"].clone();
    Reply::json(200, json!({"resources": resources, "rate": rate}))
}

fn verify_jwt(jwt: &str, app: &crate::AppConfig) -> bool {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let Ok(key) = DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes()) else {
        return false;
    };
    let mut v = Validation::new(Algorithm::RS256);
    v.leeway = 0;
    v.validate_aud = false;
    // `iss` may be a number (GitHub accepts both), which jsonwebtoken cannot parse: checked below.
    v.set_required_spec_claims(&["exp"]);
    let Ok(data) = decode::<Value>(jwt, &key, &v) else {
        return false;
    };
    let cl = data.claims;
    let now = now_epoch() as i64;
    let iss_ok = match &cl["iss"] {
        Value::String(s) => *s == app.app_id.to_string(),
        Value::Number(n) => n.as_u64() == Some(app.app_id),
        _ => false,
    };
    let (exp, iat) = (
        cl["exp"].as_i64().unwrap_or(0),
        cl["iat"].as_i64().unwrap_or(i64::MAX),
    );
    iss_ok && exp > now && exp <= now + 600 && iat <= now + 60
}

fn access_token(sh: &Shared, c: &Ctx) -> Reply {
    let Some(app) = sh.config.lock().app.clone() else {
        return Reply::not_found();
    };
    sh.gate.lock().stats.token_requests += 1;
    let bad = Reply::msg(401, "A JSON web token could not be decoded");
    if !c.token.as_deref().is_some_and(|t| verify_jwt(t, &app)) {
        return bad;
    }
    if c.num("id") != Some(app.installation_id) {
        return Reply::not_found();
    }
    let token = format!("ghs_{}", &sh.random_hex()[..36]);
    let expires = SystemTime::now() + app.token_ttl;
    sh.gate.lock().install_tokens.insert(
        token.clone(),
        InstallToken {
            expires,
            revoked: false,
        },
    );
    let expires_at: DateTime<Utc> = expires.into();
    Reply::json(
        201,
        json!({
            "token": token, "expires_at": data::ts(&expires_at),
            "permissions": {"actions": "write", "contents": "write", "issues": "write", "metadata": "read", "pull_requests": "write"},
            "repository_selection": "all",
        }),
    )
}

fn world_route(w: &mut World, c: &Ctx, t: &str) -> Reply {
    if let Some(reply) = crate::triage::account_route(w, c, t) {
        return reply;
    }
    match t {
        "/search/issues" => return search_issues(w, c),
        "/search/code" => return search_code(w, c),
        "/search/repositories" => return search_repos(w, c),
        _ => {}
    }
    let Some(ri) = w.repo_index(c.p("owner"), c.p("repo")) else {
        return Reply::not_found();
    };
    let sub = t.strip_prefix("/repos/{owner}/{repo}").unwrap_or("");
    if let Some(reply) = crate::triage::repo_route(w, ri, c, sub) {
        return reply;
    }
    let a = c.api.as_str();
    if c.method != "GET" {
        if let Some(reply) = crate::reviews::write(w, ri, c, sub, Utc::now()) {
            return reply;
        }
        return write_route(w, ri, c, sub);
    }
    let r = &w.repos[ri];
    if t.starts_with("/raw/") {
        return raw(r, c);
    }
    if let Some(reply) = crate::releases::get(r, c, sub) {
        return reply;
    }
    if let Some(reply) = crate::reviews::get(r, c, sub) {
        return reply;
    }
    match sub {
        "" => Reply::json(200, data::repo_json(a, r)).lm(r.updated_at),
        "/languages" => Reply::json(
            200,
            Value::Object(
                r.languages
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        ),
        "/branches" => c.list(r.branches.iter().collect(), |(n, s)| {
            data::branch_json(a, r, n, s)
        }),
        "/branches/{branch*}" => match (
            r.branches.get(c.p("branch")),
            r.branches.get_key_value(c.p("branch")),
        ) {
            (Some(sha), Some((name, _))) => {
                let mut b = data::branch_json(a, r, name, sha);
                b["commit"] = data::commit_json(a, r, &r.commits[sha], None);
                b["_links"] = json!({"self": format!("{a}/repos/{}/branches/{name}", r.full()), "html": format!("{WEB}/{}/tree/{name}", r.full())});
                Reply::json(200, b)
            }
            _ => Reply::msg(404, "Branch not found"),
        },
        "/git/ref/{ref*}" => match c
            .p("ref")
            .strip_prefix("heads/")
            .and_then(|b| r.branches.get(b).map(|s| (b, s)))
        {
            Some((b, sha)) => Reply::json(200, data::ref_json(a, r, b, sha)),
            None => Reply::not_found(),
        },
        "/issues" => list_issues(r, c),
        "/issues/{number}" => match c.num("number").and_then(|n| r.issues.get(&n)) {
            Some(i) => Reply::json(200, data::issue_json(a, r, i)).lm(i.updated_at),
            None => Reply::not_found(),
        },
        "/issues/{number}/comments" => match c.num("number").and_then(|n| r.issues.get(&n)) {
            Some(i) => c.list(i.comments.iter().collect(), |cm| {
                data::comment_json(a, r, i.number, cm)
            }),
            None => Reply::not_found(),
        },
        "/pulls" => list_pulls(r, c),
        "/pulls/{number}" | "/pulls/{number}/files" => {
            let Some(i) = c
                .num("number")
                .and_then(|n| r.issues.get(&n))
                .filter(|i| i.pull.is_some())
            else {
                return Reply::not_found();
            };
            let p = i.pull.as_ref().expect("pull");
            if sub.ends_with("/files") {
                c.list(data::pull_files(r, p), |f| data::file_json(a, r, &f))
            } else if c.accept.contains("diff") {
                Reply {
                    status: 200,
                    body: RBody::Text(git::unified(&data::pull_files(r, p))),
                    last_modified: Some(i.updated_at),
                    link: None,
                }
            } else {
                Reply::json(200, data::pull_json(a, r, i, true)).lm(i.updated_at)
            }
        }
        "/contents" | "/contents/{path*}" => contents(r, c),
        "/commits" => list_commits(r, c),
        "/commits/{sha}" => match git::resolve(r, c.p("sha")).and_then(|s| r.commits.get(&s)) {
            Some(cm) => {
                let parent = cm.parents.first().map(|p| r.tree_of(p)).unwrap_or_default();
                let files = git::diff_trees(&parent, &cm.tree);
                if c.accept.contains("diff") {
                    return Reply {
                        status: 200,
                        body: RBody::Text(git::unified(&files)),
                        last_modified: Some(cm.date),
                        link: None,
                    };
                }
                Reply::json(200, data::commit_json(a, r, cm, Some(&files))).lm(cm.date)
            }
            None => Reply::msg(422, &format!("No commit found for SHA: {}", c.p("sha"))),
        },
        "/compare/{basehead*}" => compare(r, c),
        "/commits/{ref}/check-runs" => check_runs(r, c, c.p("ref")),
        "/commits/{ref}/status" => combined_status(r, c, c.p("ref")),
        "/commits/{rest*}" => {
            let rest = c.p("rest");
            if let Some(r_) = rest.strip_suffix("/check-runs") {
                check_runs(r, c, r_)
            } else if let Some(r_) = rest.strip_suffix("/status") {
                combined_status(r, c, r_)
            } else {
                Reply::not_found()
            }
        }
        "/git/commits/{sha}" => match r.commits.get(c.p("sha")) {
            Some(cm) => Reply::json(200, data::git_commit_json(a, r, cm)).lm(cm.date),
            None => Reply::not_found(),
        },
        "/git/trees/{sha}" => {
            let sha = c.p("sha");
            let tree = r
                .trees
                .get(sha)
                .cloned()
                .or_else(|| git::resolve(r, sha).map(|s| r.tree_of(&s)));
            match tree {
                Some(t) => Reply::json(200, data::tree_json(a, r, &t)),
                None => Reply::not_found(),
            }
        }
        "/git/blobs/{sha}" => match r.find_blob(c.p("sha")) {
            Some(b) => Reply::json(
                200,
                json!({"sha": b.sha, "node_id": format!("B_kwDO{}", &b.sha[..12]), "size": b.content.len(),
                       "url": format!("{a}/repos/{}/git/blobs/{}", r.full(), b.sha),
                       "content": data::b64_lines(b.content.as_bytes()), "encoding": "base64"}),
            ),
            None => Reply::not_found(),
        },
        "/actions/runs/{run_id}/jobs" => match c
            .num("run_id")
            .and_then(|id| r.runs.iter().find(|x| x.id == id))
        {
            Some(run) => {
                let now = Utc::now();
                let (items, link, total) = c.paged(run.jobs.iter().collect());
                let jobs: Vec<Value> = items
                    .iter()
                    .map(|j| data::job_json(a, r, run, j, now))
                    .collect();
                Reply {
                    link,
                    ..Reply::json(200, json!({"total_count": total, "jobs": jobs}))
                }
            }
            None => Reply::not_found(),
        },
        "/actions/runs/{run_id}/artifacts" => match c
            .num("run_id")
            .and_then(|id| r.runs.iter().find(|x| x.id == id))
        {
            Some(run) => {
                let (items, link, total) = c.paged(data::artifacts_json(a, r, run, Utc::now()));
                Reply {
                    link,
                    ..Reply::json(200, json!({"total_count": total, "artifacts": items}))
                }
            }
            None => Reply::not_found(),
        },
        "/actions/jobs/{job_id}" => {
            let id = c.num("job_id").unwrap_or(0);
            let found = r
                .runs
                .iter()
                .find_map(|run| run.jobs.iter().find(|j| j.id == id).map(|j| (run, j)));
            match found {
                Some((run, j)) => Reply::json(200, data::job_json(a, r, run, j, Utc::now())),
                None => Reply::not_found(),
            }
        }
        "/actions/workflows" => {
            let wf: Vec<Value> = r
                .workflows
                .iter()
                .map(|wf| data::workflow_json(a, r, wf))
                .collect();
            Reply::json(200, json!({"total_count": wf.len(), "workflows": wf}))
        }
        "/actions/runs" => list_runs(r, c, None),
        "/actions/workflows/{workflow_id}/runs" => {
            // GitHub takes the workflow's id or its file name (`ci.yml`).
            let key = c.p("workflow_id");
            let found = r.workflows.iter().find(|(id, _, path)| {
                id.to_string() == key || path.rsplit('/').next() == Some(key)
            });
            match found {
                Some(wf) => list_runs(r, c, Some(wf.0)),
                None => Reply::not_found(),
            }
        }
        "/actions/runs/{run_id}" => match c
            .num("run_id")
            .and_then(|id| r.runs.iter().find(|x| x.id == id))
        {
            Some(run) => Reply::json(200, data::run_json(a, r, run, Utc::now())),
            None => Reply::not_found(),
        },
        _ => Reply::not_found(),
    }
}

fn list_issues(r: &Repo, c: &Ctx) -> Reply {
    let state = c.q("state").unwrap_or("open");
    let labels: Vec<&str> = c
        .q("labels")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let since = c
        .q("since")
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    let mut v: Vec<&Issue> = r
        .issues
        .values()
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| {
            labels
                .iter()
                .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
        })
        .filter(|i| match c.q("assignee") {
            None | Some("") => true,
            Some("none") => i.assignees.is_empty(),
            Some("*") => !i.assignees.is_empty(),
            Some(who) => i.assignees.iter().any(|x| x.eq_ignore_ascii_case(who)),
        })
        .filter(|i| {
            c.q("creator")
                .is_none_or(|who| i.user.eq_ignore_ascii_case(who))
        })
        .filter(|i| since.is_none_or(|s| i.updated_at >= s))
        .collect();
    sort_issues(&mut v, c.q("sort"), c.q("direction"));
    c.list(v, |i| data::issue_json(&c.api, r, i))
}

fn sort_issues(v: &mut [&Issue], sort: Option<&str>, direction: Option<&str>) {
    match sort {
        Some("updated") => v.sort_by_key(|i| (i.updated_at, i.number)),
        Some("comments") => v.sort_by_key(|i| (i.comments.len(), i.number)),
        _ => v.sort_by_key(|i| (i.created_at, i.number)),
    }
    if direction != Some("asc") {
        v.reverse();
    }
}

fn list_pulls(r: &Repo, c: &Ctx) -> Reply {
    let state = c.q("state").unwrap_or("open");
    let head = c.q("head").map(|h| h.rsplit(':').next().unwrap_or(h));
    let mut v: Vec<&Issue> = r
        .issues
        .values()
        .filter(|i| {
            i.pull.as_ref().is_some_and(|p| {
                head.is_none_or(|h| p.head == h) && c.q("base").is_none_or(|b| p.base == b)
            })
        })
        .filter(|i| state == "all" || i.state == state)
        .collect();
    sort_issues(&mut v, c.q("sort"), c.q("direction"));
    c.list(v, |i| data::pull_json(&c.api, r, i, false))
}

fn contents(r: &Repo, c: &Ctx) -> Reply {
    let git_ref = c.q("ref").unwrap_or(&r.default_branch).to_string();
    let Some(sha) = git::resolve(r, &git_ref) else {
        return Reply::msg(404, &format!("No commit found for the ref {git_ref}"));
    };
    let tree = r.tree_of(&sha);
    let path = c.p("path").trim_matches('/');
    if let Some(b) = tree.get(path) {
        return Reply::json(
            200,
            data::content_entry(&c.api, r, path, &git_ref, Some(b), true),
        );
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let mut entries: Vec<Value> = Vec::new();
    let mut last_dir = String::new();
    for (p, b) in tree.range(prefix.clone()..) {
        let Some(rest) = p.strip_prefix(&prefix) else {
            break;
        };
        match rest.split_once('/') {
            Some((dir, _)) if dir != last_dir => {
                last_dir = dir.to_string();
                entries.push(data::content_entry(
                    &c.api,
                    r,
                    &format!("{prefix}{dir}"),
                    &git_ref,
                    None,
                    false,
                ));
            }
            Some(_) => {}
            None => entries.push(data::content_entry(&c.api, r, p, &git_ref, Some(b), false)),
        }
    }
    if entries.is_empty() {
        return Reply::not_found();
    }
    entries.sort_by_key(|e| {
        (
            e["type"] != "dir",
            e["name"].as_str().unwrap_or("").to_string(),
        )
    });
    Reply::json(200, Value::Array(entries))
}

/// `/raw/{owner}/{repo}/{ref}/{path}`; `ref` may be `HEAD`, `refs/heads/x`, a branch (with
/// slashes) or a sha.
fn raw(r: &Repo, c: &Ctx) -> Reply {
    let rest = c.p("rest");
    let rest = rest.strip_prefix("refs/heads/").unwrap_or(rest);
    let found = rest.match_indices('/').find_map(|(i, _)| {
        let (git_ref, path) = (&rest[..i], &rest[i + 1..]);
        let git_ref = if git_ref == "HEAD" {
            r.default_branch.as_str()
        } else {
            git_ref
        };
        let sha = git::resolve(r, git_ref)?;
        r.tree_of(&sha).get(path).map(|b| b.content.clone())
    });
    match found {
        Some(text) => Reply {
            status: 200,
            body: RBody::Text(text),
            last_modified: None,
            link: None,
        },
        None => Reply {
            status: 404,
            body: RBody::Text("404: Not Found".into()),
            last_modified: None,
            link: None,
        },
    }
}

fn list_commits(r: &Repo, c: &Ctx) -> Reply {
    let from = c.q("sha").unwrap_or(&r.default_branch);
    let Some(head) = git::resolve(r, from) else {
        return Reply::msg(404, &format!("No commit found for SHA: {from}"));
    };
    let path = c.q("path").map(|p| p.trim_matches('/'));
    let v: Vec<_> = git::log(r, &head)
        .into_iter()
        .filter(|cm| {
            c.q("author")
                .is_none_or(|a| cm.author.eq_ignore_ascii_case(a))
        })
        .filter(|cm| {
            path.is_none_or(|p| {
                let parent = cm.parents.first().map(|x| r.tree_of(x)).unwrap_or_default();
                git::diff_trees(&parent, &cm.tree)
                    .iter()
                    .any(|f| f.filename == p || f.filename.starts_with(&format!("{p}/")))
            })
        })
        .collect();
    c.list(v, |cm| data::commit_json(&c.api, r, cm, None))
}

fn compare(r: &Repo, c: &Ctx) -> Reply {
    let bh = c.p("basehead");
    let Some((b, h)) = bh.split_once("...").or_else(|| bh.split_once("..")) else {
        return Reply::not_found();
    };
    let (Some(base), Some(head)) = (git::resolve(r, b), git::resolve(r, h)) else {
        return Reply::not_found();
    };
    let mb = git::merge_base(r, &base, &head).unwrap_or_else(|| base.clone());
    let ahead = git::range(r, &base, &head);
    let behind = git::range(r, &head, &base).len();
    let status = match (ahead.len(), behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let files = git::diff_trees(&r.tree_of(&mb), &r.tree_of(&head));
    let a = c.api.as_str();
    let full = r.full();
    Reply::json(
        200,
        json!({
            "url": format!("{a}/repos/{full}/compare/{bh}"), "html_url": format!("{WEB}/{full}/compare/{bh}"),
            "base_commit": data::commit_json(a, r, &r.commits[&base], None),
            "merge_base_commit": data::commit_json(a, r, &r.commits[&mb], None),
            "status": status, "ahead_by": ahead.len(), "behind_by": behind, "total_commits": ahead.len(),
            "commits": ahead.iter().take(250).map(|cm| data::commit_json(a, r, cm, None)).collect::<Vec<_>>(),
            "files": files.iter().map(|f| data::file_json(a, r, f)).collect::<Vec<_>>(),
        }),
    )
}

fn check_runs(r: &Repo, c: &Ctx, git_ref: &str) -> Reply {
    let Some(sha) = git::resolve(r, git_ref) else {
        return Reply::msg(422, &format!("No commit found for SHA: {git_ref}"));
    };
    let now = Utc::now();
    let mut pairs: Vec<(&Run, &data::Job)> = r
        .runs
        .iter()
        .filter(|x| x.head_sha == sha)
        .flat_map(|x| x.jobs.iter().map(move |j| (x, j)))
        .collect();
    pairs.sort_by_key(|(_, j)| std::cmp::Reverse(j.id));
    let (items, link, total) = c.paged(pairs);
    let runs: Vec<Value> = items
        .iter()
        .map(|(x, j)| data::check_run_json(&c.api, r, x, j, now))
        .collect();
    Reply {
        link,
        ..Reply::json(200, json!({"total_count": total, "check_runs": runs}))
    }
}

fn combined_status(r: &Repo, c: &Ctx, git_ref: &str) -> Reply {
    let Some(sha) = git::resolve(r, git_ref) else {
        return Reply::msg(422, &format!("No commit found for SHA: {git_ref}"));
    };
    let list: Vec<&data::Status> = r
        .statuses
        .get(&sha)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let has = |s: &str| list.iter().any(|x| x.state == s);
    let state = if has("failure") || has("error") {
        "failure"
    } else if list.is_empty() || has("pending") {
        "pending"
    } else {
        "success"
    };
    let (items, link, total) = c.paged(list);
    let a = c.api.as_str();
    let full = r.full();
    Reply {
        link,
        ..Reply::json(
            200,
            json!({"state": state, "sha": sha, "total_count": total,
                   "statuses": items.iter().map(|x| data::status_json(a, r, &sha, x)).collect::<Vec<_>>(),
                   "repository": {"id": r.id, "full_name": full},
                   "commit_url": format!("{a}/repos/{full}/commits/{sha}"),
                   "url": format!("{a}/repos/{full}/commits/{sha}/status")}),
        )
    }
}

/// Runs newest first, of one workflow or of all, filtered by the query's branch, event
/// and status.
fn list_runs(r: &Repo, c: &Ctx, workflow: Option<u64>) -> Reply {
    let now = Utc::now();
    let mut v: Vec<&Run> = r
        .runs
        .iter()
        .filter(|x| workflow.is_none_or(|w| x.workflow_id == w))
        .filter(|x| c.q("branch").is_none_or(|b| x.head_branch == b))
        .filter(|x| c.q("event").is_none_or(|e| x.event == e))
        .filter(|x| {
            c.q("status").is_none_or(|s| {
                let (st, concl) = data::run_state(x, now);
                st == s || concl.as_deref() == Some(s)
            })
        })
        .collect();
    v.sort_by_key(|x| std::cmp::Reverse(x.id));
    let (items, link, total) = c.paged(v);
    let runs: Vec<Value> = items
        .iter()
        .map(|x| data::run_json(&c.api, r, x, now))
        .collect();
    Reply {
        link,
        ..Reply::json(200, json!({"total_count": total, "workflow_runs": runs}))
    }
}

fn write_route(w: &mut World, ri: usize, c: &Ctx, sub: &str) -> Reply {
    let now = Utc::now();
    let new_id = w.id();
    let second_id = w.id();
    let r = &mut w.repos[ri];
    let a = c.api.as_str();
    match sub {
        "/git/refs" => {
            let (Some(name), Some(sha)) = (c.s("ref"), c.s("sha")) else {
                return Reply::msg(422, "Invalid request.\n\n\"ref\" and \"sha\" are required.");
            };
            let Some(branch) = name.strip_prefix("refs/heads/").filter(|b| !b.is_empty()) else {
                return Reply::msg(422, "Reference name is invalid");
            };
            if r.branches.contains_key(branch) {
                return Reply::msg(422, "Reference already exists");
            }
            if !r.commits.contains_key(sha) {
                return Reply::msg(422, "Object does not exist");
            }
            r.branches.insert(branch.to_string(), sha.to_string());
            r.pushed_at = now;
            Reply::json(201, data::ref_json(a, r, branch, sha))
        }
        "/issues" => {
            let Some(title) = c.s("title").filter(|t| !t.is_empty()) else {
                return Reply::invalid("Issue", "title", "missing_field");
            };
            let number = r.issues.keys().last().copied().unwrap_or(0) + 1;
            let labels = c.strings("labels").unwrap_or_default();
            ensure_labels(r, &labels, second_id);
            let mut assignees = c.strings("assignees").unwrap_or_default();
            assignees.extend(c.s("assignee").map(String::from));
            let issue = Issue {
                number,
                id: new_id,
                title: title.into(),
                body: c.s("body").map(String::from),
                state: "open".into(),
                state_reason: None,
                user: "octocat".into(),
                labels,
                assignees,
                comments: vec![],
                created_at: now,
                updated_at: now,
                closed_at: None,
                pull: None,
            };
            let v = data::issue_json(a, r, &issue);
            r.issues.insert(number, issue);
            Reply::json(201, v)
        }
        "/issues/{number}" => {
            let Some(n) = c.num("number").filter(|n| r.issues.contains_key(n)) else {
                return Reply::not_found();
            };
            let state = c.s("state");
            if state.is_some_and(|s| s != "open" && s != "closed") {
                return Reply::invalid("Issue", "state", "invalid");
            }
            let labels = c.strings("labels");
            if let Some(l) = &labels {
                ensure_labels(r, l, second_id);
            }
            let i = r.issues.get_mut(&n).expect("issue");
            if let Some(t) = c.s("title") {
                i.title = t.into();
            }
            if c.body.get("body").is_some() {
                i.body = c.s("body").map(String::from);
            }
            if let Some(l) = labels {
                i.labels = l;
            }
            if let Some(x) = c.strings("assignees") {
                i.assignees = x;
            } else if let Some(x) = c.body.get("assignee") {
                i.assignees = x.as_str().map(|s| vec![s.to_string()]).unwrap_or_default();
            }
            match state {
                Some("closed") if i.state != "closed" => {
                    i.state = "closed".into();
                    i.closed_at = Some(now);
                    i.state_reason = Some(c.s("state_reason").unwrap_or("completed").into());
                }
                Some("open") if i.state != "open" => {
                    i.state = "open".into();
                    i.closed_at = None;
                    i.state_reason = Some("reopened".into());
                }
                _ => {
                    if let Some(sr) = c.s("state_reason") {
                        i.state_reason = Some(sr.into());
                    }
                }
            }
            i.updated_at = now;
            let r = &w.repos[ri];
            Reply::json(200, data::issue_json(a, r, &r.issues[&n]))
        }
        "/issues/{number}/comments" => {
            let Some(body) = c.s("body").filter(|b| !b.is_empty()) else {
                return Reply::invalid("IssueComment", "body", "missing_field");
            };
            let Some(i) = c.num("number").and_then(|n| r.issues.get_mut(&n)) else {
                return Reply::not_found();
            };
            let cm = Comment {
                id: new_id,
                user: "octocat".into(),
                body: body.into(),
                created_at: now,
                updated_at: now,
            };
            i.updated_at = now;
            let n = i.number;
            i.comments.push(cm);
            let r = &w.repos[ri];
            Reply::json(
                201,
                data::comment_json(a, r, n, r.issues[&n].comments.last().expect("comment")),
            )
        }
        "/pulls" => create_pull(r, c, new_id, second_id, now),
        "/pulls/{number}/merge" => merge_pull(r, c, now),
        "/actions/workflows/{workflow_id}/dispatches" => {
            let wid = c.p("workflow_id");
            let Some(wf) = r
                .workflows
                .iter()
                .find(|wf| wf.0.to_string() == wid || wf.2.rsplit('/').next() == Some(wid))
            else {
                return Reply::not_found();
            };
            let Some(git_ref) = c.s("ref") else {
                return Reply::msg(422, "Invalid request.\n\n\"ref\" wasn't supplied.");
            };
            let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref);
            let Some(sha) = r.branches.get(branch).cloned() else {
                return Reply::msg(422, &format!("No ref found for: {git_ref}"));
            };
            let workflow_id = wf.0;
            r.start_run(workflow_id, branch, &sha, "workflow_dispatch", now);
            Reply {
                status: 204,
                body: RBody::Empty,
                last_modified: None,
                link: None,
            }
        }
        "/releases" => crate::releases::create(r, c, new_id, now),
        _ => crate::writes::route(w, ri, c, sub, now),
    }
}

fn ensure_labels(r: &mut Repo, names: &[String], id: u64) {
    for (k, n) in names.iter().enumerate() {
        if !r.labels.contains_key(n) {
            let label = data::Label {
                id: id * 100 + k as u64,
                color: "ededed".into(),
                description: String::new(),
            };
            r.labels.insert(n.clone(), label);
        }
    }
}

fn create_pull(r: &mut Repo, c: &Ctx, id: u64, pull_id: u64, now: Dt) -> Reply {
    let Some(title) = c.s("title").filter(|t| !t.is_empty()) else {
        return Reply::invalid("PullRequest", "title", "missing_field");
    };
    let head = c
        .s("head")
        .map(|h| h.rsplit(':').next().unwrap_or(h))
        .unwrap_or("");
    let Some(head_sha) = r.branches.get(head).cloned() else {
        return Reply::invalid("PullRequest", "head", "invalid");
    };
    let base = c.s("base").unwrap_or("");
    let Some(base_sha) = r.branches.get(base).cloned() else {
        return Reply::invalid("PullRequest", "base", "invalid");
    };
    let custom = |m: String| {
        Reply::json(
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": m}],
                                "documentation_url": "https://docs.github.com/rest", "status": "422"}),
        )
    };
    if r.issues.values().any(|i| {
        i.state == "open"
            && i.pull
                .as_ref()
                .is_some_and(|p| p.head == head && p.base == base)
    }) {
        return custom(format!(
            "A pull request already exists for {}:{head}.",
            r.owner
        ));
    }
    if git::range(r, &base_sha, &head_sha).is_empty() {
        return custom(format!("No commits between {base} and {head}"));
    }
    let number = r.issues.keys().last().copied().unwrap_or(0) + 1;
    let pull = Pull {
        id: pull_id,
        head: head.into(),
        head_sha,
        base: base.into(),
        merged_at: None,
        merge_commit_sha: None,
        merged_base: None,
        draft: c
            .body
            .get("draft")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        reviews: Default::default(),
    };
    let issue = Issue {
        number,
        id,
        title: title.into(),
        body: c.s("body").map(String::from),
        state: "open".into(),
        state_reason: None,
        user: "octocat".into(),
        labels: vec![],
        assignees: vec![],
        comments: vec![],
        created_at: now,
        updated_at: now,
        closed_at: None,
        pull: Some(pull),
    };
    let v = data::pull_json(&c.api, r, &issue, true);
    r.issues.insert(number, issue);
    Reply::json(201, v)
}

fn merge_pull(r: &mut Repo, c: &Ctx, now: Dt) -> Reply {
    let Some(n) = c
        .num("number")
        .filter(|n| r.issues.get(n).is_some_and(|i| i.pull.is_some()))
    else {
        return Reply::not_found();
    };
    let i = &r.issues[&n];
    let p = i.pull.as_ref().expect("pull");
    if i.state != "open" || p.merged_at.is_some() {
        return Reply::msg(405, "Pull Request is not mergeable");
    }
    let method = c.s("merge_method").unwrap_or("merge");
    let allowed = match method {
        "squash" => r.merge_methods[1],
        "rebase" => r.merge_methods[2],
        _ => r.merge_methods[0],
    };
    if !allowed {
        let what = match method {
            "squash" => "Squash merges",
            "rebase" => "Rebase merges",
            _ => "Merge commits",
        };
        return Reply::msg(405, &format!("{what} are not allowed on this repository."));
    }
    let (mb, head) = data::pull_range(r, p);
    if c.s("sha").is_some_and(|s| s != head) {
        return Reply::msg(
            409,
            "Head branch was modified. Review and try the merge again.",
        );
    }
    let Some(base_sha) = r.branches.get(&p.base).cloned() else {
        return Reply::msg(405, "Base branch was deleted");
    };
    let changes = git::diff_trees(&r.tree_of(&mb), &r.tree_of(&head))
        .into_iter()
        .map(|f| {
            let content = r.tree_of(&head).get(&f.filename).map(|b| b.content.clone());
            (f.filename, content)
        })
        .collect();
    let msg = c
        .s("commit_title")
        .map(String::from)
        .unwrap_or_else(|| format!("Merge pull request #{n} from {}/{}", r.owner, p.head));
    let parents = if c.s("merge_method") == Some("squash") {
        vec![base_sha.clone()]
    } else {
        vec![base_sha.clone(), head]
    };
    let base_branch = p.base.clone();
    let tree = r.tree_of(&base_sha);
    let sha = r.commit(parents, Some(&tree), changes, &msg, "octocat", now);
    r.branches.insert(base_branch, sha.clone());
    r.pushed_at = now;
    let i = r.issues.get_mut(&n).expect("issue");
    let p = i.pull.as_mut().expect("pull");
    p.merged_at = Some(now);
    p.merge_commit_sha = Some(sha.clone());
    p.merged_base = Some(mb);
    i.state = "closed".into();
    i.closed_at = Some(now);
    i.updated_at = now;
    Reply::json(
        200,
        json!({"sha": sha, "merged": true, "message": "Pull Request successfully merged"}),
    )
}

// ---------------------------------------------------------------- search

/// Split a search query into lowercase words and (key, value, negated) qualifiers.
fn parse_q(q: &str) -> (Vec<String>, Vec<(String, String, bool)>) {
    let mut toks = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for ch in q.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => toks.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    toks.push(cur);
    let (mut words, mut quals) = (Vec::new(), Vec::new());
    for t in toks.into_iter().filter(|t| !t.is_empty()) {
        match t.split_once(':') {
            Some((k, v)) if !k.is_empty() && !k.contains(' ') => {
                let (k, neg) = k.strip_prefix('-').map_or((k, false), |k| (k, true));
                quals.push((k.to_lowercase(), v.to_lowercase(), neg));
            }
            _ => words.push(t.to_lowercase()),
        }
    }
    (words, quals)
}

fn search_reply<T>(c: &Ctx, mut items: Vec<T>, render: impl Fn(T) -> Value) -> Reply {
    items.truncate(1000);
    let (items, link, total) = c.paged(items);
    let items: Vec<Value> = items.into_iter().map(render).collect();
    Reply {
        link,
        ..Reply::json(
            200,
            json!({"total_count": total, "incomplete_results": false, "items": items}),
        )
    }
}

fn scored(mut v: Value) -> Value {
    v["score"] = json!(1.0);
    v
}

fn search_issues(w: &World, c: &Ctx) -> Reply {
    let (words, quals) = parse_q(c.q("q").unwrap_or(""));
    let mut hits: Vec<(&Repo, &Issue)> = Vec::new();
    for r in &w.repos {
        for i in r.issues.values() {
            let text = format!("{}\n{}", i.title, i.body.as_deref().unwrap_or("")).to_lowercase();
            let quals_ok = quals.iter().all(|(k, v, neg)| {
                let has = |list: &[String]| list.iter().any(|x| x.eq_ignore_ascii_case(v));
                let ok = match (k.as_str(), v.as_str()) {
                    ("repo", _) => r.full().eq_ignore_ascii_case(v),
                    ("user" | "org" | "owner", _) => r.owner.eq_ignore_ascii_case(v),
                    ("is" | "type", "issue") => i.pull.is_none(),
                    ("is" | "type", "pr" | "pull-request") => i.pull.is_some(),
                    ("is" | "state", "open" | "closed") => i.state == *v,
                    ("is", "merged") => i.pull.as_ref().is_some_and(|p| p.merged_at.is_some()),
                    ("label", _) => has(&i.labels),
                    ("assignee", _) => has(&i.assignees),
                    ("author", _) => i.user.eq_ignore_ascii_case(v),
                    ("no", "label") => i.labels.is_empty(),
                    ("no", "assignee") => i.assignees.is_empty(),
                    _ => return true,
                };
                ok != *neg
            });
            if quals_ok && words.iter().all(|wd| text.contains(wd.as_str())) {
                hits.push((r, i));
            }
        }
    }
    let key = |i: &Issue| match c.q("sort") {
        Some("created") => i.created_at,
        _ => i.updated_at,
    };
    hits.sort_by(|x, y| key(y.1).cmp(&key(x.1)).then(y.1.id.cmp(&x.1.id)));
    if c.q("order") == Some("asc") {
        hits.reverse();
    }
    search_reply(c, hits, |(r, i)| scored(data::issue_json(&c.api, r, i)))
}

fn search_code(w: &World, c: &Ctx) -> Reply {
    let (words, quals) = parse_q(c.q("q").unwrap_or(""));
    let mut items = Vec::new();
    for r in &w.repos {
        let Some(sha) = r.branches.get(&r.default_branch) else {
            continue;
        };
        for (path, b) in r.tree_of(sha).iter() {
            let lp = path.to_lowercase();
            let quals_ok = quals.iter().all(|(k, v, neg)| {
                let ok = match k.as_str() {
                    "repo" => r.full().eq_ignore_ascii_case(v),
                    "user" | "org" | "owner" => r.owner.eq_ignore_ascii_case(v),
                    "path" => lp.starts_with(v.trim_start_matches('/')) || lp.contains(v.as_str()),
                    "filename" => lp.rsplit('/').next() == Some(v.as_str()),
                    "extension" => lp.ends_with(&format!(".{v}")),
                    _ => return true,
                };
                ok != *neg
            });
            let text = b.content.to_lowercase();
            if quals_ok
                && words
                    .iter()
                    .all(|wd| lp.contains(wd.as_str()) || text.contains(wd.as_str()))
            {
                let full = r.full();
                let a = &c.api;
                items.push(json!({
                    "name": path.rsplit('/').next().unwrap_or(path), "path": path, "sha": b.sha,
                    "url": format!("{a}/repos/{full}/contents/{path}?ref={sha}"),
                    "git_url": format!("{a}/repos/{full}/git/blobs/{}", b.sha),
                    "html_url": format!("{WEB}/{full}/blob/{sha}/{path}"),
                    "repository": {"id": r.id, "node_id": format!("R_kgDO{:06}", r.id), "name": r.name, "full_name": full,
                                   "owner": data::user_json(a, &r.owner), "private": false, "html_url": format!("{WEB}/{full}"),
                                   "description": r.description, "fork": false, "url": format!("{a}/repos/{full}")},
                    "score": 1.0,
                }));
            }
        }
    }
    search_reply(c, items, |v| v)
}

fn search_repos(w: &World, c: &Ctx) -> Reply {
    let (words, quals) = parse_q(c.q("q").unwrap_or(""));
    let items = w
        .repos
        .iter()
        .filter(|r| {
            let text =
                format!("{} {} {}", r.name, r.description, r.topics.join(" ")).to_lowercase();
            let quals_ok = quals.iter().all(|(k, v, neg)| {
                let ok = match k.as_str() {
                    "repo" => r.full().eq_ignore_ascii_case(v),
                    "user" | "org" | "owner" => r.owner.eq_ignore_ascii_case(v),
                    "topic" => r.topics.iter().any(|t| t == v),
                    "language" => r
                        .languages
                        .first()
                        .is_some_and(|l| l.0.eq_ignore_ascii_case(v)),
                    _ => return true,
                };
                ok != *neg
            });
            quals_ok && words.iter().all(|wd| text.contains(wd.as_str()))
        })
        .map(|r| scored(data::repo_json(&c.api, r)))
        .collect();
    search_reply(c, items, |v| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let m = match_route("GET", "/repos/octo/hello/issues/5").unwrap();
        assert_eq!(m.template, "/repos/{owner}/{repo}/issues/{number}");
        assert_eq!(m.params[2], ("number", "5".to_string()));
        let m = match_route("GET", "/repos/octo/hello/contents/src/lib.rs").unwrap();
        assert_eq!(m.params[2], ("path", "src/lib.rs".to_string()));
        let m = match_route("GET", "/repos/octo/hello/git/ref/heads/a%2Fb").unwrap();
        assert_eq!(m.params[2], ("ref", "heads/a/b".to_string()));
        assert!(match_route("DELETE", "/repos/octo/hello").is_none());
        assert!(match_route("GET", "/repos/octo/hello/nope").is_none());
        assert_eq!(
            match_route("GET", "/repos/octo/hello/").unwrap().template,
            "/repos/{owner}/{repo}"
        );
    }

    #[test]
    fn query_parsing() {
        let (w, q) = parse_q("crash \"slow parser\" repo:octo/hello -label:bug is:open");
        assert_eq!(w, vec!["crash", "slow parser"]);
        assert_eq!(q[0], ("repo".into(), "octo/hello".into(), false));
        assert_eq!(q[1], ("label".into(), "bug".into(), true));
    }
}
