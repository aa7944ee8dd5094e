//! Triage tools (opt-in group `github.triage`): the caller's notifications (list, mark
//! read), a repository's labels (list, read one, create) and its security alerts (code
//! scanning, Dependabot, secret scanning; in `alerts.rs`). Writes publish
//! `github.notifications.read` and `github.label.action`.
//!
//! Owns these tools' inputs, outputs, handlers and registration; requests go through
//! the client only.

use super::super::{
    client::ACCEPT_JSON,
    events::{LabelAction, NotificationsRead},
};
use super::*;

mod alerts;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(TRIAGE);
    let read = Hints::read_remote();
    let write = Hints::write_remote();
    [
        vec![
            t.tool(
                "list_notifications",
                read,
                list_notifications,
                "Your GitHub notifications, newest first: unread ones unless `all`; why each came (`reason`) and its subject (issue, pull request, release...).",
            )
            .titled("List notifications"),
            t.tool(
                "mark_notifications_read",
                write.idempotent(),
                mark_notifications_read,
                "Mark notifications read up to `lastReadAt` (default: now), of one `repository` or all.",
            )
            .titled("Mark notifications read"),
            t.tool(
                "list_labels",
                read,
                list_labels,
                "Labels of a repository with color and description.",
            )
            .titled("List labels"),
            t.tool(
                "get_label",
                read,
                get_label,
                "Read one label by name (case-insensitive).",
            )
            .titled("Get label"),
            t.tool(
                "create_label",
                write,
                create_label,
                "Create a label; an existing name is refused (use that label).",
            )
            .titled("Create label"),
        ],
        alerts::register(t),
    ]
    .concat()
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListNotificationsIn {
        /// Include notifications already read.
        #[serde(default)]
        pub all: bool,
        /// Only those you take part in or are mentioned in.
        #[serde(default)]
        pub participating: bool,
        /// Only those updated after this time (ISO 8601).
        #[serde(default)]
        pub since: Option<String>,
        ..page_args,
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MarkReadIn {
    /// "owner/name"; all repositories when absent.
    #[serde(default)]
    pub repository: Option<String>,
    /// Notifications updated up to this time (ISO 8601) are marked; default now.
    #[serde(default)]
    pub last_read_at: Option<String>,
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ListLabelsIn {
        /// owner/name
        pub repository: String,
        ..page_args {
            limit(default = "default_limit_30", max = 100),
            cursor,
        },
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetLabelIn {
    /// owner/name
    pub repository: String,
    pub name: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateLabelIn {
    /// owner/name
    pub repository: String,
    pub name: String,
    /// Six hex digits without '#', e.g. `d73a4a`.
    pub color: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// What a notification is about.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Subject {
    pub title: String,
    /// Issue, PullRequest, Release, Commit, CheckSuite, Discussion...
    #[serde(rename = "type")]
    pub kind: String,
    /// API URL of the subject (null for some types).
    #[serde(default)]
    pub url: Option<String>,
}

/// One notification thread.
#[derive(Serialize, JsonSchema)]
pub struct Notification {
    pub id: String,
    pub repository: String,
    /// mention, review_requested, assign, author, comment, ci_activity, subscribed...
    pub reason: String,
    pub unread: bool,
    pub updated_at: String,
    pub subject: Subject,
}

#[derive(Serialize, JsonSchema)]
pub struct MarkedRead {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub last_read_at: String,
    /// GitHub finishes marking in the background; some may show unread for a moment.
    pub in_background: bool,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct LabelInfo {
    pub name: String,
    pub color: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An ISO 8601 time argument, normalised to UTC `Z`.
fn timestamp(field: &str, raw: &str) -> Result<String, ToolError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .map_err(|_| {
            ToolError::input(format!(
                "{field}: `{raw}` is not an ISO 8601 time like 2024-05-01T12:00:00Z"
            ))
        })
}

pub(super) async fn list_notifications(
    gh: SharedGithub,
    i: ListNotificationsIn,
    ctx: CallCtx,
) -> Out<Page<Notification>> {
    #[derive(Deserialize)]
    struct RawRepo {
        full_name: String,
    }
    #[derive(Deserialize)]
    struct Raw {
        id: String,
        repository: RawRepo,
        reason: String,
        unread: bool,
        updated_at: String,
        subject: Subject,
    }
    let mut query = vec![
        ("all", i.all.to_string()),
        ("participating", i.participating.to_string()),
        ("per_page", i.limit.to_string()),
    ];
    if let Some(s) = &i.since {
        query.push(("since", timestamp("since", s)?));
    }
    let url = gh.client.url("notifications", &[], &query)?;
    let keep = |v: Value| {
        let r: Raw = serde_json::from_value(v).ok()?;
        Some(Notification {
            id: r.id,
            repository: r.repository.full_name,
            reason: r.reason,
            unread: r.unread,
            updated_at: r.updated_at,
            subject: r.subject,
        })
    };
    let (page, _) = gh
        .client
        .collect(
            &ctx,
            "list_notifications",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
            LaneKind::Read,
            None,
            keep,
        )
        .await?;
    Ok(page)
}

pub(super) async fn mark_notifications_read(
    gh: SharedGithub,
    i: MarkReadIn,
    ctx: CallCtx,
) -> Out<MarkedRead> {
    let repository = i.repository.as_deref().map(repo).transpose()?;
    let last_read_at = match &i.last_read_at {
        Some(t) => timestamp("lastReadAt", t)?,
        None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let c = &gh.client;
    let url = match &repository {
        Some(r) => c.url(
            "repos/{repository}/notifications",
            &[("repository", r)],
            &[],
        )?,
        None => c.url("notifications", &[], &[])?,
    };
    let body = json!({"last_read_at": last_read_at, "read": true});
    let reply = c
        .request(
            &ctx,
            Method::PUT,
            url,
            LaneKind::Write,
            ACCEPT_JSON,
            Some(&body),
        )
        .await?;
    publish(
        &gh,
        NotificationsRead {
            repository: repository.as_deref(),
            last_read_at: &last_read_at,
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(MarkedRead {
        repository,
        last_read_at,
        in_background: reply.status == 202,
    })
}

fn label_name(raw: &str) -> Result<&str, ToolError> {
    let name = raw.trim();
    if name.is_empty() || name == "." || name == ".." || name.chars().any(char::is_control) {
        return Err(ToolError::input(format!(
            "name: `{}` is not a label name",
            raw.escape_debug()
        )));
    }
    Ok(name)
}

pub(super) async fn list_labels(
    gh: SharedGithub,
    i: ListLabelsIn,
    ctx: CallCtx,
) -> Out<Page<LabelInfo>> {
    let repo = repo(&i.repository)?;
    let url = gh.client.url(
        "repos/{repository}/labels",
        &[("repository", &repo)],
        &[("per_page", i.limit.to_string())],
    )?;
    Ok(gh
        .client
        .list(
            &ctx,
            "list_labels",
            url,
            i.cursor.as_deref(),
            i.limit as usize,
        )
        .await?)
}

pub(super) async fn get_label(gh: SharedGithub, i: GetLabelIn, ctx: CallCtx) -> Out<LabelInfo> {
    let repo = repo(&i.repository)?;
    let name = label_name(&i.name)?;
    let c = &gh.client;
    let mut url = c.url("repos/{repository}/labels", &[("repository", &repo)], &[])?;
    // One path segment whatever the name holds (`area/ui` is sent as `area%2Fui`).
    url.path_segments_mut()
        .map_err(|_| ToolError::input("internal: the GitHub API URL has no path"))?
        .push(name);
    match c.get_json(&ctx, url, LaneKind::Read).await {
        Err(GhError::NotFound { .. }) => Err(ToolError::business(format!(
            "{repo} has no label `{name}`; list_labels shows its labels, create_label makes one"
        ))),
        other => Ok(other?),
    }
}

pub(super) async fn create_label(
    gh: SharedGithub,
    i: CreateLabelIn,
    ctx: CallCtx,
) -> Out<LabelInfo> {
    let repo = repo(&i.repository)?;
    let name = label_name(&i.name)?;
    let color = i.color.trim().trim_start_matches('#');
    if color.len() != 6 || !color.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ToolError::input(format!(
            "color: `{}` must be six hex digits without '#', e.g. d73a4a",
            i.color
        )));
    }
    let mut body = json!({"name": name, "color": color.to_ascii_lowercase()});
    if let Some(d) = &i.description {
        body["description"] = json!(d);
    }
    let c = &gh.client;
    let url = c.url("repos/{repository}/labels", &[("repository", &repo)], &[])?;
    let created: LabelInfo = match c.send_json(&ctx, Method::POST, url, &body).await {
        Ok(l) => l,
        Err(GhError::Rejected {
            status: 422,
            message,
        }) if message.contains("already_exists") => {
            return Err(ToolError::business(format!(
                "{repo} already has a label named `{name}` (names are case-insensitive); nothing was created. Use the existing label (get_label shows it)."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    publish(
        &gh,
        LabelAction {
            action: "created",
            repository: &repo,
            name: &created.name,
            color: &created.color,
        },
        ctx.principal.owner(),
    )
    .await;
    Ok(created)
}
