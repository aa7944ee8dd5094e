//! Resources contributed by toolsets: a small trait the server consults for URIs it does
//! not serve itself, so the server stays domain-free and the runtime knows no toolset.
//!
//! Owns only the contract (templates, read, change notification). What a URI means is
//! the contributing toolset's business.

use rmcp::model::ResourceTemplate;
use tokio::sync::watch;

use super::principal::Principal;

/// Why a contributed resource could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The URI belongs to this source but names nothing that exists.
    #[error("{0}")]
    NotFound(String),
}

/// A family of MCP resources served by one toolset.
pub trait ResourceSource: Send + Sync {
    /// URI templates shown by `resources/templates/list`.
    fn templates(&self) -> Vec<ResourceTemplate>;
    /// Whether `uri` belongs to this source (by scheme or prefix).
    fn handles(&self, uri: &str) -> bool;
    /// The current JSON text of `uri` as `principal` may see it; a resource of an object
    /// it may not see is [`ResourceError::NotFound`], as a missing one is.
    fn read(&self, uri: &str, principal: &Principal) -> Result<String, ResourceError>;
    /// A receiver that changes whenever `uri` has new content (for resources/subscribe),
    /// refused as [`ResourceError::NotFound`] when `principal` may not see it.
    fn watch(
        &self,
        uri: &str,
        principal: &Principal,
    ) -> Result<watch::Receiver<u64>, ResourceError>;
}
