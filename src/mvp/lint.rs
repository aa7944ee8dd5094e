//! Linters: project detection, the command for each (`cargo clippy
//! --message-format=json`, `ruff check --output-format=json`, `eslint -f json`), parsers
//! of their output into one issue shape, and the result cache keyed by (content hash of
//! the inputs, config hash).
//!
//! Every process goes through [`super::exec::SecureExec`]; this module never spawns.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    exec::{Command, SecureExec},
    runners::{DEFAULT_TEST_TIMEOUT, exec_err, has_python_tests, tail},
};
use crate::runtime::{
    registry::{CallCtx, ToolError},
    stop::{Stop, Stopped},
    workspace::{Beneath, Roots, Walk},
};

/// Most lint issues listed in a result.
const MAX_ISSUES: usize = 500;
/// Files hashed for the cache key at most (beyond: sizes and mtimes stand in).
const MAX_HASHED_BYTES: u64 = 64 * 1024 * 1024;
/// Directories never hashed (build outputs, caches, VCS).
const SKIP_DIRS: &[&str] = &[
    "target",
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
    "build",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Linter {
    Clippy,
    Eslint,
    Ruff,
}

impl Linter {
    fn program(self) -> &'static str {
        match self {
            Linter::Clippy => "cargo",
            Linter::Eslint => "npx",
            Linter::Ruff => "ruff",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Linter::Clippy => "clippy",
            Linter::Eslint => "eslint",
            Linter::Ruff => "ruff",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub file_path: String,
    pub rule_id: Option<String>,
    /// error | warning
    pub severity: String,
    pub message: String,
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisReport {
    pub tool: Linter,
    pub command: String,
    pub error_count: u64,
    pub warning_count: u64,
    pub issues: Vec<Issue>,
    pub summary: String,
    /// Served from the cache (inputs and config unchanged).
    pub cached: bool,
    pub duration_ms: u64,
}

/// Lint results by (linter, content hash of inputs, config hash).
#[derive(Clone)]
pub struct AnalysisCache(moka::sync::Cache<String, Arc<AnalysisReport>>);

impl Default for AnalysisCache {
    fn default() -> Self {
        AnalysisCache(moka::sync::Cache::new(256))
    }
}

pub fn detect_linter(dir: &Path, files: &[String]) -> Option<Linter> {
    let ext_of = |f: &String| {
        Path::new(f)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_string)
    };
    if let Some(ext) = files.iter().find_map(ext_of) {
        return match ext.as_str() {
            "rs" => Some(Linter::Clippy),
            "py" => Some(Linter::Ruff),
            "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => Some(Linter::Eslint),
            _ => None,
        };
    }
    if dir.join("Cargo.toml").is_file() {
        Some(Linter::Clippy)
    } else if dir.join("package.json").is_file() {
        Some(Linter::Eslint)
    } else if ["pyproject.toml", "ruff.toml", ".ruff.toml", "setup.py"]
        .iter()
        .any(|m| dir.join(m).is_file())
        || has_python_tests(dir)
    {
        Some(Linter::Ruff)
    } else {
        None
    }
}

/// Hash of every source file under `dir` (or of `files`), skipping build outputs. The
/// walk and the hashing stop between files once `stop` is raised. Everything is listed
/// and read through handles: files under `dir` through its handle (listed with
/// [`Beneath::walk`], which never follows a symlink), `files` elsewhere and `config`
/// through `roots`; sizes and times come from the opened files, never from a path.
pub fn content_hash(
    roots: &Roots,
    dir: &Path,
    files: &[PathBuf],
    config: Option<&Path>,
    stop: &Stop,
) -> Result<String, Stopped> {
    let mut h = Sha256::new();
    let mut budget = MAX_HASHED_BYTES;
    let handle = Beneath::open_ambient(dir).ok();
    let mut paths: Vec<PathBuf> = if files.is_empty() {
        let mut lister = SourceLister {
            stop,
            files: Vec::new(),
        };
        if let Some(h) = &handle {
            h.walk(&mut lister, 24);
        }
        lister.files.into_iter().map(|rel| dir.join(rel)).collect()
    } else {
        files.to_vec()
    };
    stop.check()?;
    paths.sort();
    let open = |p: &Path| -> Option<std::fs::File> {
        match (&handle, p.strip_prefix(dir)) {
            (Some(h), Ok(rel)) => h.open_regular(rel).ok().flatten(),
            _ => roots.open_file(&p.to_string_lossy()).ok().map(|(f, _)| f),
        }
    };
    for p in &paths {
        stop.check()?;
        h.update(p.to_string_lossy().as_bytes());
        let Some(mut file) = open(p) else {
            continue;
        };
        let Ok(meta) = file.metadata() else {
            continue;
        };
        if meta.len() <= budget {
            let mut bytes = Vec::new();
            if std::io::Read::read_to_end(&mut file, &mut bytes).is_ok() {
                budget = budget.saturating_sub(bytes.len() as u64);
                h.update(&bytes);
            }
        } else {
            h.update(meta.len().to_le_bytes());
            if let Ok(m) = meta.modified() {
                h.update(format!("{m:?}").as_bytes());
            }
        }
    }
    h.update(b"\0config\0");
    if let Some(c) = config
        && let Ok((mut file, _)) = roots.open_file(&c.to_string_lossy())
    {
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut file, &mut bytes).is_ok() {
            h.update(&bytes);
        }
    }
    Ok(hex::encode(&h.finalize()[..16]))
}

/// Lists the source files to hash: build outputs, caches and hidden directories are
/// skipped, at most 50 000 files.
struct SourceLister<'a> {
    stop: &'a Stop,
    files: Vec<PathBuf>,
}

