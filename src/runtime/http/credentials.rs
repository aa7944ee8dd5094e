//! Credential headers across origins: which headers carry credentials, stripping
//! them, and the redirect policy that stops at cross-origin hops so the caller can
//! re-issue without credentials. Must not send requests or touch the cache.

use http::{HeaderMap, header};
use url::Url;

use super::MAX_REDIRECTS;

/// Header names that carry credentials by convention: never kept across origins (and
/// refused as plain configured headers by callers that store headers).
pub fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "authorization",
        "proxy-authorization",
        "cookie",
        "cookie2",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-apikey",
        "private-token",
        "job-token",
        "x-amz-security-token",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
    ];
    const PARTS: &[&str] = &[
        "auth",
        "token",
        "secret",
        "password",
        "passwd",
        "api-key",
        "apikey",
        "api_key",
        "access-key",
        "private-key",
        "session",
        "credential",
        "signature",
    ];
    EXACT.contains(&n.as_str()) || PARTS.iter().any(|p| n.contains(p))
}

/// Removes every credential-bearing header: the ones marked sensitive and those named
/// like credentials ([`is_credential_header`]).
pub fn strip_credentials(headers: &mut HeaderMap) {
    let names: Vec<header::HeaderName> = headers
        .iter()
        .filter(|(n, v)| v.is_sensitive() || is_credential_header(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    for n in names {
        headers.remove(n);
    }
}

/// The redirect policy of every outbound client: same-origin redirects are followed (at
/// most five), cross-origin ones stop so the caller can re-issue them without
/// credentials (or fail).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .last()
            .is_some_and(|prev| same_origin(prev, attempt.url()));
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}
