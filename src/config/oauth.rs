//! Options of HTTP access control beyond static bearer tokens: the OAuth 2.1 resource
//! server (`--oauth-issuer`, `--oauth-audience`, `--oauth-required-scopes`,
//! `--oauth-jwks-cooldown-secs`) and the per-principal request rate
//! (`--http-rate-limit`), with their parsers and validation.
//!
//! Owns [`OAuthOptions`], [`OAuthSettings`] and [`RateLimit`]; it must not touch the
//! transports (the HTTP transport validates tokens and applies the limit).

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize, Serializer};

use super::{ConfigError, invalid};

/// The scope that grants the read-only tools.
pub const SCOPE_READ: &str = "cortex:read";
/// The scope that grants every tool.
pub const SCOPE_WRITE: &str = "cortex:write";

/// At most this many `--oauth-required-scopes`.
const MAX_REQUIRED_SCOPES: usize = 32;
/// Longest scope name accepted in `--oauth-required-scopes`.
const MAX_SCOPE_LEN: usize = 128;
/// Largest count of `--http-rate-limit`.
const MAX_RATE_COUNT: u32 = 1_000_000;

layered! {
    /// OAuth resource-server and rate-limit options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct OAuthOptions {
        /// Accept OAuth 2.1 access tokens (JWT) issued by this authorization server (its
        /// issuer URL; https, or http on a loopback host).
        #[arg(long, global = true, env = "CORTEX_MCP_OAUTH_ISSUER", value_name = "URL")]
        pub oauth_issuer: Option<String>,
        /// This server's resource URL as clients reach it (e.g. https://mcp.example.com/mcp):
        /// tokens must name it in `aud`; required with --oauth-issuer.
        #[arg(long, global = true, env = "CORTEX_MCP_OAUTH_AUDIENCE", value_name = "URI")]
        pub oauth_audience: Option<String>,
        /// Scopes every OAuth token must carry besides cortex:read or cortex:write (comma-separated).
        #[arg(long, global = true, env = "CORTEX_MCP_OAUTH_REQUIRED_SCOPES", value_delimiter = ',')]
        pub oauth_required_scopes: Option<Vec<String>>,
        /// Least seconds between two fetches of the issuer's keys caused by an unknown key id.
        #[arg(long, global = true, env = "CORTEX_MCP_OAUTH_JWKS_COOLDOWN_SECS")]
        pub oauth_jwks_cooldown_secs: Option<u64>,
        /// Requests each principal may make on /mcp and /metrics, e.g. `20/s`, `600/min`,
        /// `5000/h` (bursts up to the count); past it 429 with Retry-After. Off by default.
        #[arg(long, global = true, env = "CORTEX_MCP_HTTP_RATE_LIMIT", value_name = "N/UNIT")]
        pub http_rate_limit: Option<String>,
    }
}

/// The validated OAuth resource-server settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthSettings {
    /// The issuer identifier, exactly as given (tokens' `iss` must equal it).
    pub issuer: String,
    /// This server's resource URL (RFC 8707): tokens' `aud` must contain it.
    pub audience: String,
    /// Scopes every token must carry besides `cortex:read`/`cortex:write`.
    pub required_scopes: Vec<String>,
    /// Least time between two key-set fetches caused by an unknown key id.
    #[serde(rename = "jwksCooldownSecs", serialize_with = "super::redact::secs")]
    pub jwks_cooldown: Duration,
}

/// The period of a [`RateLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePeriod {
    Second,
    Minute,
    Hour,
}

impl RatePeriod {
    pub fn duration(self) -> Duration {
        match self {
            Self::Second => Duration::from_secs(1),
            Self::Minute => Duration::from_secs(60),
            Self::Hour => Duration::from_secs(3600),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "min",
            Self::Hour => "h",
        }
    }
}

/// `--http-rate-limit`: `count` requests per `period`, in bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub period: RatePeriod,
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.period.unit())
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a `--http-rate-limit` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("expected COUNT/UNIT such as 20/s, 600/min or 5000/h")]
    Shape,
    #[error("the count must be a whole number from 1 to {MAX_RATE_COUNT}")]
    Count,
    #[error("unknown unit `{0}`; use s, min or h")]
    Unit(String),
}

impl std::str::FromStr for RateLimit {
    type Err = RateLimitError;

    /// `20/s`, `600/min`, `5000/h` (also `sec`, `second`, `m`, `minute`, `hour`; spaces
    /// around the parts are ignored).
    fn from_str(raw: &str) -> Result<Self, RateLimitError> {
        let (count, unit) = raw.trim().split_once('/').ok_or(RateLimitError::Shape)?;
        let count: u32 = count.trim().parse().map_err(|_| RateLimitError::Count)?;
        if count == 0 || count > MAX_RATE_COUNT {
            return Err(RateLimitError::Count);
        }
        let unit = unit.trim();
        let period = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => RatePeriod::Second,
            "m" | "min" | "minute" => RatePeriod::Minute,
            "h" | "hr" | "hour" => RatePeriod::Hour,
            "" => return Err(RateLimitError::Shape),
            _ => return Err(RateLimitError::Unit(unit.chars().take(16).collect())),
        };
        Ok(RateLimit { count, period })
    }
}