impl Walk for SourceLister<'_> {
    fn enter(&mut self, _: &Path, _: &Beneath) -> bool {
        true
    }

    fn keep(&mut self, rel: &Path, is_dir: bool) -> bool {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        !is_dir || !(SKIP_DIRS.contains(&name.as_ref()) || name.starts_with('.'))
    }

    fn file(&mut self, rel: &Path, _: u64) {
        self.files.push(rel.to_path_buf());
    }

    fn done(&self) -> bool {
        self.files.len() > 50_000 || self.stop.is_stopped()
    }
}

fn lint_command(
    linter: Linter,
    dir: &Path,
    files: &[String],
    config: Option<&Path>,
    timeout: Duration,
) -> Command {
    let mut args: Vec<String> = match linter {
        Linter::Clippy => [
            "clippy",
            "--message-format=json",
            "--quiet",
            "--all-targets",
        ]
        .map(String::from)
        .to_vec(),
        Linter::Ruff => {
            let mut a: Vec<String> = ["check", "--output-format=json", "--no-cache", "--exit-zero"]
                .map(String::from)
                .to_vec();
            if let Some(c) = config {
                a.extend(["--config".into(), c.display().to_string()]);
            }
            a
        }
        Linter::Eslint => {
            let mut a: Vec<String> = ["--no-install", "eslint", "-f", "json"]
                .map(String::from)
                .to_vec();
            if let Some(c) = config {
                a.extend(["-c".into(), c.display().to_string()]);
            }
            a
        }
    };
    match linter {
        Linter::Clippy => {}
        _ if files.is_empty() => args.push(".".into()),
        _ => args.extend(files.iter().cloned()),
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Command::new(linter.program(), &refs, dir, timeout)
}

fn parse_clippy(stdout: &str, dir: &Path, files: &[String]) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut seen = BTreeSet::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-message" {
            continue;
        }
        let m = &v["message"];
        let severity = match m["level"].as_str() {
            Some("error") => "error",
            Some("warning") => "warning",
            _ => continue,
        };
        let Some(span) = m["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["is_primary"] == true))
        else {
            continue; // summary lines such as "N warnings emitted"
        };
        let file = span["file_name"].as_str().unwrap_or("?").to_string();
        if !files.is_empty()
            && !files
                .iter()
                .any(|f| file.ends_with(f.trim_start_matches("./")))
        {
            continue;
        }
        let issue = Issue {
            file_path: dir.join(&file).display().to_string(),
            rule_id: m["code"]["code"].as_str().map(str::to_string),
            severity: severity.into(),
            message: m["message"].as_str().unwrap_or("").to_string(),
            line: span["line_start"].as_u64().unwrap_or(0),
            column: span["column_start"].as_u64().unwrap_or(0),
        };
        let key = format!(
            "{}:{}:{}:{}",
            issue.file_path, issue.line, issue.column, issue.message
        );
        if seen.insert(key) {
            issues.push(issue);
        }
    }
    issues
}

