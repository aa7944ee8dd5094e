//! Tags and releases: lightweight and annotated tags (refs/tags and tag objects),
//! releases with assets, their seed data for `octo/hello`, their JSON shapes and routes
//! (`/tags`, `/git/ref/tags/{tag}`, `/git/tags/{sha}`, `/releases`, `/releases/latest`,
//! `/releases/tags/{tag}`, `POST /releases`).
//!
//! A release's tag is created from `target_commitish` when it is published and the tag
//! is missing (drafts create no tag, as on GitHub); `/releases/latest` is the newest
//! published release that is not a prerelease; `/releases/tags/{tag}` serves published
//! releases only.

use crate::data::{Dt, Repo, WEB, fake_sha, opt_ts, ts, user_json};
use crate::git;
use crate::routes::{Ctx, Reply};
use chrono::Duration;
use serde_json::{Value, json};

/// A tag: the commit it names and, for an annotated tag, its tag object.
pub struct Tag {
    pub commit: String,
    pub annotation: Option<Annotation>,
}

/// An annotated tag object.
pub struct Annotation {
    pub sha: String,
    pub message: String,
    pub tagger: String,
    pub date: Dt,
}

pub struct Asset {
    pub id: u64,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub download_count: u64,
}

pub struct Release {
    pub id: u64,
    pub tag: String,
    pub target_commitish: String,
    pub name: Option<String>,
    pub body: Option<String>,
    pub draft: bool,
    pub prerelease: bool,
    pub author: String,
    pub created_at: Dt,
    pub published_at: Option<Dt>,
    pub assets: Vec<Asset>,
}

/// Seeds `octo/hello`'s tags and releases on its main history (`chain[k]` is the k-th
/// commit of `main`, made at base time + k hours): v0.0.1 (tag only), v0.1.0, v0.2.0
/// (annotated), v0.3.0-rc.1 (prerelease) and a draft for v0.3.0 (no tag yet).
pub fn seed_hello(r: &mut Repo, chain: &[String], t: Dt) {
    let at = |k: usize| t + Duration::hours(k as i64);
    let light = |sha: &String| Tag {
        commit: sha.clone(),
        annotation: None,
    };
    r.tags.insert("v0.0.1".into(), light(&chain[5]));
    r.tags.insert("v0.1.0".into(), light(&chain[20]));
    r.tags.insert(
        "v0.2.0".into(),
        Tag {
            commit: chain[40].clone(),
            annotation: Some(Annotation {
                sha: fake_sha("tag v0.2.0"),
                message: "Release 0.2.0\n\nAdds step_30 and step_40.\n".into(),
                tagger: "alice".into(),
                date: at(40) + Duration::minutes(10),
            }),
        },
    );
    r.tags.insert("v0.3.0-rc.1".into(), light(&chain[50]));
    let asset = |id: u64, name: &str, size: u64, downloads: u64| Asset {
        id,
        name: name.into(),
        content_type: "application/gzip".into(),
        size,
        download_count: downloads,
    };
    let release = |id: u64, tag: &str, k: usize, draft: bool, pre: bool, assets: Vec<Asset>| {
        let version = tag.trim_start_matches('v');
        Release {
            id,
            tag: tag.into(),
            target_commitish: "main".into(),
            name: Some(format!("hello {version}")),
            body: Some(format!(
                "## What's Changed\n* Release {version} of hello.\n\n**Full Changelog**: {WEB}/octo/hello/commits/{tag}\n"
            )),
            draft,
            prerelease: pre,
            author: "octocat".into(),
            created_at: at(k) + Duration::minutes(5),
            published_at: (!draft).then(|| at(k) + Duration::minutes(30)),
            assets,
        }
    };
    r.releases = vec![
        release(
            5001,
            "v0.1.0",
            20,
            false,
            false,
            vec![asset(6001, "hello-0.1.0-x86_64-linux.tar.gz", 812_345, 42)],
        ),
        release(
            5002,
            "v0.2.0",
            40,
            false,
            false,
            vec![
                asset(6002, "hello-0.2.0-x86_64-linux.tar.gz", 845_120, 17),
                asset(6003, "hello-0.2.0-aarch64-macos.tar.gz", 790_002, 9),
            ],
        ),
        release(5003, "v0.3.0-rc.1", 50, false, true, vec![]),
        release(5004, "v0.3.0", 60, true, false, vec![]),
    ];
}

