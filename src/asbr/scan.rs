//! Local security scans: `secrets` (credential formats and high-entropy assignments,
//! matches redacted), `sast` (rule packs for Rust, JavaScript/TypeScript, Python and
//! shell) and `dependency` (lockfiles against OSV advisories from a configured
//! directory).
//!
//! Owns the rules, the parallel walk (respecting `.gitignore`, skipping binaries and
//! files over [`MAX_FILE_BYTES`]) and the workspace-root check. Runs on blocking threads;
//! must not touch tasks, journals or tool wiring. Secret values never leave this module
//! unredacted.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::{
    stop::{Stop, Stopped},
    workspace::{Beneath, Roots, Walk, WorkspaceError},
};

/// Files larger than this are skipped.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// Most findings returned by one scan.
pub const MAX_FINDINGS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("targetPath: {0}")]
    Path(String),
    #[error("targetPath: {0}")]
    NotFound(String),
    #[error("advisories: {0}")]
    Advisories(String),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScanType {
    Sast,
    Dependency,
    Secrets,
    #[default]
    All,
}

impl ScanType {
    fn includes(self, other: ScanType) -> bool {
        self == ScanType::All || self == other
    }
}

#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// One finding.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub rule: String,
    /// secrets | sast | dependency
    pub r#type: String,
    pub severity: Severity,
    /// Path relative to the scanned directory.
    pub file: String,
    pub line: u64,
    pub message: String,
    /// The matching line, with any secret value redacted.
    pub excerpt: String,
}

/// Counts of one scan.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanSummary {
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    pub skipped_binary: u64,
    pub skipped_large: u64,
    pub by_severity: BTreeMap<String, u64>,
    /// More findings existed than the 1,000 returned.
    pub truncated: bool,
}

// ---------------------------------------------------------------- rules

struct Rule {
    id: &'static str,
    severity: Severity,
    message: &'static str,
    re: Regex,
    /// For secret rules: the capture group holding the secret (0 = whole match).
    group: usize,
}

fn rule(id: &'static str, severity: Severity, message: &'static str, re: &str) -> Rule {
    Rule {
        id,
        severity,
        message,
        re: Regex::new(re).unwrap_or_else(|e| panic!("rule {id}: {e}")),
        group: 0,
    }
}

fn secret_rules() -> Vec<Rule> {
    use Severity::*;
    let mut rules = vec![
        rule(
            "github-token",
            Critical,
            "GitHub token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})\b",
        ),
        rule(
            "aws-access-key-id",
            High,
            "AWS access key id",
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        ),
        rule(
            "slack-token",
            High,
            "Slack token",
            r"\bxox[baprs]-[0-9A-Za-z-]{10,}",
        ),
        rule(
            "slack-webhook",
            Medium,
            "Slack incoming webhook URL",
            r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+",
        ),
        rule(
            "stripe-secret-key",
            Critical,
            "Stripe live secret key",
            r"\b[sr]k_live_[0-9A-Za-z]{16,}\b",
        ),
        rule(
            "private-key",
            Critical,
            "private key block",
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----",
        ),
        rule(
            "jwt",
            Medium,
            "JSON Web Token",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        ),
    ];
    let mut aws = rule(
        "aws-secret-access-key",
        Critical,
        "AWS secret access key",
        r#"(?i)aws_?secret_?access_?key\s*[:=]\s*['"]?([A-Za-z0-9/+=]{40})"#,
    );
    aws.group = 1;
    rules.push(aws);
    rules
}

