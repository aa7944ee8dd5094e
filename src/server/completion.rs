//! `completion/complete`: argument values for the resource templates (`events://{topic}`
//! from the event bus, a toolset's templates such as `asbr://tasks/{id}/events` from
//! their source) and for prompt arguments.
//!
//! Owns matching a reference to the source that answers it and the result's bounds;
//! what the values are is each source's business. Values are what the caller may see
//! (its own tasks, topics with events it may read).

use rmcp::{
    ErrorData as McpError,
    model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference},
};

use super::CortexServer;
use crate::runtime::principal::Principal;

/// The built-in template of the event bus.
const EVENTS_TEMPLATE: &str = "events://{topic}";

impl CortexServer {
    pub(super) fn complete_argument(
        &self,
        request: &CompleteRequestParams,
        principal: &Principal,
    ) -> Result<CompleteResult, McpError> {
        // One more than can be returned, to tell whether there are more.
        let limit = CompletionInfo::MAX_VALUES + 1;
        let prefix = request.argument.value.as_str();
        let argument = request.argument.name.as_str();
        let mut values = match &request.r#ref {
            Reference::Resource(template) if template.uri == EVENTS_TEMPLATE => {
                if argument != "topic" {
                    return Err(unknown_argument(argument, EVENTS_TEMPLATE));
                }
                self.shared
                    .runtime
                    .events
                    .topics_visible_to(principal, prefix, limit)
            }
            Reference::Resource(template) => {
                let source = self
                    .shared
                    .resources
                    .iter()
                    .find(|s| s.templates().iter().any(|t| t.uri_template == template.uri))
                    .ok_or_else(|| {
                        McpError::invalid_params(
                            format!(
                                "no resource template `{}`; call resources/templates/list",
                                template.uri
                            ),
                            None,
                        )
                    })?;
                source.complete(&template.uri, argument, prefix, principal, limit)
            }
            Reference::Prompt(prompt) => {
                let source = self
                    .shared
                    .prompts
                    .iter()
                    .find(|p| p.prompts().iter().any(|p| p.name == prompt.name))
                    .ok_or_else(|| {
                        McpError::invalid_params(
                            format!("no prompt `{}`; call prompts/list", prompt.name),
                            None,
                        )
                    })?;
                source.complete(&prompt.name, argument, prefix, limit)
            }
            _ => {
                return Err(McpError::invalid_params(
                    "completion/complete takes a ref/resource or ref/prompt reference",
                    None,
                ));
            }
        };
        let has_more = values.len() > CompletionInfo::MAX_VALUES;
        values.truncate(CompletionInfo::MAX_VALUES);
        let info = CompletionInfo::with_pagination(values, None, has_more)
            .map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }
}

fn unknown_argument(argument: &str, template: &str) -> McpError {
    McpError::invalid_params(format!("`{template}` has no argument `{argument}`"), None)
}
