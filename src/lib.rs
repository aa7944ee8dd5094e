//! cortex-mcp: one MCP server for the Cortex-OS toolsets on one shared runtime.
//!
//! Module map (see `../shared/design/architecture.md` §1–2):
//! - [`config`]: the effective configuration, validated once at start.
//! - [`runtime`]: shared machinery (executor, pages, progress, batch, metrics, journal,
//!   events, tool registry); imports no toolset, server or transport.
//! - [`dynamic`]: `--dynamic-toolsets` (discovery tools, per-session enabled toolsets).
//! - [`server`]: the rmcp `ServerHandler` that assembles the enabled toolsets.
//! - [`setup`]: MCP client configuration entries (`cortex-mcp setup`).
//! - [`transport`]: stdio and streamable HTTP.
//!
//! The one public entry point is [`server::CortexServer::build`]. The library sets no
//! global allocator: the binary chooses it (`main.rs`).

#[cfg(test)]
mod architecture;
pub mod asbr;
pub mod config;
pub mod dynamic;
#[cfg(feature = "conformance-fixtures")]
pub mod fixtures;
pub mod github;
pub mod integrations;
pub mod mvp;
pub mod patchkit;
pub mod runtime;
pub mod schemas;
pub mod server;
pub mod setup;
pub mod transport;
