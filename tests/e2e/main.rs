//! The end-to-end tests, one binary: each module drives the real `cortex-mcp` binary
//! (spawned per test) through an MCP client, or the crate's public API. Test names are
//! `<module>::<test>` (e.g. `cargo test --test e2e transport::`). Shared helpers are in
//! `tests/common/`; benchmarks are `[[bench]]` targets under `benches/` (run by
//! `tools/bench-*.sh`, never built by `cargo test`).

#[path = "../common/mod.rs"]
mod common;

mod asbr;
mod catalog;
mod cluster;
mod config;
mod containment;
mod damage;
mod dynamic;
mod exec_sandbox;
mod fsroots;
mod github;
mod github_cluster;
mod github_loop;
mod github_pulls;
mod github_releases;
mod github_triage;
mod groups;
mod integrations;
mod integrations_tls;
mod journal;
mod lb_cluster;
mod listen;
mod mvp;
mod mvp_runners;
mod oauth;
mod otlp;
mod ownership;
mod param_headers;
mod patchkit;
mod patchkit_edit;
mod progress;
mod rounds;
mod server;
mod setup;
mod tasks;
mod transport;
