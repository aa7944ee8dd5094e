//! The request pipeline: auth, secondary and primary limits, latency, conditional
//! requests, headers; plus the `/_fake/*` control endpoints.

use crate::FakeConfig;
use crate::data::{Dt, World};
use crate::limits::{Gate, RateInfo, limit_for};
use crate::routes::{self, Ctx, RBody, Reply};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use chrono::DateTime;
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

pub struct Shared {
    pub config: Mutex<FakeConfig>,
    pub world: Mutex<World>,
    pub gate: Mutex<Gate>,
    seq: AtomicU64,
    addr: SocketAddr,
    /// `http://IP:PORT` of the log host (see `crate::logs`), set once it is bound.
    pub log_base: std::sync::OnceLock<String>,
    /// Keys the log host's URL signatures.
    pub log_secret: String,
}

impl Shared {
    pub fn new(config: FakeConfig, addr: SocketAddr) -> Shared {
        let mut sh = Shared {
            config: Mutex::new(config),
            world: Mutex::new(World::seed()),
            gate: Mutex::new(Gate::default()),
            seq: AtomicU64::new(1),
            addr,
            log_base: std::sync::OnceLock::new(),
            log_secret: String::new(),
        };
        sh.log_secret = sh.random_hex();
        sh
    }

    /// 64 hex chars, unpredictable enough for fake tokens.
    pub fn random_hex(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = format!(
            "{n}|{}|{}|{:p}|{}",
            t.as_nanos(),
            self.addr,
            self,
            std::process::id()
        );
        hex::encode(Sha256::digest(seed.as_bytes()))
    }

    fn request_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "FAKE:{:04X}:{:06X}:{:08X}",
            self.addr.port(),
            std::process::id() & 0xFFFFFF,
            n
        )
    }

    fn token_ok(&self, t: &str) -> bool {
        let g = self.gate.lock();
        t != "bad"
            && g.install_tokens
                .get(t)
                .is_none_or(|i| !i.revoked && i.expires > SystemTime::now())
    }
}

pub fn router(sh: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(sh)
}

/// Releases the in-flight slot when the request finishes (or is cancelled).
struct InFlight(Arc<Shared>, String);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.gate.lock().release(&self.1);
    }
}

fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, tok) = v.split_once(' ')?;
    let tok = tok.trim();
    (["bearer", "token"].contains(&scheme.to_ascii_lowercase().as_str()) && !tok.is_empty())
        .then(|| tok.to_string())
}

pub fn etag_of(bytes: &[u8]) -> String {
    format!("W/\"{}\"", &hex::encode(Sha256::digest(bytes))[..32])
}

fn http_date(d: &Dt) -> String {
    d.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn not_modified(h: &HeaderMap, etag: &str, lm: Option<Dt>) -> bool {
    if let Some(inm) = h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').map(str::trim).any(|t| t == "*" || t == etag);
    }
    let ims = h
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok());
    match (ims.and_then(|s| DateTime::parse_from_rfc2822(s).ok()), lm) {
        (Some(ims), Some(lm)) => lm.timestamp() <= ims.timestamp(),
        _ => false,
    }
}

struct Out {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    content_type: Option<&'static str>,
}

impl Out {
    fn new(status: u16, body: RBody, rid: &str) -> Out {
        let body_location = match &body {
            RBody::Redirect(to) => RBody::Redirect(to.clone()),
            _ => RBody::Empty,
        };
        let (body, content_type) = match body {
            RBody::Json(v) => (
                serde_json::to_vec(&v).unwrap_or_default(),
                Some("application/json; charset=utf-8"),
            ),
            RBody::Text(t) => (t.into_bytes(), Some("text/plain; charset=utf-8")),
            RBody::Empty | RBody::Redirect(_) => (Vec::new(), None),
        };
        let mut headers = vec![
            ("x-github-request-id", rid.to_string()),
            ("x-github-api-version-selected", "2022-11-28".into()),
        ];
        if let RBody::Redirect(to) = &body_location {
            headers.push(("location", to.clone()));
        }
        Out {
            status,
            headers,
            body,
            content_type,
        }
    }

    fn json(status: u16, v: Value, rid: &str) -> Out {
        Out::new(status, RBody::Json(v), rid)
    }

    fn rate(mut self, i: RateInfo) -> Out {
        self.headers.extend([
            ("x-ratelimit-limit", i.limit.to_string()),
            ("x-ratelimit-remaining", i.remaining.to_string()),
            ("x-ratelimit-used", i.used.to_string()),
            ("x-ratelimit-reset", i.reset.to_string()),
            ("x-ratelimit-resource", i.resource.to_string()),
        ]);
        self
    }

