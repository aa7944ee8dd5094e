//! What a client sees of the catalog, through the rmcp client against the real binary:
//! the size of `tools/list` against the budget kept in `schemas/catalog-budget.txt`,
//! schemas without nullable type arrays (an explicit `null` for an optional argument
//! still accepted), the server instructions (≤ 2,000 characters, naming exactly the
//! enabled toolsets) and `serverInfo`.

use crate::common;

use common::*;
use rmcp::model::{ListToolsResult, Tool};
use serde_json::{Value, json};

const TOOLSETS: &[&str] = &["github", "integrations", "asbr", "mvp", "patchkit", "batch"];

fn budget() -> usize {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/catalog-budget.txt");
    let text = std::fs::read_to_string(path).expect("schemas/catalog-budget.txt");
    cortex_mcp::schemas::budget(&text).expect("a byte count in schemas/catalog-budget.txt")
}

/// Bytes of the `tools/list` result as the client received it.
#[allow(clippy::field_reassign_with_default)] // ListToolsResult is non-exhaustive
fn received_bytes(tools: Vec<Tool>) -> usize {
    let mut result = ListToolsResult::default();
    result.tools = tools;
    serde_json::to_vec(&result).unwrap().len()
}

#[tokio::test]
async fn the_default_catalog_stays_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
    let bytes = received_bytes(tools);
    let budget = budget();
    assert!(
        bytes <= budget,
        "the default tools/list is {bytes} bytes, over the budget of {budget} in schemas/catalog-budget.txt: make the new tools' schemas and descriptions smaller, or raise the budget deliberately in the same commit"
    );

    // `tools --stats` measures what the client receives.
    let out = std::process::Command::new(BIN)
        .arg("--state-dir")
        .arg(dir.path())
        .args(["tools", "--stats"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let total: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("no total line: {stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(total[2], bytes.to_string(), "{stdout}");
    assert_eq!(total[3], bytes.div_ceil(4).to_string(), "{stdout}");
    for toolset in ["github", "integrations", "asbr", "mvp", "patchkit"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(toolset)),
            "{toolset} missing: {stdout}"
        );
    }
}

