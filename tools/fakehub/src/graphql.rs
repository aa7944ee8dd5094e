//! `POST /graphql` (and `/api/graphql`): the two mutations REST has no equivalent for,
//! `convertPullRequestToDraft` and `markPullRequestReadyForReview`, answered in GitHub's
//! GraphQL shape. Limits, charging (bucket `graphql`) and headers come from the shared
//! pipeline in `server.rs` like every other route.
//!
//! The request's `query` must name exactly one of the two mutations; the pull request is
//! its `pullRequestId`: a variable (`pullRequestId: $name` → `variables.name`), an
//! `input: $name` variable object holding `pullRequestId`, or an inline string
//! literal. The answer is `{"data": {"<mutation>": {"pullRequest": {"id", "number",
//! "isDraft", "updatedAt"}}}}` whatever the selection. Like GitHub, failures are HTTP 200
//! with `data: null` and an `errors` array (`NOT_FOUND` for an unknown node id); anything
//! else (queries, other mutations) is an error saying what this fake serves.

use crate::data::{self, World};
use crate::routes::{Ctx, Reply};
use serde_json::{Value, json};

const MUTATIONS: [(&str, bool); 2] = [
    ("convertPullRequestToDraft", true),
    ("markPullRequestReadyForReview", false),
];

fn errors(errors: Value) -> Reply {
    Reply::json(200, json!({"data": null, "errors": errors}))
}

fn unsupported() -> Reply {
    errors(
        json!([{"message": "this fake serves only the mutations convertPullRequestToDraft and markPullRequestReadyForReview (input: {pullRequestId})"}]),
    )
}

/// The value of `pullRequestId` in the document: a `$variable` resolved in `variables`,
/// an `input: $variable` object, or a string literal.
fn pull_request_id(query: &str, variables: &Value) -> Option<String> {
    let after = |key: &str| argument(query, key);
    let variable = |rest: &str| {
        let name: String = rest
            .strip_prefix('$')?
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        Some(variables.get(name)?.clone())
    };
    if let Some(rest) = after("pullRequestId") {
        if let Some(literal) = rest.strip_prefix('"') {
            return Some(literal.split('"').next()?.to_string());
        }
        return variable(rest)?.as_str().map(String::from);
    }
    let input = variable(after("input")?)?;
    input.get("pullRequestId")?.as_str().map(String::from)
}

/// The text after `key:` where `key` is an argument name (a whole word, not a
/// `$variable` declaration).
fn argument<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    query.match_indices(key).find_map(|(at, _)| {
        let before = query[..at].chars().next_back();
        let rest = &query[at + key.len()..];
        if before.is_some_and(ident) || rest.chars().next().is_some_and(ident) {
            return None;
        }
        Some(rest.trim_start().strip_prefix(':')?.trim_start())
    })
}

pub fn answer(w: &mut World, c: &Ctx) -> Reply {
    if c.token.is_none() {
        return Reply::msg(401, "This endpoint requires you to be authenticated.");
    }
    let query = c.s("query").unwrap_or("");
    let named: Vec<(&str, bool)> = MUTATIONS
        .into_iter()
        .filter(|(name, _)| query.contains(name))
        .collect();
    let &[(mutation, draft)] = named.as_slice() else {
        return unsupported();
    };
    if !query.trim_start().starts_with("mutation") {
        return unsupported();
    }
    let variables = c.body.get("variables").cloned().unwrap_or(Value::Null);
    let Some(id) = pull_request_id(query, &variables) else {
        return errors(json!([{"message": format!(
            "Argument 'pullRequestId' on InputObject '{}Input' is required.",
            capitalised(mutation)
        )}]));
    };
    let now = chrono::Utc::now();
    let found = w.repos.iter_mut().find_map(|r| {
        r.issues
            .values_mut()
            .find(|i| i.pull.as_ref().is_some_and(|p| data::pull_node_id(p) == id))
    });
    let Some(issue) = found else {
        return errors(json!([{"type": "NOT_FOUND", "path": [mutation],
            "locations": [{"line": 1, "column": 1}],
            "message": format!("Could not resolve to a node with the global id of '{id}'")}]));
    };
    if let Some(p) = issue.pull.as_mut() {
        p.draft = draft;
    }
    issue.updated_at = now;
    Reply::json(
        200,
        json!({"data": {mutation: {"pullRequest": {"id": id, "number": issue.number,
            "isDraft": draft, "updatedAt": data::ts(&now)}}}}),
    )
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_request_id_is_found_where_graphql_puts_it() {
        let vars = json!({"id": "PR_1", "input": {"pullRequestId": "PR_2"}});
        let doc = "mutation($id: ID!) { convertPullRequestToDraft(input: {pullRequestId: $id}) { pullRequest { isDraft } } }";
        assert_eq!(pull_request_id(doc, &vars).as_deref(), Some("PR_1"));
        let vars2 = json!({"pullRequestId": "PR_4"});
        let doc = "mutation($pullRequestId: ID!) { convertPullRequestToDraft(input: {pullRequestId: $pullRequestId}) { pullRequest { isDraft } } }";
        assert_eq!(pull_request_id(doc, &vars2).as_deref(), Some("PR_4"));
        let doc = "mutation($input: ConvertPullRequestToDraftInput!) { convertPullRequestToDraft(input: $input) { clientMutationId } }";
        assert_eq!(pull_request_id(doc, &vars).as_deref(), Some("PR_2"));
        let doc = r#"mutation { markPullRequestReadyForReview(input: {pullRequestId: "PR_3"}) { clientMutationId } }"#;
        assert_eq!(pull_request_id(doc, &vars).as_deref(), Some("PR_3"));
        let doc = "mutation($x: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $x}) { clientMutationId } }";
        assert_eq!(pull_request_id(doc, &vars), None);
    }
}
