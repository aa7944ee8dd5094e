//! Triage: the authenticated user's notifications (`GET/PUT
//! /notifications`, `PUT /repos/{o}/{r}/notifications`), labels (`GET /labels`,
//! `GET /labels/{name}` case-insensitive, `POST /labels` with 422 `already_exists`),
//! code scanning, Dependabot and secret scanning alerts (seeded on `octo/hello`, in
//! GitHub's shapes: a secret scanning alert carries its `secret`), forks (`POST
//! /repos/{o}/{r}/forks`: a new repository `{user or org}/{name}` with the source's
//! branches and commits, answered 202) and `POST /user/repos`, `POST /orgs/{org}/repos`
//! (422 "name already exists on this account").
//!
//! Marking read answers 205, or 202 with GitHub's "in the background" message when more
//! than two threads change (marked at once all the same).

use crate::data::{self, Dt, Repo, WEB, World, base_time, ts, user_json};
use crate::routes::{Ctx, RBody, Reply};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The user the fake's tokens act as (`GET /user`).
pub const ME: &str = "octocat";

pub struct Notification {
    pub id: u64,
    /// Repository full name.
    pub repo: String,
    pub reason: String,
    pub title: String,
    /// Issue, PullRequest, Release, CheckSuite...
    pub kind: String,
    /// Subject path under the repository's API URL (`issues/1`, `pulls/2`); empty = none.
    pub subject: String,
    pub unread: bool,
    pub updated_at: Dt,
    pub last_read_at: Option<Dt>,
}

pub struct CodeAlert {
    pub number: u64,
    pub state: String,
    pub rule: (String, String, String),
    pub security_severity: Option<String>,
    pub path: String,
    pub line: u64,
    pub created_at: Dt,
}

pub struct DepAlert {
    pub number: u64,
    pub state: String,
    pub package: String,
    pub manifest: String,
    pub severity: String,
    pub ghsa: String,
    pub cve: Option<String>,
    pub summary: String,
    pub range: String,
    pub patched: Option<String>,
    pub created_at: Dt,
}

pub struct SecretAlert {
    pub number: u64,
    pub state: String,
    pub secret_type: String,
    pub display: String,
    pub secret: String,
    pub resolution: Option<String>,
    pub created_at: Dt,
}

/// The triage state of the world; alerts and extras by lower-case full name.
#[derive(Default)]
pub struct Triage {
    pub notifications: Vec<Notification>,
    pub code: HashMap<String, Vec<CodeAlert>>,
    pub deps: HashMap<String, Vec<DepAlert>>,
    pub secrets: HashMap<String, Vec<SecretAlert>>,
    /// Forks and private repositories (see `forks.rs`).
    pub extra: HashMap<String, crate::forks::Extra>,
}

/// The secret of seeded secret-scanning alert 1 (tests check it never leaks).
pub const SEEDED_SECRET: &str = "ghp_FAKEHUBseededSecretValue0123456789xyz";

