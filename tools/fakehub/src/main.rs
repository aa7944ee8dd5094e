//! `fakehub` binary: serve the fake GitHub API until SIGTERM/SIGINT.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "fakehub", about = "A fake GitHub REST API on loopback")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:80")]
    listen: SocketAddr,
    /// Latency added before answering every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Secondary limit: in-flight requests per token.
    #[arg(long, default_value_t = 100)]
    max_concurrent: usize,
    /// Secondary limit: points per token per endpoint per minute.
    #[arg(long, default_value_t = 900)]
    points_per_minute: u32,
    /// Seconds sent in `retry-after` on secondary-limit answers.
    #[arg(long, default_value_t = 60)]
    retry_after_secs: u64,
    /// Omit `retry-after` on secondary-limit answers.
    #[arg(long)]
    no_retry_after: bool,
    /// Primary core budget per token per hour.
    #[arg(long, default_value_t = 5000)]
    core_limit: u32,
    /// Primary search budget per token per minute.
    #[arg(long, default_value_t = 30)]
    search_limit: u32,
    /// Primary code-search budget per token per minute.
    #[arg(long, default_value_t = 10)]
    code_search_limit: u32,
    /// Enable GitHub App tokens: app id (needs --app-public-key).
    #[arg(long, requires = "app_public_key")]
    app_id: Option<u64>,
    /// Installation id accepted by POST /app/installations/{id}/access_tokens.
    #[arg(long, default_value_t = 1)]
    installation_id: u64,
    /// PEM file with the app's RSA public key.
    #[arg(long)]
    app_public_key: Option<std::path::PathBuf>,
    /// Lifetime of installation tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl_secs: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let app = match (a.app_id, &a.app_public_key) {
        (Some(app_id), Some(path)) => Some(fakehub::AppConfig {
            app_id,
            installation_id: a.installation_id,
            public_key_pem: std::fs::read_to_string(path)?,
            token_ttl: Duration::from_secs(a.token_ttl_secs),
        }),
        _ => None,
    };
    let config = fakehub::FakeConfig {
        latency: Duration::from_millis(a.latency_ms),
        max_concurrent: a.max_concurrent,
        points_per_minute: a.points_per_minute,
        retry_after_secs: (!a.no_retry_after).then_some(a.retry_after_secs),
        core_limit: a.core_limit,
        search_limit: a.search_limit,
        code_search_limit: a.code_search_limit,
        app,
        ignore_accept: false,
    };
    let hub = fakehub::spawn(config, a.listen).await?;
    println!("listening on {}", hub.base_url());
    use std::io::Write;
    std::io::stdout().flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    hub.shutdown();
    Ok(())
}
