//! [`OAuthVerifier`]: the OAuth 2.1 resource server's token check. Discovers the
//! issuer's metadata (RFC 8414 `/.well-known/oauth-authorization-server`, falling back to
//! OpenID Connect discovery), fetches its `jwks_uri` (bounded in size and time, no
//! redirects), keeps the keys in memory and fetches them again when a token names an
//! unknown key id — at most once per `--oauth-jwks-cooldown-secs`, so a caller cannot
//! make the server hammer the issuer — or when they are older than [`KEYS_MAX_AGE`].
//! A JWT access token passes when its signature verifies with a published asymmetric key
//! (RS*, PS*, ES256/ES384, EdDSA as the key allows; never `none` or HS*, never a key
//! carried in the token), `iss` is the configured issuer exactly, `aud` contains the
//! configured audience (RFC 8707), `exp`/`nbf` hold within [`LEEWAY_SECS`], and `sub` is
//! a bounded printable string. [`grant`] then decides from its scopes which tools it
//! reaches.
//!
//! Owns token validation and the key cache; it must not answer HTTP requests (the
//! challenges and status codes are `auth.rs`'s) and never stores, logs or forwards a
//! token: a token is checked and dropped.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk, PublicKeyUse},
};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    config::{OAuthSettings, SCOPE_READ, SCOPE_WRITE, is_loopback_host},
    runtime::principal::{Principal, ToolAccess},
};

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// Keys older than this are fetched again (a removed key stops being accepted).
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Longest token looked at; a longer one is refused unread.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest metadata or key-set document read from the issuer.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Time one fetch from the issuer may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys of a key set looked at (the rest are ignored).
const MAX_KEYS: usize = 64;
/// Longest `sub` accepted.
const MAX_SUBJECT_CHARS: usize = 256;
/// Scopes of one token looked at (the rest are ignored).
const MAX_SCOPES: usize = 256;
/// Signature algorithms accepted: asymmetric only.
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a presented token is not accepted. The texts are the `error_description` of the
/// challenge: fixed phrases, never the token or its claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature algorithm is not accepted")]
    Algorithm,
    #[error("the token is signed by a key the issuer does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is for another audience (resource)")]
    Audience,
    #[error("the token lacks a required claim (exp, iss, aud, sub)")]
    MissingClaim,
    #[error("the token's subject is empty, too long or not printable")]
    Subject,
}

/// Why the issuer's keys could not be had (the server cannot check any token).
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeysError {
    #[error("GET {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("no authorization server metadata names issuer {issuer} with a jwks_uri ({tried})")]
    NoMetadata { issuer: String, tried: String },
    #[error("jwks_uri {0} is not https (http only on a loopback host)")]
    InsecureJwksUri(String),
    #[error("the key set at {0} has no usable signing key")]
    NoKeys(String),
    #[error("the issuer's keys could not be fetched and the next attempt is in {0} s")]
    CoolingDown(u64),
}

/// Why [`OAuthVerifier::verify`] did not pass a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// The token is not acceptable.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The issuer's keys could not be had, so no token can be checked.
    #[error(transparent)]
    Keys(#[from] KeysError),
}

/// A token that passed: who it authenticates and the scopes it carries.
#[derive(Debug, Clone)]
pub struct Verified {
    pub principal: Principal,
    pub scopes: Vec<String>,
}

/// What a verified token's scopes allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// The tools it may list and call.
    Tools(ToolAccess),
    /// It lacks these scopes (all needed, in the order a client should request them).
    Insufficient(Vec<String>),
}

/// Decides from a token's scopes: `cortex:write` reaches every tool, `cortex:read` the
/// read-only ones; every `required` scope must be there too. Lacking any, the scopes to
/// ask for are the required ones plus `cortex:read`.
pub fn grant(scopes: &[String], required: &[String]) -> Grant {
    let has = |s: &str| scopes.iter().any(|g| g == s);
    let access = if has(SCOPE_WRITE) {
        Some(ToolAccess::All)
    } else if has(SCOPE_READ) {
        Some(ToolAccess::ReadOnly)
    } else {
        None
    };
    match access {
        Some(access) if required.iter().all(|r| has(r)) => Grant::Tools(access),
        _ => Grant::Insufficient(needed_scopes(required, SCOPE_READ)),
    }
}

/// The scopes a client must request for an operation that needs `tool_scope`: the
/// required ones and `tool_scope`, each once.
pub fn needed_scopes(required: &[String], tool_scope: &str) -> Vec<String> {
    let mut needed: Vec<String> = required.to_vec();
    if !needed.iter().any(|s| s == tool_scope) {
        needed.push(tool_scope.to_string());
    }
    needed
}

