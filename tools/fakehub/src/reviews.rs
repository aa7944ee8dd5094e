//! Pull request writes and reviews: `PATCH /pulls/{n}` (title, body, base, state),
//! `PUT /pulls/{n}/update-branch` (merges the base into the head in the git model),
//! requested reviewers, reviews (`GET`/`POST /pulls/{n}/reviews`), review comments
//! (`GET /pulls/{n}/comments`) and replies (`POST /pulls/{n}/comments/{id}/replies`).
//!
//! Like GitHub: a review comment's `line` must be a line of the pull request's diff on
//! its `side` (RIGHT: added and context lines by new number; LEFT: removed and context
//! lines by old number), else the whole review is refused with 422 "Pull request review
//! thread line must be part of the diff"; reviewers must be collaborators (octocat,
//! alice, bob; teams `core`, `docs`) other than the author; a reply joins the thread of
//! the comment it answers and, as on GitHub, makes a COMMENTED review of its own. The
//! token's user is always `octocat`.

use crate::data::{self, Dt, Issue, Repo, WEB, World, opt_ts, ts, user_json};
use crate::git;
use crate::routes::{Ctx, Reply};
use serde_json::{Value, json};
use std::sync::Arc;

/// The acting user of every token.
const ME: &str = "octocat";
/// Teams of the `octo` organisation.
const TEAMS: [&str; 2] = ["core", "docs"];

/// Review state of a pull request.
#[derive(Default)]
pub struct PullReviews {
    pub requested_reviewers: Vec<String>,
    pub requested_teams: Vec<String>,
    pub reviews: Vec<Review>,
    pub comments: Vec<ReviewComment>,
}

pub struct Review {
    pub id: u64,
    pub user: String,
    pub body: String,
    /// APPROVED, CHANGES_REQUESTED, COMMENTED or PENDING.
    pub state: String,
    pub commit_id: String,
    pub submitted_at: Option<Dt>,
}

pub struct ReviewComment {
    pub id: u64,
    pub review_id: u64,
    pub user: String,
    pub path: String,
    pub line: u32,
    /// LEFT or RIGHT.
    pub side: String,
    /// 1-based line of the file's patch (GitHub's `position`).
    pub position: u32,
    pub diff_hunk: String,
    pub body: String,
    pub commit_id: String,
    pub in_reply_to: Option<u64>,
    pub created_at: Dt,
}

