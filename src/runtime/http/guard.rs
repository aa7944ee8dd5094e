//! The outbound address guard: the [`AddressGuard`] trait callers implement, the
//! resolver that keeps only allowed addresses, and the literal-IP and refusal checks
//! of an [`Upstream`] built with a guard. Must not decide policy (the caller's guard
//! does) or send requests.

use std::sync::Arc;

use url::Url;

use super::{AttemptError, Upstream};

/// Decides which peer addresses an [`Upstream`] may connect to (the caller's outbound
/// address policy); `Err` carries the reason shown to the user.
pub trait AddressGuard: Send + Sync {
    fn check(&self, ip: std::net::IpAddr) -> Result<(), AddressRefused>;
}

/// A connection refused by the [`AddressGuard`]: the reason shown to the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AddressRefused(pub String);

/// Resolves with the system resolver and keeps only the addresses the guard allows, so
/// the connection goes to an address that was checked (no second lookup).
pub(super) struct GuardedResolver(pub(super) Arc<dyn AddressGuard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<std::net::SocketAddr> = found
                .into_iter()
                .filter(|a| match guard.check(a.ip()) {
                    Ok(()) => true,
                    Err(reason) => {
                        refusal.get_or_insert(reason);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = refusal.map_or_else(|| format!("{host} has no address"), |r| r.0);
                return Err(Box::new(AddressRefused(format!("{host}: {reason}")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Upstream {
    /// A literal-IP host is never resolved, so the guard sees it here.
    pub(super) fn check_literal(&self, url: &Url) -> Result<(), AttemptError> {
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            _ => return Ok(()),
        };
        guard
            .check(ip)
            .map_err(|reason| AttemptError::fatal(format!("{ip}: {reason}")))
    }

    /// A refusal by the guard (found in the error's sources) is final and says why.
    pub(super) fn send_error(&self, e: reqwest::Error) -> AttemptError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
                return AttemptError::fatal(refused.0.clone());
            }
            source = cause.source();
        }
        AttemptError::from(e)
    }
}