impl Triage {
    pub fn seed() -> Triage {
        let t = base_time() + Duration::hours(1100);
        let at = |h: i64| t + Duration::hours(h);
        let note = |id: u64,
                    repo: &str,
                    reason: &str,
                    title: &str,
                    kind: &str,
                    subject: &str,
                    h: i64,
                    unread: bool| {
            Notification {
                id,
                repo: repo.into(),
                reason: reason.into(),
                title: title.into(),
                kind: kind.into(),
                subject: subject.into(),
                unread,
                updated_at: at(h),
                last_read_at: (!unread).then(|| at(h + 1)),
            }
        };
        let notifications = vec![
            note(
                1,
                "octo/hello",
                "review_requested",
                "Add step_60",
                "PullRequest",
                "pulls/3",
                1,
                true,
            ),
            note(
                2,
                "octo/hello",
                "mention",
                "flaky parser on startup",
                "Issue",
                "issues/1",
                2,
                true,
            ),
            note(
                3,
                "octo/hello",
                "subscribed",
                "hello 0.2.0",
                "Release",
                "releases/5002",
                3,
                true,
            ),
            note(
                4,
                "octo/tools",
                "ci_activity",
                "CI workflow run failed for main branch",
                "CheckSuite",
                "",
                4,
                true,
            ),
            note(
                5,
                "octo/tools",
                "assign",
                "slow cache in config",
                "Issue",
                "issues/2",
                5,
                true,
            ),
            note(
                6,
                "octo/hello",
                "author",
                "broken logger in cli",
                "Issue",
                "issues/2",
                0,
                false,
            ),
        ];
        let rule =
            |id: &str, sev: &str, desc: &str| (id.to_string(), sev.to_string(), desc.to_string());
        let code = vec![
            CodeAlert {
                number: 1,
                state: "open".into(),
                rule: rule(
                    "rust/hard-coded-cryptographic-value",
                    "error",
                    "Hard-coded cryptographic value",
                ),
                security_severity: Some("high".into()),
                path: "src/main.rs".into(),
                line: 12,
                created_at: at(-200),
            },
            CodeAlert {
                number: 2,
                state: "open".into(),
                rule: rule(
                    "rust/cleartext-logging",
                    "warning",
                    "Cleartext logging of sensitive information",
                ),
                security_severity: Some("medium".into()),
                path: "src/lib.rs".into(),
                line: 40,
                created_at: at(-100),
            },
            CodeAlert {
                number: 3,
                state: "fixed".into(),
                rule: rule("rust/unused-variable", "note", "Unused variable"),
                security_severity: None,
                path: "src/lib.rs".into(),
                line: 7,
                created_at: at(-300),
            },
        ];
        let deps = vec![
            DepAlert {
                number: 1,
                state: "open".into(),
                package: "time".into(),
                manifest: "Cargo.lock".into(),
                severity: "medium".into(),
                ghsa: "GHSA-wcg3-cvx6-7396".into(),
                cve: Some("CVE-2020-26235".into()),
                summary: "Segmentation fault in time".into(),
                range: ">= 0.2.23, < 0.2.25".into(),
                patched: Some("0.2.25".into()),
                created_at: at(-150),
            },
            DepAlert {
                number: 2,
                state: "open".into(),
                package: "smallvec".into(),
                manifest: "Cargo.lock".into(),
                severity: "critical".into(),
                ghsa: "GHSA-43w2-9j62-hq99".into(),
                cve: Some("CVE-2021-25900".into()),
                summary: "Buffer overflow in SmallVec::insert_many".into(),
                range: ">= 0.6.3, < 0.6.14".into(),
                patched: Some("0.6.14".into()),
                created_at: at(-120),
            },
            DepAlert {
                number: 3,
                state: "fixed".into(),
                package: "regex".into(),
                manifest: "Cargo.lock".into(),
                severity: "high".into(),
                ghsa: "GHSA-m5pq-gvj9-9vr8".into(),
                cve: Some("CVE-2022-24713".into()),
                summary: "Regexes with large repetitions on empty sub-expressions take a very long time to parse".into(),
                range: "< 1.5.5".into(),
                patched: Some("1.5.5".into()),
                created_at: at(-400),
            },
        ];
        let secrets = vec![
            SecretAlert {
                number: 1,
                state: "open".into(),
                secret_type: "github_personal_access_token".into(),
                display: "GitHub Personal Access Token".into(),
                secret: SEEDED_SECRET.into(),
                resolution: None,
                created_at: at(-50),
            },
            SecretAlert {
                number: 2,
                state: "resolved".into(),
                secret_type: "aws_access_key_id".into(),
                display: "Amazon AWS Access Key ID".into(),
                secret: "AKIAFAKEHUBSECRET0002".into(),
                resolution: Some("revoked".into()),
                created_at: at(-80),
            },
        ];
        let hello = "octo/hello".to_string();
        Triage {
            notifications,
            code: HashMap::from([(hello.clone(), code)]),
            deps: HashMap::from([(hello.clone(), deps)]),
            secrets: HashMap::from([(hello, secrets)]),
            extra: HashMap::new(),
        }
    }
}

fn short_repo_json(a: &str, full: &str) -> Value {
    let (owner, name) = full.split_once('/').unwrap_or((full, ""));
    let id = data::user_id(full);
    json!({"id": id, "node_id": format!("R_kgDO{id:06}"), "name": name, "full_name": full,
           "private": false, "owner": user_json(a, owner), "html_url": format!("{WEB}/{full}"),
           "description": null, "fork": false, "url": format!("{a}/repos/{full}")})
}

