//! The registry tools: `create_integration`, `update_integration`, `delete_integration`
//! and `list_integrations`. Storage lives in `registry.rs`; this file must not write
//! journals or files itself.
//!
//! `delete_integration` of an integration holding stored credentials first asks the
//! user to confirm (MCP 2026-07-28 `input_required`, for a client that declared form
//! elicitation; see `runtime::rounds`): the question names the integration and the
//! credentials' names (never their values), its state the revision it was asked about,
//! and the delete happens in the round that carries a yes, only if the integration is
//! still at that revision (else the question comes again). No, declined or dismissed:
//! nothing is deleted, an `isError` result says so. Other clients, and integrations
//! without credentials, are deleted at once as before.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    page::{self, Page},
    registry::{CallCtx, Hints, ToolDef, ToolError},
    rounds::{Ask, Decision},
};

use crate::integrations::registry::{
    Change, ConfigInput, Integration, IntegrationType, RegistryError, Status,
};

use super::SharedIntegrations;
use crate::runtime::toolset::{Out, Tools};

pub(super) fn register(t: &Tools<SharedIntegrations>) -> Vec<ToolDef> {
    vec![
        t.tool(
            "create_integration",
            Hints::write(),
            create_integration,
            "Register an external system to call later: type api or webhook (HTTP endpoint), database (PostgreSQL URL) or message-queue (Redis URL). Credentials are stored apart and never returned (names only). Returns the integration with its id."
        )
        .titled("Create integration"),
        t.tool(
            "update_integration",
            Hints::write().destructive().idempotent(),
            update_integration,
            "Change an integration's name, status (active|inactive) or config; given fields replace the stored ones, `credentials` the whole set. Moving the endpoint to another origin drops the credentials unless new ones are given (`credentialsDropped`)."
        )
        .titled("Update integration"),
        t.tool(
            "delete_integration",
            Hints::write().destructive().idempotent(),
            delete_integration,
            "Remove an integration with its stored credentials and monitoring figures. Returns whether it was deleted."
        )
        .titled("Delete integration"),
        t.tool(
            "list_integrations",
            Hints::read(),
            list_integrations,
            "List registered integrations (id, type, status, config with credential names only), optionally by type and status."
        )
        .titled("List integrations"),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIn {
    /// Unique display name.
    pub name: String,
    pub r#type: IntegrationType,
    #[serde(default)]
    pub config: ConfigInput,
    /// Let every client of this server use it, credentials included (default: only
    /// its creator).
    #[serde(default)]
    pub shared: bool,
}

pub(super) async fn create_integration(
    i: SharedIntegrations,
    input: CreateIn,
    ctx: CallCtx,
) -> Out<Integration> {
    Ok(i.registry
        .create(
            input.name,
            input.r#type,
            input.config,
            &ctx.principal,
            input.shared,
        )
        .await?)
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SettableStatus {
    Active,
    Inactive,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateIn {
    pub integration_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `inactive` stops execute_integration until set `active` again.
    #[serde(default)]
    pub status: Option<SettableStatus>,
    /// Fields of `config` as in `create_integration`.
    // The schema is create_integration's, listed beside it: not repeated (2 KB).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub config: Option<ConfigInput>,
}

/// The updated integration, and what the update did to its credentials.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOut {
    #[serde(flatten)]
    pub integration: Integration,
    /// Set when the endpoint moved to another origin without new credentials: the stored
    /// ones were dropped (credentials are bound to their origin); send them again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_dropped: Option<String>,
}

pub(super) async fn update_integration(
    i: SharedIntegrations,
    input: UpdateIn,
    ctx: CallCtx,
) -> Out<UpdateOut> {
    let change = Change {
        name: input.name,
        r#type: None,
        status: input.status.map(|s| match s {
            SettableStatus::Active => Status::Active,
            SettableStatus::Inactive => Status::Inactive,
        }),
        config: input.config,
    };
    let (updated, credentials_dropped) = i
        .registry
        .update(&input.integration_id, &ctx.principal, change)
        .await?;
    i.pools.forget(&updated.id);
    i.queues.forget(&updated.id);
    Ok(UpdateOut {
        integration: updated,
        credentials_dropped,
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdIn {
    pub integration_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub deleted: Integration,
}

/// The key of the delete confirmation in `inputRequests` / `inputResponses`.
const CONFIRM_DELETE: &str = "confirm_delete";

/// What the confirmation was asked about: the integration's revision then.
#[derive(Serialize, Deserialize)]
struct DeleteAsked {
    revision: u64,
}

fn delete_question(integration: &Integration) -> ToolError {
    let names = integration.config.credential_names.join(", ");
    let message = format!(
        "Delete integration `{}` ({}, {}) and its stored credentials ({names})? They cannot be recovered.",
        integration.name,
        serde_json::to_value(integration.r#type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        integration.id,
    );
    ToolError::needs_input(
        Ask::new()
            .confirm(CONFIRM_DELETE, message, "Delete it and its credentials")
            .with_state(&DeleteAsked {
                revision: integration.revision,
            }),
    )
}

/// The revision the user confirmed deleting, `None` when no confirmation is needed
/// (a client that cannot be asked, an integration without stored credentials), or the
/// question to ask, or why nothing is deleted.
fn confirmed_revision(
    i: &SharedIntegrations,
    id: &str,
    ctx: &CallCtx,
) -> Result<Option<u64>, ToolError> {
    if !ctx.rounds.can_elicit() {
        return Ok(None);
    }
    let current = i.registry.get_for(id, &ctx.principal)?;
    if current.config.credential_names.is_empty() {
        return Ok(None);
    }
    let asked = ctx
        .rounds
        .state::<DeleteAsked>()
        .filter(|a| a.revision == current.revision);
    match (asked, ctx.rounds.decision(CONFIRM_DELETE)?) {
        (Some(asked), Some(Decision::Yes)) => Ok(Some(asked.revision)),
        (Some(_), Some(Decision::No(how))) => Err(ToolError::business(format!(
            "Nothing was deleted: the user {how} when asked to delete integration `{}` ({id}) and its stored credentials.",
            current.name
        ))),
        _ => Err(delete_question(&current)),
    }
}

pub(super) async fn delete_integration(
    i: SharedIntegrations,
    input: IdIn,
    ctx: CallCtx,
) -> Out<Deleted> {
    let id = &input.integration_id;
    let revision = confirmed_revision(&i, id, &ctx)?;
    let deleted = match i.registry.delete(id, &ctx.principal, revision).await {
        // Changed since the user confirmed: ask about what it is now.
        Err(RegistryError::Changed { .. }) => {
            let current = i.registry.find_for(id, &ctx.principal).await?;
            if !current.config.credential_names.is_empty() {
                return Err(delete_question(&current));
            }
            i.registry.delete(id, &ctx.principal, None).await?
        }
        other => other?,
    };
    i.monitor.forget(&deleted.id);
    i.pools.forget(&deleted.id);
    i.queues.forget(&deleted.id);
    Ok(Deleted { deleted })
}

crate::runtime::page::list_input! {
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ListIn {
        #[serde(default)]
        pub r#type: Option<IntegrationType>,
        #[serde(default)]
        pub status: Option<Status>,
        ..page_args,
    }
}

pub(super) async fn list_integrations(
    i: SharedIntegrations,
    input: ListIn,
    ctx: CallCtx,
) -> Out<Page<Integration>> {
    let all = i.registry.list(&ctx.principal, input.r#type, input.status);
    page::offset_page(
        "list_integrations",
        &all,
        input.limit as usize,
        input.cursor.as_deref(),
    )
    .map_err(|e| ToolError::Input(e.to_string()))
}