/// The validated settings of this area.
pub(crate) struct AccessSettings {
    pub oauth: Option<OAuthSettings>,
    pub http_rate_limit: Option<RateLimit>,
}

impl OAuthOptions {
    /// Validates: an issuer needs an audience, both are https URLs (http only on a
    /// loopback host), scopes are RFC 6749 scope tokens.
    pub(crate) fn settings(self) -> Result<AccessSettings, ConfigError> {
        let http_rate_limit = self
            .http_rate_limit
            .map(|raw| {
                raw.parse::<RateLimit>()
                    .map_err(|e| invalid("http-rate-limit", format!("`{}`: {e}", shown(&raw))))
            })
            .transpose()?;
        let issuer = self
            .oauth_issuer
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let Some(issuer) = issuer else {
            for (set, option) in [
                (self.oauth_audience.is_some(), "oauth-audience"),
                (
                    self.oauth_required_scopes.is_some(),
                    "oauth-required-scopes",
                ),
                (
                    self.oauth_jwks_cooldown_secs.is_some(),
                    "oauth-jwks-cooldown-secs",
                ),
            ] {
                if set {
                    return Err(invalid(option, "has no effect without --oauth-issuer"));
                }
            }
            return Ok(AccessSettings {
                oauth: None,
                http_rate_limit,
            });
        };
        check_oauth_url("oauth-issuer", &issuer, false)?;
        let audience = self
            .oauth_audience
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                invalid(
                    "oauth-audience",
                    "is required with --oauth-issuer: the URL clients reach this server's MCP endpoint at \
                     (e.g. https://mcp.example.com/mcp); access tokens must name it in `aud` (RFC 8707), \
                     and it is the `resource` of the protected-resource metadata",
                )
            })?;
        check_oauth_url("oauth-audience", &audience, true)?;
        let required_scopes = required_scopes(self.oauth_required_scopes.unwrap_or_default())?;
        let cooldown = self.oauth_jwks_cooldown_secs.unwrap_or(30);
        if !(1..=3600).contains(&cooldown) {
            return Err(invalid(
                "oauth-jwks-cooldown-secs",
                "must be between 1 and 3600",
            ));
        }
        Ok(AccessSettings {
            oauth: Some(OAuthSettings {
                issuer,
                audience,
                required_scopes,
                jwks_cooldown: Duration::from_secs(cooldown),
            }),
            http_rate_limit,
        })
    }
}

/// At most 32 characters of a value, for an error message (an option value is not a
/// secret here, but need not be echoed whole).
fn shown(raw: &str) -> String {
    raw.trim().chars().take(32).collect()
}