fn notification_json(a: &str, n: &Notification) -> Value {
    let subject_url =
        (!n.subject.is_empty()).then(|| format!("{a}/repos/{}/{}", n.repo, n.subject));
    json!({"id": n.id.to_string(), "repository": short_repo_json(a, &n.repo),
           "subject": {"title": n.title, "url": subject_url, "latest_comment_url": subject_url, "type": n.kind},
           "reason": n.reason, "unread": n.unread, "updated_at": ts(&n.updated_at),
           "last_read_at": data::opt_ts(&n.last_read_at),
           "url": format!("{a}/notifications/threads/{}", n.id),
           "subscription_url": format!("{a}/notifications/threads/{}/subscription", n.id)})
}

fn time_q(c: &Ctx, k: &str) -> Option<Dt> {
    c.q(k)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn list_notifications(t: &Triage, c: &Ctx) -> Reply {
    let all = c.q("all") == Some("true");
    let participating = c.q("participating") == Some("true");
    let (since, before) = (time_q(c, "since"), time_q(c, "before"));
    let mut v: Vec<&Notification> = t
        .notifications
        .iter()
        .filter(|n| all || n.unread)
        .filter(|n| !participating || !matches!(n.reason.as_str(), "subscribed" | "ci_activity"))
        .filter(|n| since.is_none_or(|s| n.updated_at > s))
        .filter(|n| before.is_none_or(|b| n.updated_at < b))
        .collect();
    v.sort_by(|x, y| y.updated_at.cmp(&x.updated_at).then(y.id.cmp(&x.id)));
    c.list(v, |n| notification_json(&c.api, n))
}

/// `PUT /notifications` or `/repos/{o}/{r}/notifications` (`repo` = that full name).
fn mark_read(t: &mut Triage, c: &Ctx, repo: Option<&str>) -> Reply {
    let upto = match c.s("last_read_at") {
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(d) => d.with_timezone(&Utc),
            Err(_) => return Reply::invalid("Notification", "last_read_at", "invalid"),
        },
        None => Utc::now(),
    };
    if c.body.get("read").and_then(Value::as_bool) == Some(false) {
        return Reply::json(205, Value::Null).empty();
    }
    let mut changed = 0;
    for n in t.notifications.iter_mut() {
        let mine = repo.is_none_or(|r| n.repo.eq_ignore_ascii_case(r));
        if mine && n.unread && n.updated_at <= upto {
            n.unread = false;
            n.last_read_at = Some(upto);
            changed += 1;
        }
    }
    if changed > 2 {
        Reply::json(
            202,
            json!({"message": "Unread notifications couldn't be marked in a single request. Notifications are being marked as read in the background."}),
        )
    } else {
        Reply::json(205, Value::Null).empty()
    }
}

fn code_json(a: &str, full: &str, x: &CodeAlert) -> Value {
    let api = format!("{a}/repos/{full}/code-scanning/alerts/{}", x.number);
    let (id, sev, desc) = &x.rule;
    let fixed = (x.state == "fixed").then(|| ts(&(x.created_at + Duration::hours(24))));
    json!({"number": x.number, "created_at": ts(&x.created_at), "updated_at": ts(&x.created_at),
           "url": api, "html_url": format!("{WEB}/{full}/security/code-scanning/{}", x.number),
           "instances_url": format!("{api}/instances"), "state": x.state, "fixed_at": fixed,
           "dismissed_by": null, "dismissed_at": null, "dismissed_reason": null, "dismissed_comment": null,
           "rule": {"id": id, "severity": sev, "tags": ["security"], "description": desc, "name": id,
                    "security_severity_level": x.security_severity},
           "tool": {"name": "CodeQL", "guid": null, "version": "2.19.0"},
           "most_recent_instance": {"ref": "refs/heads/main", "analysis_key": ".github/workflows/codeql.yml:analyze",
               "environment": "{\"language\":\"rust\"}", "category": ".github/workflows/codeql.yml:analyze/language:rust",
               "state": x.state, "commit_sha": data::fake_sha(&format!("{full} code {}", x.number)),
               "message": {"text": desc}, "classifications": [],
               "location": {"path": x.path, "start_line": x.line, "end_line": x.line, "start_column": 5, "end_column": 30}}})
}

