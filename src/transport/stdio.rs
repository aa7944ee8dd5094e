//! stdio transport: JSON-RPC on stdin/stdout, logs on stderr, clean exit on EOF after
//! in-flight calls finish.

use rmcp::ServiceExt;

use crate::server::CortexServer;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("stdio session failed to start: {0}")]
    Start(String),
    #[error("stdio session ended with an error: {0}")]
    Run(String),
}

/// Serves until stdin closes.
pub async fn serve(server: CortexServer) -> Result<(), StdioError> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StdioError::Start(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| StdioError::Run(e.to_string()))?;
    Ok(())
}
