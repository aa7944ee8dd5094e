//! Prompts contributed by toolsets: a small trait the server consults for
//! `prompts/list` and `prompts/get`, so the server stays domain-free and the runtime
//! knows no toolset.
//!
//! Owns only the contract. What a prompt says is the contributing toolset's business.

use rmcp::model::{GetPromptResult, JsonObject, Prompt};

use super::rounds::{Ask, RoundError, Rounds};

/// Why a contributed prompt could not be rendered (answered as invalid params), or what
/// it needs first.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The arguments do not fit the prompt, or it could not be rendered.
    #[error("{0}")]
    Invalid(String),
    /// Not an error: the prompt needs input from the client first (`input_required`).
    #[error("the prompt needs input from the client first (input_required)")]
    NeedsInput(Box<Ask>),
    /// The client's answers are unusable.
    #[error(transparent)]
    Round(#[from] RoundError),
}

/// A family of MCP prompts served by one toolset.
pub trait PromptSource: Send + Sync {
    /// The prompts shown by `prompts/list`.
    fn prompts(&self) -> Vec<Prompt>;
    /// Renders prompt `name` (one of [`PromptSource::prompts`]) with `args`; `rounds`
    /// holds what the client answered to a previous [`PromptError::NeedsInput`].
    fn get(
        &self,
        name: &str,
        args: &JsonObject,
        rounds: &Rounds,
    ) -> Result<GetPromptResult, PromptError>;
    /// Values for `argument` of prompt `name` starting with `prefix`, most relevant
    /// first, at most `limit` (`completion/complete`). Default: none.
    fn complete(&self, name: &str, argument: &str, prefix: &str, limit: usize) -> Vec<String> {
        let _ = (name, argument, prefix, limit);
        Vec::new()
    }
}
