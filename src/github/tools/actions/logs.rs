//! `get_job_logs`: job logs fetched through GitHub's redirect to its log storage
//! (followed without credentials), cleaned of colours and timestamps, tailed and
//! windowed, with a cursor over the jobs still to read.
//!
//! Owns the log handler, its registration, its cursor and the cleaning only; requests go
//! through the client only.

use std::sync::LazyLock;

use regex::Regex;

use crate::runtime::http::BodyLimit;

use super::{jobs::run_jobs, *};

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(ACTIONS);
    let read = Hints::read_remote();
    vec![
        t.tool(
            "get_job_logs",
            read,
            get_job_logs,
            "Why did CI fail? Log text of one job (`jobId`) or of a run's failed jobs (`runId` + `failedOnly: true`), ANSI codes and timestamps stripped, cut by `tailLines` and `offset`/`maxBytes`; continue with `next_cursor`."
        )
        .titled("Job logs"),
    ]
}

/// What `get_job_logs` still has to read: jobs (first one from `offset`).
#[derive(Serialize, Deserialize, Clone)]
struct LogCursor {
    r: String,
    j: Vec<LogJob>,
    o: u64,
    t: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone)]
struct LogJob {
    id: u64,
    n: Option<String>,
    c: Option<String>,
    f: Vec<String>,
}

static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
        .expect("ANSI pattern")
});

static STAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z ?").expect("timestamp pattern")
});

/// A job log without ANSI escape codes, leading timestamps and byte-order mark.
pub fn clean_log(raw: &str) -> String {
    let text = raw.trim_start_matches('\u{feff}');
    let text = ANSI.replace_all(text, "");
    STAMP.replace_all(&text, "").replace("\r\n", "\n")
}

