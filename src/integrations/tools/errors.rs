//! Error mapping of the integrations tools: how registry, call, database and queue
//! errors become tool results (`ToolError`). Must not hold tool logic or do I/O.

use crate::runtime::registry::ToolError;

use crate::integrations::{
    db::DbError, execute::ExecuteError, mq::MqError, registry::RegistryError,
};

impl From<RegistryError> for ToolError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid { .. } => ToolError::Input(e.to_string()),
            RegistryError::Storage(_) => ToolError::Internal(e.to_string()),
            other => ToolError::Business(other.to_string()),
        }
    }
}

impl From<ExecuteError> for ToolError {
    fn from(e: ExecuteError) -> Self {
        match e {
            ExecuteError::Operation(_) | ExecuteError::Payload(_) => {
                ToolError::Input(e.to_string())
            }
            other => ToolError::Upstream(other.to_string()),
        }
    }
}

impl From<DbError> for ToolError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Params(_) | DbError::Config(_) => ToolError::Input(e.to_string()),
            DbError::ReadOnly(_) | DbError::Column { .. } => ToolError::Business(e.to_string()),
            other => ToolError::Upstream(other.to_string()),
        }
    }
}

impl From<MqError> for ToolError {
    fn from(e: MqError) -> Self {
        match e {
            MqError::Operation(_) | MqError::Payload(_) => ToolError::Input(e.to_string()),
            other => ToolError::Upstream(other.to_string()),
        }
    }
}