fn dep_json(a: &str, full: &str, x: &DepAlert) -> Value {
    let vuln = json!({"package": {"ecosystem": "rust", "name": x.package}, "severity": x.severity,
                      "vulnerable_version_range": x.range,
                      "first_patched_version": x.patched.as_ref().map(|p| json!({"identifier": p}))});
    let ids: Vec<Value> = std::iter::once(json!({"type": "GHSA", "value": x.ghsa}))
        .chain(x.cve.iter().map(|c| json!({"type": "CVE", "value": c})))
        .collect();
    let fixed = (x.state == "fixed").then(|| ts(&(x.created_at + Duration::hours(48))));
    json!({"number": x.number, "state": x.state,
           "dependency": {"package": {"ecosystem": "rust", "name": x.package}, "manifest_path": x.manifest, "scope": "runtime", "relationship": "transitive"},
           "security_advisory": {"ghsa_id": x.ghsa, "cve_id": x.cve, "summary": x.summary,
               "description": format!("{}.", x.summary), "vulnerabilities": [vuln.clone()], "severity": x.severity,
               "cvss": {"vector_string": null, "score": 0.0}, "cwes": [], "identifiers": ids, "references": [],
               "published_at": ts(&x.created_at), "updated_at": ts(&x.created_at), "withdrawn_at": null},
           "security_vulnerability": vuln,
           "url": format!("{a}/repos/{full}/dependabot/alerts/{}", x.number),
           "html_url": format!("{WEB}/{full}/security/dependabot/{}", x.number),
           "created_at": ts(&x.created_at), "updated_at": ts(&x.created_at),
           "dismissed_at": null, "dismissed_by": null, "dismissed_reason": null, "dismissed_comment": null,
           "fixed_at": fixed, "auto_dismissed_at": null})
}

fn secret_json(a: &str, full: &str, x: &SecretAlert) -> Value {
    let resolved = x
        .resolution
        .as_ref()
        .map(|_| ts(&(x.created_at + Duration::hours(2))));
    json!({"number": x.number, "created_at": ts(&x.created_at), "updated_at": ts(&x.created_at),
           "url": format!("{a}/repos/{full}/secret-scanning/alerts/{}", x.number),
           "html_url": format!("{WEB}/{full}/security/secret-scanning/{}", x.number),
           "locations_url": format!("{a}/repos/{full}/secret-scanning/alerts/{}/locations", x.number),
           "state": x.state, "resolution": x.resolution, "resolved_at": resolved,
           "resolved_by": x.resolution.as_ref().map(|_| user_json(a, ME)), "resolution_comment": null,
           "secret_type": x.secret_type, "secret_type_display_name": x.display, "secret": x.secret,
           "push_protection_bypassed": false, "push_protection_bypassed_by": null,
           "push_protection_bypassed_at": null, "validity": if x.state == "open" { "active" } else { "inactive" },
           "publicly_leaked": false, "multi_repo": false, "is_base64_encoded": false,
           "first_location_detected": {"path": "config/settings.env", "start_line": 3, "end_line": 3,
               "start_column": 14, "end_column": 54, "blob_sha": data::fake_sha(&x.secret),
               "commit_sha": data::fake_sha(&format!("{full} leak {}", x.number))},
           "has_more_locations": false})
}

/// Comma-list query filter: absent or empty matches all.
fn any_of(c: &Ctx, k: &str, value: &str) -> bool {
    match c.q(k).filter(|v| !v.is_empty()) {
        None => true,
        Some(list) => list
            .split(',')
            .any(|x| x.trim().eq_ignore_ascii_case(value)),
    }
}

