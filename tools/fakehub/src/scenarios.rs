//! Scenarios a benchmark sets up through `POST /_fake/control` without spending any
//! client's requests: `{"red_build": {"repository": "octo/hello", "branch": "ci-red-1"}}`
//! opens a pull request from a new branch whose CI run failed in its `test` job (the log
//! names `src/lib.rs` and `src/main.rs`, as every failing seeded test job does).
//!
//! Owns only world changes made for a scenario; the routes serve the result as usual.

use chrono::Utc;
use serde_json::{Value, json};

use crate::data::{Issue, Pull, Run, World, standard_jobs};

/// Opens the red-build pull request described by `spec`; answers its number, branch and
/// the failed run, or why not.
pub fn red_build(w: &mut World, spec: &Value) -> Result<Value, String> {
    let full = spec
        .get("repository")
        .and_then(Value::as_str)
        .unwrap_or("octo/hello");
    let branch = spec
        .get("branch")
        .and_then(Value::as_str)
        .ok_or("red_build needs `branch`")?;
    let (owner, name) = full.split_once('/').ok_or("repository is owner/name")?;
    let index = w
        .repo_index(owner, name)
        .ok_or_else(|| format!("no repository {full}"))?;
    let (issue_id, pull_id) = (w.id(), w.id());
    let now = Utc::now();
    let r = &mut w.repos[index];
    if r.branches.contains_key(branch) {
        return Err(format!("branch {branch} exists"));
    }
    let base_sha = r
        .branches
        .get("main")
        .cloned()
        .ok_or("the repository has no main branch")?;
    let tree = r.tree_of(&base_sha);
    let head_sha = r.commit_tree(vec![base_sha], tree, "Speed up the scheduler", "bob", now);
    r.branches.insert(branch.to_string(), head_sha.clone());
    let number = r.issues.keys().last().copied().unwrap_or(0) + 1;
    r.issues.insert(
        number,
        Issue {
            number,
            id: issue_id,
            title: "Speed up the scheduler".into(),
            body: Some("CI is red on this one.".into()),
            state: "open".into(),
            state_reason: None,
            user: "bob".into(),
            labels: vec![],
            assignees: vec![],
            comments: vec![],
            created_at: now,
            updated_at: now,
            closed_at: None,
            pull: Some(Pull {
                id: pull_id,
                head: branch.into(),
                head_sha: head_sha.clone(),
                base: "main".into(),
                merged_at: None,
                merge_commit_sha: None,
                merged_base: None,
                draft: false,
                reviews: Default::default(),
            }),
        },
    );
    let workflow_id = r.workflows.first().map(|w| w.0).ok_or("no workflow")?;
    let run_id = r.runs.iter().map(|x| x.id).max().unwrap_or(9000) + 1;
    let run_number = r
        .runs
        .iter()
        .filter(|x| x.workflow_id == workflow_id)
        .count() as u64
        + 1;
    r.runs.push(Run {
        id: run_id,
        attempt: 1,
        jobs: standard_jobs(run_id, &head_sha, Some("test"), None),
        workflow_id,
        head_branch: branch.into(),
        head_sha: head_sha.clone(),
        event: "pull_request".into(),
        run_number,
        fixed: Some(("completed".into(), Some("failure".into()))),
        created_at: now,
    });
    Ok(json!({"number": number, "branch": branch, "head_sha": head_sha, "run_id": run_id}))
}