/// One line of a patch a comment may address: (side, number on that side, position).
fn commentable(patch: &str) -> Vec<(&'static str, u32, u32)> {
    let (mut old, mut new) = (0u32, 0u32);
    let mut out = Vec::new();
    for (k, line) in patch.lines().enumerate() {
        let pos = k as u32; // the first `@@` line is position 0
        if let Some(h) = line.strip_prefix("@@ ") {
            let mut parts = h.split(' ');
            let num = |s: Option<&str>, sign: char| {
                s.and_then(|s| s.strip_prefix(sign))
                    .and_then(|s| s.split(',').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            };
            old = num(parts.next(), '-');
            new = num(parts.next(), '+');
            continue;
        }
        match line.chars().next() {
            Some('+') => {
                out.push(("RIGHT", new, pos));
                new += 1;
            }
            Some('-') => {
                out.push(("LEFT", old, pos));
                old += 1;
            }
            Some('\\') => {}
            _ => {
                out.push(("RIGHT", new, pos));
                out.push(("LEFT", old, pos));
                old += 1;
                new += 1;
            }
        }
    }
    out
}

/// The patch lines from the hunk header through `position` (GitHub's `diff_hunk`).
fn diff_hunk(patch: &str, position: u32) -> String {
    let lines: Vec<&str> = patch.lines().collect();
    let end = (position as usize).min(lines.len().saturating_sub(1));
    let start = lines[..=end]
        .iter()
        .rposition(|l| l.starts_with("@@"))
        .unwrap_or(0);
    lines[start..=end].join("\n")
}

fn unprocessable(errors: &[&str]) -> Reply {
    Reply::json(
        422,
        json!({"message": "Unprocessable Entity", "errors": errors,
               "documentation_url": "https://docs.github.com/rest/pulls", "status": "422"}),
    )
}

fn pull_of(r: &Repo, c: &Ctx) -> Option<u64> {
    c.num("number")
        .filter(|n| r.issues.get(n).is_some_and(|i| i.pull.is_some()))
}

fn reviews_of(i: &Issue) -> &PullReviews {
    &i.pull.as_ref().expect("pull").reviews
}

pub fn review_json(a: &str, r: &Repo, n: u64, x: &Review) -> Value {
    let full = r.full();
    let html = format!("{WEB}/{full}/pull/{n}#pullrequestreview-{}", x.id);
    let pr = format!("{a}/repos/{full}/pulls/{n}");
    json!({"id": x.id, "node_id": format!("PRR_kwDO{:08}", x.id), "user": user_json(a, &x.user),
           "body": x.body, "state": x.state, "html_url": html, "pull_request_url": pr,
           "author_association": if x.user == "octocat" { "OWNER" } else { "COLLABORATOR" },
           "_links": {"html": {"href": html}, "pull_request": {"href": pr}},
           "submitted_at": opt_ts(&x.submitted_at), "commit_id": x.commit_id})
}

pub fn comment_json(a: &str, r: &Repo, n: u64, x: &ReviewComment) -> Value {
    let full = r.full();
    let url = format!("{a}/repos/{full}/pulls/comments/{}", x.id);
    let html = format!("{WEB}/{full}/pull/{n}#discussion_r{}", x.id);
    let pr = format!("{a}/repos/{full}/pulls/{n}");
    let mut v = json!({
        "url": url, "pull_request_review_id": x.review_id, "id": x.id,
        "node_id": format!("PRRC_kwDO{:08}", x.id), "diff_hunk": x.diff_hunk, "path": x.path,
        "position": x.position, "original_position": x.position, "commit_id": x.commit_id,
        "original_commit_id": x.commit_id, "user": user_json(a, &x.user), "body": x.body,
        "created_at": ts(&x.created_at), "updated_at": ts(&x.created_at), "html_url": html,
        "pull_request_url": pr,
        "author_association": if x.user == "octocat" { "OWNER" } else { "COLLABORATOR" },
        "_links": {"self": {"href": url}, "html": {"href": html}, "pull_request": {"href": pr}},
        "start_line": null, "original_start_line": null, "start_side": null,
        "line": x.line, "original_line": x.line, "side": x.side, "subject_type": "line",
    });
    if let Some(to) = x.in_reply_to {
        v["in_reply_to_id"] = json!(to);
    }
    v
}

fn team_json(a: &str, slug: &str) -> Value {
    let id = 5000 + TEAMS.iter().position(|t| *t == slug).unwrap_or(0) as u64;
    json!({"id": id, "node_id": format!("T_kwDO{id:06}"), "slug": slug, "name": slug,
           "url": format!("{a}/orgs/octo/teams/{slug}"), "html_url": format!("{WEB}/orgs/octo/teams/{slug}"),
           "privacy": "closed", "permission": "push", "description": null})
}

/// `requested_reviewers`, `requested_teams` and `review_comments` of a pull's JSON.
pub fn pull_fields(a: &str, p: &PullReviews, v: &mut Value) {
    v["requested_reviewers"] = Value::Array(
        p.requested_reviewers
            .iter()
            .map(|l| user_json(a, l))
            .collect(),
    );
    v["requested_teams"] =
        Value::Array(p.requested_teams.iter().map(|t| team_json(a, t)).collect());
    if v.get("review_comments").is_some() {
        v["review_comments"] = json!(p.comments.len());
    }
}

/// The GET routes of this module; `None` when `sub` is not one of them.
pub fn get(r: &Repo, c: &Ctx, sub: &str) -> Option<Reply> {
    let a = c.api.as_str();
    if !matches!(
        sub,
        "/pulls/{number}/reviews"
            | "/pulls/{number}/comments"
            | "/pulls/{number}/requested_reviewers"
    ) {
        return None;
    }
    let Some(n) = pull_of(r, c) else {
        return Some(Reply::not_found());
    };
    let p = reviews_of(&r.issues[&n]);
    Some(match sub {
        "/pulls/{number}/reviews" => {
            c.list(p.reviews.iter().collect(), |x| review_json(a, r, n, x))
        }
        "/pulls/{number}/comments" => {
            c.list(p.comments.iter().collect(), |x| comment_json(a, r, n, x))
        }
        _ => Reply::json(
            200,
            json!({"users": p.requested_reviewers.iter().map(|l| user_json(a, l)).collect::<Vec<_>>(),
                   "teams": p.requested_teams.iter().map(|t| team_json(a, t)).collect::<Vec<_>>()}),
        ),
    })
}

/// The write routes of this module; `None` when `sub` is not one of them.
pub fn write(w: &mut World, ri: usize, c: &Ctx, sub: &str, now: Dt) -> Option<Reply> {
    let reply = match sub {
        "/pulls/{number}" if c.method == "PATCH" => update(&mut w.repos[ri], c, now),
        "/pulls/{number}/update-branch" => update_branch(&mut w.repos[ri], c, now),
        "/pulls/{number}/requested_reviewers" => request(&mut w.repos[ri], c, now),
        "/pulls/{number}/reviews" => {
            let ids: Vec<u64> = (0..=c
                .body
                .get("comments")
                .and_then(Value::as_array)
                .map_or(0, Vec::len))
                .map(|_| w.id())
                .collect();
            create_review(&mut w.repos[ri], c, &ids, now)
        }
        "/pulls/{number}/comments/{comment_id}/replies" => {
            let ids = [w.id(), w.id()];
            reply(&mut w.repos[ri], c, ids, now)
        }
        _ => return None,
    };
    Some(reply)
}

fn update(r: &mut Repo, c: &Ctx, now: Dt) -> Reply {
    let Some(n) = pull_of(r, c) else {
        return Reply::not_found();
    };
    let state = c.s("state");
    if state.is_some_and(|s| s != "open" && s != "closed") {
        return Reply::invalid("PullRequest", "state", "invalid");
    }
    if let Some(b) = c.s("base")
        && !r.branches.contains_key(b)
    {
        return Reply::invalid("PullRequest", "base", "invalid");
    }
    if c.s("title").is_some_and(str::is_empty) {
        return Reply::invalid("PullRequest", "title", "missing_field");
    }
    let i = r.issues.get_mut(&n).expect("pull");
    let p = i.pull.as_mut().expect("pull");
    if state == Some("open") && p.merged_at.is_some() {
        return Reply::msg(
            422,
            "Validation Failed: state cannot be changed. The pull request cannot be reopened because it was merged.",
        );
    }
    if let Some(b) = c.s("base") {
        p.base = b.to_string();
    }
    if let Some(t) = c.s("title") {
        i.title = t.into();
    }
    if c.body.get("body").is_some() {
        i.body = c.s("body").map(String::from);
    }
    match state {
        Some("closed") if i.state != "closed" => {
            i.state = "closed".into();
            i.closed_at = Some(now);
        }
        Some("open") if i.state != "open" => {
            i.state = "open".into();
            i.closed_at = None;
        }
        _ => {}
    }
    i.updated_at = now;
    Reply::json(200, data::pull_json(&c.api, r, &r.issues[&n], true))
}

/// Merges the base branch into the head branch (a merge commit on the head), like
/// GitHub's "Update branch". Paths changed on both sides since the merge base are a
/// conflict (422).
fn update_branch(r: &mut Repo, c: &Ctx, now: Dt) -> Reply {
    let Some(n) = pull_of(r, c) else {
        return Reply::not_found();
    };
    let i = &r.issues[&n];
    let p = i.pull.as_ref().expect("pull");
    if i.state != "open" {
        return Reply::msg(422, "Pull request is closed.");
    }
    let head = data::pull_head(r, p);
    if c.s("expected_head_sha").is_some_and(|s| s != head) {
        return Reply::msg(422, "expected head sha didn't match current head ref.");
    }
    let Some(base) = r.branches.get(&p.base).cloned() else {
        return Reply::msg(422, "Base branch was deleted");
    };
    let Some(head_branch) = r.branches.contains_key(&p.head).then(|| p.head.clone()) else {
        return Reply::msg(422, "Head branch was deleted");
    };
    let mb = git::merge_base(r, &base, &head).unwrap_or_else(|| base.clone());
    if mb == base {
        return Reply::msg(422, "There are no new commits on the base branch.");
    }
    let theirs = git::diff_trees(&r.tree_of(&mb), &r.tree_of(&base));
    let ours: Vec<String> = git::diff_trees(&r.tree_of(&mb), &r.tree_of(&head))
        .into_iter()
        .map(|f| f.filename)
        .collect();
    let (base_tree, mut tree) = (r.tree_of(&base), (*r.tree_of(&head)).clone());
    for f in theirs {
        if ours.contains(&f.filename)
            && tree.get(&f.filename).map(|b| &b.sha) != base_tree.get(&f.filename).map(|b| &b.sha)
        {
            return Reply::msg(422, "merge conflict between base and head");
        }
        match base_tree.get(&f.filename) {
            Some(b) => tree.insert(f.filename, b.clone()),
            None => tree.remove(&f.filename),
        };
    }
    let message = format!("Merge branch '{}' into {head_branch}", p.base);
    let sha = r.commit_tree(vec![head, base], Arc::new(tree), &message, ME, now);
    r.branches.insert(head_branch.clone(), sha.clone());
    r.on_push(&head_branch, &sha, now);
    let i = r.issues.get_mut(&n).expect("pull");
    i.updated_at = now;
    Reply::json(
        202,
        json!({"message": "Updating pull request branch.", "url": format!("{WEB}/repos/{}/pulls/{n}", r.full())}),
    )
}

fn request(r: &mut Repo, c: &Ctx, now: Dt) -> Reply {
    let Some(n) = pull_of(r, c) else {
        return Reply::not_found();
    };
    let users = c.strings("reviewers").unwrap_or_default();
    let teams = c.strings("team_reviewers").unwrap_or_default();
    let author = r.issues[&n].user.clone();
    if users.iter().any(|u| u.eq_ignore_ascii_case(&author)) {
        return unprocessable(&["Review cannot be requested from pull request author."]);
    }
    let known = |u: &String| data::PEOPLE.iter().any(|p| p.eq_ignore_ascii_case(u));
    if !users.iter().all(known) || !teams.iter().all(|t| TEAMS.contains(&t.as_str())) {
        return unprocessable(&[&format!(
            "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {} repository.",
            r.full()
        )]);
    }
    let i = r.issues.get_mut(&n).expect("pull");
    let p = &mut i.pull.as_mut().expect("pull").reviews;
    for u in users {
        if !p
            .requested_reviewers
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&u))
        {
            p.requested_reviewers.push(u.to_ascii_lowercase());
        }
    }
    for t in teams {
        if !p.requested_teams.contains(&t) {
            p.requested_teams.push(t);
        }
    }
    i.updated_at = now;
    Reply::json(201, data::pull_json(&c.api, r, &r.issues[&n], false))
}

