//! Damaged state found while loading: the process-wide list of what was quarantined
//! (bad journal records, unreadable snapshots, damaged state files moved aside) and of
//! components that could not load their state at all, for health reports.
//!
//! Owns only the list and its log lines: the journal and the toolsets report into it
//! (naming the file and where its bad bytes went), the server and the toolsets' health
//! tools read it. Must not touch any toolset, the server or the transport, and knows
//! nothing about what the damaged files mean.
//!
//! The list is process-wide (a journal is opened by whoever owns it, with no handle to
//! pass the report through) and only grows; a process serves one state directory.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;

/// One piece of damaged state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Damage {
    /// What was damaged: a journal stream, a state file, or a whole toolset.
    pub component: String,
    /// The damaged file (or directory).
    pub file: String,
    /// Where its bad bytes were moved; absent when nothing was moved aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
    /// Records (lines) moved to the quarantine file; 0 when a whole file was.
    pub records: u64,
    /// Bytes moved to the quarantine file.
    pub bytes: u64,
    /// What was wrong, and what was kept.
    pub reason: String,
    /// RFC 3339 time it was found.
    pub at: String,
}

impl Damage {
    pub fn new(component: impl Into<String>, file: &Path, reason: impl Into<String>) -> Self {
        Damage {
            component: component.into(),
            file: file.display().to_string(),
            quarantine: None,
            records: 0,
            bytes: 0,
            reason: reason.into(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// Records that the bad bytes (`records` lines, `bytes` long) were moved to `to`.
    pub fn quarantined(mut self, to: &Path, records: u64, bytes: u64) -> Self {
        self.quarantine = Some(to.display().to_string());
        self.records = records;
        self.bytes = bytes;
        self
    }

    /// One sentence naming the file, the quarantine file and the reason.
    pub fn describe(&self) -> String {
        match &self.quarantine {
            Some(q) => format!(
                "{}: {} damaged ({}); {} record(s), {} byte(s) moved to {}",
                self.component, self.file, self.reason, self.records, self.bytes, q
            ),
            None => format!(
                "{}: {} damaged ({})",
                self.component, self.file, self.reason
            ),
        }
    }
}

static REPORTED: Mutex<Vec<Damage>> = Mutex::new(Vec::new());

/// Adds `damage` to the list, logs it and counts it in `cortex_state_damage_total`.
pub fn report(damage: Damage) {
    tracing::error!(
        component = %damage.component,
        file = %damage.file,
        quarantine = damage.quarantine.as_deref().unwrap_or("-"),
        records = damage.records,
        bytes = damage.bytes,
        reason = %damage.reason,
        "damaged state quarantined; the rest was loaded"
    );
    metrics::counter!("cortex_state_damage_total").increment(1);
    REPORTED.lock().push(damage);
}

/// Everything reported so far, oldest first.
pub fn reported() -> Vec<Damage> {
    REPORTED.lock().clone()
}

/// A file next to `file` for its quarantined bytes: `<file stem>.quarantine-<UTC time>`
/// (with a counter when that name is taken). `stem` replaces the file's own name.
pub fn quarantine_path(dir: &Path, stem: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let first = dir.join(format!("{stem}.quarantine-{stamp}"));
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|n| dir.join(format!("{stem}.quarantine-{stamp}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_listed_and_described() {
        let dir = tempfile::tempdir().unwrap();
        let q = quarantine_path(dir.path(), "s");
        assert!(
            q.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("s.quarantine-")
        );
        let d = Damage::new("journal s", &dir.path().join("s.ndjson"), "line 2: bad")
            .quarantined(&q, 1, 9);
        report(d.clone());
        assert!(reported().contains(&d));
        assert!(d.describe().contains("moved to"));
    }
}
