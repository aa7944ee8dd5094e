//! [`GhError`]: what a GitHub call can fail with, its conversions from the runtime's
//! upstream and paging errors and into tool results, and the message GitHub put in an
//! error body.
//!
//! Owns error shapes and wording only; it must not send requests and never puts a
//! secret in a message.

use serde::Deserialize;
use serde_json::Value;

use crate::runtime::{http::UpstreamError, page::PageError, registry::ToolError};

use crate::github::auth::AuthError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GhError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Input(String),
    #[error(
        "GitHub: not found ({what}); check the owner/name, number or path, and that the credential can see it"
    )]
    NotFound { what: String },
    #[error(
        "GitHub refused the credential (401: {message}); check that the token is valid and not expired"
    )]
    Unauthorized { message: String },
    #[error(
        "GitHub: forbidden (403: {message}); the credential lacks the permission this needs — this is not a rate limit"
    )]
    Forbidden { message: String },
    #[error("GitHub rejected the request ({status}: {message}); fix the arguments and try again")]
    Rejected { status: u16, message: String },
    /// An `errors` answer of the GraphQL API (HTTP 200): GitHub's error class (`type`,
    /// or `ERROR` when it gave none) and its messages. Callers add what to do.
    #[error("GitHub's GraphQL API refused the request ({kind}: {message})")]
    Graphql { kind: String, message: String },
    #[error("GitHub failed ({status}: {message}); try again later")]
    Server { status: u16, message: String },
    #[error(
        "GitHub rate limit: retried {attempts} time(s) over {waited_secs} s; try again after {retry_after_secs} s"
    )]
    RateLimited {
        attempts: u32,
        waited_secs: u64,
        retry_after_secs: u64,
    },
    #[error("GitHub request failed: {0}")]
    Upstream(String),
    /// The answer did not fit the call's memory budget (the text names the budget).
    #[error("GitHub: {0}")]
    TooLarge(String),
    #[error("GitHub answered with an unexpected body: {0}")]
    Decode(String),
    #[error("{0}")]
    Deadline(String),
    #[error("cancelled")]
    Cancelled,
}

impl From<UpstreamError> for GhError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::RateLimited {
                retry_after_secs,
                attempts,
                waited_secs,
                ..
            } => GhError::RateLimited {
                attempts,
                waited_secs,
                retry_after_secs,
            },
            UpstreamError::Cancelled { .. } => GhError::Cancelled,
            UpstreamError::Deadline { host } => GhError::Deadline(format!(
                "the request deadline passed while waiting for {host}; try again or ask for less"
            )),
            UpstreamError::Lane(crate::runtime::executor::ExecError::Cancelled { .. }) => {
                GhError::Cancelled
            }
            // The budget shared by replicas could not be asked (its store is down).
            UpstreamError::Lane(e @ crate::runtime::executor::ExecError::Shared { .. }) => {
                GhError::Upstream(e.to_string())
            }
            UpstreamError::Lane(e) => GhError::Deadline(format!(
                "{e}; GitHub requests of this credential are queued or paused — try again shortly"
            )),
            too_large @ UpstreamError::TooLarge { .. } => GhError::TooLarge(too_large.to_string()),
            other => GhError::Upstream(other.to_string()),
        }
    }
}

impl From<PageError> for GhError {
    fn from(e: PageError) -> Self {
        GhError::Input(format!("cursor: {e}"))
    }
}

impl From<GhError> for ToolError {
    fn from(e: GhError) -> Self {
        match e {
            GhError::Input(m) => ToolError::Input(m),
            GhError::Auth(AuthError::Missing) => ToolError::Business(e.to_string()),
            GhError::NotFound { .. }
            | GhError::Rejected { .. }
            | GhError::Forbidden { .. }
            | GhError::Graphql { .. }
            | GhError::TooLarge(_) => ToolError::Business(e.to_string()),
            GhError::Deadline(m) => ToolError::Deadline(m),
            GhError::Cancelled => ToolError::Cancelled,
            other => ToolError::Upstream(other.to_string()),
        }
    }
}

pub(super) fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        message: Option<String>,
        #[serde(default)]
        errors: Vec<Value>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => {
            let mut msg = b.message.unwrap_or_else(|| "no message".into());
            let details: Vec<String> = b
                .errors
                .iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => {
                        let field = other.get("field").and_then(Value::as_str).unwrap_or("");
                        let code = other.get("code").and_then(Value::as_str).unwrap_or("");
                        let m = other.get("message").and_then(Value::as_str).unwrap_or("");
                        format!("{field} {code} {m}").trim().to_string()
                    }
                })
                .collect();
            if !details.is_empty() {
                msg = format!("{msg}: {}", details.join("; "));
            }
            msg
        }
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    }
}
