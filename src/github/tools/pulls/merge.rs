//! `merge_pull_request`: merges through `PUT /pulls/{number}/merge`. Without an explicit
//! `mergeMethod`, a client that can be asked (MCP 2026-07-28 with form elicitation,
//! see `runtime::rounds`) gets the question first — which method, among those the
//! repository allows (`allow_merge_commit` / `allow_squash_merge` / `allow_rebase_merge`
//! of the repository, one cached GET; all three when the token does not see them) — and
//! the merge happens in the round that carries the answer. Any other client merges with
//! `merge`, as before. A declined or dismissed question merges nothing and says so as an
//! `isError` result.
//!
//! Owns the tool's input, output, question and handler; requests go through the client
//! only.

use crate::runtime::rounds::{Ask, Elicited};

use super::*;

#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    const ALL: [MergeMethod; 3] = [MergeMethod::Merge, MergeMethod::Squash, MergeMethod::Rebase];

    fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }

    fn title(self) -> &'static str {
        match self {
            MergeMethod::Merge => "Create a merge commit",
            MergeMethod::Squash => "Squash and merge",
            MergeMethod::Rebase => "Rebase and merge",
        }
    }

    fn parse(text: &str) -> Option<MergeMethod> {
        MergeMethod::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergeIn {
    /// owner/name
    pub repository: String,
    #[schemars(range(min = 1))]
    pub number: u64,
    /// Default merge; a client that can be asked chooses.
    #[serde(default)]
    pub merge_method: Option<MergeMethod>,
    #[serde(default)]
    pub commit_title: Option<String>,
    #[serde(default)]
    pub commit_message: Option<String>,
    /// Merge only if the head is still at this SHA.
    #[serde(default)]
    pub sha: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct MergeResult {
    pub merged: bool,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The key of the merge-method question in `inputRequests` / `inputResponses`.
const QUESTION: &str = "merge_method";
/// The form field the user fills in.
const FIELD: &str = "mergeMethod";

/// What the question offered, carried to the round that answers it.
#[derive(Serialize, Deserialize)]
struct Offered {
    methods: Vec<MergeMethod>,
}

/// The merge settings of a repository (absent for tokens that cannot push to it).
#[derive(Deserialize)]
struct MergeSettings {
    #[serde(default)]
    allow_merge_commit: Option<bool>,
    #[serde(default)]
    allow_squash_merge: Option<bool>,
    #[serde(default)]
    allow_rebase_merge: Option<bool>,
}

impl MergeSettings {
    /// The methods not switched off, in GitHub's order; all three when none is left.
    fn allowed(&self) -> Vec<MergeMethod> {
        let allowed: Vec<MergeMethod> = [
            (MergeMethod::Merge, self.allow_merge_commit),
            (MergeMethod::Squash, self.allow_squash_merge),
            (MergeMethod::Rebase, self.allow_rebase_merge),
        ]
        .into_iter()
        .filter(|(_, allow)| *allow != Some(false))
        .map(|(m, _)| m)
        .collect();
        if allowed.is_empty() {
            MergeMethod::ALL.to_vec()
        } else {
            allowed
        }
    }
}

/// The methods to offer for `repo`. The repository read goes through the conditional
/// cache; when it fails the question offers all three and the merge reports its own
/// error.
async fn allowed_methods(gh: &SharedGithub, ctx: &CallCtx, repo: &str) -> Vec<MergeMethod> {
    let url = match gh
        .client
        .url("repos/{repository}", &[("repository", repo)], &[])
    {
        Ok(url) => url,
        Err(_) => return MergeMethod::ALL.to_vec(),
    };
    match gh
        .client
        .get_json::<MergeSettings>(ctx, url, LaneKind::Read)
        .await
    {
        Ok(settings) => settings.allowed(),
        Err(e) => {
            tracing::debug!("merge settings of {repo} unknown ({e}); offering every method");
            MergeMethod::ALL.to_vec()
        }
    }
}

fn question(repo: &str, number: u64, methods: Vec<MergeMethod>) -> Ask {
    let choices: Vec<Value> = methods
        .iter()
        .map(|m| json!({"const": m.as_str(), "title": m.title()}))
        .collect();
    let schema = json!({
        "type": "object",
        "properties": {FIELD: {
            "type": "string",
            "title": "Merge method",
            "oneOf": choices,
            "default": methods[0].as_str(),
        }},
        "required": [FIELD],
    });
    Ask::new()
        .elicit(
            QUESTION,
            format!("Merge pull request #{number} of {repo}: which merge method?"),
            schema,
        )
        .with_state(&Offered { methods })
}

/// The method the user chose (from the question's answer and its state), or the ask
/// to send, or why nothing is merged.
async fn chosen_method(
    gh: &SharedGithub,
    ctx: &CallCtx,
    repo: &str,
    number: u64,
) -> Result<MergeMethod, ToolError> {
    let offered = ctx.rounds.state::<Offered>();
    match (offered, ctx.rounds.elicited(QUESTION)?) {
        (Some(offered), Some(Elicited::Accepted(content))) => {
            let picked = content
                .get(FIELD)
                .and_then(Value::as_str)
                .and_then(MergeMethod::parse)
                .filter(|m| offered.methods.contains(m));
            match picked {
                Some(method) => Ok(method),
                // Not one of the choices: ask again.
                None => Err(ToolError::needs_input(question(
                    repo,
                    number,
                    offered.methods,
                ))),
            }
        }
        (Some(_), Some(Elicited::Declined | Elicited::Cancelled)) => {
            Err(ToolError::business(format!(
                "Nothing was merged: the user did not choose a merge method for pull request #{number} of {repo}. Pass `mergeMethod` to merge without asking."
            )))
        }
        _ => {
            let methods = allowed_methods(gh, ctx, repo).await;
            match methods.as_slice() {
                // One way to merge: nothing to ask.
                [only] => Ok(*only),
                _ => Err(ToolError::needs_input(question(repo, number, methods))),
            }
        }
    }
}

pub(super) async fn merge_pull_request(
    gh: SharedGithub,
    i: MergeIn,
    ctx: CallCtx,
) -> Out<MergeResult> {
    let repo = repo(&i.repository)?;
    let method = match i.merge_method {
        Some(method) => method,
        None if ctx.rounds.can_elicit() => chosen_method(&gh, &ctx, &repo, i.number).await?,
        None => MergeMethod::Merge,
    }
    .as_str();
    let mut body = json!({"merge_method": method});
    for (k, v) in [
        ("commit_title", i.commit_title),
        ("commit_message", i.commit_message),
        ("sha", i.sha),
    ] {
        if let Some(v) = v {
            body[k] = Value::from(v);
        }
    }
    let url = gh.client.url(
        "repos/{repository}/pulls/{number}/merge",
        &[("repository", &repo), ("number", &i.number.to_string())],
        &[],
    )?;
    let result: MergeResult = gh
        .client
        .send_json(&ctx, Method::PUT, url, &body)
        .await
        .map_err(|e| match e {
            GhError::Rejected { status: 405, message } if message.contains("not allowed") => {
                GhError::Rejected {
                    status: 405,
                    message: format!("{message} Pass another mergeMethod."),
                }
            }
            GhError::Rejected { status: 405, message } => GhError::Rejected {
                status: 405,
                message: format!("{message} (the pull request is not mergeable: closed, already merged, or checks pending)"),
            },
            other => other,
        })?;
    publish(
        &gh,
        PullRequestAction::Merged {
            action: "merged",
            repository: &repo,
            number: i.number,
            merge_method: method,
            sha: result.sha.as_deref(),
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_settings_narrow_the_choice() {
        let settings: MergeSettings = serde_json::from_value(json!({
            "allow_merge_commit": false, "allow_squash_merge": true
        }))
        .unwrap();
        assert_eq!(
            settings.allowed(),
            vec![MergeMethod::Squash, MergeMethod::Rebase]
        );
        let unseen: MergeSettings = serde_json::from_value(json!({})).unwrap();
        assert_eq!(unseen.allowed(), MergeMethod::ALL.to_vec());
    }

    #[test]
    fn the_question_is_a_valid_form() {
        use crate::runtime::{
            principal::Principal,
            rounds::{Askable, Origin},
        };
        let can = Askable {
            elicitation: true,
            modern: true,
            ..Askable::default()
        };
        let origin = Origin::new(
            "tools/call",
            "merge_pull_request",
            None,
            &Principal::stdio(),
        );
        let result = question("o/r", 7, vec![MergeMethod::Squash, MergeMethod::Rebase])
            .into_result(&origin, can)
            .unwrap();
        let wire = serde_json::to_value(&result).unwrap();
        let field =
            &wire["inputRequests"][QUESTION]["params"]["requestedSchema"]["properties"][FIELD];
        assert_eq!(field["oneOf"][0]["const"], "squash");
        assert!(wire["requestState"].is_string());
    }
}