/// Whether a URL's host is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An issuer or resource URL: absolute, https (http only on a loopback host), no
/// userinfo, no fragment; an issuer has no query either (RFC 8414 §2).
fn check_oauth_url(option: &str, raw: &str, query_allowed: bool) -> Result<(), ConfigError> {
    let url = url::Url::parse(raw).map_err(|e| {
        invalid(
            option,
            format!("{}: not an absolute URL ({e})", super::shown_url(raw)),
        )
    })?;
    let secure = url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(&url));
    if !secure {
        return Err(invalid(
            option,
            "must be an https URL (http only on a loopback host such as 127.0.0.1)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(option, "must not carry user information"));
    }
    if url.fragment().is_some() || (!query_allowed && url.query().is_some()) {
        let what = if query_allowed {
            "a fragment"
        } else {
            "a query or fragment"
        };
        return Err(invalid(option, format!("must not have {what}")));
    }
    Ok(())
}

/// Validates one scope name: an RFC 6749 §3.3 scope-token (printable ASCII without
/// space, `"` or `\`), 1 to 128 characters.
pub fn check_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() || scope.len() > MAX_SCOPE_LEN {
        return Err(format!("a scope has 1 to {MAX_SCOPE_LEN} characters"));
    }
    if let Some(bad) = scope
        .chars()
        .find(|c| !matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
    {
        return Err(format!(
            "`{}` has {bad:?}; a scope is printable ASCII without spaces, quotes or backslashes",
            shown(scope)
        ));
    }
    Ok(())
}

/// `--oauth-required-scopes`: trimmed, empty entries dropped, each a valid scope, each
/// once, at most 32.
pub fn required_scopes(raw: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for scope in raw.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        check_scope(scope).map_err(|e| invalid("oauth-required-scopes", e))?;
        if !out.iter().any(|s| s == scope) {
            out.push(scope.to_string());
        }
    }
    if out.len() > MAX_REQUIRED_SCOPES {
        return Err(invalid(
            "oauth-required-scopes",
            format!("at most {MAX_REQUIRED_SCOPES} scopes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(raw: &str) -> Result<RateLimit, RateLimitError> {
        raw.parse()
    }

    #[test]
    fn rate_limits_parse_counts_and_units() {
        let per = |count, period| RateLimit { count, period };
        assert_eq!(rate("20/s"), Ok(per(20, RatePeriod::Second)));
        assert_eq!(rate(" 600 / min "), Ok(per(600, RatePeriod::Minute)));
        assert_eq!(rate("5000/h"), Ok(per(5000, RatePeriod::Hour)));
        assert_eq!(rate("1/SECOND"), Ok(per(1, RatePeriod::Second)));
        assert_eq!(rate("3/m"), Ok(per(3, RatePeriod::Minute)));
        assert_eq!(rate("7/hour"), Ok(per(7, RatePeriod::Hour)));
        assert_eq!(rate("1000000/s"), Ok(per(1_000_000, RatePeriod::Second)));
        assert_eq!(per(600, RatePeriod::Minute).to_string(), "600/min");
        assert_eq!(rate("20/s").unwrap().to_string(), "20/s");
    }

    #[test]
    fn rate_limits_refuse_what_is_not_count_per_unit() {
        assert_eq!(rate("20"), Err(RateLimitError::Shape));
        assert_eq!(rate("20/"), Err(RateLimitError::Shape));
        assert_eq!(rate(""), Err(RateLimitError::Shape));
        assert_eq!(rate("0/s"), Err(RateLimitError::Count));
        assert_eq!(rate("-1/s"), Err(RateLimitError::Count));
        assert_eq!(rate("1.5/s"), Err(RateLimitError::Count));
        assert_eq!(rate("1000001/s"), Err(RateLimitError::Count));
        assert_eq!(rate("99999999999/s"), Err(RateLimitError::Count));
        assert_eq!(rate("x/s"), Err(RateLimitError::Count));
        assert_eq!(rate("5/day"), Err(RateLimitError::Unit("day".into())));
        assert_eq!(rate("5/s/s"), Err(RateLimitError::Unit("s/s".into())));
        assert_eq!(
            rate(&format!("5/{}", "y".repeat(100))),
            Err(RateLimitError::Unit("y".repeat(16)))
        );
    }

    #[test]
    fn scopes_are_rfc6749_scope_tokens() {
        for ok in [
            "cortex:read",
            "mcp",
            "a",
            "x-y_z.1/2",
            "https://api.example.com/read",
        ] {
            assert_eq!(check_scope(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "two words",
            "quo\"te",
            "back\\slash",
            "tab\t",
            "é",
            "\u{7f}",
        ] {
            assert!(check_scope(bad).is_err(), "{bad:?}");
        }
        assert!(check_scope(&"s".repeat(129)).is_err());
        assert!(check_scope(&"s".repeat(128)).is_ok());
    }

    #[test]
    fn required_scopes_are_trimmed_deduplicated_and_bounded() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            required_scopes(list(&[" mcp ", "", "mcp", "org:member"])).unwrap(),
            list(&["mcp", "org:member"])
        );
        assert!(required_scopes(list(&["bad scope"])).is_err());
        let many: Vec<String> = (0..33).map(|i| format!("s{i}")).collect();
        let e = required_scopes(many).unwrap_err().to_string();
        assert!(e.contains("at most 32"), "{e}");
    }

    fn options(issuer: Option<&str>, audience: Option<&str>) -> OAuthOptions {
        OAuthOptions {
            oauth_issuer: issuer.map(str::to_string),
            oauth_audience: audience.map(str::to_string),
            ..Default::default()
        }
    }

    fn refusal(o: OAuthOptions) -> String {
        match o.settings() {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_issuer_needs_an_audience_and_secure_urls() {
        let e = refusal(options(Some("https://auth.example.com"), None));
        assert!(
            e.contains("oauth-audience") && e.contains("required"),
            "{e}"
        );
        let e = refusal(options(
            Some("http://auth.example.com"),
            Some("https://mcp.example.com/mcp"),
        ));
        assert!(e.contains("oauth-issuer") && e.contains("https"), "{e}");
        let e = refusal(options(
            Some("https://auth.example.com?tenant=1"),
            Some("https://mcp.example.com/mcp"),
        ));
        assert!(e.contains("query"), "{e}");
        let e = refusal(options(
            Some("https://auth.example.com"),
            Some("https://mcp.example.com/mcp#x"),
        ));
        assert!(e.contains("fragment"), "{e}");
        let e = refusal(options(
            Some("https://user:pw@auth.example.com"),
            Some("https://mcp.example.com/mcp"),
        ));
        assert!(e.contains("user information") && !e.contains("pw"), "{e}");
        let e = refusal(options(None, Some("https://mcp.example.com/mcp")));
        assert!(e.contains("without --oauth-issuer"), "{e}");

        let s = options(
            Some(" http://127.0.0.1:9000 "),
            Some("http://localhost:7439/mcp"),
        )
        .settings()
        .unwrap()
        .oauth
        .unwrap();
        // Kept exactly (no trailing slash added): `iss` is compared as a string.
        assert_eq!(s.issuer, "http://127.0.0.1:9000");
        assert_eq!(s.audience, "http://localhost:7439/mcp");
        assert_eq!(s.jwks_cooldown, Duration::from_secs(30));
    }
}
