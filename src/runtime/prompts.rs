//! Prompts contributed by toolsets: a small trait the server consults for
//! `prompts/list` and `prompts/get`, so the server stays domain-free and the runtime
//! knows no toolset.
//!
//! Owns only the contract. What a prompt says is the contributing toolset's business.

use rmcp::model::{GetPromptResult, JsonObject, Prompt};

/// Why a contributed prompt could not be rendered (answered as invalid params).
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The arguments do not fit the prompt, or it could not be rendered.
    #[error("{0}")]
    Invalid(String),
}

/// A family of MCP prompts served by one toolset.
pub trait PromptSource: Send + Sync {
    /// The prompts shown by `prompts/list`.
    fn prompts(&self) -> Vec<Prompt>;
    /// Renders prompt `name` (one of [`PromptSource::prompts`]) with `args`.
    fn get(&self, name: &str, args: &JsonObject) -> Result<GetPromptResult, PromptError>;
}
