//! A GitHub App installation token shared by every replica on one Redis store
//! (`--store redis://…`): minted once per cluster, not once per replica.
//!
//! Owns two keys per App installation, named by the credential's fingerprint:
//! `<prefix>github:{<fp>}:app-token` holds the token sealed with the store key
//! (`CORTEX_MCP_STORE_KEY`, the installation's fingerprint as associated data) beside
//! the fingerprint of the token itself, expiring with the token; `…:app-token:mint` is
//! the short claim of the replica minting now, so the others wait for its token instead
//! of minting their own. The token is never readable in Redis. Must not mint, build
//! requests or decide when a token is stale (that is `auth`).

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::auth::{MintedToken, TokenShare};
use crate::runtime::{
    cache::fingerprint,
    redis_link::{LinkError, RedisLink},
    sealed::Sealer,
};

/// How long a replica's claim to mint lasts (a mint is one request with a 30 s cap, but
/// usually answers in well under a second; a dead minter's claim is gone after this).
const CLAIM: Duration = Duration::from_secs(10);

/// KEYS: the token key. ARGV: the refused token's fingerprint. Drops the kept token only
/// if it is that one (another replica may already have stored a new one).
const FORGET: &str = r"
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).fp == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
";

/// KEYS: the claim key. ARGV: the holder. Releases the claim only if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

#[derive(Debug, thiserror::Error)]
pub enum SharedTokenError {
    #[error("{0}")]
    Link(#[from] LinkError),
}

/// What the token key holds.
#[derive(Serialize, Deserialize)]
struct Kept {
    /// Fingerprint of the token (to forget exactly a refused one).
    fp: String,
    /// The token and its expiry, sealed.
    sealed: String,
}

#[derive(Serialize, Deserialize)]
struct Plain {
    token: String,
    expires_ms: u64,
}

/// One App installation's token on the shared store.
pub struct SharedAppToken {
    link: RedisLink,
    token_key: String,
    claim_key: String,
    /// Associated data of the sealed token: the installation's fingerprint.
    context: String,
    sealer: Sealer,
    /// Who this process is when it claims (random per process).
    holder: String,
}

impl SharedAppToken {
    /// The token of the installation whose credential fingerprint is `identity`, kept
    /// under `prefix` on the Redis at `url`, sealed with `sealer`.
    pub fn new(
        url: &str,
        prefix: &str,
        identity: &str,
        sealer: Sealer,
    ) -> Result<Self, SharedTokenError> {
        let link = RedisLink::new(url, prefix)?;
        let base = format!("{prefix}github:{{{identity}}}:app-token");
        Ok(SharedAppToken {
            link,
            claim_key: format!("{base}:mint"),
            token_key: base,
            context: format!("github-app-token:{identity}"),
            sealer,
            holder: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    async fn load_now(&self) -> Result<Option<MintedToken>, SharedTokenError> {
        let raw: Option<String> = self
            .link
            .query(
                "reading the shared App token",
                ::redis::cmd("GET").arg(&self.token_key),
            )
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        // A value that does not open (another store key, or altered) is ignored: this
        // replica mints and overwrites it.
        let plain = serde_json::from_str::<Kept>(&raw)
            .ok()
            .and_then(|kept| self.sealer.open(&self.context, &kept.sealed).ok())
            .and_then(|bytes| serde_json::from_slice::<Plain>(&bytes).ok());
        Ok(plain.map(|p| MintedToken {
            token: p.token,
            expires_at: UNIX_EPOCH + Duration::from_millis(p.expires_ms),
        }))
    }

    async fn claim_now(&self) -> Result<bool, SharedTokenError> {
        let set: Option<String> = self
            .link
            .query(
                "claiming the App token mint",
                ::redis::cmd("SET")
                    .arg(&self.claim_key)
                    .arg(&self.holder)
                    .arg("NX")
                    .arg("PX")
                    .arg(CLAIM.as_millis() as u64),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn publish_now(&self, token: &MintedToken) -> Result<(), SharedTokenError> {
        let expires_ms = token
            .expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let left = token
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if !left.is_zero() {
            let plain = serde_json::to_vec(&Plain {
                token: token.token.clone(),
                expires_ms,
            })
            .unwrap_or_default();
            let Ok(sealed) = self.sealer.seal(&self.context, &plain) else {
                return Ok(());
            };
            let kept = serde_json::to_string(&Kept {
                fp: fingerprint(&token.token),
                sealed,
            })
            .unwrap_or_default();
            let _: () = self
                .link
                .query(
                    "storing the shared App token",
                    ::redis::cmd("SET")
                        .arg(&self.token_key)
                        .arg(kept)
                        .arg("PX")
                        .arg(left.as_millis().max(1) as u64),
                )
                .await?;
        }
        self.release_now().await
    }

    async fn release_now(&self) -> Result<(), SharedTokenError> {
        let _: i64 = self
            .link
            .eval(
                "releasing the App token mint",
                RELEASE,
                &[&self.claim_key],
                [self.holder.as_bytes().to_vec()],
            )
            .await?;
        Ok(())
    }

    async fn forget_now(&self, refused_fp: String) -> Result<(), SharedTokenError> {
        let _: i64 = self
            .link
            .eval(
                "forgetting a refused App token",
                FORGET,
                &[&self.token_key],
                [refused_fp.into_bytes()],
            )
            .await?;
        Ok(())
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Logs a failure of the shared store: the replica then goes on as if alone.
fn logged<T>(doing: &str, result: Result<T, SharedTokenError>) -> Option<T> {
    result
        .map_err(|e| tracing::warn!(error = %e, "{doing}: going on without the shared token"))
        .ok()
}

impl TokenShare for SharedAppToken {
    fn load(&self) -> Boxed<'_, Option<MintedToken>> {
        Box::pin(async move { logged("shared App token", self.load_now().await).flatten() })
    }

    fn claim(&self) -> Boxed<'_, bool> {
        // Unreachable store: mint here (the budget's own checks decide whether it runs).
        Box::pin(async move { logged("App token claim", self.claim_now().await).unwrap_or(true) })
    }

    fn publish<'a>(&'a self, token: &'a MintedToken) -> Boxed<'a, ()> {
        Box::pin(async move {
            logged("App token publish", self.publish_now(token).await);
        })
    }

    fn release(&self) -> Boxed<'_, ()> {
        Box::pin(async move {
            logged("App token claim release", self.release_now().await);
        })
    }

    fn forget(&self, refused_fp: String) -> Boxed<'_, ()> {
        Box::pin(async move {
            logged(
                "forgetting a refused App token",
                self.forget_now(refused_fp).await,
            );
        })
    }
}
