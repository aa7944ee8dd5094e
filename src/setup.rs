//! `cortex-mcp setup <client>`: the MCP client configuration entry that starts (stdio) or
//! reaches (HTTP) this server, in each client's own format, and its merge into the
//! client's configuration file (existing servers and other keys kept, written through a
//! temporary file and a rename, a file that is not JSON refused).
//!
//! The formats, as each client documents them:
//! - Claude Code, project scope `.mcp.json`: `mcpServers`, stdio `command`/`args`/`env`
//!   or `"type": "http"` with `url`/`headers`; `${VAR}` and `${VAR:-default}` expand in
//!   command, args, env, url and headers (an unset `${VAR}` stays literal, hence `:-`).
//!   <https://code.claude.com/docs/en/mcp> ("Environment variable expansion in .mcp.json").
//! - VS Code, `.vscode/mcp.json`: `servers`, each with `type` (`stdio` or `http`);
//!   variables as `${env:VAR}`.
//!   <https://code.visualstudio.com/docs/copilot/reference/mcp-configuration>
//! - Cursor, `.cursor/mcp.json` (project) or `~/.cursor/mcp.json` (global): `mcpServers`,
//!   stdio `command`/`args`/`env` or `url`/`headers`; `${env:NAME}` interpolated in
//!   command, args, env, url and headers. <https://cursor.com/docs/context/mcp>
//! - Claude Desktop, `claude_desktop_config.json` in the user's config directory
//!   (`~/Library/Application Support/Claude/` on macOS, `%APPDATA%\Claude\` on Windows,
//!   `~/.config/Claude/` on Linux): `mcpServers` with stdio entries only (remote servers
//!   are added as connectors in its settings) and no variable expansion.
//!   <https://modelcontextprotocol.io/quickstart/user>
//!
//! Owns only these formats and the file merge; it must not start a server or read the
//! server configuration.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value, json};

/// Environment variables the stdio entry hands to the server in the client's syntax
/// (the GitHub tools read `GITHUB_TOKEN`; an unset one reads as absent).
const PASSED_ENV: &[&str] = &["GITHUB_TOKEN"];

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "Claude Desktop's claude_desktop_config.json takes stdio servers only (remote ones are added under Settings → Connectors); run `cortex-mcp setup claude-desktop` without --http"
    )]
    DesktopHttp,
    #[error("--http {0}: not an http(s) URL ({1})")]
    BadUrl(String, String),
    #[error(
        "{path} is not valid JSON ({reason}); it was left unchanged. Fix it (comments are not accepted), or add this entry under `{key}` by hand:\n{entry}"
    )]
    NotJson {
        path: String,
        reason: String,
        key: &'static str,
        entry: String,
    },
    #[error("{path}: `{key}` is not a JSON object; it was left unchanged")]
    NotAnObject { path: String, key: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("no home or config directory known for this user; pass --config-path")]
    NoConfigDir,
}

/// The clients `setup` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    ClaudeCode,
    ClaudeDesktop,
    Vscode,
    Cursor,
}

impl Client {
    /// The top-level key that holds the servers.
    pub fn servers_key(self) -> &'static str {
        match self {
            Client::Vscode => "servers",
            _ => "mcpServers",
        }
    }

    /// A reference to environment variable `var` in this client's syntax, `None` when
    /// the client expands none.
    fn env_ref(self, var: &str) -> Option<String> {
        match self {
            Client::ClaudeCode => Some(format!("${{{var}:-}}")),
            Client::Vscode | Client::Cursor => Some(format!("${{env:{var}}}")),
            Client::ClaudeDesktop => None,
        }
    }

    /// The documented configuration file: in the project (`cwd`) for Claude Code, VS Code
    /// and Cursor, in the user's config directory for Claude Desktop.
    pub fn default_path(self, cwd: &Path) -> Result<PathBuf, SetupError> {
        Ok(match self {
            Client::ClaudeCode => cwd.join(".mcp.json"),
            Client::Vscode => cwd.join(".vscode").join("mcp.json"),
            Client::Cursor => cwd.join(".cursor").join("mcp.json"),
            Client::ClaudeDesktop => dirs::config_dir()
                .ok_or(SetupError::NoConfigDir)?
                .join("Claude")
                .join("claude_desktop_config.json"),
        })
    }
}

/// What the entry starts or reaches.
#[derive(Debug, Clone)]
pub enum Target {
    /// Run `command args...` (stdio).
    Stdio { command: String, args: Vec<String> },
    /// Reach a running server at `url`, with `Authorization: Bearer ${token_env}` when set.
    Http {
        url: String,
        token_env: Option<String>,
    },
}

