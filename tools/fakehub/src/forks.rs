//! Forks and new repositories: `POST /repos/{o}/{r}/forks` (answered 202: a new
//! repository `{user or org}/{name}` with the source's branches, commits, trees and
//! blobs; the same fork again answers it again), `POST /user/repos` and `POST
//! /orgs/{org}/repos` (422 "name already exists on this account"; `auto_init` makes a
//! first commit with a README). What `Repo` does not hold (fork of, private) is kept in
//! the world's triage state and added to `GET /repos/{o}/{r}` answers.

use crate::data::{self, Commit, Dt, Repo, World};
use crate::routes::{Ctx, Reply};
use crate::triage::ME;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Organizations a fork or a new repository may go to.
const ORGS: &[&str] = &["octo"];

/// What a repository is beyond `Repo`: made by a fork (of which) or private.
#[derive(Default)]
pub struct Extra {
    pub fork_of: Option<String>,
    pub private: bool,
}

/// The `Repo` of a new repository `owner/name`, empty (no commits, no branches).
fn blank(w: &mut World, owner: &str, name: &str, description: &str, now: Dt) -> Repo {
    let id = w.id();
    let mut r = data::new_repo(id, name, description, vec![]);
    r.owner = owner.to_string();
    r.topics.clear();
    (r.stars, r.forks) = (0, 0);
    (r.created_at, r.updated_at, r.pushed_at) = (now, now, now);
    r
}

fn name_taken() -> Reply {
    Reply::json(
        422,
        json!({"message": "Repository creation failed.",
               "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}],
               "documentation_url": "https://docs.github.com/rest/repos/repos#create-a-repository-for-the-authenticated-user",
               "status": "422"}),
    )
}

/// The answer for repository `ri` with what `Repo` does not hold (fork, privacy).
pub fn repo_reply(w: &World, ri: usize, a: &str, status: u16) -> Reply {
    let r = &w.repos[ri];
    let mut v = data::repo_json(a, r);
    if let Some(x) = w.triage.extra.get(&r.full().to_ascii_lowercase()) {
        if x.private {
            v["private"] = json!(true);
            v["visibility"] = json!("private");
        }
        if let Some(src) = x.fork_of.as_deref() {
            v["fork"] = json!(true);
            if let Some(si) = w.repo_index(
                src.split('/').next().unwrap_or(""),
                src.split('/').nth(1).unwrap_or(""),
            ) {
                let parent = data::repo_json(a, &w.repos[si]);
                v["parent"] = parent.clone();
                v["source"] = parent;
            }
        }
    }
    Reply::json(status, v).lm(r.updated_at)
}

pub fn fork(w: &mut World, ri: usize, c: &Ctx, now: Dt) -> Reply {
    let owner = match c.s("organization") {
        Some(o) if ORGS.iter().any(|x| x.eq_ignore_ascii_case(o)) => o.to_string(),
        Some(_) => return Reply::invalid("Fork", "organization", "invalid"),
        None => ME.to_string(),
    };
    let name = c.s("name").unwrap_or(&w.repos[ri].name).to_string();
    let source = w.repos[ri].full();
    if let Some(existing) = w.repo_index(&owner, &name) {
        let full = w.repos[existing].full().to_ascii_lowercase();
        let same =
            w.triage.extra.get(&full).and_then(|x| x.fork_of.as_deref()) == Some(source.as_str());
        return if same {
            repo_reply(w, existing, &c.api, 202)
        } else {
            name_taken()
        };
    }
    let only_default = c.body.get("default_branch_only").and_then(Value::as_bool) == Some(true);
    let description = w.repos[ri].description.clone();
    let mut f = blank(w, &owner, &name, &description, now);
    let src = &w.repos[ri];
    f.default_branch = src.default_branch.clone();
    f.topics = src.topics.clone();
    f.languages = src.languages.clone();
    f.branches = src
        .branches
        .iter()
        .filter(|(b, _)| !only_default || **b == src.default_branch)
        .map(|(b, s)| (b.clone(), s.clone()))
        .collect::<BTreeMap<_, _>>();
    f.commits = src
        .commits
        .iter()
        .map(|(sha, x)| {
            let copy = Commit {
                sha: x.sha.clone(),
                message: x.message.clone(),
                author: x.author.clone(),
                date: x.date,
                parents: x.parents.clone(),
                tree: x.tree.clone(),
            };
            (sha.clone(), copy)
        })
        .collect();
    f.trees = src.trees.clone();
    f.blobs = src.blobs.clone();
    f.pushed_at = src.pushed_at;
    w.repos[ri].forks += 1;
    let full = f.full().to_ascii_lowercase();
    w.repos.push(f);
    w.triage.extra.insert(
        full,
        Extra {
            fork_of: Some(source),
            private: false,
        },
    );
    repo_reply(w, w.repos.len() - 1, &c.api, 202)
}

/// `POST /user/repos` (`org` None) or `/orgs/{org}/repos`.
pub fn create_repo(w: &mut World, c: &Ctx, org: Option<&str>, now: Dt) -> Reply {
    let owner = match org {
        Some(o) if ORGS.iter().any(|x| x.eq_ignore_ascii_case(o)) => o.to_string(),
        Some(_) => return Reply::not_found(),
        None => ME.to_string(),
    };
    let Some(name) = c.s("name").map(str::trim).filter(|n| !n.is_empty()) else {
        return Reply::invalid("Repository", "name", "missing_field");
    };
    if w.repo_index(&owner, name).is_some() {
        return name_taken();
    }
    let description = c.s("description").unwrap_or("").to_string();
    let mut r = blank(w, &owner, name, &description, now);
    if c.body.get("auto_init").and_then(Value::as_bool) == Some(true) {
        let readme = format!("# {name}\n\n{description}\n");
        let sha = r.commit(
            vec![],
            None,
            vec![("README.md".into(), Some(readme))],
            "Initial commit",
            ME,
            now,
        );
        r.branches.insert(r.default_branch.clone(), sha);
    }
    let full = r.full().to_ascii_lowercase();
    w.repos.push(r);
    let private = c.body.get("private").and_then(Value::as_bool) == Some(true);
    w.triage.extra.insert(
        full,
        Extra {
            fork_of: None,
            private,
        },
    );
    repo_reply(w, w.repos.len() - 1, &c.api, 201)
}
