//! GitHub credentials: a personal access token, or a GitHub App installation whose
//! short-lived token is minted from an RS256 JWT, cached until shortly before it
//! expires, refreshed once for all concurrent callers, and invalidated once on a 401
//! (every caller refused with the stale token retries once with the new one).
//!
//! On a shared store the installation token is minted once per cluster: a replica
//! whose token is stale first takes the one another replica stored ([`TokenShare`]),
//! claims the mint when there is none, and otherwise waits for the claimant's token.
//!
//! Owns the secrets and their fingerprints. It must not send requests itself (the
//! client passes a fetch function) and never logs or returns a secret.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::HeaderValue;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::RwLock;
use serde::Serialize;

use crate::{
    config::{GithubApp, GithubCredential},
    runtime::cache::fingerprint,
};

/// Refresh an installation token this long before GitHub says it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Longest wait for another replica's token before minting one here.
const SHARED_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting replica looks for that token.
const SHARED_POLL: Duration = Duration::from_millis(50);

type Boxed<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where replicas sharing a store keep one installation token (`shared_app_token`).
/// Store failures are the implementation's to log: a replica then acts alone.
pub trait TokenShare: Send + Sync {
    /// The token a replica stored, if any.
    fn load(&self) -> Boxed<'_, Option<MintedToken>>;
    /// Whether this replica may mint now (no other replica is minting).
    fn claim(&self) -> Boxed<'_, bool>;
    /// Stores a freshly minted token for the others and releases the claim.
    fn publish<'a>(&'a self, token: &'a MintedToken) -> Boxed<'a, ()>;
    /// Releases the claim without a token (the mint failed).
    fn release(&self) -> Boxed<'_, ()>;
    /// Drops the stored token if its fingerprint is `refused_fp` (GitHub refused it).
    fn forget(&self, refused_fp: String) -> Boxed<'_, ()>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no GitHub credential is configured: set GITHUB_TOKEN (or GITHUB_PERSONAL_ACCESS_TOKEN), or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_PATH) and GITHUB_APP_INSTALLATION_ID, then restart the server"
    )]
    Missing,
    #[error("GITHUB_APP_PRIVATE_KEY is not a usable RSA key: {0}")]
    Key(String),
    #[error("could not mint a GitHub App installation token: {0}")]
    Mint(String),
}

/// An installation token with its expiry.
#[derive(Clone)]
pub struct MintedToken {
    pub token: String,
    pub expires_at: SystemTime,
}

struct Cached {
    header: HeaderValue,
    refresh_at: SystemTime,
}

/// A GitHub App installation's token source.
pub struct AppTokens {
    app: GithubApp,
    key: EncodingKey,
    current: RwLock<Option<Arc<Cached>>>,
    refresh: tokio::sync::Mutex<()>,
    shared: std::sync::OnceLock<Arc<dyn TokenShare>>,
    /// Fingerprint of the last token GitHub refused: never taken from the shared store.
    refused: parking_lot::Mutex<Option<String>>,
}

#[derive(Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

fn bearer(secret: &str) -> Result<HeaderValue, AuthError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|_| {
        AuthError::Mint("the token contains characters not allowed in a header".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl AppTokens {
    fn new(app: GithubApp) -> Result<Self, AuthError> {
        let key = EncodingKey::from_rsa_pem(app.private_key_pem.as_bytes())
            .map_err(|e| AuthError::Key(e.to_string()))?;
        Ok(AppTokens {
            app,
            key,
            current: RwLock::default(),
            refresh: tokio::sync::Mutex::new(()),
            shared: std::sync::OnceLock::new(),
            refused: parking_lot::Mutex::new(None),
        })
    }

    /// Shares this installation's token with the replicas on one store.
    pub fn share(&self, shared: Arc<dyn TokenShare>) {
        let _ = self.shared.set(shared);
    }

    pub fn installation_id(&self) -> u64 {
        self.app.installation_id
    }

    /// The app JWT: issued a minute in the past (clock drift), valid nine minutes.
    pub fn jwt(&self) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            iat: now.saturating_sub(60),
            exp: now + 540,
            iss: self.app.app_id.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| AuthError::Key(e.to_string()))
    }

    fn fresh(&self) -> Option<HeaderValue> {
        let cached = self.current.read().clone()?;
        (SystemTime::now() < cached.refresh_at).then(|| cached.header.clone())
    }

    /// A valid installation token header; when it must be minted, one caller mints and
    /// the others wait for that result.
    async fn header<F, Fut>(&self, mint: F) -> Result<HeaderValue, AuthError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<MintedToken, AuthError>>,
    {
        if let Some(h) = self.fresh() {
            return Ok(h);
        }
        let _guard = self.refresh.lock().await;
        if let Some(h) = self.fresh() {
            return Ok(h);
        }
        let Some(shared) = self.shared.get() else {
            let minted = mint(self.jwt()?).await?;
            return self.keep(&minted);
        };
        let waited_until = tokio::time::Instant::now() + SHARED_WAIT;
        loop {
            if let Some(token) = shared.load().await
                && self.usable(&token)
            {
                return self.keep(&token);
            }
            if shared.claim().await {
                // A claimant publishes its token before it releases the claim: one
                // stored between our look and our claim is there now.
                if let Some(token) = shared.load().await
                    && self.usable(&token)
                {
                    shared.release().await;
                    return self.keep(&token);
                }
                break;
            }
            if tokio::time::Instant::now() >= waited_until {
                break;
            }
            tokio::time::sleep(SHARED_POLL).await;
        }
        let minted = match self.jwt() {
            Ok(jwt) => mint(jwt).await,
            Err(e) => Err(e),
        };
        match minted {
            Ok(minted) => {
                shared.publish(&minted).await;
                self.keep(&minted)
            }
            Err(e) => {
                shared.release().await;
                Err(e)
            }
        }
    }

    /// Whether a token another replica stored may be used: not refused here, and not
    /// due for a refresh.
    fn usable(&self, token: &MintedToken) -> bool {
        let refresh_at = token.expires_at.checked_sub(REFRESH_MARGIN);
        refresh_at.is_some_and(|at| SystemTime::now() < at)
            && self.refused.lock().as_deref() != Some(fingerprint(&token.token).as_str())
    }

    /// Caches `minted` as the current token and returns its header.
    fn keep(&self, minted: &MintedToken) -> Result<HeaderValue, AuthError> {
        let header = bearer(&minted.token)?;
        let refresh_at = minted
            .expires_at
            .checked_sub(REFRESH_MARGIN)
            .unwrap_or(SystemTime::now());
        *self.current.write() = Some(Arc::new(Cached {
            header: header.clone(),
            refresh_at,
        }));
        Ok(header)
    }

    /// Drops the cached token if it is still the one that was refused. Every caller
    /// refused with a stale token retries once: the first one's drop makes the next
    /// [`AppTokens::header`] mint (once, for all of them); a caller whose 401 arrives after
    /// that finds the new token already cached and uses it.
    fn invalidate(&self, refused: &HeaderValue) -> bool {
        let mut current = self.current.write();
        if current.as_ref().is_some_and(|c| c.header == *refused) {
            *current = None;
            self.forget_shared(refused);
        }
        true
    }

    /// Never takes `refused` from the shared store again, and drops it there.
    fn forget_shared(&self, refused: &HeaderValue) {
        let Some(shared) = self.shared.get().cloned() else {
            return;
        };
        let token = refused
            .to_str()
            .unwrap_or_default()
            .trim_start_matches("Bearer ");
        let fp = fingerprint(token);
        *self.refused.lock() = Some(fp.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { shared.forget(fp).await });
        }
    }
}

