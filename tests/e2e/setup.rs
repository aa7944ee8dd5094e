//! `cortex-mcp setup <client> --write` on a sample config of each client: the entry is
//! merged in, existing servers and other keys are kept, a file that is not JSON is left
//! untouched, and Claude Desktop refuses an HTTP entry.

use std::process::Command;

use serde_json::{Value, json};

use crate::common::BIN;

fn setup(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("setup")
        .args(args)
        .output()
        .expect("run cortex-mcp setup")
}

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn write_merges_into_each_clients_sample_config_keeping_what_is_there() {
    let exe = std::fs::canonicalize(BIN).unwrap();
    let exe = exe.to_str().unwrap();
    let samples = [
        (
            "claude-code",
            "mcpServers",
            json!({"mcpServers": {"other": {"command": "npx", "args": ["-y", "other"]}}}),
            "${GITHUB_TOKEN:-}",
        ),
        (
            "vscode",
            "servers",
            json!({"inputs": [{"type": "promptString", "id": "key"}], "servers": {"other": {"type": "http", "url": "https://example.com/mcp"}}}),
            "${env:GITHUB_TOKEN}",
        ),
        (
            "cursor",
            "mcpServers",
            json!({"mcpServers": {"other": {"url": "https://example.com/mcp"}}}),
            "${env:GITHUB_TOKEN}",
        ),
        (
            "claude-desktop",
            "mcpServers",
            json!({"globalShortcut": "Ctrl+Space", "mcpServers": {"other": {"command": "uvx", "args": ["other"]}}}),
            "",
        ),
    ];
    for (client, key, sample, token) in samples {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_string_pretty(&sample).unwrap()).unwrap();
        let out = setup(&[
            client,
            "--write",
            "--config-path",
            path.to_str().unwrap(),
            "--",
            "--dynamic-toolsets",
        ]);
        assert!(
            out.status.success(),
            "{client}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = read(&path);
        for (k, v) in sample.as_object().unwrap() {
            if k != key {
                assert_eq!(&got[k], v, "{client} keeps `{k}`");
            }
        }
        assert_eq!(
            got[key]["other"], sample[key]["other"],
            "{client} keeps other"
        );
        let ours = &got[key]["cortex-mcp"];
        assert_eq!(ours["command"], exe, "{client}: {ours}");
        assert_eq!(ours["args"], json!(["serve", "--dynamic-toolsets"]));
        if token.is_empty() {
            assert!(ours.get("env").is_none(), "{client}: {ours}");
        } else {
            assert_eq!(ours["env"]["GITHUB_TOKEN"], token, "{client}");
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{client}: no temporary file left"
        );

        // Printing gives the same entry.
        let printed = setup(&[client, "--", "--dynamic-toolsets"]);
        let doc: Value = serde_json::from_slice(&printed.stdout).unwrap();
        assert_eq!(&doc[key]["cortex-mcp"], ours, "{client}");
    }
}

#[test]
fn write_creates_a_missing_file_and_never_clobbers_one_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join(".vscode").join("mcp.json");
    let out = setup(&[
        "vscode",
        "--http",
        "http://127.0.0.1:7439/mcp",
        "--write",
        "--config-path",
        fresh.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        read(&fresh),
        json!({"servers": {"cortex-mcp": {"type": "http", "url": "http://127.0.0.1:7439/mcp"}}})
    );

    let broken = dir.path().join("mcp.json");
    let text = "{\n  // a comment\n  \"mcpServers\": {}\n}\n";
    std::fs::write(&broken, text).unwrap();
    let out = setup(&[
        "cursor",
        "--write",
        "--config-path",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not valid JSON") && stderr.contains("left unchanged"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), text);

    let out = setup(&["claude-desktop", "--http", "http://127.0.0.1:7439/mcp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdio servers only"));
}

/// `server.json` is the MCP registry's format (schema 2025-12-11: reverse-DNS name with
/// one slash, a description of at most 100 characters, a repository with url and
/// source) and carries the crate's version.
#[test]
fn server_json_is_in_the_registry_format_at_the_crate_version() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/server.json"))
        .expect("server.json at the repository root");
    let v: Value = serde_json::from_str(&text).expect("server.json parses");
    assert_eq!(
        v["$schema"],
        "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
    );
    assert_eq!(
        v["version"],
        env!("CARGO_PKG_VERSION"),
        "bump server.json with Cargo.toml"
    );
    let name = v["name"].as_str().unwrap();
    let (namespace, server) = name.split_once('/').expect("namespace/name");
    let ok = |s: &str, extra: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c) || extra.contains(c))
    };
    assert!(
        ok(namespace, "") && ok(server, "_") && !server.contains('/'),
        "{name}"
    );
    assert!(namespace.starts_with("io.github."), "{name}");
    let description = v["description"].as_str().unwrap();
    assert!(
        (1..=100).contains(&description.chars().count()),
        "{description}"
    );
    let repo = v["repository"]["url"].as_str().unwrap();
    assert!(repo.starts_with("https://github.com/"), "{repo}");
    assert_eq!(v["repository"]["source"], "github");
    assert!(
        repo.ends_with(server),
        "the repository ({repo}) is the one the name ({name}) claims"
    );
}