    fn finish(self) -> Response {
        let mut b = Response::builder().status(self.status);
        if let Some(ct) = self.content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        b.body(Body::from(self.body))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    if let Some(rest) = path.strip_prefix("/_fake/") {
        return control(&sh, &parts.method, rest, &bytes);
    }
    let cfg = sh.config.lock().clone();
    let (prefix, rel) = match path.strip_prefix("/api/v3") {
        Some(r) if r.is_empty() || r.starts_with('/') => ("/api/v3", r.to_string()),
        _ if path == "/api/graphql" => ("/api", "/graphql".to_string()),
        _ => ("", path.clone()),
    };
    let method = if parts.method == Method::HEAD {
        "GET"
    } else {
        parts.method.as_str()
    };
    // GraphQL sits beside the REST API (`/graphql`, or `/api/graphql` for `/api/v3`),
    // never under `/api/v3`.
    let matched = routes::match_route(method, &rel)
        .filter(|m| !(prefix == "/api/v3" && m.template == "/graphql"));
    let template = matched.as_ref().map(|m| m.template);
    let endpoint = format!(
        "{} {}",
        parts.method,
        template.map_or("(unmatched)".into(), |t| t.replace("*}", "}"))
    );
    let bucket = routes::bucket(template);
    let token = bearer(&parts.headers);
    let anon = token.is_none();
    let key = token.clone().unwrap_or_else(|| "anonymous".into());
    let display = token.as_ref().map_or("anonymous".into(), |t| {
        format!("{}…", t.chars().take(8).collect::<String>())
    });
    let free = template == Some("/rate_limit");
    let limit = limit_for(&cfg, anon, bucket);
    let rid = sh.request_id();
    {
        let mut g = sh.gate.lock();
        g.stats.requests += 1;
        *g.stats.by_route.entry(endpoint.clone()).or_default() += 1;
        g.token_stats(&display).requests += 1;
    }

    // Credentials.
    if token.as_deref().is_some_and(|t| !sh.token_ok(t)) {
        tokio::time::sleep(cfg.latency).await;
        let info = sh
            .gate
            .lock()
            .rate("anonymous", "core", limit_for(&cfg, true, "core"));
        let body = json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"});
        return Out::json(401, body, &rid).rate(info).finish();
    }

    // Secondary limits.
    let points = if method == "GET" || method == "OPTIONS" {
        1
    } else {
        5
    };
    let admitted = {
        let mut g = sh.gate.lock();
        let forced = !free && g.take_forced();
        g.admit(&key, &display, &endpoint, points, &cfg, forced)
    };
    if admitted.is_err() {
        tokio::time::sleep(cfg.latency).await;
        let info = sh.gate.lock().rate(&key, bucket, limit);
        let msg = format!(
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {rid}."
        );
        let body = json!({"message": msg, "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"});
        let mut out = Out::json(403, body, &rid).rate(info);
        if let Some(s) = cfg.retry_after_secs {
            out.headers.push(("retry-after", s.to_string()));
        }
        return out.finish();
    }
    let _slot = InFlight(sh.clone(), key.clone());
    if !cfg.latency.is_zero() {
        tokio::time::sleep(cfg.latency).await;
    }

    // Injected server errors (charged like any answered request).
    let injected = if free {
        None
    } else {
        sh.gate.lock().take_injected()
    };
    if let Some(status) = injected {
        let mut g = sh.gate.lock();
        g.stats.server_errors += 1;
        let info = g.charge(&key, &display, bucket, limit);
        let reason = axum::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Server Error");
        return Out::json(status, json!({"message": reason}), &rid)
            .rate(info)
            .finish();
    }

    // Primary limit.
    if !free {
        let mut g = sh.gate.lock();
        let info = g.rate(&key, bucket, limit);
        if info.remaining == 0 {
            g.stats.primary_limited += 1;
            let who = if anon { "127.0.0.1" } else { "user ID 1" };
            let body = json!({"message": format!("API rate limit exceeded for {who}."), "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"});
            return Out::json(403, body, &rid).rate(info).finish();
        }
    }

    // Handler.
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| sh.addr.to_string(), String::from);
    let ctx = Ctx {
        method: method.to_string(),
        path: rel.clone(),
        params: matched
            .as_ref()
            .map(|m| m.params.clone())
            .unwrap_or_default(),
        query: parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        accept: if sh.config.lock().ignore_accept {
            "application/vnd.github+json".to_string()
        } else {
            parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        },
        api: format!("http://{host}{prefix}"),
        installation: token
            .as_deref()
            .is_some_and(|t| sh.gate.lock().install_tokens.contains_key(t)),
        token: token.clone(),
        key: key.clone(),
    };
    let reply: Reply = match template {
        Some(t) => {
            let sh2 = sh.clone();
            let t = t.to_string();
            // Handlers are synchronous and may take a few ms (diffs, search): keep them off the reactor.
            tokio::task::spawn_blocking(move || routes::dispatch(&sh2, &ctx, &t))
                .await
                .unwrap_or_else(|_| Reply::msg(500, "Internal Server Error"))
        }
        None => Reply::not_found(),
    };

