//! `--toolsets github.<group>` through the real rmcp client: one group offers exactly its
//! tools, the groups split the github toolset with nothing left over, two groups (and
//! the environment variable) add up, `--read-only` still applies, the instructions name
//! only the groups enabled, and an unknown group stops the server at start naming the
//! valid ones.

use std::collections::BTreeSet;

use crate::common::*;

const GROUPS: [&str; 6] = [
    "github.repos",
    "github.issues",
    "github.pulls",
    "github.actions",
    "github.releases",
    "github.triage",
];

/// The tool names and instructions a server started with `args` offers.
async fn offered(args: &[&str], env: &[(&str, &str)]) -> (BTreeSet<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client_env(dir.path(), args, env).await;
    let names = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let instructions = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    client.cancel().await.unwrap();
    (names, instructions)
}

#[tokio::test]
async fn one_group_offers_exactly_its_tools_and_the_groups_split_github() {
    let (actions, text) = offered(&["--toolsets", "github.actions"], &[]).await;
    let expected = [
        "get_commit_checks",
        "list_workflows",
        "list_workflow_runs",
        "get_workflow_run",
        "run_action",
        "list_workflow_jobs",
        "get_job_logs",
        "rerun_workflow_run",
        "rerun_failed_jobs",
        "cancel_workflow_run",
        "list_workflow_run_artifacts",
    ];
    assert_eq!(
        actions,
        expected.iter().map(|s| s.to_string()).collect(),
        "github.actions"
    );
    assert!(
        text.contains("github:") && text.contains("github.actions"),
        "{text}"
    );
    for other in ["github.issues", "pull requests", "patchkit:"] {
        assert!(!text.contains(other), "{other} in: {text}");
    }
    assert!(text.chars().count() <= 2000, "{text}");

    let (whole, whole_text) = offered(&["--toolsets", "github"], &[]).await;
    assert!(!whole_text.contains("github.actions"), "{whole_text}");
    let mut union = BTreeSet::new();
    for group in GROUPS {
        let (tools, _) = offered(&["--toolsets", group], &[]).await;
        assert!(!tools.is_empty(), "{group} has no tools");
        for tool in tools {
            assert!(
                whole.contains(&tool),
                "{group}: {tool} is not a github tool"
            );
            assert!(union.insert(tool.clone()), "{tool} is in two groups");
        }
    }
    assert_eq!(union, whole, "every github tool is in one group");
}

#[tokio::test]
async fn two_groups_add_up_and_read_only_still_applies() {
    let (actions, _) = offered(&["--toolsets", "github.actions"], &[]).await;
    let (issues, _) = offered(&["--toolsets", "github.issues"], &[]).await;
    let (both, text) = offered(&["--toolsets", "github.actions,github.issues"], &[]).await;
    assert_eq!(both, actions.union(&issues).cloned().collect());
    assert!(both.contains("get_issue") && both.contains("get_job_logs"));
    assert!(!both.contains("merge_pull_request") && !both.contains("get_file_contents"));
    assert!(
        text.contains("github.actions") && text.contains("github.issues"),
        "{text}"
    );

    let (env, _) = offered(
        &[],
        &[("CORTEX_MCP_TOOLSETS", "github.issues,github.actions")],
    )
    .await;
    assert_eq!(env, both, "CORTEX_MCP_TOOLSETS takes groups too");

    let (read_only, _) = offered(&["--toolsets", "github.actions", "--read-only"], &[]).await;
    assert!(read_only.contains("get_job_logs"), "{read_only:?}");
    for write in ["rerun_workflow_run", "cancel_workflow_run", "run_action"] {
        assert!(!read_only.contains(write), "{write}: {read_only:?}");
    }

    let (mixed, _) = offered(&["--toolsets", "github.pulls,patchkit"], &[]).await;
    assert!(mixed.contains("merge_pull_request") && mixed.contains("create_diff"));
    assert!(!mixed.contains("get_issue"), "{mixed:?}");
}

#[test]
fn an_unknown_group_stops_the_server_naming_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(dir.path())
        .args(["--toolsets", "github.actoins", "tools"])
        .env_remove("CORTEX_MCP_TOOLSETS")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("github.actoins"), "{stderr}");
    for group in GROUPS {
        assert!(stderr.contains(group), "{group} not named: {stderr}");
    }
}
