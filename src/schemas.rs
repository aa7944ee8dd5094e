//! Tool schema snapshots: one `<tool>.json` per tool with its name, description,
//! annotations and schemas. `write` regenerates them; `check` fails when code and files
//! differ. The configuration used for snapshots is the full catalog (`--toolsets all`).

use std::{collections::BTreeSet, path::Path};

use rmcp::model::Tool;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "schemas differ from the code: {0}; regenerate with `cortex-mcp --toolsets all schemas --write schemas/`"
    )]
    Differs(String),
}

fn render(tool: &Tool) -> String {
    let value = json!({
        "name": tool.name,
        "description": tool.description,
        "annotations": tool.annotations,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("tool definitions serialise");
    text.push('\n');
    text
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SchemaError + '_ {
    move |source| SchemaError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes every tool's snapshot and removes snapshots of tools that no longer exist.
pub fn write(catalog: &[Tool], dir: &Path) -> Result<(), SchemaError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let names: BTreeSet<String> = catalog.iter().map(|t| format!("{}.json", t.name)).collect();
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".json") && !names.contains(&name) {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    for tool in catalog {
        let path = dir.join(format!("{}.json", tool.name));
        std::fs::write(&path, render(tool)).map_err(io(&path))?;
    }
    Ok(())
}

/// Compares the snapshots in `dir` with the code.
pub fn check(catalog: &[Tool], dir: &Path) -> Result<(), SchemaError> {
    let mut problems = Vec::new();
    let mut expected = BTreeSet::new();
    for tool in catalog {
        let file = format!("{}.json", tool.name);
        expected.insert(file.clone());
        match std::fs::read_to_string(dir.join(&file)) {
            Ok(text) if text == render(tool) => {}
            Ok(_) => problems.push(format!("{file} changed")),
            Err(_) => problems.push(format!("{file} missing")),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".json") && !expected.contains(&name) {
                problems.push(format!("{name} has no tool"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Differs(problems.join(", ")))
    }
}