/// Every `type` in `schema` is a single string, and no `anyOf`/`oneOf` of an input has
/// a `null` branch; `at` names the place for the failure message.
fn assert_portable(schema: &Value, input: bool, at: &str) {
    match schema {
        Value::Object(o) => {
            if let Some(t) = o.get("type") {
                assert!(t.is_string(), "{at}: type {t}");
            }
            assert!(!o.contains_key("$schema"), "{at}: $schema");
            if input {
                for key in ["anyOf", "oneOf"] {
                    if let Some(Value::Array(branches)) = o.get(key) {
                        // "Any JSON value" is spelled as an anyOf of all six JSON types,
                        // null included: that is not an optional field made nullable.
                        let any_value = branches.len() == 6;
                        assert!(
                            any_value
                                || !branches
                                    .iter()
                                    .any(|b| b.get("type") == Some(&json!("null"))),
                            "{at}: nullable {key}"
                        );
                    }
                }
                if let Some(Value::Array(values)) = o.get("enum") {
                    assert!(!values.contains(&Value::Null), "{at}: null in enum");
                }
            }
            for (k, v) in o {
                match (k.as_str(), v) {
                    // A map of named subschemas: its keys are field names, not keywords.
                    ("properties" | "patternProperties" | "$defs", Value::Object(map)) => {
                        for (name, sub) in map {
                            assert_portable(sub, input, &format!("{at}.{k}.{name}"));
                        }
                    }
                    _ => assert_portable(v, input, &format!("{at}.{k}")),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                assert_portable(v, input, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn schemas_have_no_nullable_type_arrays_and_null_arguments_still_pass() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), &["--toolsets", "all"]).await;
    let tools = client.list_all_tools().await.unwrap();
    for t in &tools {
        let input = serde_json::to_value(&*t.input_schema).unwrap();
        assert_portable(&input, true, &format!("{} inputSchema", t.name));
        if let Some(output) = &t.output_schema {
            let output = serde_json::to_value(&**output).unwrap();
            assert_portable(&output, false, &format!("{} outputSchema", t.name));
        }
    }
    let create_diff = tools.iter().find(|t| t.name == "create_diff").unwrap();
    assert_eq!(
        create_diff.input_schema["properties"]["before"]["type"],
        json!("string"),
        "an Option field is an optional string"
    );
    // A model that sends `null` for an optional field, as the schema once allowed, is
    // still understood.
    let out = ok(
        &client,
        "create_diff",
        json!({"path": "a.txt", "before": null, "after": "new\n"}),
    )
    .await;
    assert_eq!(out["changeType"], json!("created"), "{out}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn instructions_fit_in_2000_characters_and_name_the_enabled_toolsets() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(
        dir.path(),
        &["--toolsets", "all", "serve", "--conformance-fixtures"],
    )
    .await;
    let info = client.peer_info().expect("server info").clone();
    client.cancel().await.unwrap();
    let text = info.instructions.clone().unwrap_or_default();
    let chars = text.chars().count();
    assert!(chars <= 2000, "{chars} characters of instructions:\n{text}");
    for toolset in TOOLSETS.iter().chain(&["fixtures"]) {
        assert!(text.contains(&format!("{toolset}:")), "{toolset}: {text}");
    }

    // The default: four toolsets whole and three github groups, named as groups.
    let default = tempfile::tempdir().unwrap();
    let client = stdio_client(default.path(), &[]).await;
    let text = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    client.cancel().await.unwrap();
    assert!(text.chars().count() <= 2000, "{text}");
    for named in [
        "github.repos",
        "github.issues",
        "github.pulls",
        "patchkit:",
        "asbr:",
    ] {
        assert!(text.contains(named), "{named}: {text}");
    }
    assert!(
        !text.contains("github.actions") && !text.contains("batch:"),
        "{text}"
    );

    let only = tempfile::tempdir().unwrap();
    let client = stdio_client(only.path(), &["--toolsets", "github,patchkit"]).await;
    let text = client
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    client.cancel().await.unwrap();
    for toolset in TOOLSETS {
        let enabled = ["github", "patchkit"].contains(toolset);
        assert_eq!(
            text.contains(&format!("{toolset}:")),
            enabled,
            "{toolset} (enabled: {enabled}): {text}"
        );
    }
}

#[tokio::test]
async fn server_info_has_a_title_a_version_and_a_website() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), &["--toolsets", "patchkit"]).await;
    let info = client.peer_info().expect("server info").server_info.clone();
    client.cancel().await.unwrap();
    let info = info.expect("serverInfo");
    assert_eq!(info.name, "cortex-mcp");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.title.as_deref().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        info.website_url.as_deref(),
        Some(env!("CARGO_PKG_REPOSITORY"))
    );
    assert!(env!("CARGO_PKG_REPOSITORY").starts_with("https://"));
}

#[tokio::test]
async fn github_integrations_and_patchkit_tools_have_titles_hints_and_short_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let client = stdio_client(dir.path(), &["--toolsets", "github,integrations,patchkit"]).await;
    let tools = client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
    let hint = |name: &str| {
        let t = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert!(
            t.title.as_deref().is_some_and(|x| !x.is_empty()),
            "{name} has no title"
        );
        // An absent hint has its MCP default (the catalog publishes only the others).
        let mut hints = t.annotations.clone().expect("annotations");
        hints.read_only_hint.get_or_insert(false);
        hints.destructive_hint.get_or_insert(true);
        hints.idempotent_hint.get_or_insert(false);
        hints.open_world_hint.get_or_insert(true);
        hints
    };
    for name in [
        "merge_pull_request",
        "run_action",
        "update_issue",
        "execute_integration",
        "update_integration",
        "delete_integration",
        "edit_files",
        "spool_write",
        "spool_commit",
        "spool_reset",
        "spool_close",
    ] {
        assert_eq!(hint(name).destructive_hint, Some(true), "{name}");
    }
    for name in [
        "get_issue",
        "list_integrations",
        "create_diff",
        "apply_patch",
    ] {
        assert_eq!(hint(name).read_only_hint, Some(true), "{name}");
    }
    assert_eq!(hint("get_issue").open_world_hint, Some(true));
    assert_eq!(hint("create_diff").open_world_hint, Some(false));
    for t in &tools {
        let description = t.description.as_deref().unwrap_or("");
        assert!(
            !description.is_empty() && description.len() <= 300,
            "{}: {} characters",
            t.name,
            description.len()
        );
        assert!(t.title.is_some(), "{} has no title", t.name);
    }
}
