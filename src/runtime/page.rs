//! Pages and cursors for every list tool: `limit`/`cursor` in, `items`/`next_cursor` out.
//!
//! Cursors are opaque: base64url JSON `{v, k, p}` (version, tool kind, payload), a `.`,
//! and a base64url HMAC-SHA256 of the first part. The key lives in the state directory
//! (`cursor.key`, created 0600 on first use, see [`init_key`]) so cursors survive a
//! restart; a cursor whose signature does not match (forged or edited), that does not
//! decode, has another version or belongs to another kind is an input error. Owns only
//! encoding and signing (and the key, from which [`derive_key`] gives other signers of
//! this server, such as `requestState` in `rounds.rs`, keys of their own); what a payload
//! means is the tool's business.

use std::{path::Path, sync::OnceLock};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

const VERSION: u32 = 2;
const KEY_FILE: &str = "cursor.key";
const KEY_LEN: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

static KEY: OnceLock<[u8; KEY_LEN]> = OnceLock::new();

/// Loads the cursor key from `state_dir/cursor.key`, creating it (32 random bytes, mode
/// 0600) on first use. Called once at start; until then (unit tests) a random
/// per-process key is used.
pub fn init_key(state_dir: &Path) -> std::io::Result<()> {
    let key = load_or_create_key(&state_dir.join(KEY_FILE))?;
    // A key already in place (a second server in one process) stays: cursors it signed
    // must keep verifying.
    let _ = KEY.set(key);
    Ok(())
}

fn load_or_create_key(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    use std::io::Write;
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == KEY_LEN => {
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(&bytes);
            return Ok(key);
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is not a {KEY_LEN}-byte key; delete it to have a new one made (outstanding cursors become invalid)",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key: [u8; KEY_LEN] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(e),
    }
}

fn mac() -> HmacSha256 {
    let key = KEY.get_or_init(rand::random);
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
}