fn create_review(r: &mut Repo, c: &Ctx, ids: &[u64], now: Dt) -> Reply {
    let Some(n) = pull_of(r, c) else {
        return Reply::not_found();
    };
    let i = &r.issues[&n];
    let p = i.pull.as_ref().expect("pull");
    let body = c.s("body").unwrap_or("").to_string();
    let raw = c
        .body
        .get("comments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let state = match c.s("event") {
        None | Some("") => "PENDING",
        Some("APPROVE") => "APPROVED",
        Some("REQUEST_CHANGES") => "CHANGES_REQUESTED",
        Some("COMMENT") => "COMMENTED",
        Some(_) => return Reply::invalid("PullRequestReview", "event", "invalid"),
    };
    if matches!(state, "CHANGES_REQUESTED" | "COMMENTED")
        && body.trim().is_empty()
        && raw.is_empty()
    {
        return unprocessable(&[&format!(
            "Review body is required for {} reviews without comments",
            c.s("event").unwrap_or("")
        )]);
    }
    if i.user == ME && state == "APPROVED" {
        return unprocessable(&["Can not approve your own pull request"]);
    }
    if i.user == ME && state == "CHANGES_REQUESTED" {
        return unprocessable(&["Can not request changes on your own pull request"]);
    }
    let head = data::pull_head(r, p);
    let commit_id = c.s("commit_id").unwrap_or(&head).to_string();
    if !r.commits.contains_key(&commit_id) {
        return unprocessable(&["Commit not found"]);
    }
    let files = data::pull_files(r, p);
    let review_id = ids[0];
    let mut comments = Vec::new();
    for (k, cm) in raw.iter().enumerate() {
        let s = |f: &str| cm.get(f).and_then(Value::as_str);
        let (Some(path), Some(text)) = (s("path"), s("body")) else {
            return unprocessable(&["comments need a path and a body"]);
        };
        let Some(f) = files.iter().find(|f| f.filename == path) else {
            return unprocessable(&["Path could not be resolved"]);
        };
        let side = s("side").unwrap_or("RIGHT");
        let Some(line) = cm.get("line").and_then(Value::as_u64) else {
            return unprocessable(&["Pull request review thread line must be part of the diff"]);
        };
        let Some(&(_, _, position)) = commentable(&f.patch)
            .iter()
            .find(|(sd, l, _)| *sd == side && *l as u64 == line)
        else {
            return unprocessable(&["Pull request review thread line must be part of the diff"]);
        };
        comments.push(ReviewComment {
            id: ids[k + 1],
            review_id,
            user: ME.into(),
            path: path.into(),
            line: line as u32,
            side: side.into(),
            position,
            diff_hunk: diff_hunk(&f.patch, position),
            body: text.into(),
            commit_id: commit_id.clone(),
            in_reply_to: None,
            created_at: now,
        });
    }
    let review = Review {
        id: review_id,
        user: ME.into(),
        body,
        state: state.into(),
        commit_id,
        submitted_at: (state != "PENDING").then_some(now),
    };
    let v = review_json(&c.api, r, n, &review);
    let i = r.issues.get_mut(&n).expect("pull");
    let p = &mut i.pull.as_mut().expect("pull").reviews;
    if state != "PENDING" {
        p.requested_reviewers.retain(|u| u != ME);
    }
    p.reviews.push(review);
    p.comments.extend(comments);
    i.updated_at = now;
    Reply::json(200, v)
}

