//! The import rules of the house plan (architecture §2), checked on the source text:
//! a toolset never imports another toolset, `server` or `transport`; the runtime imports
//! no toolset, no `server` and no `transport`. Test-only; owns nothing at run time.

use std::path::{Path, PathBuf};

/// The toolsets: each a directory `src/<name>/`.
const TOOLSETS: &[&str] = &[
    "github",
    "integrations",
    "asbr",
    "mvp",
    "patchkit",
    "fixtures",
];

/// The top-level modules named by `crate::…` paths in `source` (line comments
/// ignored): `crate::a::b` gives `a`, `crate::{a::x, b}` gives `a` and `b`.
fn crate_modules(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue; // e.g. `$crate::` or `other_crate::`
        }
        let rest_trimmed = rest.trim_start();
        if let Some(group) = rest_trimmed.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                    _ => {}
                }
                if depth == 0 && c != ',' && c != '}' {
                    item.push(c);
                }
            }
            items.push(item);
            found.extend(items.iter().filter_map(|i| first_ident(i)));
        } else if let Some(name) = first_ident(rest_trimmed) {
            found.push(name);
        }
    }
    found
}

fn first_ident(text: &str) -> Option<String> {
    let name: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every forbidden import under `src/<area>/` (and `src/<area>.rs`): `(file, module)`.
fn violations(src: &Path, area: &str, forbidden: &[&str]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&src.join(area), &mut files);
    let flat = src.join(format!("{area}.rs"));
    if flat.is_file() {
        files.push(flat);
    }
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for module in crate_modules(&text) {
            if forbidden.contains(&module.as_str()) {
                found.push((file.display().to_string(), module));
            }
        }
    }
    found
}

#[test]
fn the_checker_sees_single_and_grouped_imports() {
    let text = "use crate::{\n    asbr,\n    config::Config,\n    runtime::{Runtime, page},\n};\nfn f() { crate::server::x(); $crate::mvp::y(); }\n// crate::github in a comment\n";
    assert_eq!(
        crate_modules(text),
        ["asbr", "config", "runtime", "server"],
        "grouped, nested and plain paths; not `$crate` or comments"
    );
}

#[test]
fn toolsets_import_no_other_toolset_and_the_runtime_imports_none() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for toolset in TOOLSETS {
        let forbidden: Vec<&str> = TOOLSETS
            .iter()
            .copied()
            .filter(|t| t != toolset)
            .chain(["server", "transport"])
            .collect();
        found.extend(violations(&src, toolset, &forbidden));
    }
    let runtime_forbidden: Vec<&str> = TOOLSETS
        .iter()
        .copied()
        .chain(["server", "transport"])
        .collect();
    found.extend(violations(&src, "runtime", &runtime_forbidden));
    assert!(
        found.is_empty(),
        "imports the house plan (architecture §2) forbids; go through the tool registry by name or move shared code into the runtime: {found:#?}"
    );
}
