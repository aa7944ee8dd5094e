//! Tool schema snapshots: one `<tool>.json` per tool with its name, description,
//! annotations and schemas. `write` regenerates them; `check` fails when code and files
//! differ. The configuration used for snapshots is the full catalog (`--toolsets all`).
//! Also measures the catalog: bytes of `tools/list` per toolset (`tools --stats`) and the
//! budget kept in `schemas/catalog-budget.txt`.

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
        "title": tool.title,
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

/// Bytes of a `tools/list` result listing `tools`, serialised as the server sends it.
#[allow(clippy::field_reassign_with_default)] // ListToolsResult is non-exhaustive
pub fn list_bytes(tools: &[Tool]) -> usize {
    let mut result = rmcp::model::ListToolsResult::default();
    result.tools = tools.to_vec();
    serde_json::to_vec(&result).map_or(0, |bytes| bytes.len())
}

/// The token estimate printed next to bytes: one token per 4 bytes, the usual ratio
/// for English text and JSON with GPT- and Claude-style tokenizers (schema-heavy JSON
/// runs a little denser, so treat it as a floor).
pub fn estimated_tokens(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

/// One line of `cortex-mcp tools --stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeRow {
    /// A toolset name, or `total`.
    pub toolset: String,
    pub tools: usize,
    /// Bytes of a `tools/list` result listing only these tools.
    pub bytes: usize,
}

/// The size of the catalog per toolset (in catalog order) and in total; `tools` pairs
/// each tool with its toolset.
pub fn sizes(tools: &[(&str, Tool)]) -> Vec<SizeRow> {
    let mut rows: Vec<SizeRow> = Vec::new();
    let mut toolsets: Vec<&str> = Vec::new();
    for (toolset, _) in tools {
        if !toolsets.contains(toolset) {
            toolsets.push(toolset);
        }
    }
    for toolset in toolsets {
        let own: Vec<Tool> = tools
            .iter()
            .filter(|(t, _)| *t == toolset)
            .map(|(_, tool)| tool.clone())
            .collect();
        rows.push(SizeRow {
            toolset: toolset.to_string(),
            tools: own.len(),
            bytes: list_bytes(&own),
        });
    }
    let all: Vec<Tool> = tools.iter().map(|(_, tool)| tool.clone()).collect();
    rows.push(SizeRow {
        toolset: "total".into(),
        tools: all.len(),
        bytes: list_bytes(&all),
    });
    rows
}

/// The table `cortex-mcp tools --stats` prints.
pub fn render_sizes(rows: &[SizeRow]) -> String {
    let mut out = format!(
        "{:<14} {:>6} {:>9} {:>9}\n",
        "toolset", "tools", "bytes", "~tokens"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<14} {:>6} {:>9} {:>9}\n",
            row.toolset,
            row.tools,
            row.bytes,
            estimated_tokens(row.bytes)
        ));
    }
    out.push_str("(bytes of the tools/list result as sent; ~tokens = bytes / 4)\n");
    out
}

/// The byte budget of the default catalog, kept in `schemas/catalog-budget.txt` (the
/// first line that is not a `#` comment).
pub fn budget(text: &str) -> Option<usize> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up_per_toolset_and_in_total() {
        let tool = |name: &str| {
            Tool::new(
                name.to_string(),
                "d".to_string(),
                std::sync::Arc::new(rmcp::model::JsonObject::new()),
            )
        };
        let rows = sizes(&[("a", tool("x")), ("b", tool("y")), ("a", tool("z"))]);
        let names: Vec<(&str, usize)> =
            rows.iter().map(|r| (r.toolset.as_str(), r.tools)).collect();
        assert_eq!(names, [("a", 2), ("b", 1), ("total", 3)]);
        assert_eq!(
            rows[2].bytes,
            list_bytes(&[tool("x"), tool("y"), tool("z")])
        );
        assert!(render_sizes(&rows).contains("total"));
        assert_eq!(budget("# why\n\n120000\n"), Some(120000));
    }
}
