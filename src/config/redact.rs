//! What configuration values look like when shown: the [`Secret`] type (a value that
//! serializes and debug-prints as `[redacted]`), [`redact_url`], and the serde helpers the
//! settings types use so that `cortex://config` is their plain `Serialize` output.
//!
//! Owns only presentation; it must not validate options or read files.

use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

/// The marker shown instead of a secret value.
pub const REDACTED: &str = "[redacted]";

/// A secret option value (a token, a key): serialized and debug-printed as
/// `[redacted]`, readable only through [`Secret::expose`] or `Deref<Target = str>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret text itself (for the code that must use it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Query parameter names whose values are treated as secrets (compared lowercase; a
/// name containing one of these is redacted).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "signature",
    "sig",
    "auth",
    "credential",
    "code",
];

/// A URL safe to show or log: userinfo replaced by `[redacted]`, secret-looking query
/// values replaced by `[redacted]`.
pub fn redact_url(url: &url::Url) -> String {
    let mut out = url.clone();
    if !out.username().is_empty() || out.password().is_some() {
        let _ = out.set_password(None);
        let _ = out.set_username(REDACTED);
    }
    if out.query().is_some() {
        let pairs: Vec<(String, String)> = out
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_PARAMS.iter().any(|s| lower.contains(s));
                (
                    k.into_owned(),
                    if secret {
                        REDACTED.into()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        out.query_pairs_mut().clear().extend_pairs(pairs);
    }
    out.set_fragment(None);
    // Brackets stay readable: `[redacted]` is percent-encoded by the serializer.
    out.as_str().replace("%5Bredacted%5D", REDACTED)
}

/// A URL option value as it may be shown in an error: [`redact_url`] of it when it
/// parses, else a fixed phrase — a value that is not a URL is never echoed (it may hold
/// a token, e.g. `https://user:ghp_…@host` with a typo in the port).
pub fn shown_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(url) => format!("`{}`", redact_url(&url)),
        Err(_) => "the value (not shown)".to_string(),
    }
}

/// `serialize_with` for a URL: [`redact_url`].
pub(crate) fn url<S: Serializer>(url: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// `serialize_with` for a duration shown in whole seconds.
pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// `serialize_with` for an optional duration shown in whole seconds.
pub(crate) fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_secs()).serialize(s)
}