fn reply(r: &mut Repo, c: &Ctx, ids: [u64; 2], now: Dt) -> Reply {
    let Some(n) = pull_of(r, c) else {
        return Reply::not_found();
    };
    let p = reviews_of(&r.issues[&n]);
    let Some(to) = c
        .num("comment_id")
        .and_then(|id| p.comments.iter().find(|x| x.id == id))
    else {
        return Reply::not_found();
    };
    let Some(body) = c.s("body").filter(|b| !b.trim().is_empty()) else {
        return Reply::invalid("PullRequestReviewComment", "body", "missing_field");
    };
    let comment = ReviewComment {
        id: ids[1],
        review_id: ids[0],
        user: ME.into(),
        path: to.path.clone(),
        line: to.line,
        side: to.side.clone(),
        position: to.position,
        diff_hunk: to.diff_hunk.clone(),
        body: body.into(),
        commit_id: to.commit_id.clone(),
        in_reply_to: Some(to.in_reply_to.unwrap_or(to.id)),
        created_at: now,
    };
    let review = Review {
        id: ids[0],
        user: ME.into(),
        body: String::new(),
        state: "COMMENTED".into(),
        commit_id: to.commit_id.clone(),
        submitted_at: Some(now),
    };
    let v = comment_json(&c.api, r, n, &comment);
    let i = r.issues.get_mut(&n).expect("pull");
    let p = &mut i.pull.as_mut().expect("pull").reviews;
    p.reviews.push(review);
    p.comments.push(comment);
    i.updated_at = now;
    Reply::json(201, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commentable_lines_follow_the_hunks() {
        let patch = "@@ -2,4 +2,4 @@\n b\n-c\n+C\n d\n\\ No newline at end of file";
        let lines = commentable(patch);
        let on = |side: &str| -> Vec<u32> {
            lines
                .iter()
                .filter(|(s, _, _)| *s == side)
                .map(|(_, l, _)| *l)
                .collect()
        };
        assert_eq!(on("RIGHT"), [2, 3, 4]);
        assert_eq!(on("LEFT"), [2, 3, 4]);
        assert!(lines.contains(&("RIGHT", 3, 3)), "{lines:?}");
        assert_eq!(diff_hunk(patch, 3), "@@ -2,4 +2,4 @@\n b\n-c\n+C");
    }
}