/// Label names are compared case-insensitively, as on GitHub.
fn label_key(r: &Repo, name: &str) -> Option<String> {
    r.labels
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

fn create_label(w: &mut World, ri: usize, c: &Ctx) -> Reply {
    let Some(name) = c.s("name").map(str::trim).filter(|n| !n.is_empty()) else {
        return Reply::invalid("Label", "name", "missing_field");
    };
    let color = c
        .s("color")
        .unwrap_or("ededed")
        .trim_start_matches('#')
        .to_ascii_lowercase();
    if color.len() != 6 || !color.chars().all(|x| x.is_ascii_hexdigit()) {
        return Reply::invalid("Label", "color", "invalid");
    }
    if label_key(&w.repos[ri], name).is_some() {
        return Reply::invalid("Label", "name", "already_exists");
    }
    let id = w.id();
    let r = &mut w.repos[ri];
    r.labels.insert(
        name.to_string(),
        data::Label {
            id,
            color,
            description: c.s("description").unwrap_or("").to_string(),
        },
    );
    Reply::json(201, data::label_json(&c.api, r, name))
}

/// The routes of this module that need no repository; `None` when `t` is not one.
pub fn account_route(w: &mut World, c: &Ctx, t: &str) -> Option<Reply> {
    let now = Utc::now();
    Some(match (c.method.as_str(), t) {
        ("GET", "/notifications") => list_notifications(&w.triage, c),
        ("PUT", "/notifications") => mark_read(&mut w.triage, c, None),
        ("POST", "/user/repos") => crate::forks::create_repo(w, c, None, now),
        ("POST", "/orgs/{org}/repos") => {
            let org = c.p("org").to_string();
            crate::forks::create_repo(w, c, Some(&org), now)
        }
        _ => return None,
    })
}

/// The routes of this module under `/repos/{owner}/{repo}` (`sub` the rest of the
/// template) on repository `ri`; `None` when `sub` is not one of them.
pub fn repo_route(w: &mut World, ri: usize, c: &Ctx, sub: &str) -> Option<Reply> {
    let a = c.api.as_str();
    let full = w.repos[ri].full();
    let key = full.to_ascii_lowercase();
    Some(match (c.method.as_str(), sub) {
        ("GET", "") if w.triage.extra.contains_key(&key) => crate::forks::repo_reply(w, ri, a, 200),
        ("PUT", "/notifications") => mark_read(&mut w.triage, c, Some(&full)),
        ("GET", "/labels") => {
            let r = &w.repos[ri];
            c.list(r.labels.keys().collect(), |n| data::label_json(a, r, n))
        }
        ("GET", "/labels/{name}") => {
            let r = &w.repos[ri];
            match label_key(r, c.p("name")) {
                Some(n) => Reply::json(200, data::label_json(a, r, &n)),
                None => Reply::not_found(),
            }
        }
        ("POST", "/labels") => create_label(w, ri, c),
        ("GET", "/code-scanning/alerts") => {
            let Some(v) = w.triage.code.get(&key) else {
                return Some(Reply::msg(404, "no analysis found"));
            };
            // Every seeded alert is CodeQL's, on `main`.
            let found_by = any_of(c, "tool_name", "CodeQL")
                && c.q("ref")
                    .is_none_or(|r| r == "refs/heads/main" || r == "main");
            let mut v: Vec<&CodeAlert> = v
                .iter()
                .filter(|_| found_by)
                .filter(|x| any_of(c, "state", &x.state))
                .filter(|x| {
                    any_of(c, "severity", &x.rule.1)
                        || x.security_severity
                            .as_deref()
                            .is_some_and(|s| any_of(c, "severity", s))
                })
                .collect();
            v.sort_by_key(|x| std::cmp::Reverse(x.created_at));
            c.list(v, |x| code_json(a, &full, x))
        }
        ("GET", "/dependabot/alerts") => {
            let Some(v) = w.triage.deps.get(&key) else {
                return Some(Reply::msg(
                    403,
                    "Dependabot alerts are disabled for this repository.",
                ));
            };
            let rust = any_of(c, "ecosystem", "rust");
            let mut v: Vec<&DepAlert> = v
                .iter()
                .filter(|_| rust)
                .filter(|x| any_of(c, "state", &x.state))
                .filter(|x| any_of(c, "severity", &x.severity))
                .filter(|x| any_of(c, "package", &x.package))
                .collect();
            v.sort_by_key(|x| std::cmp::Reverse(x.created_at));
            c.list(v, |x| dep_json(a, &full, x))
        }
        ("GET", "/secret-scanning/alerts") => {
            let Some(v) = w.triage.secrets.get(&key) else {
                return Some(Reply::not_found());
            };
            let mut v: Vec<&SecretAlert> = v
                .iter()
                .filter(|x| any_of(c, "state", &x.state))
                .filter(|x| any_of(c, "secret_type", &x.secret_type))
                .collect();
            v.sort_by_key(|x| std::cmp::Reverse(x.created_at));
            c.list(v, |x| secret_json(a, &full, x))
        }
        ("POST", "/forks") => crate::forks::fork(w, ri, c, Utc::now()),
        _ => return None,
    })
}

impl Reply {
    /// This reply without a body (205 Reset Content).
    fn empty(mut self) -> Reply {
        self.body = RBody::Empty;
        self
    }
}