    // Conditional requests, charging, headers.
    let mut out = Out::new(reply.status, reply.body, &rid);
    let mut is_304 = false;
    if method == "GET" && reply.status == 200 {
        let etag = etag_of(&out.body);
        is_304 = not_modified(&parts.headers, &etag, reply.last_modified);
        out.headers.push(("etag", etag));
        if let Some(lm) = reply.last_modified {
            out.headers.push(("last-modified", http_date(&lm)));
        }
        out.headers
            .push(("cache-control", "private, max-age=60".into()));
        out.headers
            .push(("vary", "Accept, Authorization, Cookie".into()));
        if is_304 {
            out.status = 304;
            out.body.clear();
            out.content_type = None;
        }
    }
    if let Some(link) = reply.link.filter(|_| !is_304) {
        out.headers.push(("link", link));
    }
    let info = {
        let mut g = sh.gate.lock();
        if is_304 {
            g.stats.not_modified += 1;
            g.token_stats(&display).not_modified += 1;
        }
        if free || (is_304 && !anon) {
            g.rate(&key, bucket, limit)
        } else {
            g.charge(&key, &display, bucket, limit)
        }
    };
    out.rate(info).finish()
}

fn control(sh: &Shared, method: &Method, rest: &str, body: &[u8]) -> Response {
    let ok = || Out::json(200, json!({"ok": true}), "fake").finish();
    match (method.as_str(), rest) {
        ("GET", "stats") => {
            let stats = sh.gate.lock().stats.clone();
            Out::json(
                200,
                serde_json::to_value(stats).unwrap_or(Value::Null),
                "fake",
            )
            .finish()
        }
        ("POST", "reset") => {
            sh.gate.lock().reset();
            ok()
        }
        ("POST", "control") => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return Out::json(400, json!({"message": "Problems parsing JSON"}), "fake")
                    .finish();
            };
            if let Some(spec) = v.get("red_build") {
                return match crate::scenarios::red_build(&mut sh.world.lock(), spec) {
                    Ok(made) => Out::json(200, made, "fake").finish(),
                    Err(e) => Out::json(422, json!({"message": e}), "fake").finish(),
                };
            }
            let mut g = sh.gate.lock();
            if let Some(i) = v.get("inject_server_errors") {
                let n = i.get("n").and_then(Value::as_u64).unwrap_or(0) as u32;
                let status = i.get("status").and_then(Value::as_u64).unwrap_or(502) as u16;
                g.inject = (n, status);
            }
            if let Some(n) = v.get("force_secondary").and_then(Value::as_u64) {
                g.force_secondary = n as u32;
            }
            if v.get("revoke_installation_tokens").and_then(Value::as_bool) == Some(true) {
                g.install_tokens.values_mut().for_each(|t| t.revoked = true);
            }
            drop(g);
            let mut cfg = sh.config.lock();
            if let Some(ms) = v.get("latency_ms").and_then(Value::as_u64) {
                cfg.latency = Duration::from_millis(ms);
            }
            if let Some(r) = v.get("retry_after_secs") {
                cfg.retry_after_secs = r.as_u64();
            }
            ok()
        }
        _ => Out::json(404, json!({"message": "Not Found"}), "fake").finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_matching() {
        let etag = etag_of(b"{}");
        assert!(etag.starts_with("W/\"") && etag.len() == 32 + 4);
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            format!("\"x\", {etag}").parse().unwrap(),
        );
        assert!(not_modified(&h, &etag, None));
        h.insert(
            header::IF_NONE_MATCH,
            etag.trim_start_matches("W/").parse().unwrap(),
        );
        assert!(!not_modified(&h, &etag, None));
        let lm = crate::data::base_time();
        let mut h = HeaderMap::new();
        h.insert(header::IF_MODIFIED_SINCE, http_date(&lm).parse().unwrap());
        assert!(not_modified(&h, "W/\"a\"", Some(lm)));
        assert!(!not_modified(
            &h,
            "W/\"a\"",
            Some(lm + chrono::Duration::seconds(1))
        ));
    }
}
