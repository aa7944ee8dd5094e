//! Artifact tools: store content by its SHA-256, read it (with `ifNoneMatch`), list
//! metadata.
//!
//! Owns their inputs, handlers and registration; blobs and the index live in
//! `asbr::artifacts`.

use base64::{Engine, engine::general_purpose::STANDARD};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError},
    toolset::Tools,
};

use super::{A, Out};
use crate::asbr::artifacts::{ArtifactKind, ArtifactMeta, normalise_time};

pub(super) fn register(t: &Tools<A>) -> Vec<ToolDef> {
    let read = Hints::read();
    let write = Hints::write();
    vec![
        t.tool(
            "put_artifact",
            write.idempotent(),
            put_artifact,
            "Store a diff, doc, plan or report (text or base64) under its content id `sha256:<hex>`; the same content again gets the same id (`deduplicated: true`).",
        )
        .titled("Store artifact"),
        t.tool(
            "get_artifact",
            read,
            get_artifact,
            "Get an artifact's content by id (base64 if binary); pass the digest you hold as `ifNoneMatch` to skip an unchanged one.",
        )
        .titled("Get artifact"),
        t.tool(
            "list_artifacts",
            read,
            list_artifacts,
            "List artifact metadata newest first, by kind and creation time.",
        )
        .titled("List artifacts"),
    ]
}

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Text,
    Base64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutArtifactIn {
    pub kind: ArtifactKind,
    /// The content, as text or base64 (see `encoding`).
    pub content: String,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub task_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct PutArtifactOut {
    pub artifact: ArtifactMeta,
    /// True when the same content was already stored (the first record is returned).
    pub deduplicated: bool,
}

pub(super) async fn put_artifact(a: A, i: PutArtifactIn, ctx: CallCtx) -> Out<PutArtifactOut> {
    let bytes = match i.encoding {
        Encoding::Text => i.content.into_bytes(),
        Encoding::Base64 => STANDARD
            .decode(i.content.trim())
            .map_err(|e| ToolError::input(format!("content: not base64 ({e})")))?,
    };
    let (artifact, deduplicated) = a
        .artifacts
        .put(i.kind, bytes, i.task_id, &ctx.principal)
        .await?;
    Ok(PutArtifactOut {
        artifact,
        deduplicated,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetArtifactIn {
    /// `sha256:<hex>`.
    #[schemars(length(min = 1, max = 100))]
    pub id: String,
    /// The digest you already hold; when it matches, no content is sent.
    #[serde(default)]
    pub if_none_match: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetArtifactOut {
    pub id: String,
    pub digest: String,
    pub not_modified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

pub(super) async fn get_artifact(a: A, i: GetArtifactIn, ctx: CallCtx) -> Out<GetArtifactOut> {
    a.artifacts.catch_up().await;
    let meta = a.artifacts.meta(&i.id, &ctx.principal)?;
    let etag = i
        .if_none_match
        .as_deref()
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'));
    if etag.is_some_and(|t| t == meta.digest || t == meta.digest.trim_start_matches("sha256:")) {
        return Ok(GetArtifactOut {
            id: meta.id,
            digest: meta.digest,
            not_modified: true,
            artifact: None,
            content: None,
            encoding: None,
        });
    }
    let (meta, bytes) = a.artifacts.read(&i.id, &ctx.principal).await?;
    let (content, encoding) = match String::from_utf8(bytes) {
        Ok(text) => (text, Encoding::Text),
        Err(e) => (STANDARD.encode(e.into_bytes()), Encoding::Base64),
    };
    Ok(GetArtifactOut {
        id: meta.id.clone(),
        digest: meta.digest.clone(),
        not_modified: false,
        artifact: Some(meta),
        content: Some(content),
        encoding: Some(encoding),
    })
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ListArtifactsIn {
        #[serde(default)]
        pub kind: Option<ArtifactKind>,
        /// RFC 3339; only artifacts created after it.
        #[serde(default)]
        pub created_after: Option<String>,
        /// RFC 3339; only artifacts created before it.
        #[serde(default)]
        pub created_before: Option<String>,
        ..page_args,
    }
}

pub(super) async fn list_artifacts(
    a: A,
    i: ListArtifactsIn,
    ctx: CallCtx,
) -> Out<Page<ArtifactMeta>> {
    let after = i
        .created_after
        .as_deref()
        .map(|t| normalise_time("createdAfter", t))
        .transpose()?;
    let before = i
        .created_before
        .as_deref()
        .map(|t| normalise_time("createdBefore", t))
        .transpose()?;
    a.artifacts.catch_up().await;
    let all = a
        .artifacts
        .list(&ctx.principal, i.kind, after.as_deref(), before.as_deref());
    page::offset_page(
        "list_artifacts",
        &all,
        i.limit as usize,
        i.cursor.as_deref(),
    )
    .map_err(ToolError::from)
}

// ---------------------------------------------------------------- service map
