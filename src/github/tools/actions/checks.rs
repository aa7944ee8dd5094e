//! `get_commit_checks`: the check runs and commit statuses of one commit, merged into
//! one summary with counts and a worst-first list.
//!
//! Owns this handler and its registration only (its input and output are in `mod.rs`);
//! requests go through the client only.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(ACTIONS);
    let read = Hints::read_remote();
    vec![
        t.tool(
            "get_commit_checks",
            read,
            get_commit_checks,
            "Is CI green for a ref? One summary of its check runs and commit statuses: overall state, counts, and the checks with failing ones first (Actions checks carry the `job_id` for `get_job_logs`)."
        )
        .titled("Commit checks"),
    ]
}

fn check_state(status: &str, conclusion: Option<&str>) -> &'static str {
    if status != "completed" {
        return "pending";
    }
    match conclusion.unwrap_or("") {
        "success" => "success",
        "cancelled" => "cancelled",
        "neutral" => "neutral",
        "skipped" => "skipped",
        "stale" => "neutral",
        _ => "failure",
    }
}

fn rank(state: &str) -> u8 {
    match state {
        "failure" | "cancelled" => 0,
        "pending" => 1,
        _ => 2,
    }
}

pub(in crate::github::tools) async fn get_commit_checks(
    gh: SharedGithub,
    i: CommitChecksIn,
    ctx: CallCtx,
) -> Out<CommitChecks> {
    #[derive(Deserialize)]
    struct Combined {
        sha: String,
        #[serde(default)]
        statuses: Vec<StatusItem>,
    }
    #[derive(Deserialize)]
    struct StatusItem {
        state: String,
        context: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        target_url: Option<String>,
    }
    #[derive(Deserialize)]
    struct App {
        slug: String,
    }
    #[derive(Deserialize)]
    struct Output {
        #[serde(default)]
        title: Option<String>,
    }
    #[derive(Deserialize)]
    struct CheckRun {
        id: u64,
        name: String,
        status: String,
        #[serde(default)]
        conclusion: Option<String>,
        #[serde(default)]
        html_url: Option<String>,
        #[serde(default)]
        details_url: Option<String>,
        #[serde(default)]
        app: Option<App>,
        #[serde(default)]
        output: Option<Output>,
    }
    let repo = repo(&i.repository)?;
    let c = &gh.client;
    let git_ref = match &i.git_ref {
        Some(r) => git_ref("ref", r)?,
        None => c.default_branch(&ctx, &repo).await?,
    };
    let fields = [("repository", repo.as_str()), ("ref", git_ref.as_str())];
    let status_url = c.url("repos/{repository}/commits/{ref}/status", &fields, &[])?;
    let runs_url = c.url(
        "repos/{repository}/commits/{ref}/check-runs",
        &fields,
        &[("per_page", "100".into())],
    )?;
    let keep = |v: Value| serde_json::from_value::<CheckRun>(v).ok();
    let (combined, runs) = tokio::join!(
        c.get_json::<Combined>(&ctx, status_url, LaneKind::Read),
        c.collect(
            &ctx,
            "get_commit_checks",
            runs_url,
            None,
            usize::MAX,
            LaneKind::Read,
            Some("check_runs"),
            keep,
        )
    );
    let combined = combined?;
    let (runs, _) = runs?;
    let mut checks: Vec<Check> = runs
        .items
        .into_iter()
        .map(|r| {
            let actions = r.app.as_ref().is_some_and(|a| a.slug == "github-actions");
            Check {
                kind: "check_run",
                state: check_state(&r.status, r.conclusion.as_deref()).to_string(),
                description: r.output.and_then(|o| o.title).filter(|t| !t.is_empty()),
                url: r.html_url.or(r.details_url),
                job_id: actions.then_some(r.id),
                name: r.name,
            }
        })
        .collect();
    checks.extend(combined.statuses.into_iter().map(|s| {
        Check {
            kind: "status",
            state: match s.state.as_str() {
                "success" => "success",
                "pending" => "pending",
                _ => "failure",
            }
            .to_string(),
            name: s.context,
            description: s.description.filter(|d| !d.is_empty()),
            url: s.target_url,
            job_id: None,
        }
    }));
    let mut counts = CheckCounts {
        total: checks.len() as u64,
        ..Default::default()
    };
    for ch in &checks {
        let slot = match ch.state.as_str() {
            "success" => &mut counts.success,
            "failure" => &mut counts.failure,
            "cancelled" => &mut counts.cancelled,
            "pending" => &mut counts.pending,
            "skipped" => &mut counts.skipped,
            _ => &mut counts.neutral,
        };
        *slot += 1;
    }
    let state = if counts.failure + counts.cancelled > 0 {
        "failure"
    } else if counts.pending > 0 {
        "pending"
    } else if counts.total == 0 {
        "none"
    } else {
        "success"
    };
    checks.sort_by(|a, b| {
        rank(&a.state)
            .cmp(&rank(&b.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    let truncated = checks.len() > i.limit as usize;
    checks.truncate(i.limit as usize);
    Ok(CommitChecks {
        sha: combined.sha,
        state: state.to_string(),
        counts,
        checks,
        checks_truncated: truncated,
    })
}
