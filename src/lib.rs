//! cortex-mcp: one MCP server for the Cortex-OS toolsets on one shared runtime.
//!
//! Module map (see `../shared/design/architecture.md` §1–2):
//! - [`config`]: the effective configuration, validated once at start.
//! - [`runtime`]: shared machinery (executor, pages, progress, batch, metrics, journal,
//!   events, tool registry); imports no toolset, server or transport.
//! - [`server`]: the rmcp `ServerHandler` that assembles the enabled toolsets.
//! - [`transport`]: stdio and streamable HTTP.
//!
//! The one public entry point is [`server::CortexServer::build`].

#[cfg(test)]
mod architecture;
pub mod asbr;
pub mod config;
#[cfg(feature = "conformance-fixtures")]
pub mod fixtures;
pub mod github;
pub mod integrations;
pub mod mvp;
pub mod patchkit;
pub mod runtime;
pub mod schemas;
pub mod server;
pub mod transport;

/// The allocator of the server and of every test and benchmark binary linking this
/// crate (so in-process benchmarks measure what the server runs). Event publishing
/// allocates many small short-lived objects across threads, where glibc's malloc spent
/// close to half the CPU of a task-event burst (consolidating and unlinking chunks).
/// Built without transparent huge pages (`no_thp`): with them an idle server held 11 MB
/// more resident memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
