//! Local security scans: `secrets` (credential formats and high-entropy assignments,
//! matches redacted), `sast` (rule packs for Rust, JavaScript/TypeScript, Python and
//! shell) and `dependency` (lockfiles against OSV advisories from a configured
//! directory).
//!
//! This file owns the scan's shapes (findings, summary, errors), the workspace-root
//! check and the scan loop ([`scan_dir`], skipping binaries and files over
//! [`MAX_FILE_BYTES`]); rule tables and the text engine live in `rules`, lockfile parsers
//! in `lockfiles`, version comparison in `version`, advisories in `osv`, the
//! `.gitignore`-aware parallel walk in `walk`. Runs on blocking threads; must not touch
//! tasks, journals or tool wiring. Secret values never leave this module unredacted.

mod lockfiles;
mod osv;
mod rules;
mod version;
mod walk;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    stop::{Stop, Stopped},
    workspace::{Beneath, Roots, WorkspaceError},
};

use lockfiles::lockfile_kind;
pub use lockfiles::{Locked, parse_lockfile};
use osv::scan_lockfile;
pub use osv::{Advisory, load_advisories};
pub use rules::{Rules, scan_text};
pub use walk::{for_each_parallel, list_files};

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
