//! The file-contents handler: a directory listing or a window of one file's text
//! (base64 for binary), read at a ref.
//!
//! Owns this handler and its registration only (its input and output are in `mod.rs`);
//! requests go through the client only.

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let t = &t.group(REPOS);
    let read = Hints::read_remote();
    vec![
        t.tool(
            "get_file_contents",
            read,
            get_file_contents,
            "Read a file or list a directory at `ref` (default: the default branch). Returns the text windowed by `offset`/`maxBytes` (binary as base64) with its SHA, or the directory's entries."
        )
        .titled("Get file contents")
        .with_model_text(file_model_text),
    ]
}

pub(in crate::github::tools) async fn get_file_contents(
    gh: SharedGithub,
    i: FileContentsIn,
    ctx: CallCtx,
) -> Out<FileContents> {
    let repo = repo(&i.repository)?;
    let mut query = Vec::new();
    if let Some(r) = &i.git_ref {
        query.push(("ref", git_ref("ref", r)?));
    }
    let c = &gh.client;
    // Without a ref GitHub reads the default branch: one request, no lookup first.
    let url = c.url(
        "repos/{repository}/contents/{path}",
        &[("repository", &repo), ("path", &i.path)],
        &query,
    )?;
    let body: Value = c.get_json(&ctx, url, LaneKind::Read).await?;
    let git_ref = i.git_ref.clone().or_else(|| c.known_default_branch(&repo));
    if let Value::Array(entries) = body {
        let entries = entries
            .into_iter()
            .filter_map(|e| {
                Some(DirEntry {
                    name: e.get("name")?.as_str()?.to_string(),
                    path: e.get("path")?.as_str()?.to_string(),
                    kind: e.get("type")?.as_str()?.to_string(),
                    size: e.get("size").and_then(Value::as_u64).unwrap_or(0),
                })
            })
            .collect();
        return Ok(FileContents {
            path: i.path,
            git_ref,
            kind: "dir".into(),
            sha: None,
            size: None,
            content: None,
            content_base64: None,
            entries: Some(entries),
        });
    }
    file_window(i, git_ref, body)
}

pub(super) fn file_window(
    i: FileContentsIn,
    git_ref: Option<String>,
    body: Value,
) -> Out<FileContents> {
    use base64::Engine;
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("file");
    if kind != "file" {
        return Err(ToolError::business(format!(
            "`{}` is a {kind}, not a file or directory",
            i.path
        )));
    }
    let encoded = body.get("content").and_then(Value::as_str).unwrap_or("");
    if encoded.is_empty() && body.get("size").and_then(Value::as_u64).unwrap_or(0) > 0 {
        return Err(ToolError::business(format!(
            "`{}` is larger than the contents API serves (1 MB); clone the repository or use the raw URL",
            i.path
        )));
    }
    let cleaned: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_err(|e| ToolError::Upstream(format!("file content is not valid base64: {e}")))?;
    let (content, content_base64) = match String::from_utf8(bytes) {
        Ok(text) => (
            Some(window(&text, i.offset as usize, i.max_bytes as usize)?),
            None,
        ),
        Err(e) => {
            let bytes = e.into_bytes();
            let start = (i.offset as usize).min(bytes.len());
            let end = (start + i.max_bytes as usize).min(bytes.len());
            (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&bytes[start..end])),
            )
        }
    };
    Ok(FileContents {
        path: i.path,
        git_ref,
        kind: "file".into(),
        sha: body.get("sha").and_then(Value::as_str).map(str::to_string),
        size: body.get("size").and_then(Value::as_u64),
        content,
        content_base64,
        entries: None,
    })
}

/// The text a model reads from `get_file_contents` for a text file: one header line
/// (path, size, the blob sha a write needs, where a cut window continues), then the
/// window's text as is. Directories and binary files keep the JSON.
fn file_model_text(result: &Value) -> Option<String> {
    let content = result.get("content")?;
    let text = content.get("text")?.as_str()?;
    let path = result.get("path")?.as_str()?;
    let total = content.get("total_bytes")?.as_u64()?;
    let mut out = format!("{path} ({total} bytes");
    if let Some(sha) = result.get("sha").and_then(Value::as_str) {
        out.push_str(&format!(", blob sha {sha}"));
    }
    if let Some(next) = content.get("next_offset").and_then(Value::as_u64) {
        out.push_str(&format!("; cut: pass offset {next} for the rest"));
    }
    out.push_str(")\n");
    out.push_str(text);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_file_reads_as_a_header_line_and_its_text_verbatim() {
        let result = json!({"path": "src/lib.rs", "type": "file", "sha": "abc123", "size": 12,
            "content": {"text": "fn \"a\"() {}\n", "total_bytes": 12}});
        assert_eq!(
            file_model_text(&result).unwrap(),
            "src/lib.rs (12 bytes, blob sha abc123)\nfn \"a\"() {}\n"
        );
        let cut = json!({"path": "big.txt", "type": "file", "sha": "s",
            "content": {"text": "xx", "total_bytes": 9000, "next_offset": 2}});
        assert_eq!(
            file_model_text(&cut).unwrap(),
            "big.txt (9000 bytes, blob sha s; cut: pass offset 2 for the rest)\nxx"
        );
        let dir = json!({"path": "", "type": "dir", "entries": []});
        assert_eq!(file_model_text(&dir), None);
        let binary = json!({"path": "a.png", "type": "file", "content_base64": "AAEC"});
        assert_eq!(file_model_text(&binary), None);
    }
}
