//! Options of the mvp toolset: the secure executor (allow-lists, process limits,
//! sandbox, network), PRP history and the teaching store, validated into [`MvpSettings`].
//!
//! Owns the mvp toolset's configuration; it must not touch the mvp toolset.

use std::{str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

layered! {
    /// MVP executor, PRP and teaching options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct MvpOptions {
        /// Programs the mvp executor may start (comma-separated bare names, resolved on PATH).
        #[arg(long, global = true, env = "CORTEX_MCP_EXEC_ALLOW", value_delimiter = ',')]
        pub exec_allow: Option<Vec<String>>,
        /// Environment variables kept for child processes besides PATH and HOME (comma-separated).
        #[arg(long, global = true, env = "CORTEX_MCP_EXEC_ENV_ALLOW", value_delimiter = ',')]
        pub exec_env_allow: Option<Vec<String>>,
        /// Child processes running at once (more wait in the `exec` lane).
        #[arg(long, global = true, env = "CORTEX_MCP_EXEC_MAX_PROCESSES")]
        pub exec_max_processes: Option<usize>,
        /// Default timeout of one child process, in seconds.
        #[arg(long, global = true, env = "CORTEX_MCP_EXEC_TIMEOUT_SECS")]
        pub exec_timeout_secs: Option<u64>,
        /// How child processes are confined: auto (the strongest available) | landlock | none.
        #[arg(long, global = true, env = "CORTEX_MCP_EXEC_SANDBOX")]
        pub exec_sandbox: Option<ExecSandbox>,
        /// Let child processes use the network (off by default).
        #[arg(long, global = true, env = "CORTEX_MCP_EXEC_NETWORK", num_args = 0..=1, default_missing_value = "true")]
        pub exec_network: Option<bool>,
        /// PRP runs kept in history (oldest evicted).
        #[arg(long, global = true, env = "CORTEX_MCP_PRP_HISTORY")]
        pub prp_history: Option<usize>,
        /// Teaching examples kept (oldest evicted).
        #[arg(long, global = true, env = "CORTEX_MCP_TEACHING_MAX_EXAMPLES")]
        pub teaching_max_examples: Option<usize>,
    }
}

/// Programs the mvp executor may start when `--exec-allow` is not given (bare names,
/// resolved on PATH; never a shell).
pub const DEFAULT_EXEC_ALLOW: &[&str] = &[
    "cargo",
    "cargo-nextest",
    "python3",
    "python",
    "pytest",
    "ruff",
    "npx",
    "node",
    "eslint",
    "vitest",
    "jest",
    "git",
];

/// Environment variables passed to child processes besides PATH and HOME.
pub const DEFAULT_EXEC_ENV_ALLOW: &[&str] = &[
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_TARGET_DIR",
    "VIRTUAL_ENV",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NODE_PATH",
];

/// How the mvp executor confines child processes (`--exec-sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExecSandbox {
    /// The strongest mechanism this kernel offers (Landlock); children are refused when
    /// there is none, so running unconfined is never silent.
    #[default]
    Auto,
    /// Landlock (filesystem, TCP and scope rules), applied in the child before exec.
    Landlock,
    /// No confinement (logged as a warning at start).
    None,
}

impl FromStr for ExecSandbox {
    type Err = super::NotAChoice;
    fn from_str(s: &str) -> Result<Self, super::NotAChoice> {
        match s {
            "auto" => Ok(Self::Auto),
            "landlock" => Ok(Self::Landlock),
            "none" => Ok(Self::None),
            other => Err(super::NotAChoice {
                value: other.to_string(),
                choices: "auto|landlock|none",
            }),
        }
    }
}

/// Settings of the mvp toolset's secure executor, PRP history and teaching store.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MvpSettings {
    /// Program names the executor may start.
    pub exec_allow: Vec<String>,
    /// Environment variables kept for children besides PATH and HOME.
    pub exec_env_allow: Vec<String>,
    /// Processes running at once; more wait in the `exec` lane's queue.
    pub exec_max_processes: usize,
    /// Default timeout of one process.
    #[serde(rename = "execTimeoutSecs", serialize_with = "super::redact::secs")]
    pub exec_timeout: Duration,
    /// How children are confined.
    pub exec_sandbox: ExecSandbox,
    /// Whether children may open network connections (off by default).
    pub exec_network: bool,
    /// PRP runs kept (a ring: the oldest is evicted).
    pub prp_history: usize,
    /// Teaching examples kept (the oldest is evicted).
    pub teaching_max_examples: usize,
}

impl Default for MvpSettings {
    fn default() -> Self {
        MvpSettings {
            exec_allow: DEFAULT_EXEC_ALLOW.iter().map(|s| s.to_string()).collect(),
            exec_env_allow: DEFAULT_EXEC_ENV_ALLOW
                .iter()
                .map(|s| s.to_string())
                .collect(),
            exec_max_processes: 10,
            exec_timeout: Duration::from_secs(30),
            exec_sandbox: ExecSandbox::Auto,
            exec_network: false,
            prp_history: 1000,
            teaching_max_examples: 10_000,
        }
    }
}

impl MvpOptions {
    /// Validates and fills in the defaults.
    pub(crate) fn settings(self) -> Result<MvpSettings, ConfigError> {
        let mut s = MvpSettings::default();
        if let Some(allow) = self.exec_allow {
            let allow: Vec<String> = allow
                .into_iter()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect();
            for name in &allow {
                let bad = name.contains('/')
                    || name.contains('\\')
                    || name.starts_with('.')
                    || name.chars().any(|c| c.is_whitespace() || c.is_control());
                if bad {
                    return Err(invalid(
                        "exec-allow",
                        format!(
                            "`{name}` must be a bare program name (resolved on PATH), not a path"
                        ),
                    ));
                }
            }
            s.exec_allow = allow;
        }
        if let Some(env) = self.exec_env_allow {
            for name in &env {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(invalid(
                        "exec-env-allow",
                        format!("`{name}` is not an environment variable name"),
                    ));
                }
            }
            s.exec_env_allow = env;
        }
        if let Some(n) = self.exec_max_processes {
            if n == 0 || n > 256 {
                return Err(invalid("exec-max-processes", "must be between 1 and 256"));
            }
            s.exec_max_processes = n;
        }
        if let Some(secs) = self.exec_timeout_secs {
            if secs == 0 || secs > 3600 {
                return Err(invalid("exec-timeout-secs", "must be between 1 and 3600"));
            }
            s.exec_timeout = Duration::from_secs(secs);
        }
        if let Some(n) = self.prp_history {
            if n == 0 || n > 1_000_000 {
                return Err(invalid("prp-history", "must be between 1 and 1000000"));
            }
            s.prp_history = n;
        }
        if let Some(n) = self.teaching_max_examples {
            if n == 0 || n > 10_000_000 {
                return Err(invalid(
                    "teaching-max-examples",
                    "must be between 1 and 10000000",
                ));
            }
            s.teaching_max_examples = n;
        }
        s.exec_sandbox = self.exec_sandbox.unwrap_or_default();
        s.exec_network = self.exec_network.unwrap_or(false);
        Ok(s)
    }
}
