//! Who made a request, as far as the transport authenticated it: the one place that
//! derives it, for tools that record an actor (e.g. an approval) or an owner, and the
//! one rule saying who may see an owned object ([`Principal::may_access`]).
//!
//! Owns the principal's names: `stdio` (a local client on the process's own pipes),
//! `token:<12 hex>` (an HTTP request carrying one of the configured bearer tokens: the
//! first 12 hex digits of that token's SHA-256, never the token), `oauth:<sub>` (an HTTP
//! request with a valid OAuth access token: its subject, never the token),
//! `http:anonymous` (HTTP with no authentication configured) and `internal` (a call the
//! server makes itself); and [`ToolAccess`], which tools a request's credential grants.
//! Must not touch any toolset, the server or the transport: the HTTP transport leaves the
//! principal it authenticated (and its [`ToolAccess`] when narrower than all tools) in
//! the request's extensions (inside the `http::request::Parts` rmcp hands the server).

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

    /// An HTTP request authenticated by an OAuth access token whose subject (`sub`) the
    /// transport validated (a bounded string without control characters).
    pub fn oauth(subject: &str) -> Self {
        Self(format!("oauth:{subject}"))
    }

    /// The principal of a request: over HTTP the one the transport authenticated and left
    /// in the request's extensions (`http:anonymous` when it left none: no token is
    /// configured), stdio when there are no HTTP request parts.
    pub fn of_request(extensions: &rmcp::model::Extensions) -> Self {
        match extensions.get::<http::request::Parts>() {
            Some(parts) => parts
                .extensions
                .get::<Principal>()
                .cloned()
                .unwrap_or_else(|| Self::http(None)),
            None => Self::stdio(),
        }
    }

    /// Whether this principal may read, watch, use or change an object recorded with
    /// `owner` (the principal that created it) and `shared`: its owner may, everyone may
    /// when it is shared, and everyone may when it has no owner (recorded before owners
    /// were kept). `stdio` may too: it is whoever started the process, who can read the
    /// state directory anyway (and a process serving stdio serves no other client), so
    /// the operator still sees what HTTP clients made on the same state directory.
    /// Anything else must answer exactly as a missing object does.
    pub fn may_access(&self, owner: Option<&str>, shared: bool) -> bool {
        shared || self.0 == "stdio" || owner.is_none_or(|o| o == self.0)
    }

    /// The owner to record on an object this principal creates.
    pub fn owner(&self) -> Option<String> {
        Some(self.0.clone())
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

/// Which tools a request's credential lets it list and call: all of them (stdio, a
/// static bearer token, an OAuth token with `cortex:write`, HTTP without authentication)
/// or only the read-only ones (an OAuth token with `cortex:read` alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolAccess {
    #[default]
    All,
    ReadOnly,
}

impl ToolAccess {
    /// The access of a request, as the HTTP transport left it in the request's
    /// extensions (all tools when it left none, and over stdio).
    pub fn of_request(extensions: &rmcp::model::Extensions) -> Self {
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<ToolAccess>())
            .copied()
            .unwrap_or_default()
    }

    /// Whether a tool, read-only or not, may be listed and called.
    pub fn allows(self, read_only_tool: bool) -> bool {
        self == Self::All || read_only_tool
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
        assert_eq!(Principal::of_request(&ext), Principal::stdio());
        let (parts, ()) = http::Request::new(()).into_parts();
        ext.insert(parts);
        assert_eq!(Principal::of_request(&ext).as_str(), "http:anonymous");
        let mut request = http::Request::new(());
        request.extensions_mut().insert(p.clone());
        let (parts, ()) = request.into_parts();
        ext.insert(parts);
        assert_eq!(Principal::of_request(&ext), p);
    }

    #[test]
    fn oauth_principals_are_their_subject_and_may_be_narrowed_to_read_only_tools() {
        let p = Principal::oauth("alice");
        assert_eq!(p.as_str(), "oauth:alice");
        assert!(p.may_access(p.owner().as_deref(), false));
        assert!(!Principal::oauth("bob").may_access(p.owner().as_deref(), false));

        let mut ext = rmcp::model::Extensions::new();
        assert_eq!(ToolAccess::of_request(&ext), ToolAccess::All);
        let mut request = http::Request::new(());
        request.extensions_mut().insert(ToolAccess::ReadOnly);
        let (parts, ()) = request.into_parts();
        ext.insert(parts);
        let access = ToolAccess::of_request(&ext);
        assert_eq!(access, ToolAccess::ReadOnly);
        assert!(access.allows(true) && !access.allows(false));
        assert!(ToolAccess::All.allows(false));
    }

    #[test]
    fn only_the_owner_sees_an_unshared_object() {
        let a = Principal::http(Some("token-of-client-a-0000"));
        let b = Principal::http(Some("token-of-client-b-0000"));
        assert!(a.may_access(a.owner().as_deref(), false));
        assert!(!b.may_access(a.owner().as_deref(), false));
        assert!(b.may_access(a.owner().as_deref(), true));
        assert!(b.may_access(None, false));
        assert!(Principal::stdio().may_access(a.owner().as_deref(), false));
        assert!(!Principal::http(None).may_access(a.owner().as_deref(), false));
    }
}
