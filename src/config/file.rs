//! The config file: which one is read (`--config`/`CORTEX_MCP_CONFIG`, else the user's
//! config directory; never the working directory implicitly), parsing it, and the trust
//! rule that a file inside a workspace root may not set the [`WIDENING_KEYS`].
//!
//! Owns file selection, parsing and placement checks; it must not validate values.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::{ConfigError, options::Options};

/// Keys that widen what the server may do: never taken from a file inside a workspace root.
pub const WIDENING_KEYS: &[&str] = &[
    "exec-allow",
    "exec-env-allow",
    "workspace-roots",
    "github-api-url",
    "events-sink-url",
    "otlp-endpoint",
    "connectors-manifest-path",
    "allowed-hosts",
    "allowed-origins",
    "oauth-issuer",
    "oauth-audience",
];

/// A parsed config file: its options and the keys it sets.
pub(crate) struct FileLayer {
    pub options: Options,
    pub keys: BTreeSet<String>,
}

/// The user's config file: `$XDG_CONFIG_HOME/cortex-mcp/config.toml` (platform config dir).
pub fn user_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("cortex-mcp").join("config.toml"))
}

/// Which config file to read: `--config`/`CORTEX_MCP_CONFIG` when given (it must exist),
/// else the user's config file when present. Never the working directory implicitly.
pub(crate) fn config_source(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => user_config_file().filter(|p| p.is_file()),
    }
}

fn file_error(path: &Path, reason: impl ToString) -> ConfigError {
    ConfigError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads and parses a config file; unknown keys are refused.
pub(crate) fn read_file(path: &Path) -> Result<FileLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    parse(&text).map_err(|reason| file_error(path, reason))
}

/// Why config file text does not parse.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum FileParseError {
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("key `{key}`: {message}")]
    BadValue { key: String, message: String },
    #[error("unknown field `{key}`, expected one of {known}")]
    UnknownKey { key: String, known: String },
}

/// Parses config file text (TOML; keys are the flag names without `--`).
pub(crate) fn parse(text: &str) -> Result<FileLayer, FileParseError> {
    let table: toml::Table = toml::from_str(text)?;
    let options: Options = toml::from_str(text).map_err(|e| name_bad_key(&table, e))?;
    if let Some(key) = options.unknown.keys().next() {
        let known = Options::file_keys()
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(FileParseError::UnknownKey {
            key: key.clone(),
            known,
        });
    }
    Ok(FileLayer {
        options,
        keys: table.keys().cloned().collect(),
    })
}

/// The areas are flattened into one table, which costs serde the position of a bad
/// value: find the key whose value alone does not parse and name it.
fn name_bad_key(table: &toml::Table, whole: toml::de::Error) -> FileParseError {
    use serde::Deserialize;
    for (key, value) in table {
        let one = toml::Table::from_iter([(key.clone(), value.clone())]);
        if let Err(e) = Options::deserialize(toml::Value::Table(one)) {
            return FileParseError::BadValue {
                key: key.clone(),
                message: e.message().to_string(),
            };
        }
    }
    FileParseError::Toml(whole)
}

/// Refuses a file that sets widening keys while it lies inside a workspace root (the
/// roots in effect: given ones, else the current directory), where the agent, or the
/// repository that was opened, could have written it.
pub(crate) fn check_file_placement(
    path: &Path,
    keys: &BTreeSet<String>,
    roots: &[PathBuf],
) -> Result<(), ConfigError> {
    let keys: Vec<&str> = WIDENING_KEYS
        .iter()
        .copied()
        .filter(|k| keys.contains(*k))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let Ok(canonical) = path.canonicalize() else {
        return Ok(());
    };
    let roots: Vec<PathBuf> = if roots.is_empty() {
        std::env::current_dir().into_iter().collect()
    } else {
        roots.to_vec()
    };
    let inside = roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .find(|r| canonical.starts_with(r));
    match inside {
        Some(root) => Err(file_error(
            path,
            format!(
                "sets {} but lies inside the workspace root {}, where a repository or an agent could have written it; \
                 these keys are only read from a file outside every workspace root (e.g. {}) or from flags/CORTEX_MCP_* variables",
                keys.join(", "),
                root.display(),
                user_config_file()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the user config directory".into()),
            ),
        )),
        None => Ok(()),
    }
}