/// `text` from its first whole line when `skipped` bytes came before it (the cut fell
/// inside a line), with the skipped count grown by what was dropped.
fn from_first_whole_line(text: String, skipped: u64) -> (String, u64) {
    if skipped == 0 {
        return (text, 0);
    }
    match text.find('\n') {
        Some(i) => (text[i + 1..].to_string(), skipped + i as u64 + 1),
        None => (String::new(), skipped + text.len() as u64),
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: Option<u32>) -> &str {
    let Some(n) = n else { return text };
    let body = text.strip_suffix('\n').unwrap_or(text);
    match body.rmatch_indices('\n').nth(n.saturating_sub(1) as usize) {
        Some((i, _)) => &text[i + 1..],
        None => text,
    }
}

/// The most of a log's end read into memory: a quarter of the call's memory budget, at
/// most 8 MiB. It depends only on the budget's limit, so every page of a cursor sees the
/// same part of the log.
fn log_keep_bytes(ctx: &CallCtx) -> usize {
    const MOST: u64 = 8 << 20;
    usize::try_from((ctx.budget.limit() / 4).min(MOST)).unwrap_or(MOST as usize)
}

/// One job's raw log text (its end when it is long, with the bytes skipped before it):
/// the API answers 302 to GitHub's log storage, which the shared client follows without
/// any credential header (a cross-origin hop).
async fn job_log_text(
    gh: &SharedGithub,
    ctx: &CallCtx,
    repo: &str,
    job_id: u64,
) -> Out<(String, u64)> {
    let url = gh.client.url(
        "repos/{repository}/actions/jobs/{job_id}/logs",
        &[("repository", repo), ("job_id", &job_id.to_string())],
        &[],
    )?;
    let keep = BodyLimit::Tail(log_keep_bytes(ctx));
    match gh
        .client
        .request_keeping(
            ctx,
            Method::GET,
            url,
            LaneKind::Read,
            ACCEPT_JSON,
            None,
            keep,
        )
        .await
    {
        Ok(reply) => Ok(from_first_whole_line(reply.text(), reply.dropped)),
        Err(GhError::NotFound { .. }) => Err(ToolError::business(format!(
            "no log for job {job_id} in {repo}: the job does not exist or its logs expired; list jobs with list_workflow_jobs"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(in crate::github::tools) async fn get_job_logs(
    gh: SharedGithub,
    i: JobLogsIn,
    ctx: CallCtx,
) -> Out<JobLogs> {
    let kind = "get_job_logs";
    let mut state = match &i.cursor {
        Some(cur) => {
            let s: LogCursor =
                page::decode(kind, cur).map_err(|e| ToolError::input(format!("cursor: {e}")))?;
            if s.r != repo(&i.repository)? {
                return Err(ToolError::input(
                    "cursor: it belongs to another repository; pass the same `repository`",
                ));
            }
            s
        }
        None => {
            let repo = repo(&i.repository)?;
            let jobs = match (i.job_id, i.run_id, i.failed_only) {
                (Some(id), None, _) => vec![LogJob {
                    id,
                    n: None,
                    c: None,
                    f: vec![],
                }],
                (None, Some(run), true) => {
                    let page =
                        run_jobs(&gh, &ctx, &repo, run, JobFilter::Latest, None, 100).await?;
                    let failed: Vec<LogJob> = page
                        .items
                        .into_iter()
                        .filter(|j| {
                            matches!(
                                j.conclusion.as_deref(),
                                Some("failure" | "timed_out" | "cancelled" | "startup_failure")
                            )
                        })
                        .map(|j| LogJob {
                            id: j.id,
                            n: Some(j.name),
                            c: j.conclusion,
                            f: j.failed_steps.into_iter().map(|s| s.name).collect(),
                        })
                        .collect();
                    if failed.is_empty() {
                        return Err(ToolError::business(format!(
                            "run {run} has no failed jobs (yet); check its state with get_workflow_run or list_workflow_jobs"
                        )));
                    }
                    failed
                }
                (None, Some(_), false) => {
                    return Err(ToolError::input(
                        "runId: pass `failedOnly: true` to read the failed jobs of a run, or a `jobId` (from list_workflow_jobs) for one job",
                    ));
                }
                (Some(_), Some(_), _) => {
                    return Err(ToolError::input(
                        "give either `jobId` or `runId` with `failedOnly: true`, not both",
                    ));
                }
                (None, None, _) => {
                    return Err(ToolError::input(
                        "give `jobId`, or `runId` with `failedOnly: true`",
                    ));
                }
            };
            LogCursor {
                r: repo,
                j: jobs,
                o: i.offset,
                t: i.tail_lines,
            }
        }
    };
    let mut budget = i.max_bytes as usize;
    let mut logs = Vec::new();
    while budget > 0 && !state.j.is_empty() {
        let job = state.j[0].clone();
        let (raw, skipped_bytes) = job_log_text(&gh, &ctx, &state.r, job.id).await?;
        let clean = clean_log(&raw);
        let total_lines = clean.lines().count() as u64;
        let text = tail(&clean, state.t);
        let w = window(text, state.o as usize, budget)?;
        budget = budget.saturating_sub(w.text.len());
        let next = w.next_offset;
        logs.push(JobLog {
            job_id: job.id,
            name: job.n,
            conclusion: job.c,
            failed_steps: job.f,
            total_lines,
            skipped_bytes,
            log: w,
        });
        match next {
            Some(o) => {
                state.o = o as u64;
                break;
            }
            None => {
                state.j.remove(0);
                state.o = 0;
            }
        }
    }
    let next_cursor = (!state.j.is_empty()).then(|| page::encode(kind, &state));
    Ok(JobLogs { logs, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_lose_colours_and_timestamps() {
        let raw = "\u{feff}2024-01-04T00:00:00.1370000Z \x1b[1m\x1b[32m   Compiling\x1b[0m x\n2024-01-04T00:00:01Z plain\r\nno stamp 2024-01-04T00:00:01Z kept\n";
        assert_eq!(
            clean_log(raw),
            "   Compiling x\nplain\nno stamp 2024-01-04T00:00:01Z kept\n"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail("a\nb\nc", Some(2)), "b\nc");
        assert_eq!(tail("a\nb\n", Some(5)), "a\nb\n");
        assert_eq!(tail("a\nb\n", None), "a\nb\n");
    }
}
