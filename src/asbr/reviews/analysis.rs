//! Review analysis: runs the security scan and the `performance`, `architecture` and
//! `style` rule packs over a review's scope, and sorts, counts and caps the findings.
//!
//! Owns only running the analysers; the rules are `asbr::scan`'s and
//! `asbr::review_rules`'s, the records `asbr::reviews`'.

use std::{
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
};

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use super::{FindingSummary, MAX_REVIEW_FINDINGS, ReviewFinding, ReviewerKind, Scope};
use crate::{
    asbr::{
        review_rules::{self, ReviewRules},
        scan::{self, Advisory, Rules, ScanType, Severity},
    },
    runtime::stop::{Stop, Stopped},
};

/// What the analysers produced for one reviewer.
pub struct ReviewerOutcome {
    pub findings: Vec<ReviewFinding>,
    pub files_scanned: u64,
}

/// Runs the security scan over `root` and keeps the findings in scope.
pub fn run_security(
    rules: &Rules,
    root: &Path,
    scope: &Scope,
    advisories: &[Advisory],
    stop: &Stop,
    on_file: &(dyn Fn(u64) + Sync),
) -> Result<ReviewerOutcome, Stopped> {
    let out = scan::scan_dir(rules, root, ScanType::All, None, advisories, stop, on_file)?;
    Ok(ReviewerOutcome {
        findings: out
            .findings
            .into_iter()
            .filter(|f| scope.contains(&f.file))
            .map(|f| ReviewFinding {
                reviewer: ReviewerKind::Security,
                rule: f.rule,
                severity: f.severity,
                file: f.file,
                line: f.line,
                message: f.message,
                excerpt: f.excerpt,
            })
            .collect(),
        files_scanned: out.summary.files_scanned,
    })
}

/// Runs the `performance`, `architecture` or `style` pack over the source files of `root` in scope
/// (respecting `.gitignore`, skipping binaries and files over 2 MiB). The walk quits
/// between files once `stop` is raised, and then answers [`Stopped`].
pub fn run_pack(
    rules: &ReviewRules,
    kind: ReviewerKind,
    root: &Path,
    scope: &Scope,
    stop: &Stop,
    on_file: &(dyn Fn(u64) + Sync),
) -> Result<ReviewerOutcome, Stopped> {
    let findings = Mutex::new(Vec::new());
    let files = AtomicU64::new(0);
    // Listed and read through the root's handle only (see `scan::list_files`).
    let dir = crate::runtime::workspace::Beneath::open_ambient(root).ok();
    let listed = dir
        .as_ref()
        .map(|d| scan::list_files(d, stop))
        .unwrap_or_default();
    scan::for_each_parallel(&listed, stop, |(rel_path, len)| {
        let Some(lang) = review_rules::lang_of(rel_path) else {
            return;
        };
        let rel = rel_path.to_string_lossy().replace('\\', "/");
        if !scope.contains(&rel) || *len > scan::MAX_FILE_BYTES {
            return;
        }
        let Some(data) = dir.as_ref().and_then(|d| d.read(rel_path).ok().flatten()) else {
            return;
        };
        if data[..data.len().min(8192)].contains(&0) {
            return;
        }
        let text = String::from_utf8_lossy(&data);
        let hits = match kind {
            ReviewerKind::Performance => rules.performance(lang, &text),
            ReviewerKind::Architecture => rules.architecture(lang, &text),
            _ => rules.style(lang, &text),
        };
        if !hits.is_empty() {
            findings
                .lock()
                .extend(hits.into_iter().map(|h| ReviewFinding {
                    reviewer: kind,
                    rule: h.rule.to_string(),
                    severity: h.severity,
                    file: rel.clone(),
                    line: h.line,
                    message: h.message,
                    excerpt: h.excerpt,
                }));
        }
        on_file(files.fetch_add(1, Ordering::Relaxed) + 1);
    });
    stop.check()?;
    Ok(ReviewerOutcome {
        findings: findings.into_inner(),
        files_scanned: files.into_inner(),
    })
}

/// Sorts (most severe first), counts and caps the findings of a review.
pub fn summarise(
    mut findings: Vec<ReviewFinding>,
    files_scanned: u64,
) -> (Vec<ReviewFinding>, FindingSummary) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.file.cmp(&b.file))
            .then(a.line.cmp(&b.line))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    let mut s = FindingSummary {
        total: findings.len() as u64,
        files_scanned,
        ..Default::default()
    };
    for f in &findings {
        *s.by_severity
            .entry(severity_name(f.severity).to_string())
            .or_insert(0) += 1;
        *s.by_reviewer
            .entry(f.reviewer.as_str().to_string())
            .or_insert(0) += 1;
    }
    s.truncated = findings.len() > MAX_REVIEW_FINDINGS;
    findings.truncate(MAX_REVIEW_FINDINGS);
    (findings, s)
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// Everything a review run needs, shared read-only.
pub struct Analysers {
    pub security: std::sync::Arc<Rules>,
    pub packs: ReviewRules,
}

/// Convenience for serialising to a JSON value for event payloads.
pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