/// How requests are authenticated.
pub enum Auth {
    Missing,
    Token { header: HeaderValue },
    App(AppTokens),
}

impl Auth {
    pub fn new(credential: &GithubCredential) -> Result<Self, AuthError> {
        Ok(match credential {
            GithubCredential::None => Auth::Missing,
            GithubCredential::Token(t) => Auth::Token { header: bearer(t)? },
            GithubCredential::App(app) => Auth::App(AppTokens::new(app.clone())?),
        })
    }

    /// A stable fingerprint of the credential (not of the current short-lived token), for
    /// lane names, cache keys and metrics.
    pub fn identity(&self) -> String {
        let basis = match self {
            Auth::Missing => "anonymous".to_string(),
            Auth::Token { header } => header.to_str().unwrap_or("").to_string(),
            Auth::App(app) => format!("app:{}:{}", app.app.app_id, app.app.installation_id),
        };
        fingerprint(&basis)
    }

    /// The Authorization header for the next request.
    pub async fn header<F, Fut>(&self, mint: F) -> Result<HeaderValue, AuthError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<MintedToken, AuthError>>,
    {
        match self {
            Auth::Missing => Err(AuthError::Missing),
            Auth::Token { header } => Ok(header.clone()),
            Auth::App(app) => app.header(mint).await,
        }
    }

    /// After a 401: forget the refused installation token once. Returns whether a retry
    /// with a new token makes sense.
    pub fn invalidate(&self, refused: &HeaderValue) -> bool {
        match self {
            Auth::App(app) => app.invalidate(refused),
            _ => false,
        }
    }

    pub fn app(&self) -> Option<&AppTokens> {
        match self {
            Auth::App(app) => Some(app),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const KEY: &str = include_str!("../../tests/support/github-app-test-key.pem");

    fn app_auth() -> Auth {
        Auth::new(&GithubCredential::App(GithubApp {
            app_id: 42,
            installation_id: 7,
            private_key_pem: KEY.to_string(),
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_mint() {
        let auth = Arc::new(app_auth());
        let mints = Arc::new(AtomicUsize::new(0));
        let calls = (0..20).map(|_| {
            let auth = auth.clone();
            let mints = mints.clone();
            async move {
                auth.header(|jwt| async move {
                    assert_eq!(jwt.split('.').count(), 3);
                    mints.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(MintedToken {
                        token: "ghs_x".into(),
                        expires_at: SystemTime::now() + Duration::from_secs(3600),
                    })
                })
                .await
                .unwrap()
            }
        });
        let headers = futures::future::join_all(calls).await;
        assert_eq!(mints.load(Ordering::SeqCst), 1);
        assert!(headers.iter().all(|h| *h == headers[0]));
        let mint = |n: &'static str| {
            let mints = mints.clone();
            move |_jwt: String| async move {
                mints.fetch_add(1, Ordering::SeqCst);
                Ok(MintedToken {
                    token: n.into(),
                    expires_at: SystemTime::now() + Duration::from_secs(3600),
                })
            }
        };
        // Two callers refused with the stale token: the first drops it, the second's
        // late 401 keeps the new one; both retry, with one mint between them.
        assert!(auth.invalidate(&headers[0]));
        let renewed = auth.header(mint("ghs_y")).await.unwrap();
        assert!(auth.invalidate(&headers[0]), "a late 401 still retries");
        assert_eq!(auth.header(mint("ghs_z")).await.unwrap(), renewed);
        assert_eq!(mints.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn identity_is_not_the_secret() {
        let auth = Auth::new(&GithubCredential::Token("ghp_secret".into())).unwrap();
        assert!(!auth.identity().contains("secret"));
    }
}
