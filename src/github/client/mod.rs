//! The GitHub REST client: one base URL, standard headers, every request through the
//! credential's lanes and the shared conditional cache, errors that tell the model what
//! to do, Link pagination with host-checked cursors, and capped bodies. GraphQL requests
//! (`graphql.rs`, for what REST cannot do) take the same path.
//!
//! Owns request building and response interpretation. It must not know tool inputs or
//! output shapes (`tools.rs`, `model.rs`) and never puts a secret in an error or log.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use reqwest::Method;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use url::Url;

use crate::{
    config::GithubSettings,
    runtime::{
        Runtime,
        budget::Held,
        http::{BodyLimit, CacheOutcome, RetryPolicy, Upstream, UpstreamRequest},
        page::{self, Page},
        registry::CallCtx,
    },
};

use super::{
    auth::{Auth, AuthError, MintedToken},
    limits::{LaneKind, Limits},
};

mod error;
mod graphql;
mod paths;
#[cfg(test)]
mod tests;
mod window;

pub use error::GhError;
use error::error_message;
use paths::path_field;
pub use window::{TextWindow, window};

pub const ACCEPT_JSON: &str = "application/vnd.github+json";
pub const ACCEPT_DIFF: &str = "application/vnd.github.diff";
const API_VERSION: &str = "2022-11-28";
/// At most this many upstream pages are read to fill one `limit`.
const MAX_PAGES_PER_CALL: usize = 10;

/// A successful (2xx or served-from-cache) answer.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Bytes dropped from the front of the body (only with [`BodyLimit::Tail`]).
    pub dropped: u64,
    pub outcome: CacheOutcome,
    /// Keeps the body charged to the call's memory budget while the reply lives.
    _hold: Option<Arc<Held>>,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GhError> {
        serde_json::from_slice(&self.body).map_err(|e| GhError::Decode(e.to_string()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `rel="next"` target of the `link` header.
    pub fn next_link(&self) -> Option<Url> {
        let link = self.headers.get(header::LINK)?.to_str().ok()?;
        link.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
                .then(|| {
                    Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>')).ok()
                })
                .flatten()
        })
    }
}

/// Where a list continues: the upstream page URL and how many of its items were used.
#[derive(Serialize, Deserialize)]
struct PagePosition {
    u: String,
    s: usize,
}

/// One credential's client; shared by every GitHub tool.
pub struct GithubClient {
    base: Url,
    upstream: Upstream,
    auth: Auth,
    identity: String,
    limits: Arc<Limits>,
    max_rate_wait: Duration,
    default_branches: moka::sync::Cache<String, String>,
}

impl GithubClient {
    pub fn new(runtime: &Runtime, settings: &GithubSettings) -> Result<Self, AuthError> {
        let auth = Auth::new(&settings.credential)?;
        let identity = auth.identity();
        let short = identity[..12.min(identity.len())].to_string();
        Ok(GithubClient {
            base: settings.api_url.clone(),
            upstream: runtime.upstream.clone(),
            limits: Arc::new(Limits::new(
                &runtime.executor,
                &short,
                settings.max_concurrency,
            )),
            auth,
            identity,
            max_rate_wait: settings.max_rate_wait,
            default_branches: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        })
    }

