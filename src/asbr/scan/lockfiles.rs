//! Lockfile parsers: which file names are lockfiles and the packages they pin
//! (Cargo.lock, poetry.lock, package-lock.json, requirements.txt). Pure text parsing;
//! must not read files or match advisories.

use serde_json::Value;

/// One locked package.
#[derive(Debug, Clone, PartialEq)]
pub struct Locked {
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
}

pub(super) fn lockfile_kind(name: &str) -> Option<&'static str> {
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