fn entropy_rule() -> Rule {
    let mut r = rule(
        "high-entropy-assignment",
        Severity::Medium,
        "high-entropy value assigned to a secret-looking name",
        r#"(?i)\b[a-z0-9_]*(?:secret|token|passwd|password|api_?key|apikey|credential)s?\b\s*[:=]\s*['"]([^'"\s]{16,})['"]"#,
    );
    r.group = 1;
    r
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Lang {
    Rust,
    Js,
    Python,
    Shell,
}

fn lang_of(path: &Path) -> Option<Lang> {
    let ext = path.extension()?.to_str()?;
    Some(match ext {
        "rs" => Lang::Rust,
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => Lang::Js,
        "py" => Lang::Python,
        "sh" | "bash" | "zsh" => Lang::Shell,
        _ => return None,
    })
}

fn sast_rules() -> Vec<(Lang, Rule)> {
    use Lang::*;
    use Severity::*;
    vec![
        (
            Rust,
            rule(
                "rust-shell-command",
                High,
                "shell invoked through Command; arguments may be injected",
                r#"Command::new\(\s*"(?:/bin/)?(?:ba)?sh"\s*\)"#,
            ),
        ),
        (
            Rust,
            rule(
                "rust-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r"danger_accept_invalid_(?:certs|hostnames)\(\s*true\s*\)",
            ),
        ),
        (
            Rust,
            rule(
                "rust-sql-format",
                Medium,
                "SQL built with format!; use bound parameters",
                r#"format!\(\s*"(?i:\s*(?:select|insert|update|delete)\s)"#,
            ),
        ),
        (
            Rust,
            rule(
                "rust-unsafe",
                Low,
                "unsafe block; check its invariants",
                r"\bunsafe\s*\{",
            ),
        ),
        (
            Js,
            rule(
                "js-eval",
                High,
                "eval of dynamic code",
                r"\beval\s*\(|\bnew\s+Function\s*\(",
            ),
        ),
        (
            Js,
            rule(
                "js-child-process-exec",
                High,
                "shell command built at run time (child_process exec)",
                r"\bexec(?:Sync)?\s*\(\s*(?:`[^`]*\$\{|[^)]*\+)",
            ),
        ),
        (
            Js,
            rule(
                "js-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r#"rejectUnauthorized\s*:\s*false|NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*['"]?0"#,
            ),
        ),
        (
            Js,
            rule(
                "js-sql-template",
                Medium,
                "SQL built from a template string; use bound parameters",
                r"(?i)\b(?:query|execute|raw)\s*\(\s*`\s*(?:select|insert|update|delete)\b[^`]*\$\{",
            ),
        ),
        (
            Js,
            rule(
                "js-inner-html",
                Medium,
                "assignment to innerHTML (XSS)",
                r"\.innerHTML\s*=",
            ),
        ),
        (
            Python,
            rule(
                "py-eval",
                High,
                "eval/exec of dynamic code",
                r"(?:^|[^.\w])(?:eval|exec)\s*\(",
            ),
        ),
        (
            Python,
            rule(
                "py-shell-true",
                High,
                "subprocess with shell=True",
                r"subprocess\.\w+\([^)]*shell\s*=\s*True",
            ),
        ),
        (
            Python,
            rule(
                "py-os-system",
                High,
                "os.system runs a shell",
                r"\bos\.(?:system|popen)\s*\(",
            ),
        ),
        (
            Python,
            rule(
                "py-pickle",
                High,
                "unsafe deserialisation (pickle)",
                r"\b(?:c?[pP]ickle|dill)\.loads?\s*\(",
            ),
        ),
        (
            Python,
            rule(
                "py-yaml-load",
                High,
                "yaml.load without SafeLoader",
                r"\byaml\.load\s*\((?:[^)S]|S[^a])*\)",
            ),
        ),
        (
            Python,
            rule(
                "py-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r"\bverify\s*=\s*False\b",
            ),
        ),
        (
            Python,
            rule(
                "py-sql-format",
                Medium,
                "SQL built from strings; use bound parameters",
                r#"(?i)\.execute\s*\(\s*(?:f["']\s*(?:select|insert|update|delete)\b|["']\s*(?:select|insert|update|delete)\b[^"']*["']\s*(?:%|\+|\.format))"#,
            ),
        ),
        (
            Shell,
            rule(
                "sh-eval",
                High,
                "eval of a dynamic string",
                r"(?m)(?:^|[;&|]\s*)eval\s",
            ),
        ),
        (
            Shell,
            rule(
                "sh-curl-pipe",
                High,
                "downloaded script piped into a shell",
                r"\b(?:curl|wget)\b[^|\n]*\|\s*(?:sudo\s+)?(?:ba|z)?sh\b",
            ),
        ),
        (
            Shell,
            rule(
                "sh-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r"\bcurl\b[^\n]*\s(?:-k|--insecure)\b|\bwget\b[^\n]*--no-check-certificate",
            ),
        ),
        (
            Shell,
            rule(
                "sh-chmod-777",
                Medium,
                "world-writable permissions",
                r"\bchmod\s+(?:-R\s+)?777\b",
            ),
        ),
    ]
}

/// The compiled rule set (built once per scanner).
pub struct Rules {
    secrets: Vec<Rule>,
    entropy: Rule,
    sast: Vec<(Lang, Rule)>,
}

impl Rules {
    pub fn new() -> Self {
        Rules {
            secrets: secret_rules(),
            entropy: entropy_rule(),
            sast: sast_rules(),
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self::new()
    }
}

fn shannon(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn redact(secret: &str) -> String {
    let keep: String = secret.chars().take(4).collect();
    format!("{keep}…[redacted {} chars]", secret.chars().count())
}

/// Line number (1-based) of byte `at`, using a running cursor for speed.
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            line: 1,
        }
    }
    fn line_of(&mut self, at: usize) -> u64 {
        if at < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += memchr_count(&self.text.as_bytes()[self.pos..at]);
        self.pos = at;
        self.line
    }
    fn excerpt(&self, at: usize) -> &'a str {
        let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i);
        &self.text[start..end]
    }
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn cap_excerpt(s: &str) -> String {
    let s = s.trim();
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Scans one file's text with the selected rules.
pub fn scan_text(
    rules: &Rules,
    scan: ScanType,
    file: &str,
    path: &Path,
    text: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut lines = Lines::new(text);
    if scan.includes(ScanType::Secrets) {
        for r in rules.secrets.iter().chain(std::iter::once(&rules.entropy)) {
            for caps in r.re.captures_iter(text) {
                let Some(m) = caps.get(r.group) else { continue };
                if r.id == "high-entropy-assignment" && shannon(m.as_str()) < 3.5 {
                    continue;
                }
                let whole = caps.get(0).expect("group 0");
                let line = lines.line_of(whole.start());
                let excerpt = lines
                    .excerpt(whole.start())
                    .replace(m.as_str(), &redact(m.as_str()));
                out.push(Finding {
                    rule: r.id.to_string(),
                    r#type: "secrets".into(),
                    severity: r.severity,
                    file: file.to_string(),
                    line,
                    message: format!("{} found", r.message),
                    excerpt: cap_excerpt(&excerpt),
                });
            }
        }
    }
    if scan.includes(ScanType::Sast)
        && let Some(lang) = lang_of(path)
    {
        for (_, r) in rules.sast.iter().filter(|(l, _)| *l == lang) {
            for m in r.re.find_iter(text) {
                let line = lines.line_of(m.start());
                out.push(Finding {
                    rule: r.id.to_string(),
                    r#type: "sast".into(),
                    severity: r.severity,
                    file: file.to_string(),
                    line,
                    message: r.message.to_string(),
                    excerpt: cap_excerpt(lines.excerpt(m.start())),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------- dependencies

/// One locked package.
#[derive(Debug, Clone, PartialEq)]
pub struct Locked {
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
}

fn lockfile_kind(name: &str) -> Option<&'static str> {
    Some(match name {
        "Cargo.lock" => "cargo",
        "package-lock.json" => "npm",
        "requirements.txt" => "requirements",
        "poetry.lock" => "poetry",
        _ => return None,
    })
}

fn toml_packages(text: &str, ecosystem: &'static str) -> Vec<Locked> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    doc.get("package")
        .and_then(|p| p.as_array())
        .map(|pkgs| {
            pkgs.iter()
                .filter_map(|p| {
                    Some(Locked {
                        ecosystem,
                        name: p.get("name")?.as_str()?.to_string(),
                        version: p.get("version")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn npm_packages(text: &str) -> Vec<Locked> {
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(pkgs) = doc.get("packages").and_then(Value::as_object) {
        for (path, p) in pkgs {
            let Some(name) = path
                .rsplit("node_modules/")
                .next()
                .filter(|n| !n.is_empty() && path.contains("node_modules/"))
            else {
                continue;
            };
            if let Some(v) = p.get("version").and_then(Value::as_str) {
                out.push(Locked {
                    ecosystem: "npm",
                    name: name.to_string(),
                    version: v.to_string(),
                });
            }
        }
    } else if let Some(deps) = doc.get("dependencies").and_then(Value::as_object) {
        for (name, p) in deps {
            if let Some(v) = p.get("version").and_then(Value::as_str) {
                out.push(Locked {
                    ecosystem: "npm",
                    name: name.clone(),
                    version: v.to_string(),
                });
            }
        }
    }
    out
}

fn requirements(text: &str) -> Vec<Locked> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?.trim();
            let (name, version) = l.split_once("==")?;
            let name = name.split('[').next()?.trim();
            let version = version.split(';').next()?.trim();
            (!name.is_empty() && !version.is_empty()).then(|| Locked {
                ecosystem: "PyPI",
                name: name.to_string(),
                version: version.to_string(),
            })
        })
        .collect()
}

pub fn parse_lockfile(kind: &str, text: &str) -> Vec<Locked> {
    match kind {
        "cargo" => toml_packages(text, "crates.io"),
        "poetry" => toml_packages(text, "PyPI"),
        "npm" => npm_packages(text),
        _ => requirements(text),
    }
}

/// Compares dotted versions numerically where both parts are numbers.
fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<String> { v.split(['.', '-', '+']).map(str::to_string).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let x = pa.get(i).map(String::as_str).unwrap_or("0");
        let y = pb.get(i).map(String::as_str).unwrap_or("0");
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

/// One OSV advisory, reduced to what matching needs.
#[derive(Debug, Clone)]
pub struct Advisory {
    pub id: String,
    pub summary: String,
    pub severity: Severity,
    affected: Vec<Affected>,
}

#[derive(Debug, Clone)]
struct Affected {
    ecosystem: String,
    name: String,
    versions: Vec<String>,
    /// (introduced, fixed exclusive, last_affected inclusive)
    ranges: Vec<(String, Option<String>, Option<String>)>,
}

fn osv_severity(doc: &Value) -> Severity {
    let label = doc
        .pointer("/database_specific/severity")
        .and_then(Value::as_str)
        .unwrap_or("HIGH")
        .to_ascii_uppercase();
    match label.as_str() {
        "LOW" => Severity::Low,
        "MODERATE" | "MEDIUM" => Severity::Medium,
        "CRITICAL" => Severity::Critical,
        _ => Severity::High,
    }
}

fn parse_advisory(doc: &Value) -> Option<Advisory> {
    let id = doc.get("id")?.as_str()?.to_string();
    let mut affected = Vec::new();
    for a in doc.get("affected")?.as_array()? {
        let pkg = a.get("package")?;
        let mut ranges = Vec::new();
        for r in a
            .get("ranges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut introduced = None;
            for e in r
                .get("events")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(v) = e.get("introduced").and_then(Value::as_str) {
                    introduced = Some(v.to_string());
                } else if let Some(v) = e.get("fixed").and_then(Value::as_str) {
                    ranges.push((
                        introduced.take().unwrap_or_else(|| "0".into()),
                        Some(v.to_string()),
                        None,
                    ));
                } else if let Some(v) = e.get("last_affected").and_then(Value::as_str) {
                    ranges.push((
                        introduced.take().unwrap_or_else(|| "0".into()),
                        None,
                        Some(v.to_string()),
                    ));
                }
            }
            if let Some(i) = introduced {
                ranges.push((i, None, None));
            }
        }
        affected.push(Affected {
            ecosystem: pkg.get("ecosystem")?.as_str()?.to_string(),
            name: pkg.get("name")?.as_str()?.to_string(),
            versions: a
                .get("versions")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            ranges,
        });
    }
    Some(Advisory {
        summary: doc
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_string(),
        severity: osv_severity(doc),
        id,
        affected,
    })
}

/// Loads every `*.json` OSV file under `dir`.
pub fn load_advisories(dir: &Path) -> Result<Vec<Advisory>, ScanError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ScanError::Advisories(format!("{}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ScanError::Advisories(format!("{}: {e}", path.display())))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| ScanError::Advisories(format!("{}: {e}", path.display())))?;
        let adv = parse_advisory(&doc).ok_or_else(|| {
            ScanError::Advisories(format!(
                "{}: not an OSV advisory (id, affected[].package)",
                path.display()
            ))
        })?;
        out.push(adv);
    }
    Ok(out)
}

impl Advisory {
    fn matches(&self, pkg: &Locked) -> bool {
        use std::cmp::Ordering::*;
        self.affected.iter().any(|a| {
            a.ecosystem.eq_ignore_ascii_case(pkg.ecosystem)
                && a.name.eq_ignore_ascii_case(&pkg.name)
                && (a.versions.iter().any(|v| v == &pkg.version)
                    || a.ranges.iter().any(|(intro, fixed, last)| {
                        let v = pkg.version.as_str();
                        let after = intro == "0" || cmp_versions(v, intro) != Less;
                        let before = match (fixed, last) {
                            (Some(f), _) => cmp_versions(v, f) == Less,
                            (None, Some(l)) => cmp_versions(v, l) != Greater,
                            (None, None) => true,
                        };
                        after && before
                    }))
        })
    }
}

fn scan_lockfile(kind: &str, file: &str, text: &str, advisories: &[Advisory]) -> Vec<Finding> {
    let mut out = Vec::new();
    for pkg in parse_lockfile(kind, text) {
        for adv in advisories.iter().filter(|a| a.matches(&pkg)) {
            let quoted = format!("\"{}\"", pkg.name);
            let at = text
                .find(&quoted)
                .or_else(|| text.find(&pkg.name))
                .unwrap_or(0);
            let mut lines = Lines::new(text);
            out.push(Finding {
                rule: adv.id.clone(),
                r#type: "dependency".into(),
                severity: adv.severity,
                file: file.to_string(),
                line: lines.line_of(at),
                message: format!(
                    "{} {} ({}): {}",
                    pkg.name, pkg.version, pkg.ecosystem, adv.summary
                ),
                excerpt: format!("{} {}", pkg.name, pkg.version),
            });
        }
    }
    out
}

// ---------------------------------------------------------------- the scan

/// Resolves `target` (absolute, or relative to the first root) to a directory inside
/// the workspace roots, through the runtime's one confinement check.
pub fn resolve_target(roots: &Roots, target: &str) -> Result<PathBuf, ScanError> {
    roots.dir(Some(target)).map_err(|e| match e {
        WorkspaceError::NotFound { .. } => ScanError::NotFound(e.to_string()),
        e => ScanError::Path(e.to_string()),
    })
}

/// Everything one scan produced.
pub struct ScanOutcome {
    pub findings: Vec<Finding>,
    pub summary: ScanSummary,
}

/// Walks `root` in parallel and applies the rules. `on_file` is called after each file
/// with the number of files done (for progress). The walk quits between files once
/// `stop` is raised (deadline, cancellation), and then answers [`Stopped`].
pub fn scan_dir(
    rules: &Rules,
    root: &Path,
    scan: ScanType,
    min: Option<Severity>,
    advisories: &[Advisory],
    stop: &Stop,
    on_file: &(dyn Fn(u64) + Sync),
) -> Result<ScanOutcome, Stopped> {
    let findings = Mutex::new(Vec::new());
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let binary = AtomicU64::new(0);
    let large = AtomicU64::new(0);
    // Listed and read through the root's handle only (a root that cannot be opened
    // yields no files).
    let dir = Beneath::open_ambient(root).ok();
    let listed = dir
        .as_ref()
        .map(|d| list_files(d, stop))
        .unwrap_or_default();
    for_each_parallel(&listed, stop, |(rel_path, len)| {
        if *len > MAX_FILE_BYTES {
            large.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(data) = dir.as_ref().and_then(|d| d.read(rel_path).ok().flatten()) else {
            return;
        };
        if data[..data.len().min(8192)].contains(&0) {
            binary.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let text = String::from_utf8_lossy(&data);
        let path = root.join(rel_path);
        let rel = rel_path.to_string_lossy().replace('\\', "/");
        let mut found = scan_text(rules, scan, &rel, &path, &text);
        if scan.includes(ScanType::Dependency)
            && let Some(kind) = rel_path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(lockfile_kind)
        {
            found.extend(scan_lockfile(kind, &rel, &text, advisories));
        }
        found.retain(|f| min.is_none_or(|m| f.severity >= m));
        if !found.is_empty() {
            findings.lock().extend(found);
        }
        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        on_file(files.fetch_add(1, Ordering::Relaxed) + 1);
    });
    stop.check()?;
    let mut findings = findings.into_inner();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    let mut by_severity = BTreeMap::new();
    for f in &findings {
        *by_severity
            .entry(
                serde_json::to_value(f.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )
            .or_insert(0u64) += 1;
    }
    let truncated = findings.len() > MAX_FINDINGS;
    findings.truncate(MAX_FINDINGS);
    Ok(ScanOutcome {
        findings,
        summary: ScanSummary {
            files_scanned: files.into_inner(),
            bytes_scanned: bytes.into_inner(),
            skipped_binary: binary.into_inner(),
            skipped_large: large.into_inner(),
            by_severity,
            truncated,
        },
    })
}

/// Shared, read-only scan configuration.
pub struct Scanner {
    pub rules: Arc<Rules>,
    pub roots: Roots,
    pub advisories_dir: Option<PathBuf>,
}

/// Deepest directory level a walk lists.
const MAX_WALK_DEPTH: usize = 64;

/// The regular files beneath `dir` (relative paths, with their sizes) as the scans and
/// the review rule packs see them: hidden files included, `.git` skipped (directory or
/// worktree file), the
/// `.gitignore` and `.ignore` files inside the tree respected (gitignore syntax; the
/// deepest directory's match wins, `!` re-includes, `.ignore` over `.gitignore`),
/// symlinks never followed. Listed through directory handles ([`Beneath::walk`]), so a
/// directory swapped for a symlink during the walk lists nothing from outside; ignore
/// files outside the walked tree (its parents', `.git/info/exclude`, the user's global
/// excludes) are not read. Stops listing once `stop` is raised.
pub fn list_files(dir: &Beneath, stop: &Stop) -> Vec<(PathBuf, u64)> {
    let mut lister = IgnoreLister {
        base: dir.path().to_path_buf(),
        stop,
        ignores: Vec::new(),
        files: Vec::new(),
    };
    dir.walk(&mut lister, MAX_WALK_DEPTH);
    lister.files
}

/// Gitignore-aware [`Walk`]: a stack of the ignore rules of the directories on the
/// current path (the walk is depth first).
struct IgnoreLister<'a> {
    base: PathBuf,
    stop: &'a Stop,
    ignores: Vec<(PathBuf, ignore::gitignore::Gitignore)>,
    files: Vec<(PathBuf, u64)>,
}

impl Walk for IgnoreLister<'_> {
    fn enter(&mut self, rel: &Path, dir: &Beneath) -> bool {
        while self
            .ignores
            .last()
            .is_some_and(|(at, _)| !rel.starts_with(at))
        {
            self.ignores.pop();
        }
        let mut builder = ignore::gitignore::GitignoreBuilder::new(dir.path());
        let mut any = false;
        for name in [".gitignore", ".ignore"] {
            if let Ok(Some(bytes)) = dir.read(Path::new(name)) {
                for line in String::from_utf8_lossy(&bytes).lines() {
                    any |= builder.add_line(None, line).is_ok();
                }
            }
        }
        if any && let Ok(g) = builder.build() {
            self.ignores.push((rel.to_path_buf(), g));
        }
        true
    }

    fn keep(&mut self, rel: &Path, is_dir: bool) -> bool {
        // `.git`: the repository's directory, or a worktree's gitlink file.
        if rel.file_name().is_some_and(|n| n == ".git") {
            return false;
        }
        let abs = self.base.join(rel);
        for (_, g) in self.ignores.iter().rev() {
            let m = g.matched(&abs, is_dir);
            if m.is_ignore() {
                return false;
            }
            if m.is_whitelist() {
                return true;
            }
        }
        true
    }

    fn file(&mut self, rel: &Path, len: u64) {
        self.files.push((rel.to_path_buf(), len));
    }

    fn done(&self) -> bool {
        self.stop.is_stopped()
    }
}

/// Runs `each` over `items` on every core; items not yet started are skipped once
/// `stop` is raised.
pub fn for_each_parallel<T: Sync>(items: &[T], stop: &Stop, each: impl Fn(&T) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.is_stopped() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    each(item);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keeps_gitignore_semantics_and_never_leaves_the_root() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("repo");
        let outside = base.path().join("outside");
        for d in ["gen", "sub/deep", ".git", ".hidden", "wt"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "AKIAABCDEFGHIJKLMNOP").unwrap();
        let files = [
            ".gitignore",
            "a.rs",
            "x.log",
            "keep.log",
            "gen/g.rs",
            "sub/.gitignore",
            "sub/b.rs",
            "sub/c.tmp",
            "sub/deep/d.log",
            ".git/config",
            ".hidden/h.rs",
            "wt/.git",
            "wt/w.rs",
        ];
        for f in files {
            std::fs::write(root.join(f), "").unwrap();
        }
        std::fs::write(root.join(".gitignore"), "gen/\n*.log\n!keep.log\n").unwrap();
        std::fs::write(root.join("sub/.gitignore"), "*.tmp\n!d.log\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("s.txt")).unwrap();
        let dir = Beneath::open_ambient(&root).unwrap();
        let mut got: Vec<String> = list_files(&dir, &Stop::never())
            .into_iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ".gitignore",
                ".hidden/h.rs",
                "a.rs",
                "keep.log",
                "sub/.gitignore",
                "sub/b.rs",
                "sub/deep/d.log",
                "wt/w.rs",
            ]
        );
    }

    #[test]
    fn secrets_are_found_and_redacted() {
        let rules = Rules::new();
        let text = "let t = \"ghp_abcdefghijklmnopqrstuvwxyz0123456789\";\nAKIAABCDEFGHIJKLMNOP\napi_key = \"Zx9!kQ2#mW7$pL4vR8tY\"\nname = \"aaaaaaaaaaaaaaaaaaaa\"\n";
        let f = scan_text(&rules, ScanType::Secrets, "a.txt", Path::new("a.txt"), text);
        let rules_hit: Vec<&str> = f.iter().map(|f| f.rule.as_str()).collect();
        assert!(rules_hit.contains(&"github-token"), "{rules_hit:?}");
        assert!(rules_hit.contains(&"aws-access-key-id"));
        assert!(rules_hit.contains(&"high-entropy-assignment"));
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f.iter().all(|f| !f.excerpt.contains("abcdefghijklmnop")));
        assert_eq!(f[1].line, 2);
    }

    #[test]
    fn versions_and_ranges() {
        assert!(cmp_versions("1.10.0", "1.9.9").is_gt());
        let doc = serde_json::json!({"id":"X-1","affected":[{"package":{"ecosystem":"npm","name":"lodash"},
            "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}]});
        let adv = parse_advisory(&doc).unwrap();
        let pkg = |v: &str| Locked {
            ecosystem: "npm",
            name: "lodash".into(),
            version: v.into(),
        };
        assert!(adv.matches(&pkg("4.17.20")));
        assert!(!adv.matches(&pkg("4.17.21")));
    }
}