/// One published verification key.
struct Key {
    kid: Option<String>,
    /// The JWK's `alg` when it names one (the token's must then be the same).
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl Key {
    fn verifies(&self, alg: Algorithm) -> bool {
        match self.alg {
            Some(own) => own == alg,
            None => self.key.family() == alg.family(),
        }
    }
}

/// The keys as last fetched.
#[derive(Default)]
struct KeySet {
    keys: Vec<Key>,
    fetched: Option<Instant>,
}

impl KeySet {
    /// The keys that may have signed a token with this header (by `kid` when it has
    /// one, else every key of the algorithm's kind).
    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&Key> {
        self.keys
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)) && k.verifies(alg))
            .collect()
    }

    fn knows(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        !self.candidates(kid, alg).is_empty()
    }

    fn stale(&self) -> bool {
        self.fetched.is_none_or(|at| at.elapsed() >= KEYS_MAX_AGE)
    }
}

/// When the keys were last fetched or tried, and where they live.
#[derive(Default)]
struct RefreshState {
    jwks_uri: Option<String>,
    last_attempt: Option<Instant>,
    last_error: Option<KeysError>,
}

/// Checks access tokens of one issuer for one audience.
pub struct OAuthVerifier {
    settings: OAuthSettings,
    client: reqwest::Client,
    keys: parking_lot::RwLock<Arc<KeySet>>,
    /// Held while fetching: one fetch at a time, the others wait for its keys.
    refresh: tokio::sync::Mutex<RefreshState>,
}

/// The claims looked at besides those `jsonwebtoken` validates.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    scp: Option<Value>,
}

