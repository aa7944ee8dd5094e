//! GitHub's GraphQL endpoint, for what REST cannot do (a pull request's draft state):
//! where the endpoint is for a configured REST base ([`graphql_endpoint`]), and one
//! GraphQL request sent exactly like a REST one — the credential's lanes and adaptive
//! windows, the rate-limit observer (GitHub answers with `x-ratelimit-resource: graphql`,
//! so the `graphql` bucket is recorded and accounted like any other), token refresh and
//! the call's memory budget. GraphQL reports failures as HTTP 200 with an `errors`
//! array; those become [`GhError::Graphql`] (or [`GhError::RateLimited`]).
//!
//! Owns the endpoint derivation and the request/answer envelope only. It must not know
//! any query: callers pass a fixed document and put every caller-supplied value in
//! `variables`, never in the document text.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::runtime::registry::CallCtx;

use super::{GhError, GithubClient, LaneKind};

const ACCEPT_GRAPHQL: &str = "application/json";
/// At most this many GraphQL error messages are quoted in one error.
const MAX_QUOTED_ERRORS: usize = 3;

/// The GraphQL endpoint beside a REST API base: `https://api.github.com/` →
/// `https://api.github.com/graphql`; a GitHub Enterprise Server base ending in `/api/v3`
/// → `/api/graphql` on the same host; any other base → `graphql` under it.
pub fn graphql_endpoint(base: &Url) -> Url {
    let path = base.path().trim_end_matches('/');
    let endpoint = match path.strip_suffix("/api/v3") {
        Some(prefix) => format!("{prefix}/api/graphql"),
        None => format!("{path}/graphql"),
    };
    let mut url = base.clone();
    url.set_path(&endpoint);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// One entry of a GraphQL `errors` array.
#[derive(Deserialize)]
struct GraphqlError {
    /// GitHub's error class (`NOT_FOUND`, `FORBIDDEN`, `UNPROCESSABLE`, `RATE_LIMITED`);
    /// absent on syntax and validation errors.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

fn seconds_until(reset_epoch: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    reset_epoch.saturating_sub(now) + 1
}

/// The `data` of an answer, or the error its `errors` array describes.
fn interpret(envelope: Envelope, reset_epoch: Option<u64>) -> Result<Value, GhError> {
    if envelope.errors.is_empty() {
        return envelope
            .data
            .filter(|d| !d.is_null())
            .ok_or_else(|| GhError::Decode("GraphQL answer without `data` or `errors`".into()));
    }
    if envelope
        .errors
        .iter()
        .any(|e| e.kind.as_deref() == Some("RATE_LIMITED"))
    {
        return Err(GhError::RateLimited {
            attempts: 1,
            waited_secs: 0,
            retry_after_secs: reset_epoch.map_or(60, seconds_until),
        });
    }
    let kind = envelope
        .errors
        .iter()
        .find_map(|e| e.kind.clone())
        .unwrap_or_else(|| "ERROR".into());
    let message = envelope
        .errors
        .iter()
        .take(MAX_QUOTED_ERRORS)
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Err(GhError::Graphql { kind, message })
}

impl GithubClient {
    /// The GraphQL endpoint of the configured API (see [`graphql_endpoint`]).
    pub fn graphql_url(&self) -> Url {
        graphql_endpoint(self.base())
    }

    /// Sends one GraphQL `document` with `variables` on `lane` (mutations: the write
    /// lane, since GitHub counts them against the same content-creation limits as REST
    /// writes) and returns its `data`.
    pub async fn graphql(
        &self,
        ctx: &CallCtx,
        lane: LaneKind,
        document: &str,
        variables: Value,
    ) -> Result<Value, GhError> {
        let body = json!({"query": document, "variables": variables});
        let reply = self
            .request(
                ctx,
                Method::POST,
                self.graphql_url(),
                lane,
                ACCEPT_GRAPHQL,
                Some(&body),
            )
            .await?;
        let reset = reply
            .headers
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        interpret(reply.json()?, reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(base: &str) -> String {
        graphql_endpoint(&Url::parse(base).unwrap()).to_string()
    }

    #[test]
    fn the_endpoint_sits_beside_the_rest_base() {
        assert_eq!(
            endpoint("https://api.github.com/"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            endpoint("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            endpoint("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/api/graphql"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8080/api/v3"),
            "http://127.0.0.1:8080/api/graphql"
        );
        assert_eq!(
            endpoint("https://proxy.example/github/"),
            "https://proxy.example/github/graphql"
        );
    }

    fn answer(v: Value) -> Result<Value, GhError> {
        interpret(serde_json::from_value(v).unwrap(), Some(0))
    }

    #[test]
    fn errors_in_a_200_answer_are_errors() {
        let data = answer(json!({"data": {"x": {"isDraft": true}}})).unwrap();
        assert_eq!(data["x"]["isDraft"], true);
        let missing = answer(json!({"data": null, "errors": [
            {"type": "NOT_FOUND", "path": ["x"], "message": "Could not resolve to a node with the global id of 'PR_1'"}
        ]}))
        .unwrap_err();
        assert!(
            matches!(&missing, GhError::Graphql { kind, message }
                if kind == "NOT_FOUND" && message.contains("PR_1")),
            "{missing}"
        );
        let syntax = answer(json!({"errors": [{"message": "Parse error on \"}\""}]})).unwrap_err();
        assert!(
            matches!(&syntax, GhError::Graphql { kind, .. } if kind == "ERROR"),
            "{syntax}"
        );
        let limited = answer(
            json!({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}),
        )
        .unwrap_err();
        assert!(matches!(limited, GhError::RateLimited { .. }), "{limited}");
        assert!(matches!(
            answer(json!({"data": null})),
            Err(GhError::Decode(_))
        ));
    }
}