/// A linter's report that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{tool} output is not JSON: {source}")]
struct NotJson {
    tool: &'static str,
    source: serde_json::Error,
}

fn parse_ruff(stdout: &str) -> Result<Vec<Issue>, NotJson> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|source| NotJson {
        tool: "ruff",
        source,
    })?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let code = d["code"].as_str().map(str::to_string);
            // Syntax errors and pyflakes findings (F…, E9…) are errors; style is a warning.
            let severity = match code.as_deref() {
                None => "error",
                Some(c) if c.starts_with('F') || c.starts_with("E9") => "error",
                Some(_) => "warning",
            };
            Issue {
                file_path: d["filename"].as_str().unwrap_or("?").to_string(),
                rule_id: code,
                severity: severity.into(),
                message: d["message"].as_str().unwrap_or("").to_string(),
                line: d["location"]["row"].as_u64().unwrap_or(0),
                column: d["location"]["column"].as_u64().unwrap_or(0),
            }
        })
        .collect())
}

fn parse_eslint(stdout: &str) -> Result<Vec<Issue>, NotJson> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|source| NotJson {
        tool: "eslint",
        source,
    })?;
    let mut issues = Vec::new();
    for file in v.as_array().into_iter().flatten() {
        let path = file["filePath"].as_str().unwrap_or("?");
        for m in file["messages"].as_array().into_iter().flatten() {
            issues.push(Issue {
                file_path: path.to_string(),
                rule_id: m["ruleId"].as_str().map(str::to_string),
                severity: if m["severity"].as_u64() == Some(2) {
                    "error"
                } else {
                    "warning"
                }
                .into(),
                message: m["message"].as_str().unwrap_or("").to_string(),
                line: m["line"].as_u64().unwrap_or(0),
                column: m["column"].as_u64().unwrap_or(0),
            });
        }
    }
    Ok(issues)
}