impl OAuthVerifier {
    pub fn new(settings: OAuthSettings) -> Result<Self, KeysError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cortex-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| KeysError::Fetch {
                url: settings.issuer.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            settings,
            client,
            keys: parking_lot::RwLock::new(Arc::new(KeySet::default())),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        })
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Fetches the keys ahead of the first token (a failure is logged and retried when a
    /// token arrives).
    pub async fn prefetch(&self) {
        if let Err(e) = self.refresh(true).await {
            tracing::warn!("OAuth: {e}");
        }
    }

    /// Checks a bearer token.
    pub async fn verify(&self, token: &str) -> Result<Verified, Failure> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Malformed.into());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| rejection(&e))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(Rejection::Algorithm.into());
        }
        let kid = header.kid.as_deref();
        let keys = self.keys_for(kid, header.alg).await?;
        let candidates = keys.candidates(kid, header.alg);
        if candidates.is_empty() {
            return Err(Rejection::UnknownKey.into());
        }
        let validation = self.validation(header.alg);
        let mut last = Rejection::Signature;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => return Ok(self.verified(data.claims)?),
                Err(e) => last = rejection(&e),
            }
            if last != Rejection::Signature {
                break; // the signature verified; a claim failed
            }
        }
        Err(last.into())
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.set_issuer(&[self.settings.issuer.as_str()]);
        v.set_audience(&[self.settings.audience.as_str()]);
        v
    }

    fn verified(&self, claims: Claims) -> Result<Verified, Rejection> {
        let sub = claims.sub.ok_or(Rejection::MissingClaim)?;
        let printable = !sub.is_empty()
            && sub.chars().count() <= MAX_SUBJECT_CHARS
            && !sub.chars().any(char::is_control);
        if !printable {
            return Err(Rejection::Subject);
        }
        let mut scopes = scope_list(claims.scope.as_ref());
        scopes.extend(scope_list(claims.scp.as_ref()));
        scopes.truncate(MAX_SCOPES);
        Ok(Verified {
            principal: Principal::oauth(&sub),
            scopes,
        })
    }

    /// The key set, fetched again first when it does not know this key and the
    /// cooldown has passed, or when it is older than [`KEYS_MAX_AGE`].
    async fn keys_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<KeySet>, KeysError> {
        let current = self.keys.read().clone();
        if current.knows(kid, alg) && !current.stale() {
            return Ok(current);
        }
        match self.refresh(false).await {
            Ok(()) => Ok(self.keys.read().clone()),
            // Keys fetched before stay in use while the issuer cannot be reached.
            Err(_) if current.fetched.is_some() => Ok(current),
            Err(e) => Err(e),
        }
    }

    /// Fetches the keys unless another fetch just did (waits for one under way) or the
    /// cooldown since the last attempt has not passed (`force`: the first fetch).
    async fn refresh(&self, force: bool) -> Result<(), KeysError> {
        let started = Instant::now();
        let mut state = self.refresh.lock().await;
        if let Some(at) = state.last_attempt {
            if at >= started {
                // Another caller fetched while this one waited: use its outcome.
                return state.last_error.clone().map_or(Ok(()), Err);
            }
            let cooldown = self.settings.jwks_cooldown;
            if !force && at.elapsed() < cooldown {
                let fetched = self.keys.read().fetched.is_some();
                let wait = (cooldown - at.elapsed()).as_secs() + 1;
                return match &state.last_error {
                    Some(_) if !fetched => Err(KeysError::CoolingDown(wait)),
                    _ => Ok(()),
                };
            }
        }
        state.last_attempt = Some(Instant::now());
        let outcome = self.fetch_keys(&mut state).await;
        match outcome {
            Ok(set) => {
                tracing::info!(
                    "OAuth: fetched {} signing key(s) of {}",
                    set.keys.len(),
                    self.settings.issuer
                );
                *self.keys.write() = Arc::new(set);
                state.last_error = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!("OAuth: cannot fetch the issuer's keys: {e}");
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn fetch_keys(&self, state: &mut RefreshState) -> Result<KeySet, KeysError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document = self.fetch_json(&jwks_uri).await?;
        let keys = parse_key_set(&document);
        if keys.is_empty() {
            // The issuer may have moved its keys: discover again next time.
            state.jwks_uri = None;
            return Err(KeysError::NoKeys(jwks_uri));
        }
        Ok(KeySet {
            keys,
            fetched: Some(Instant::now()),
        })
    }

    /// The `jwks_uri` of the first metadata document that names the configured issuer
    /// exactly (RFC 8414 §3.3).
    async fn discover(&self) -> Result<String, KeysError> {
        let issuer = &self.settings.issuer;
        let mut tried = Vec::new();
        for url in metadata_urls(issuer) {
            let outcome = match self.fetch_json(&url).await {
                Ok(doc) => jwks_uri_of(&doc, issuer),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(uri) => return Ok(uri),
                Err(reason) => tried.push(format!("{url}: {reason}")),
            }
        }
        Err(KeysError::NoMetadata {
            issuer: issuer.clone(),
            tried: tried.join("; "),
        })
    }

    /// GETs a JSON document of at most [`MAX_DOCUMENT_BYTES`] within [`FETCH_TIMEOUT`].
    async fn fetch_json(&self, url: &str) -> Result<Value, KeysError> {
        let fail = |reason: String| KeysError::Fetch {
            url: url.to_string(),
            reason,
        };
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(fail(format!("answered {}", response.status())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(fail(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(fail(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("not JSON: {e}")))
    }
}

/// Where an issuer's metadata may be, in the order the MCP authorization spec tries them:
/// RFC 8414 (`/.well-known/oauth-authorization-server` inserted before the issuer's
/// path), then OpenID Connect discovery (inserted, then appended, for an issuer with a
/// path).
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        return vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ];
    }
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
    ]
}

/// The `jwks_uri` of a metadata document, when it is for `issuer` and the URI is https
/// (http only on a loopback host).
fn jwks_uri_of(doc: &Value, issuer: &str) -> Result<String, String> {
    if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err("its issuer is not the configured one".into());
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("it has no jwks_uri")?;
    let secure = url::Url::parse(uri)
        .is_ok_and(|u| u.scheme() == "https" || (u.scheme() == "http" && is_loopback_host(&u)));
    if !secure {
        return Err(KeysError::InsecureJwksUri(uri.chars().take(200).collect()).to_string());
    }
    Ok(uri.to_string())
}

/// The usable signing keys of a JWK set: asymmetric, not marked for encryption, with an
/// accepted `alg` when one is named; at most [`MAX_KEYS`] are looked at.
fn parse_key_set(doc: &Value) -> Vec<Key> {
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .take(MAX_KEYS)
        .filter_map(|raw| serde_json::from_value::<Jwk>(raw.clone()).ok())
        .filter_map(|jwk| usable_key(&jwk))
        .collect()
}

fn usable_key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None; // a shared secret is never a verification key here
    }
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        Some(named) => Some(
            Algorithm::try_from(named)
                .ok()
                .filter(|a| ACCEPTED.contains(a))?,
        ),
        None => None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

/// A `scope` string (space-separated) or `scp` array (or string) as a list.
fn scope_list(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn rejection(e: &jsonwebtoken::errors::Error) -> Rejection {
    match e.kind() {
        ErrorKind::InvalidSignature => Rejection::Signature,
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidIssuer => Rejection::Issuer,
        ErrorKind::InvalidAudience => Rejection::Audience,
        ErrorKind::MissingRequiredClaim(_) => Rejection::MissingClaim,
        ErrorKind::InvalidSubject => Rejection::Subject,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => Rejection::Algorithm,
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey | ErrorKind::InvalidRsaKey(_) => {
            Rejection::Signature
        }
        _ => Rejection::Malformed,
    }
}

#[cfg(test)]
mod tests;
