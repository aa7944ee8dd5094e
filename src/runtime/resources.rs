//! Resources contributed by toolsets: a small trait the server consults for URIs it does
//! not serve itself, so the server stays domain-free and the runtime knows no toolset.
//!
//! Owns only the contract (templates, read, change notification). What a URI means is
//! the contributing toolset's business.

use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use tokio::sync::watch;

use super::principal::Principal;

/// Why a contributed resource could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The URI belongs to this source but names nothing that exists.
    #[error("{0}")]
    NotFound(String),
    /// The URI exists but never changes, so it cannot be subscribed to.
    #[error("{0} cannot be subscribed; events://{{topic}} can")]
    NotSubscribable(String),
}

/// A family of MCP resources served by one toolset.
pub trait ResourceSource: Send + Sync {
    /// URI templates shown by `resources/templates/list`.
    fn templates(&self) -> Vec<ResourceTemplate>;
    /// Fixed resources shown by `resources/list` (default: none).
    fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }
    /// Whether `uri` belongs to this source (by scheme or prefix).
    fn handles(&self, uri: &str) -> bool;
    /// The current JSON text of `uri` as `principal` may see it; a resource of an object
    /// it may not see is [`ResourceError::NotFound`], as a missing one is.
    fn read(&self, uri: &str, principal: &Principal) -> Result<String, ResourceError>;
    /// The contents `resources/read` answers with: by default the JSON text of
    /// [`ResourceSource::read`]; a source of other media (plain text, binary) overrides it.
    fn read_contents(
        &self,
        uri: &str,
        principal: &Principal,
    ) -> Result<ResourceContents, ResourceError> {
        Ok(ResourceContents::text(self.read(uri, principal)?, uri)
            .with_mime_type("application/json"))
    }
    /// Whether `uri` is one [`ResourceSource::watch`] may accept (by its form, for any
    /// principal): what a `subscriptions/listen` stream acknowledges. Default: every
    /// URI this source handles.
    fn listenable(&self, uri: &str) -> bool {
        self.handles(uri)
    }
    /// Values for `argument` of the template `template` (one of
    /// [`ResourceSource::templates`]) starting with `prefix`, that `principal` may use,
    /// most relevant first, at most `limit` (`completion/complete`). Default: none.
    fn complete(
        &self,
        template: &str,
        argument: &str,
        prefix: &str,
        principal: &Principal,
        limit: usize,
    ) -> Vec<String> {
        let _ = (template, argument, prefix, principal, limit);
        Vec::new()
    }
    /// A receiver that changes whenever `uri` has new content (for resources/subscribe),
    /// refused as [`ResourceError::NotFound`] when `principal` may not see it.
    fn watch(
        &self,
        uri: &str,
        principal: &Principal,
    ) -> Result<watch::Receiver<u64>, ResourceError>;
}
