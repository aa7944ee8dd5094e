//! Pages and cursors for every list tool: `limit`/`cursor` in, `items`/`next_cursor` out.
//!
//! Cursors are opaque base64url JSON `{v, k, p}` (version, tool kind, payload). A cursor
//! that does not decode, has another version or belongs to another kind is an input
//! error. Owns only encoding; what a payload means is the tool's business.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PageError {
    #[error(
        "cursor is not valid: {0}; pass the next_cursor of a previous call unchanged, or omit it to start over"
    )]
    BadCursor(String),
    #[error(
        "cursor points to {0}, which is not the configured upstream; start over without a cursor"
    )]
    ForeignHost(String),
}

/// One page of results.
#[derive(Debug, Serialize, Deserialize, JsonSchema, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<P> {
    v: u32,
    k: String,
    p: P,
}

/// Encodes a cursor for tool kind `kind`.
pub fn encode<P: Serialize>(kind: &str, payload: &P) -> String {
    let bytes = serde_json::to_vec(&Envelope {
        v: VERSION,
        k: kind.to_string(),
        p: payload,
    })
    .expect("cursor payload serialises");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a cursor made by [`encode`] for the same kind.
pub fn decode<P: DeserializeOwned>(kind: &str, cursor: &str) -> Result<P, PageError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| PageError::BadCursor("not base64url".into()))?;
    let env: Envelope<P> =
        serde_json::from_slice(&bytes).map_err(|_| PageError::BadCursor("malformed".into()))?;
    if env.v != VERSION {
        return Err(PageError::BadCursor(format!(
            "version {} is not supported",
            env.v
        )));
    }
    if env.k != kind {
        return Err(PageError::BadCursor(format!(
            "it belongs to `{}`, not `{kind}`",
            env.k
        )));
    }
    Ok(env.p)
}

/// Checks that `url` stays on the origin of `base` (scheme, host, port).
pub fn check_origin(url: &url::Url, base: &url::Url) -> Result<(), PageError> {
    if url.origin() == base.origin() {
        Ok(())
    } else {
        Err(PageError::ForeignHost(url.origin().ascii_serialization()))
    }
}

/// Offset-based paging over an in-memory ordered collection.
pub fn offset_page<T: Clone>(
    kind: &str,
    all: &[T],
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<T>, PageError> {
    let start: usize = match cursor {
        Some(c) => decode(kind, c)?,
        None => 0,
    };
    let end = (start + limit).min(all.len());
    let items = all.get(start..end).map(|s| s.to_vec()).unwrap_or_default();
    let next_cursor = (end < all.len()).then(|| encode(kind, &end));
    Ok(Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_kind_check() {
        let c = encode("list_issues", &serde_json::json!({"page": 2}));
        let p: serde_json::Value = decode("list_issues", &c).unwrap();
        assert_eq!(p["page"], 2);
        assert!(matches!(
            decode::<serde_json::Value>("list_tasks", &c),
            Err(PageError::BadCursor(_))
        ));
        assert!(matches!(
            decode::<serde_json::Value>("list_issues", "%%%"),
            Err(PageError::BadCursor(_))
        ));
    }

    #[test]
    fn offset_pages_cover_everything_once() {
        let all: Vec<u32> = (0..45).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = offset_page("t", &all, 20, cursor.as_deref()).unwrap();
            seen.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn foreign_host_refused() {
        let base = url::Url::parse("http://127.0.0.1:9000/api/v3/").unwrap();
        let ok = url::Url::parse("http://127.0.0.1:9000/api/v3/repos?page=2").unwrap();
        let bad = url::Url::parse("http://evil.example/api/v3/repos?page=2").unwrap();
        assert!(check_origin(&ok, &base).is_ok());
        assert!(check_origin(&bad, &base).is_err());
    }
}