/// The server entry for `client` (the value under the servers key).
pub fn entry(client: Client, target: &Target) -> Result<Value, SetupError> {
    match target {
        Target::Stdio { command, args } => {
            let mut e = Map::new();
            if client == Client::Vscode {
                e.insert("type".into(), json!("stdio"));
            }
            e.insert("command".into(), json!(command));
            e.insert("args".into(), json!(args));
            let env: Map<String, Value> = PASSED_ENV
                .iter()
                .filter_map(|var| client.env_ref(var).map(|r| (var.to_string(), json!(r))))
                .collect();
            if !env.is_empty() {
                e.insert("env".into(), Value::Object(env));
            }
            Ok(Value::Object(e))
        }
        Target::Http { url, token_env } => {
            if client == Client::ClaudeDesktop {
                return Err(SetupError::DesktopHttp);
            }
            let parsed =
                url::Url::parse(url).map_err(|e| SetupError::BadUrl(url.clone(), e.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(SetupError::BadUrl(
                    url.clone(),
                    format!("scheme {}", parsed.scheme()),
                ));
            }
            let mut e = Map::new();
            if client != Client::Cursor {
                e.insert("type".into(), json!("http"));
            }
            e.insert("url".into(), json!(url));
            if let Some(var) = token_env
                && let Some(reference) = client.env_ref(var)
            {
                e.insert(
                    "headers".into(),
                    json!({ "Authorization": format!("Bearer {reference}") }),
                );
            }
            Ok(Value::Object(e))
        }
    }
}

/// The whole document a new configuration file would hold: `{key: {name: entry}}`.
pub fn document(client: Client, name: &str, entry: &Value) -> Value {
    json!({ client.servers_key(): { name: entry } })
}

/// `existing` (a file's text, `None` when absent) with `name` set to `entry` under the
/// client's servers key; every other server and key kept, in order. Whether an entry of
/// that name was replaced is returned too.
pub fn merge(
    client: Client,
    path: &Path,
    existing: Option<&str>,
    name: &str,
    entry: &Value,
) -> Result<(String, bool), SetupError> {
    let key = client.servers_key();
    let mut doc = match existing.filter(|t| !t.trim().is_empty()) {
        None => Value::Object(Map::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| SetupError::NotJson {
            path: path.display().to_string(),
            reason: e.to_string(),
            key,
            entry: pretty(&json!({ name: entry })),
        })?,
    };
    let not_object = |key: &str| SetupError::NotAnObject {
        path: path.display().to_string(),
        key: key.to_string(),
    };
    let root = doc
        .as_object_mut()
        .ok_or_else(|| not_object("(top level)"))?;
    let servers = root
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| not_object(key))?;
    let replaced = servers.insert(name.to_string(), entry.clone()).is_some();
    Ok((pretty(&doc) + "\n", replaced))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Merges the entry into the file at `path` (created, with its directory, when absent):
/// the new text goes to a temporary file beside it, is flushed, takes the old file's
/// permissions and is renamed over it, so a reader sees the old file or the new one.
pub fn write(client: Client, path: &Path, name: &str, entry: &Value) -> Result<bool, SetupError> {
    let io = |e: std::io::Error| SetupError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let (text, replaced) = merge(client, path, existing.as_deref(), name, entry)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mcp.json".into());
    let tmp = dir.join(format!(
        ".{file_name}.cortex-mcp-{}.tmp",
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdio() -> Target {
        Target::Stdio {
            command: "/opt/bin/cortex-mcp".into(),
            args: vec!["serve".into()],
        }
    }

    #[test]
    fn each_client_gets_its_own_format() {
        let code = entry(Client::ClaudeCode, &stdio()).unwrap();
        assert_eq!(
            code,
            json!({"command": "/opt/bin/cortex-mcp", "args": ["serve"], "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN:-}"}})
        );
        let vscode = entry(Client::Vscode, &stdio()).unwrap();
        assert_eq!(vscode["type"], "stdio");
        assert_eq!(vscode["env"]["GITHUB_TOKEN"], "${env:GITHUB_TOKEN}");
        let cursor = entry(Client::Cursor, &stdio()).unwrap();
        assert_eq!(cursor["env"]["GITHUB_TOKEN"], "${env:GITHUB_TOKEN}");
        assert!(cursor.get("type").is_none());
        let desktop = entry(Client::ClaudeDesktop, &stdio()).unwrap();
        assert!(
            desktop.get("env").is_none(),
            "Claude Desktop expands nothing"
        );

        let http = Target::Http {
            url: "http://127.0.0.1:7439/mcp".into(),
            token_env: Some("CORTEX_MCP_AUTH_TOKEN".into()),
        };
        let v = entry(Client::Vscode, &http).unwrap();
        assert_eq!(v["type"], "http");
        assert_eq!(
            v["headers"]["Authorization"],
            "Bearer ${env:CORTEX_MCP_AUTH_TOKEN}"
        );
        let c = entry(Client::ClaudeCode, &http).unwrap();
        assert_eq!(
            c["headers"]["Authorization"],
            "Bearer ${CORTEX_MCP_AUTH_TOKEN:-}"
        );
        assert!(matches!(
            entry(Client::ClaudeDesktop, &http),
            Err(SetupError::DesktopHttp)
        ));
        let bad = Target::Http {
            url: "ftp://x".into(),
            token_env: None,
        };
        assert!(matches!(
            entry(Client::Cursor, &bad),
            Err(SetupError::BadUrl(..))
        ));
    }

    #[test]
    fn merge_keeps_other_servers_and_keys_and_refuses_non_json() {
        let e = entry(Client::Vscode, &stdio()).unwrap();
        let p = Path::new("mcp.json");
        let existing =
            r#"{"inputs": [{"id": "x"}], "servers": {"other": {"type": "stdio", "command": "o"}}}"#;
        let (text, replaced) = merge(Client::Vscode, p, Some(existing), "cortex-mcp", &e).unwrap();
        assert!(!replaced);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["inputs"][0]["id"], "x");
        assert_eq!(v["servers"]["other"]["command"], "o");
        assert_eq!(v["servers"]["cortex-mcp"], e);
        let keys: Vec<&String> = v["servers"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["other", "cortex-mcp"], "order kept");
        let (_, replaced) = merge(Client::Vscode, p, Some(&text), "cortex-mcp", &e).unwrap();
        assert!(replaced);

        let commented = "{\n  // mine\n  \"servers\": {}\n}";
        let err = merge(Client::Vscode, p, Some(commented), "cortex-mcp", &e).unwrap_err();
        assert!(err.to_string().contains("left unchanged"), "{err}");
        let err = merge(Client::Cursor, p, Some(r#"{"mcpServers": []}"#), "n", &e).unwrap_err();
        assert!(matches!(err, SetupError::NotAnObject { .. }), "{err}");
    }
}