/// Runs the project's linter (or serves the cached result for unchanged inputs).
#[allow(clippy::too_many_arguments)]
pub async fn analyse(
    roots: &Roots,
    executor: &crate::runtime::executor::Executor,
    exec: &SecureExec,
    cache: &AnalysisCache,
    ctx: &CallCtx,
    dir: &Path,
    files: &[String],
    file_paths: &[PathBuf],
    config: Option<&Path>,
) -> Result<AnalysisReport, ToolError> {
    let linter = detect_linter(dir, files).ok_or_else(|| {
        ToolError::business(format!(
            "no linter applies to {} (Cargo.toml → clippy, package.json → eslint, pyproject.toml/*.py → ruff)",
            dir.display()
        ))
    })?;
    let timeout =
        DEFAULT_TEST_TIMEOUT.min(ctx.remaining().saturating_sub(Duration::from_millis(250)));
    let cmd = lint_command(linter, dir, files, config, timeout);
    // A missing linter is an error that names it.
    exec.resolve(&cmd.program).map_err(|e| {
        ToolError::business(format!(
            "{} is needed for {}: {e}",
            linter.name(),
            dir.display()
        ))
    })?;
    let dir2 = dir.to_path_buf();
    let paths = file_paths.to_vec();
    let cfg = config.map(Path::to_path_buf);
    let stop = ctx.stop.clone();
    let roots = roots.clone();
    let hash = executor
        .run_cpu(ctx.deadline, &ctx.cancel, move || {
            content_hash(&roots, &dir2, &paths, cfg.as_deref(), &stop)
        })
        .await
        .map_err(|e| ToolError::Deadline(e.to_string()))??;
    let key = format!(
        "{}|{}|{}|{}",
        linter.name(),
        dir.display(),
        files.join(","),
        hash
    );
    if let Some(hit) = cache.0.get(&key) {
        let mut r = (*hit).clone();
        r.cached = true;
        return Ok(r);
    }
    let started = Instant::now();
    let out = exec
        .run(&cmd, ctx.deadline, &ctx.cancel, None)
        .await
        .map_err(exec_err)?;
    if out.timed_out {
        return Err(ToolError::Deadline(format!(
            "{} timed out after {} ms",
            linter.name(),
            out.duration_ms
        )));
    }
    let issues = match linter {
        Linter::Clippy => {
            let issues = parse_clippy(&out.stdout, dir, files);
            if issues.is_empty() && !out.success() {
                return Err(ToolError::business(format!(
                    "cargo clippy failed ({}): {}",
                    out.exit_code
                        .map_or("signal".into(), |c| format!("exit code {c}")),
                    tail(&out.stderr, 1500).trim()
                )));
            }
            issues
        }
        Linter::Ruff => parse_ruff(&out.stdout).map_err(|e| {
            ToolError::business(format!("{e}; stderr: {}", tail(&out.stderr, 800).trim()))
        })?,
        Linter::Eslint => parse_eslint(&out.stdout).map_err(|e| {
            ToolError::business(format!("{e}; stderr: {}", tail(&out.stderr, 800).trim()))
        })?,
    };
    let error_count = issues.iter().filter(|i| i.severity == "error").count() as u64;
    let warning_count = issues.len() as u64 - error_count;
    let shown: Vec<Issue> = issues.into_iter().take(MAX_ISSUES).collect();
    let report = AnalysisReport {
        tool: linter,
        command: out.command.clone(),
        error_count,
        warning_count,
        summary: format!(
            "{}: {error_count} errors, {warning_count} warnings{}",
            linter.name(),
            if (error_count + warning_count) as usize > shown.len() {
                format!(" (first {} listed)", shown.len())
            } else {
                String::new()
            }
        ),
        issues: shown,
        cached: false,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    cache.0.insert(key, Arc::new(report.clone()));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Symlinks to outside the roots, where a source file or the config would be: the
    /// outside content is never read (the hash does not change with it).
    #[test]
    fn content_hashes_never_read_through_symlinks_out() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().canonicalize().unwrap().join("proj");
        let outside = base.path().canonicalize().unwrap().join("outside");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
        std::fs::write(outside.join("secret"), "one").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("src/lib.rs")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("ruff.toml")).unwrap();
        let roots = Roots::new(std::slice::from_ref(&root));
        let hash = |files: &[PathBuf]| {
            content_hash(
                &roots,
                &root,
                files,
                Some(&root.join("ruff.toml")),
                &Stop::never(),
            )
            .unwrap()
        };
        let named = [root.join("src/lib.rs"), outside.join("secret")];
        let (all, some) = (hash(&[]), hash(&named));
        std::fs::write(outside.join("secret"), "two").unwrap();
        assert_eq!(hash(&[]), all);
        assert_eq!(hash(&named), some);
        // Files inside are hashed.
        std::fs::write(root.join("src/main.rs"), "fn main() { }").unwrap();
        assert_ne!(hash(&[]), all);
    }

    #[test]
    fn linter_outputs_are_parsed() {
        let ruff = r#"[{"code":"F401","message":"`os` imported but unused","filename":"/w/a.py","location":{"row":1,"column":8}},{"code":"E501","message":"long","filename":"/w/a.py","location":{"row":2,"column":1}}]"#;
        let issues = parse_ruff(ruff).unwrap();
        assert_eq!(issues[0].severity, "error");
        assert_eq!(issues[1].severity, "warning");
        let eslint = r#"[{"filePath":"/w/a.js","messages":[{"ruleId":"no-unused-vars","severity":2,"message":"x","line":3,"column":5}]}]"#;
        assert_eq!(
            parse_eslint(eslint).unwrap()[0].rule_id.as_deref(),
            Some("no-unused-vars")
        );
        let clippy = r#"{"reason":"compiler-message","message":{"level":"warning","message":"unused variable: `x`","code":{"code":"unused_variables"},"spans":[{"is_primary":true,"file_name":"src/lib.rs","line_start":2,"column_start":9}]}}"#;
        let issues = parse_clippy(clippy, Path::new("/w"), &[]);
        assert_eq!(issues[0].rule_id.as_deref(), Some("unused_variables"));
        assert_eq!(issues[0].line, 2);
    }
}
