//! OSV advisories: loading them from the configured directory, range matching and
//! the `dependency` findings of one lockfile. Must not walk workspaces or hold rules.

use std::path::Path;

use serde_json::Value;

use super::lockfiles::{Locked, parse_lockfile};
use super::rules::Lines;
use super::version::cmp_versions;
use super::{Finding, ScanError, Severity};

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

pub(super) fn scan_lockfile(
    kind: &str,
    file: &str,
    text: &str,
    advisories: &[Advisory],
) -> Vec<Finding> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
