//! Who made a request, as far as the transport authenticated it: the one place that
//! derives it, for tools that record an actor (e.g. an approval).
//!
//! Owns the principal's names: `stdio` (a local client on the process's own pipes),
//! `token:<12 hex>` (an HTTP request carrying the configured bearer token: the first 12
//! hex digits of the token's SHA-256, never the token), `http:anonymous` (HTTP with no
//! token configured) and `internal` (a call the server makes itself). Must not touch
//! any toolset, the server or the transport: the server hands it the request's
//! extensions, where the HTTP transport leaves the request's `http::request::Parts`.

use sha2::{Digest, Sha256};

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(String);

impl Principal {
    /// A local client over stdio (whoever started the process).
    pub fn stdio() -> Self {
        Self("stdio".into())
    }

    /// A call made by the server itself, with no request behind it.
    pub fn internal() -> Self {
        Self("internal".into())
    }

    /// An HTTP request; `token` is the configured bearer token, which the transport has
    /// already checked the request carries (`None`: HTTP without authentication).
    pub fn http(token: Option<&str>) -> Self {
        match token {
            Some(token) => {
                let digest = Sha256::digest(token.as_bytes());
                Self(format!("token:{}", &hex::encode(digest)[..12]))
            }
            None => Self("http:anonymous".into()),
        }
    }

    /// The principal of a request: HTTP when the transport left the request's parts in
    /// its `extensions`, stdio otherwise.
    pub fn of_request(extensions: &rmcp::model::Extensions, token: Option<&str>) -> Self {
        if extensions.get::<http::request::Parts>().is_some() {
            Self::http(token)
        } else {
            Self::stdio()
        }
    }

    /// The principal's name, safe to record and show.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_hold_the_token() {
        let p = Principal::http(Some("s3cret-token-0123456789"));
        assert!(p.as_str().starts_with("token:"));
        assert_eq!(p.as_str().len(), "token:".len() + 12);
        assert!(!p.as_str().contains("s3cret"));
        assert_eq!(Principal::http(None).as_str(), "http:anonymous");
        let mut ext = rmcp::model::Extensions::new();
        assert_eq!(Principal::of_request(&ext, Some("x")), Principal::stdio());
        let (parts, ()) = http::Request::new(()).into_parts();
        ext.insert(parts);
        assert_eq!(Principal::of_request(&ext, None).as_str(), "http:anonymous");
    }
}