/// A key for another signing purpose of this server, named by `label`: the HMAC-SHA256
/// of `label` under the cursor key. It lives as long as the cursor key (it survives a
/// restart, and replicas sharing the state directory share it), and knowing it reveals
/// neither the cursor key nor the key of another label.
pub fn derive_key(label: &str) -> [u8; KEY_LEN] {
    let mut mac = mac();
    mac.update(b"cortex-mcp derived key\0");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The `limit` of a list tool when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 20;

/// [`DEFAULT_LIMIT`], for `#[serde(default = "crate::runtime::page::default_limit")]`.
pub fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// Declares a list tool's input struct with the two paging fields every list tool takes,
/// in place of the marker `..page_args`:
///
/// - `limit: u32`, 1–100, default [`DEFAULT_LIMIT`];
/// - `cursor: Option<String>`, the `next_cursor` of the previous page.
///
/// The fields are declared in the struct itself (not `#[serde(flatten)]`, which
/// `deny_unknown_fields` does not support), so unknown fields are still refused and the
/// JSON schema is what the hand-written fields gave. Fields are written `pub name: Type,`
/// (each may carry attributes and docs) and may follow the marker. A block after the
/// marker gives the two fields their docs, and `limit(default = "path", max = N)` another
/// default and maximum:
///
/// ```ignore
/// page::list_input! {
///     #[derive(Deserialize, JsonSchema)]
///     #[serde(deny_unknown_fields)]
///     pub struct ListThingsIn {
///         #[serde(default)]
///         pub status: Option<Status>,
///         ..page_args {
///             /// Things per page.
///             limit,
///             /// `next_cursor` of the previous page.
///             cursor,
///         },
///         pub detail: bool,
///     }
/// }
/// ```
macro_rules! list_input {
    // `..page_args { limit(default = .., max = ..), cursor }`
    (
        $(#[$m:meta])* $vis:vis struct $name:ident {
            $( $(#[$bm:meta])* pub $b:ident : $bt:ty , )*
            ..page_args {
                $(#[$lm:meta])* limit(default = $def:tt, max = $max:tt),
                $(#[$cm:meta])* cursor $(,)?
            }
            $(, $( $(#[$am:meta])* pub $a:ident : $at:ty ),+ )? $(,)?
        }
    ) => {
        $crate::runtime::page::list_input!(@emit
            [$(#[$m])* $vis struct $name]
            [$( $(#[$bm])* pub $b : $bt , )*]
            [$(#[$lm])*] $def $max [$(#[$cm])*]
            [$($( $(#[$am])* pub $a : $at , )+)?]
        );
    };
    // `..page_args { limit, cursor }`
    (
        $(#[$m:meta])* $vis:vis struct $name:ident {
            $( $(#[$bm:meta])* pub $b:ident : $bt:ty , )*
            ..page_args {
                $(#[$lm:meta])* limit,
                $(#[$cm:meta])* cursor $(,)?
            }
            $(, $( $(#[$am:meta])* pub $a:ident : $at:ty ),+ )? $(,)?
        }
    ) => {
        $crate::runtime::page::list_input!(@emit
            [$(#[$m])* $vis struct $name]
            [$( $(#[$bm])* pub $b : $bt , )*]
            [$(#[$lm])*] "crate::runtime::page::default_limit" 100 [$(#[$cm])*]
            [$($( $(#[$am])* pub $a : $at , )+)?]
        );
    };
    // `..page_args`
    (
        $(#[$m:meta])* $vis:vis struct $name:ident {
            $( $(#[$bm:meta])* pub $b:ident : $bt:ty , )*
            ..page_args
            $(, $( $(#[$am:meta])* pub $a:ident : $at:ty ),+ )? $(,)?
        }
    ) => {
        $crate::runtime::page::list_input!(@emit
            [$(#[$m])* $vis struct $name]
            [$( $(#[$bm])* pub $b : $bt , )*]
            [] "crate::runtime::page::default_limit" 100 []
            [$($( $(#[$am])* pub $a : $at , )+)?]
        );
    };
    (@emit
        [$($head:tt)*] [$($before:tt)*]
        [$($limit_attrs:tt)*] $def:tt $max:tt [$($cursor_attrs:tt)*]
        [$($after:tt)*]
    ) => {
        $($head)* {
            $($before)*
            $($limit_attrs)*
            #[serde(default = $def)]
            #[schemars(range(min = 1, max = $max))]
            pub limit: u32,
            $($cursor_attrs)*
            #[serde(default)]
            pub cursor: Option<String>,
            $($after)*
        }
    };
}
pub(crate) use list_input;

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
    let body = URL_SAFE_NO_PAD.encode(bytes);
    let mut m = mac();
    m.update(body.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{body}.{tag}")
}

/// Decodes a cursor made by [`encode`] for the same kind.
pub fn decode<P: DeserializeOwned>(kind: &str, cursor: &str) -> Result<P, PageError> {
    let (body, tag) = cursor
        .trim()
        .split_once('.')
        .ok_or_else(|| PageError::BadCursor("it is not signed by this server".into()))?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| PageError::BadCursor("its signature is not base64url".into()))?;
    let mut m = mac();
    m.update(body.as_bytes());
    m.verify_slice(&tag).map_err(|_| {
        PageError::BadCursor("its signature does not match (it was edited or not made here)".into())
    })?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
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

    mod list_input_fields {
        use schemars::JsonSchema;
        use serde::Deserialize;

        fn default_five() -> u32 {
            5
        }

        crate::runtime::page::list_input! {
            /// Through the macro.
            #[derive(Deserialize, JsonSchema)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct Declared {
                /// A filter.
                #[serde(default)]
                pub status: Option<String>,
                ..page_args,
            }
        }

        /// Through the macro.
        // Only its schema is compared.
        #[allow(dead_code)]
        #[derive(Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct HandWritten {
            /// A filter.
            #[serde(default)]
            pub status: Option<String>,
            #[serde(default = "crate::runtime::page::default_limit")]
            #[schemars(range(min = 1, max = 100))]
            pub limit: u32,
            #[serde(default)]
            pub cursor: Option<String>,
        }

        crate::runtime::page::list_input! {
            #[derive(Deserialize, JsonSchema)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct Custom {
                pub id: String,
                ..page_args {
                    /// Rows per page.
                    limit(default = "default_five", max = 500),
                    /// From `rowsNextCursor`.
                    cursor,
                },
                /// After the page.
                #[serde(default)]
                pub detail: bool,
            }
        }

        // Only its schema is compared.
        #[allow(dead_code)]
        #[derive(Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct CustomHandWritten {
            pub id: String,
            /// Rows per page.
            #[serde(default = "default_five")]
            #[schemars(range(min = 1, max = 500))]
            pub limit: u32,
            /// From `rowsNextCursor`.
            #[serde(default)]
            pub cursor: Option<String>,
            /// After the page.
            #[serde(default)]
            pub detail: bool,
        }

        fn schema<T: JsonSchema>() -> serde_json::Value {
            let mut v = serde_json::to_value(schemars::schema_for!(T)).unwrap();
            v.as_object_mut().unwrap().remove("title");
            v
        }

        #[test]
        fn the_macro_declares_the_fields_a_hand_written_struct_had() {
            assert_eq!(schema::<Declared>(), schema::<HandWritten>());
            assert_eq!(schema::<Custom>(), schema::<CustomHandWritten>());
            let order: Vec<String> = schema::<Custom>()["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert_eq!(order, ["id", "limit", "cursor", "detail"]);
        }

        #[test]
        fn paged_inputs_keep_defaults_and_refuse_unknown_fields() {
            let d: Declared = serde_json::from_value(serde_json::json!({})).unwrap();
            assert_eq!(
                (d.limit, d.cursor, d.status),
                (super::DEFAULT_LIMIT, None, None)
            );
            let c: Custom =
                serde_json::from_value(serde_json::json!({"id": "x", "cursor": "c"})).unwrap();
            assert_eq!(
                (c.id.as_str(), c.limit, c.cursor.as_deref(), c.detail),
                ("x", 5, Some("c"), false)
            );
            let e = serde_json::from_value::<Declared>(serde_json::json!({"limit": 3, "page": 2}))
                .err()
                .expect("an unknown field is refused");
            assert!(e.to_string().contains("unknown field `page`"), "{e}");
        }
    }

    #[test]
    fn a_bad_cursor_is_the_callers_input_error_everywhere() {
        use crate::runtime::registry::ToolError;
        let e = ToolError::from(decode::<u32>("k", "garbage").unwrap_err());
        assert_eq!(e.kind(), "input");
        assert!(
            e.to_string()
                .starts_with("invalid arguments: cursor: cursor is not valid"),
            "{e}"
        );
    }

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
    fn edited_or_unsigned_cursors_are_refused() {
        let c = encode("list_issues", &serde_json::json!({"page": 2}));
        let (body, tag) = c.split_once('.').unwrap();
        // An unsigned envelope, as version 1 made them.
        assert!(matches!(
            decode::<serde_json::Value>("list_issues", body),
            Err(PageError::BadCursor(m)) if m.contains("not signed")
        ));
        // A forged payload with the old tag.
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(
                &serde_json::json!({"v": VERSION, "k": "list_issues", "p": {"page": 9}}),
            )
            .unwrap(),
        );
        assert!(matches!(
            decode::<serde_json::Value>("list_issues", &format!("{forged}.{tag}")),
            Err(PageError::BadCursor(m)) if m.contains("does not match")
        ));
        // A flipped signature byte.
        let mut bad_tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        bad_tag[0] ^= 1;
        let edited = format!("{body}.{}", URL_SAFE_NO_PAD.encode(bad_tag));
        assert!(decode::<serde_json::Value>("list_issues", &edited).is_err());
    }

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("cortex-page-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join(KEY_FILE);
        let first = load_or_create_key(&path).unwrap();
        let again = load_or_create_key(&path).unwrap();
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
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