pub fn tag_list_json(a: &str, r: &Repo, name: &str, tag: &Tag) -> Value {
    let full = r.full();
    json!({"name": name,
           "commit": {"sha": tag.commit, "url": format!("{a}/repos/{full}/commits/{}", tag.commit)},
           "zipball_url": format!("{a}/repos/{full}/zipball/refs/tags/{name}"),
           "tarball_url": format!("{a}/repos/{full}/tarball/refs/tags/{name}"),
           "node_id": format!("MDM6UmVm{}", &fake_sha(name)[..12])})
}

pub fn tag_ref_json(a: &str, r: &Repo, name: &str, tag: &Tag) -> Value {
    let full = r.full();
    let (sha, kind, url) = match &tag.annotation {
        Some(an) => (
            an.sha.clone(),
            "tag",
            format!("{a}/repos/{full}/git/tags/{}", an.sha),
        ),
        None => (
            tag.commit.clone(),
            "commit",
            format!("{a}/repos/{full}/git/commits/{}", tag.commit),
        ),
    };
    json!({"ref": format!("refs/tags/{name}"), "node_id": format!("REF_kwDO{}", &fake_sha(name)[..12]),
           "url": format!("{a}/repos/{full}/git/refs/tags/{name}"),
           "object": {"sha": sha, "type": kind, "url": url}})
}

