//! Write routes beyond issues and pulls: the contents API (`PUT`/`DELETE
//! /contents/{path}`), the Git Data API (blobs, trees, commits, ref updates) and the
//! Actions run controls (re-run, re-run failed jobs, cancel). Every commit goes through
//! `Repo::push_commit`/`commit_tree`, so blobs, trees, commits, refs and the contents API
//! stay one consistent object model.

use crate::data::{self, Dt, Repo, World};
use crate::git;
use crate::routes::{Ctx, RBody, Reply};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

fn empty(status: u16) -> Reply {
    Reply {
        status,
        body: RBody::Empty,
        last_modified: None,
        link: None,
    }
}

pub fn route(w: &mut World, ri: usize, c: &Ctx, sub: &str, now: Dt) -> Reply {
    if sub == "/git/refs/{ref*}"
        && let Some((i, branch)) = w.intrude_on_ref_update.take()
    {
        let r = &mut w.repos[i];
        if let Some(head) = r.branches.get(&branch).cloned() {
            let mut tree = (*r.tree_of(&head)).clone();
            tree.insert(
                "CONCURRENT.md".into(),
                data::blob(format!("pushed by someone else at {now}\n")),
            );
            r.push_commit(&branch, Arc::new(tree), "Concurrent push", "bob", now);
        }
    }
    let r = &mut w.repos[ri];
    match sub {
        "/contents/{path*}" if c.method == "PUT" => put_contents(r, c, now),
        "/contents/{path*}" if c.method == "DELETE" => delete_contents(r, c, now),
        "/git/blobs" => {
            let Some(content) = c.s("content") else {
                return Reply::invalid("Blob", "content", "missing_field");
            };
            let text = match c.s("encoding").unwrap_or("utf-8") {
                "base64" => match base64::engine::general_purpose::STANDARD
                    .decode(content.replace(['\n', '\r'], ""))
                {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(_) => return Reply::msg(422, "content is not valid Base64"),
                },
                "utf-8" | "utf8" => content.to_string(),
                _ => return Reply::invalid("Blob", "encoding", "invalid"),
            };
            let b = data::blob(text);
            let sha = b.sha.clone();
            r.blobs.insert(sha.clone(), b);
            Reply::json(
                201,
                json!({"sha": sha, "url": format!("{}/repos/{}/git/blobs/{sha}", c.api, r.full())}),
            )
        }
        "/git/trees" => create_tree(r, c),
        "/git/commits" => {
            let (Some(message), Some(tree)) = (c.s("message"), c.s("tree")) else {
                return Reply::msg(
                    422,
                    "Invalid request.\n\n\"message\" and \"tree\" are required.",
                );
            };
            let Some(tree) = r.trees.get(tree).cloned() else {
                return Reply::msg(422, "Tree SHA does not exist");
            };
            let parents = c.strings("parents").unwrap_or_default();
            if parents.iter().any(|p| !r.commits.contains_key(p)) {
                return Reply::msg(422, "Parent SHA does not exist or is not a commit object");
            }
            let sha = r.commit_tree(parents, tree, message, "octocat", now);
            Reply::json(201, data::git_commit_json(&c.api, r, &r.commits[&sha]))
        }
        "/git/refs/{ref*}" => {
            let Some(branch) = c
                .p("ref")
                .strip_prefix("heads/")
                .map(String::from)
                .filter(|b| r.branches.contains_key(b))
            else {
                return Reply::msg(422, "Reference does not exist");
            };
            let Some(sha) = c.s("sha").filter(|s| r.commits.contains_key(*s)) else {
                return Reply::msg(422, "Object does not exist");
            };
            let force = c
                .body
                .get("force")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let current = r.branches[&branch].clone();
            if !force && !git::ancestors(r, sha).contains(&current) {
                return Reply::msg(422, "Update is not a fast forward");
            }
            let sha = sha.to_string();
            r.branches.insert(branch.clone(), sha.clone());
            if sha != current {
                r.on_push(&branch, &sha, now);
            }
            Reply::json(200, data::ref_json(&c.api, r, &branch, &sha))
        }
        "/actions/runs/{run_id}/rerun"
        | "/actions/runs/{run_id}/rerun-failed-jobs"
        | "/actions/runs/{run_id}/cancel" => run_control(r, c, sub, now),
        _ => Reply::not_found(),
    }
}

/// Branch of a contents write: `branch` or the default branch; `Err` answers 404.
fn target_branch(r: &Repo, c: &Ctx) -> Result<(String, String), Reply> {
    let branch = c.s("branch").unwrap_or(&r.default_branch).to_string();
    match r.branches.get(&branch) {
        Some(head) => Ok((branch, head.clone())),
        None => Err(Reply::msg(404, &format!("Branch {branch} not found"))),
    }
}