    /// How requests are authenticated (to share an App's token across replicas).
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `token`, `app` or `none`.
    pub fn credential_kind(&self) -> &'static str {
        match self.auth {
            Auth::Missing => "none",
            Auth::Token { .. } => "token",
            Auth::App(_) => "app",
        }
    }

    /// Builds a request URL. `template` is relative to the API base (no leading slash);
    /// each `{name}` in it is replaced by the value of field `name` from `fields`, which
    /// is checked after percent-decoding (`.`/`..` segments, `#`, `?`, `\`, encoded `/`
    /// and control characters are refused with an error naming the field) and then
    /// percent-encoded segment by segment. Every GitHub request URL is made here.
    pub fn url(
        &self,
        template: &str,
        fields: &[(&str, &str)],
        query: &[(&str, String)],
    ) -> Result<Url, GhError> {
        let mut path = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let template_error = || {
                GhError::Input(format!(
                    "internal: URL template `{template}` does not match its fields"
                ))
            };
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(template_error)?;
            let name = &rest[open + 1..close];
            let (_, value) = fields
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(template_error)?;
            path.push_str(&path_field(name, value)?);
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        let mut url = self
            .base
            .join(&path)
            .map_err(|e| GhError::Input(format!("request path `{path}`: {e}")))?;
        // Defence in depth: whatever went in, the URL must stay under the API base.
        if url.fragment().is_some()
            || url.query().is_some()
            || !url.path().starts_with(self.base.path())
        {
            return Err(GhError::Input(format!(
                "request path `{path}` leaves the configured GitHub API; check the arguments"
            )));
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Refuses URLs (from cursors or Link headers) that leave the configured API.
    pub fn check_on_api(&self, url: &Url) -> Result<(), GhError> {
        page::check_origin(url, &self.base)?;
        if !url.path().starts_with(self.base.path()) {
            return Err(GhError::Input(format!(
                "cursor: {} is outside the configured GitHub API",
                url.path()
            )));
        }
        Ok(())
    }

    /// Drops the cached answer of a GET (one whose body turned out unusable, e.g. JSON
    /// where a diff was asked for) so the next call fetches afresh.
    pub async fn forget(&self, url: &Url, accept: &str) {
        let key = crate::runtime::cache::CacheKey::new(
            &self.identity,
            Method::GET.as_str(),
            url.as_str(),
            accept,
            &format!("x-github-api-version={API_VERSION}"),
        );
        self.upstream.cache().invalidate(&key).await;
    }

    pub fn remember_default_branch(&self, repo: &str, branch: &str) {
        self.default_branches
            .insert(repo.to_ascii_lowercase(), branch.to_string());
    }

    pub fn known_default_branch(&self, repo: &str) -> Option<String> {
        self.default_branches.get(&repo.to_ascii_lowercase())
    }

    async fn mint(&self, ctx: &CallCtx, jwt: String) -> Result<MintedToken, AuthError> {
        #[derive(Deserialize)]
        struct Minted {
            token: String,
            expires_at: chrono::DateTime<chrono::Utc>,
        }
        let app = self.auth.app().ok_or(AuthError::Missing)?;
        let url = self
            .url(
                &format!("app/installations/{}/access_tokens", app.installation_id()),
                &[],
                &[],
            )
            .map_err(|e| AuthError::Mint(e.to_string()))?;
        let mut headers = self.standard_headers(ACCEPT_JSON);
        let mut value = HeaderValue::from_str(&format!("Bearer {jwt}"))
            .map_err(|e| AuthError::Mint(e.to_string()))?;
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
        let req = UpstreamRequest {
            method: Method::POST,
            url,
            headers,
            credential: self.identity.clone(),
            body: None,
            lane: self.limits.lane(LaneKind::Auth).clone(),
            deadline: ctx.deadline,
            cancel: ctx.cancel.clone(),
            retry: self.retry_policy(),
            use_cache: false,
            budget: ctx.budget.clone(),
            keep: BodyLimit::Whole,
        };
        let resp = self
            .upstream
            .send(req, self.limits.clone())
            .await
            .map_err(|e| AuthError::Mint(e.to_string()))?;
        if resp.status != 201 && resp.status != 200 {
            return Err(AuthError::Mint(format!(
                "GitHub answered {}: {}; check GITHUB_APP_ID, the private key and GITHUB_APP_INSTALLATION_ID",
                resp.status,
                error_message(&resp.body)
            )));
        }
        let minted: Minted =
            serde_json::from_slice(&resp.body).map_err(|e| AuthError::Mint(e.to_string()))?;
        Ok(MintedToken {
            token: minted.token,
            expires_at: SystemTime::from(minted.expires_at),
        })
    }

    fn standard_headers(&self, accept: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(accept).unwrap_or(HeaderValue::from_static(ACCEPT_JSON)),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        headers
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: 8,
            base: Duration::from_millis(250),
            max_total_wait: self.max_rate_wait,
            // A persistent 5xx or transport failure: 3 retries within ~10 s, then the
            // status is answered (rate-limit waits keep their own, longer budget).
            max_error_retries: 3,
            max_error_wait: Duration::from_secs(10),
        }
    }

    /// Sends one request; a 401 on an App installation token refreshes it once.
    pub async fn request(
        &self,
        ctx: &CallCtx,
        method: Method,
        url: Url,
        lane: LaneKind,
        accept: &str,
        body: Option<&Value>,
    ) -> Result<Reply, GhError> {
        self.request_keeping(ctx, method, url, lane, accept, body, BodyLimit::Whole)
            .await
    }

    /// [`Self::request`] keeping only as much of the answer's body as `keep` says.
    #[allow(clippy::too_many_arguments)]
    pub async fn request_keeping(
        &self,
        ctx: &CallCtx,
        method: Method,
        url: Url,
        lane: LaneKind,
        accept: &str,
        body: Option<&Value>,
        keep: BodyLimit,
    ) -> Result<Reply, GhError> {
        let body = body.map(|b| Bytes::from(serde_json::to_vec(b).expect("JSON body")));
        let mut refreshed = false;
        loop {
            let auth = self.auth.header(|jwt| self.mint(ctx, jwt)).await?;
            let mut headers = self.standard_headers(accept);
            headers.insert(header::AUTHORIZATION, auth.clone());
            if body.is_some() {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            let req = UpstreamRequest {
                use_cache: method == Method::GET,
                method: method.clone(),
                url: url.clone(),
                headers,
                credential: self.identity.clone(),
                body: body.clone(),
                lane: self.limits.lane(lane).clone(),
                deadline: ctx.deadline,
                cancel: ctx.cancel.clone(),
                retry: self.retry_policy(),
                budget: ctx.budget.clone(),
                keep,
            };
            let resp = self.upstream.send(req, self.limits.clone()).await?;
            metrics::counter!("cortex_github_requests_total",
                "outcome" => format!("{:?}", resp.outcome).to_lowercase())
            .increment(1);
            if resp.status == 401 && !refreshed && self.auth.invalidate(&auth) {
                refreshed = true;
                continue;
            }
            return match resp.status {
                200..=299 | 304 => Ok(Reply {
                    status: resp.status,
                    headers: resp.headers,
                    body: resp.body,
                    dropped: resp.dropped,
                    outcome: resp.outcome,
                    _hold: resp.hold,
                }),
                401 => Err(GhError::Unauthorized {
                    message: error_message(&resp.body),
                }),
                403 => Err(GhError::Forbidden {
                    message: error_message(&resp.body),
                }),
                404 => Err(GhError::NotFound {
                    what: format!("{} {}", method, url.path()),
                }),
                status @ 400..=499 => Err(GhError::Rejected {
                    status,
                    message: error_message(&resp.body),
                }),
                status => Err(GhError::Server {
                    status,
                    message: error_message(&resp.body),
                }),
            };
        }
    }

    pub async fn get_json<T: DeserializeOwned>(
        &self,
        ctx: &CallCtx,
        url: Url,
        lane: LaneKind,
    ) -> Result<T, GhError> {
        self.request(ctx, Method::GET, url, lane, ACCEPT_JSON, None)
            .await?
            .json()
    }

    pub async fn send_json<T: DeserializeOwned>(
        &self,
        ctx: &CallCtx,
        method: Method,
        url: Url,
        body: &Value,
    ) -> Result<T, GhError> {
        self.request(ctx, method, url, LaneKind::Write, ACCEPT_JSON, Some(body))
            .await?
            .json()
    }

    /// The repository's default branch: from memory when known, else one (cached) GET.
    pub async fn default_branch(&self, ctx: &CallCtx, repo: &str) -> Result<String, GhError> {
        if let Some(b) = self.known_default_branch(repo) {
            return Ok(b);
        }
        #[derive(Deserialize)]
        struct Repo {
            default_branch: String,
        }
        let r: Repo = self
            .get_json(
                ctx,
                self.url("repos/{repository}", &[("repository", repo)], &[])?,
                LaneKind::Read,
            )
            .await?;
        self.remember_default_branch(repo, &r.default_branch);
        Ok(r.default_branch)
    }

    /// One page of a plain list endpoint on the read lane: each item deserialised as `T`
    /// (items that do not fit are skipped).
    pub async fn list<T: serde::de::DeserializeOwned>(
        &self,
        ctx: &CallCtx,
        kind: &str,
        first: Url,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<T>, GhError> {
        let keep = |v: Value| serde_json::from_value::<T>(v).ok();
        let (page, _) = self
            .collect(ctx, kind, first, cursor, limit, LaneKind::Read, None, keep)
            .await?;
        Ok(page)
    }

    /// Fills up to `limit` items from a Link-paginated list, reading only the upstream
    /// pages needed. `items_of` extracts the array from a page body (`None` for a bare
    /// array); `keep` maps or drops each raw item.
    #[allow(clippy::too_many_arguments)]
    pub async fn collect<T>(
        &self,
        ctx: &CallCtx,
        kind: &str,
        first: Url,
        cursor: Option<&str>,
        limit: usize,
        lane: LaneKind,
        items_of: Option<&str>,
        keep: impl Fn(Value) -> Option<T>,
    ) -> Result<(Page<T>, Value), GhError> {
        let (mut url, mut skip) = match cursor {
            Some(c) => {
                let pos: PagePosition = page::decode(kind, c)?;
                let url = Url::parse(&pos.u)
                    .map_err(|_| GhError::Input("cursor: malformed page URL".into()))?;
                self.check_on_api(&url)?;
                (url, pos.s)
            }
            None => (first, 0),
        };
        let mut items = Vec::new();
        let mut envelope: Value;
        for pages_read in 1..=MAX_PAGES_PER_CALL {
            let reply = self
                .request(ctx, Method::GET, url.clone(), lane, ACCEPT_JSON, None)
                .await?;
            let mut body: Value = reply.json()?;
            let raw = match items_of {
                Some(field) => body.get_mut(field).map(Value::take),
                None => Some(body.take()),
            };
            let Some(Value::Array(raw)) = raw else {
                return Err(GhError::Decode(format!("{kind}: expected a list")));
            };
            envelope = body;
            let next = reply.next_link().filter(|n| self.check_on_api(n).is_ok());
            for (index, value) in raw.into_iter().enumerate().skip(skip) {
                if items.len() == limit {
                    let pos = PagePosition {
                        u: url.to_string(),
                        s: index,
                    };
                    return Ok((
                        Page {
                            items,
                            next_cursor: Some(page::encode(kind, &pos)),
                        },
                        envelope,
                    ));
                }
                if let Some(item) = keep(value) {
                    items.push(item);
                }
            }
            let Some(next) = next else {
                return Ok((
                    Page {
                        items,
                        next_cursor: None,
                    },
                    envelope,
                ));
            };
            if items.len() >= limit || pages_read == MAX_PAGES_PER_CALL {
                let pos = PagePosition {
                    u: next.to_string(),
                    s: 0,
                };
                return Ok((
                    Page {
                        items,
                        next_cursor: Some(page::encode(kind, &pos)),
                    },
                    envelope,
                ));
            }
            ctx.progress.report(
                items.len() as f64,
                Some(limit as f64),
                format!("read {pages_read} page(s) from GitHub"),
            );
            url = next;
            skip = 0;
        }
        unreachable!("the loop returns by its last iteration")
    }
}
