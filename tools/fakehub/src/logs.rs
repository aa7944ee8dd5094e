//! The log host: a second loopback listener standing in for the blob storage GitHub
//! redirects job-log downloads to. `GET /repos/{o}/{r}/actions/jobs/{id}/logs` on the API
//! answers 302 to a signed URL here; this host serves the text only for a valid
//! signature and, like the real storage, refuses any request that carries an
//! `Authorization` header (a client that forwards its GitHub token across the redirect
//! fails here, and the attempt is counted in `Stats::log_authorization_rejected`).

use crate::server::Shared;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use std::sync::Arc;

/// The signature of one job's log URL (keyed by the hub's secret).
fn signature(sh: &Shared, full: &str, job_id: u64) -> String {
    crate::data::fake_sha(&format!("{}|{full}|{job_id}", sh.log_secret))
}

/// Where the API redirects a job's log download.
pub fn signed_url(sh: &Shared, full: &str, job_id: u64) -> String {
    let base = sh.log_base.get().cloned().unwrap_or_default();
    format!(
        "{base}/{full}/jobs/{job_id}/log.txt?sv=2024-01-01&sig={}",
        signature(sh, full, job_id)
    )
}

pub fn router(sh: Arc<Shared>) -> Router {
    Router::new().fallback(serve).with_state(sh)
}

fn answer(status: u16, content_type: &str, body: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header("x-ms-request-id", "fakehub-log-host")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn serve(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    sh.gate.lock().stats.log_requests += 1;
    if req.headers().contains_key(header::AUTHORIZATION) {
        sh.gate.lock().stats.log_authorization_rejected += 1;
        return answer(
            400,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InvalidAuthenticationInfo</Code><Message>Authentication information is not given in the correct format: an Authorization header is not accepted with a signed URL.</Message></Error>".into(),
        );
    }
    let path = req.uri().path().trim_start_matches('/').to_string();
    let sig = req
        .uri()
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find_map(|(k, v)| (k == "sig").then(|| v.into_owned()))
        })
        .unwrap_or_default();
    // {owner}/{repo}/jobs/{id}/log.txt
    let parts: Vec<&str> = path.split('/').collect();
    let forbidden = || {
        answer(
            403,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Signature did not match.</Message></Error>".into(),
        )
    };
    let [owner, repo, "jobs", id, "log.txt"] = parts.as_slice() else {
        return forbidden();
    };
    let Ok(job_id) = id.parse::<u64>() else {
        return forbidden();
    };
    let full = format!("{owner}/{repo}");
    if sig != signature(&sh, &full, job_id) {
        return forbidden();
    }
    let w = sh.world.lock();
    let log = w.repo_index(owner, repo).and_then(|ri| {
        w.repos[ri]
            .runs
            .iter()
            .flat_map(|x| &x.jobs)
            .find(|j| j.id == job_id)
            .map(|j| j.log.clone())
    });
    match log {
        Some(text) => answer(200, "text/plain; charset=utf-8", text),
        None => answer(
            404,
            "application/xml",
            "<Error><Code>BlobNotFound</Code></Error>".into(),
        ),
    }
}