fn write_answer(r: &Repo, c: &Ctx, path: &str, branch: &str, sha: &str, kept: bool) -> Value {
    let cm = &r.commits[sha];
    let content = if kept {
        cm.tree
            .get(path)
            .map(|b| data::content_entry(&c.api, r, path, branch, Some(b), false))
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    json!({"content": content, "commit": data::git_commit_json(&c.api, r, cm)})
}

fn put_contents(r: &mut Repo, c: &Ctx, now: Dt) -> Reply {
    let path = c.p("path").trim_matches('/').to_string();
    let (Some(message), Some(content)) = (c.s("message"), c.s("content")) else {
        return Reply::msg(
            422,
            "Invalid request.\n\n\"message\" and \"content\" are required.",
        );
    };
    let Ok(bytes) =
        base64::engine::general_purpose::STANDARD.decode(content.replace(['\n', '\r'], ""))
    else {
        return Reply::msg(422, "content is not valid Base64");
    };
    let (branch, head) = match target_branch(r, c) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut tree = (*r.tree_of(&head)).clone();
    let existing = tree.get(&path).map(|b| b.sha.clone());
    match (existing.as_deref(), c.s("sha")) {
        (Some(_), None) => {
            return Reply::msg(422, "Invalid request.\n\n\"sha\" wasn't supplied.");
        }
        (Some(cur), Some(given)) if cur != given => {
            return Reply::msg(409, &format!("{path} does not match {given}"));
        }
        (None, Some(given)) => {
            return Reply::msg(409, &format!("{path} does not match {given}"));
        }
        _ => {}
    }
    tree.insert(
        path.clone(),
        data::blob(String::from_utf8_lossy(&bytes).into_owned()),
    );
    let Some(sha) = r.push_commit(&branch, Arc::new(tree), message, "octocat", now) else {
        return Reply::not_found();
    };
    let status = if existing.is_some() { 200 } else { 201 };
    Reply::json(status, write_answer(r, c, &path, &branch, &sha, true))
}

fn delete_contents(r: &mut Repo, c: &Ctx, now: Dt) -> Reply {
    let path = c.p("path").trim_matches('/').to_string();
    let Some(message) = c.s("message") else {
        return Reply::msg(422, "Invalid request.\n\n\"message\" is required.");
    };
    let Some(given) = c.s("sha") else {
        return Reply::msg(422, "Invalid request.\n\n\"sha\" wasn't supplied.");
    };
    let (branch, head) = match target_branch(r, c) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut tree = (*r.tree_of(&head)).clone();
    match tree.get(&path) {
        None => return Reply::not_found(),
        Some(b) if b.sha != given => {
            return Reply::msg(409, &format!("{path} does not match {given}"));
        }
        Some(_) => {}
    }
    tree.remove(&path);
    let Some(sha) = r.push_commit(&branch, Arc::new(tree), message, "octocat", now) else {
        return Reply::not_found();
    };
    Reply::json(200, write_answer(r, c, &path, &branch, &sha, false))
}

/// `POST /git/trees`: `base_tree` plus entries by path; an entry has `content` (a new
/// blob), `sha` of an existing blob, or `sha: null` (delete the path).
fn create_tree(r: &mut Repo, c: &Ctx) -> Reply {
    let mut tree = match c.s("base_tree") {
        Some(sha) => match r.trees.get(sha) {
            Some(t) => (**t).clone(),
            None => return Reply::msg(422, "base_tree is not a valid tree oid"),
        },
        None => data::Tree::new(),
    };
    let Some(entries) = c.body.get("tree").and_then(Value::as_array) else {
        return Reply::msg(422, "Invalid request.\n\n\"tree\" wasn't supplied.");
    };
    for e in entries {
        let Some(path) = e
            .get("path")
            .and_then(Value::as_str)
            .map(|p| p.trim_matches('/'))
        else {
            return Reply::invalid("Tree", "path", "missing_field");
        };
        if path.is_empty()
            || path
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Reply::msg(422, &format!("tree.path {path} is invalid"));
        }
        if e.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "blob")
        {
            return Reply::msg(422, "tree.type must be blob here");
        }
        match (e.get("content").and_then(Value::as_str), e.get("sha")) {
            (Some(text), _) => {
                tree.insert(path.to_string(), data::blob(text.to_string()));
            }
            (None, Some(Value::Null)) => {
                if tree.remove(path).is_none() {
                    return Reply::msg(
                        422,
                        &format!("tree.path {path} does not exist in base_tree"),
                    );
                }
            }
            (None, Some(Value::String(sha))) => match r.find_blob(sha) {
                Some(b) => {
                    tree.insert(path.to_string(), b);
                }
                None => return Reply::msg(422, &format!("tree.sha {sha} is not a valid blob")),
            },
            _ => return Reply::msg(422, "tree entries need content or sha"),
        }
    }
    let sha = data::tree_sha(&tree);
    let tree = Arc::new(tree);
    r.trees.insert(sha, tree.clone());
    Reply::json(201, data::tree_json(&c.api, r, &tree))
}

fn run_control(r: &mut Repo, c: &Ctx, sub: &str, now: Dt) -> Reply {
    let Some(run) = c
        .num("run_id")
        .and_then(|id| r.runs.iter_mut().find(|x| x.id == id))
    else {
        return Reply::not_found();
    };
    let (status, _) = data::run_state(run, now);
    let completed = status == "completed";
    if sub.ends_with("/cancel") {
        if completed {
            return Reply::msg(409, "Cannot cancel a workflow run that is completed.");
        }
        for j in &mut run.jobs {
            if data::job_state(j, now).0 != "completed" {
                j.cancelled = true;
            }
        }
        return Reply::json(202, json!({}));
    }
    if !completed {
        return Reply::msg(
            409,
            "This workflow run is not completed yet; it cannot be re-run.",
        );
    }
    let failed_only = sub.ends_with("/rerun-failed-jobs");
    let mut any = false;
    for j in &mut run.jobs {
        let failed = matches!(
            data::job_state(j, now).1.as_deref(),
            Some("failure" | "cancelled")
        );
        if !failed_only || failed {
            j.since = Some(now);
            j.cancelled = false;
            any = true;
        }
    }
    if !any {
        return Reply::msg(422, "This workflow run has no failed jobs to re-run.");
    }
    run.attempt += 1;
    run.fixed = None;
    empty(201)
}