fn tag_object_json(a: &str, r: &Repo, name: &str, tag: &Tag, an: &Annotation) -> Value {
    let full = r.full();
    json!({"node_id": format!("TAG_kwDO{}", &an.sha[..12]), "sha": an.sha, "tag": name,
           "url": format!("{a}/repos/{full}/git/tags/{}", an.sha), "message": an.message,
           "tagger": {"name": an.tagger, "email": format!("{}@example.com", an.tagger), "date": ts(&an.date)},
           "object": {"sha": tag.commit, "type": "commit", "url": format!("{a}/repos/{full}/git/commits/{}", tag.commit)},
           "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null}})
}

pub fn release_json(a: &str, r: &Repo, rel: &Release) -> Value {
    let full = r.full();
    let api = format!("{a}/repos/{full}/releases/{}", rel.id);
    let html = if rel.draft {
        format!(
            "{WEB}/{full}/releases/tag/untagged-{}",
            &fake_sha(&rel.tag)[..20]
        )
    } else {
        format!("{WEB}/{full}/releases/tag/{}", rel.tag)
    };
    let assets: Vec<Value> = rel
        .assets
        .iter()
        .map(|x| {
            json!({"url": format!("{a}/repos/{full}/releases/assets/{}", x.id), "id": x.id,
                   "node_id": format!("RA_kwDO{:08}", x.id), "name": x.name, "label": "",
                   "uploader": user_json(a, &rel.author), "content_type": x.content_type, "state": "uploaded",
                   "size": x.size, "download_count": x.download_count,
                   "created_at": ts(&rel.created_at), "updated_at": ts(&rel.created_at),
                   "browser_download_url": format!("{WEB}/{full}/releases/download/{}/{}", rel.tag, x.name)})
        })
        .collect();
    json!({"url": api, "assets_url": format!("{api}/assets"),
           "upload_url": format!("https://uploads.github.com/repos/{full}/releases/{}/assets{{?name,label}}", rel.id),
           "html_url": html, "id": rel.id, "author": user_json(a, &rel.author),
           "node_id": format!("RE_kwDO{:08}", rel.id), "tag_name": rel.tag,
           "target_commitish": rel.target_commitish, "name": rel.name, "draft": rel.draft,
           "prerelease": rel.prerelease, "created_at": ts(&rel.created_at),
           "published_at": opt_ts(&rel.published_at), "assets": assets,
           "tarball_url": format!("{a}/repos/{full}/tarball/{}", rel.tag),
           "zipball_url": format!("{a}/repos/{full}/zipball/{}", rel.tag), "body": rel.body})
}

/// Releases newest first (by creation), as GitHub lists them.
fn newest_first(r: &Repo) -> Vec<&Release> {
    let mut v: Vec<&Release> = r.releases.iter().collect();
    v.sort_by(|x, y| y.created_at.cmp(&x.created_at).then(y.id.cmp(&x.id)));
    v
}

/// The GET routes of this module (`sub` is the template after `/repos/{owner}/{repo}`);
/// `None` when `sub` is not one of them.
pub fn get(r: &Repo, c: &Ctx, sub: &str) -> Option<Reply> {
    let a = c.api.as_str();
    Some(match sub {
        "/tags" => c.list(r.tags.iter().rev().collect(), |(n, t)| {
            tag_list_json(a, r, n, t)
        }),
        "/git/ref/{ref*}" => {
            let name = c.p("ref").strip_prefix("tags/")?;
            match r.tags.get(name) {
                Some(t) => Reply::json(200, tag_ref_json(a, r, name, t)),
                None => Reply::not_found(),
            }
        }
        "/git/tags/{sha}" => {
            let sha = c.p("sha");
            let found = r.tags.iter().find_map(|(n, t)| {
                t.annotation
                    .as_ref()
                    .filter(|an| an.sha == sha)
                    .map(|an| (n, t, an))
            });
            match found {
                Some((n, t, an)) => Reply::json(200, tag_object_json(a, r, n, t, an)).lm(an.date),
                None => Reply::not_found(),
            }
        }
        "/releases" => c.list(newest_first(r), |rel| release_json(a, r, rel)),
        "/releases/latest" => match newest_first(r)
            .into_iter()
            .find(|x| !x.draft && !x.prerelease)
        {
            Some(rel) => Reply::json(200, release_json(a, r, rel)),
            None => Reply::not_found(),
        },
        "/releases/tags/{tag*}" => {
            match r.releases.iter().find(|x| !x.draft && x.tag == c.p("tag")) {
                Some(rel) => Reply::json(200, release_json(a, r, rel)),
                None => Reply::not_found(),
            }
        }
        _ => return None,
    })
}

/// `POST /releases`: 422 `already_exists` when the tag has a release; creates the tag
/// at `target_commitish` (default branch when absent) when a published release needs it.
pub fn create(r: &mut Repo, c: &Ctx, id: u64, now: Dt) -> Reply {
    let Some(tag) = c.s("tag_name").filter(|t| !t.is_empty()) else {
        return Reply::invalid("Release", "tag_name", "missing_field");
    };
    if r.releases.iter().any(|x| x.tag == tag) {
        return Reply::invalid("Release", "tag_name", "already_exists");
    }
    let target = c
        .s("target_commitish")
        .unwrap_or(&r.default_branch)
        .to_string();
    let draft = c
        .body
        .get("draft")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let prerelease = c
        .body
        .get("prerelease")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let existing = r.tags.get(tag).map(|t| t.commit.clone());
    let commit = match existing.or_else(|| git::resolve(r, &target)) {
        Some(sha) => sha,
        None => return Reply::invalid("Release", "target_commitish", "invalid"),
    };
    let mut body = c.s("body").map(String::from);
    if body.is_none()
        && c.body
            .get("generate_release_notes")
            .and_then(Value::as_bool)
            == Some(true)
    {
        body = Some(release_notes(r, tag, &commit));
    }
    if !draft && !r.tags.contains_key(tag) {
        r.tags.insert(
            tag.to_string(),
            Tag {
                commit,
                annotation: None,
            },
        );
    }
    let rel = Release {
        id,
        tag: tag.into(),
        target_commitish: target,
        name: c.s("name").map(String::from),
        body,
        draft,
        prerelease,
        author: "octocat".into(),
        created_at: now,
        published_at: (!draft).then_some(now),
        assets: vec![],
    };
    let v = release_json(&c.api, r, &rel);
    r.releases.push(rel);
    Reply::json(201, v)
}

/// Generated notes: the commit titles since the newest tag behind `commit`.
fn release_notes(r: &Repo, tag: &str, commit: &str) -> String {
    let history = git::log(r, commit);
    let tagged: Vec<(&String, &String)> = r.tags.iter().map(|(n, t)| (n, &t.commit)).collect();
    let mut lines = Vec::new();
    let mut previous = None;
    for c in history {
        if let Some((n, _)) = tagged.iter().find(|(_, s)| **s == c.sha) {
            previous = Some(n.to_string());
            break;
        }
        if lines.len() < 20 {
            let title = c.message.lines().next().unwrap_or("");
            lines.push(format!("* {title} by @{}", c.author));
        }
    }
    let full = r.full();
    let changelog = match previous {
        Some(p) => format!("{WEB}/{full}/compare/{p}...{tag}"),
        None => format!("{WEB}/{full}/commits/{tag}"),
    };
    format!(
        "## What's Changed\n{}\n\n**Full Changelog**: {changelog}\n",
        lines.join("\n")
    )
}
