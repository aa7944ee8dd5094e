//! The `cortex-mcp` command line: `serve` (stdio by default, `--http ADDR`), `tools`
//! and `schemas`. Parses flags and `CORTEX_MCP_*` variables (clap), loads the config,
//! and hands over to the server and transports.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use cortex_mcp::{
    config::{Config, ExecSandbox, FileOptions, Fsync, GithubEnv, Overrides},
    server::CortexServer,
    transport,
};

#[derive(Parser)]
#[command(
    name = "cortex-mcp",
    version,
    about = "MCP server for the Cortex-OS toolsets"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (default) or streamable HTTP.
    Serve(ServeArgs),
    /// Print the enabled tool catalog.
    Tools {
        /// Print the full tool definitions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write or check the tool schema snapshots.
    Schemas {
        /// Write one <tool>.json per tool into DIR.
        #[arg(long, value_name = "DIR", conflicts_with = "check")]
        write: Option<PathBuf>,
        /// Fail when DIR differs from the code.
        #[arg(long, value_name = "DIR")]
        check: Option<PathBuf>,
    },
    /// Print a git-style unified diff of two files (exit 1 when they differ, like diff(1)).
    Diff(DiffArgs),
}

/// `cortex-mcp diff ...`, parsed on its own so that its help lists only its own
/// options (the server options are global to every other subcommand).
#[derive(Parser)]
#[command(
    name = "cortex-mcp diff",
    bin_name = "cortex-mcp diff",
    about = "Print a git-style unified diff of two files (exit 1 when they differ, like diff(1))."
)]
struct DiffCli {
    #[command(flatten)]
    args: DiffArgs,
}

#[derive(Args)]
struct DiffArgs {
    /// The old file.
    old: PathBuf,
    /// The new file.
    new: PathBuf,
    /// Unchanged lines around each change.
    #[arg(short = 'U', long, default_value_t = 3)]
    unified: usize,
    /// myers, patience or histogram.
    #[arg(long, default_value = "myers")]
    algorithm: String,
    /// Benchmark mode (tools/bench-patch.sh): diff and re-apply N times in-process and
    /// print the mean milliseconds of each to stderr instead of the diff.
    #[arg(long, hide = true, value_name = "N")]
    bench: Option<u32>,
}

#[derive(Args, Default)]
struct ServeArgs {
    /// Serve streamable HTTP on this address (e.g. 127.0.0.1:7439) instead of stdio.
    #[arg(long, env = "CORTEX_MCP_HTTP", value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Add the conformance-suite fixture tools and resources (testing only).
    #[arg(long)]
    conformance_fixtures: bool,
}

#[derive(Args)]
struct CommonArgs {
    /// Toolsets to enable (comma-separated; `default`, `all`, or names).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_TOOLSETS",
        value_delimiter = ','
    )]
    toolsets: Option<Vec<String>>,
    /// Only these tools (comma-separated).
    #[arg(long, global = true, env = "CORTEX_MCP_TOOLS", value_delimiter = ',')]
    tools: Option<Vec<String>>,
    /// Leave these tools out (comma-separated).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_EXCLUDE_TOOLS",
        value_delimiter = ','
    )]
    exclude_tools: Option<Vec<String>>,
    /// Offer only tools that do not change anything.
    #[arg(long, global = true, env = "CORTEX_MCP_READ_ONLY", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    read_only: Option<bool>,
    /// Where journals and blobs live (default: XDG state dir/cortex-mcp).
    #[arg(long, global = true, env = "CORTEX_MCP_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// TOML config file (default: $XDG_CONFIG_HOME/cortex-mcp/config.toml when present;
    /// never read from the working directory implicitly).
    #[arg(long, global = true, env = "CORTEX_MCP_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter (e.g. info, debug, cortex_mcp=trace); RUST_LOG wins when set.
    #[arg(long, global = true, env = "CORTEX_MCP_LOG_LEVEL")]
    log_level: Option<String>,
    /// Bearer token required on HTTP requests (required for non-loopback binds).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_AUTH_TOKEN",
        hide_env_values = true
    )]
    auth_token: Option<String>,
    /// Accepted Host header values (comma-separated).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Option<Vec<String>>,
    /// Accepted Origin values, with scheme (comma-separated).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Option<Vec<String>>,
    /// Seconds a tool call may run.
    #[arg(long, global = true, env = "CORTEX_MCP_REQUEST_TIMEOUT_SECS")]
    request_timeout_secs: Option<u64>,
    /// Journal durability: always | batch | never.
    #[arg(long, global = true, env = "CORTEX_MCP_FSYNC")]
    fsync: Option<Fsync>,
    /// Directories file tools may touch (comma-separated).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_WORKSPACE_ROOTS",
        value_delimiter = ','
    )]
    workspace_roots: Option<Vec<PathBuf>>,
    /// Keep 2025-11-25 HTTP sessions (server-initiated streams) instead of stateless JSON.
    #[arg(long, global = true, env = "CORTEX_MCP_HTTP_SESSIONS", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    http_sessions: Option<bool>,

    /// GitHub REST base URL (Enterprise Server: https://HOST/api/v3).
    #[arg(long, global = true, env = "GITHUB_API_URL", value_name = "URL")]
    github_api_url: Option<String>,

    /// Longest total wait on GitHub rate limits before a tool answers with the time to retry.
    #[arg(long, global = true, env = "CORTEX_MCP_GITHUB_MAX_RATE_WAIT_SECS")]
    github_max_rate_wait_secs: Option<u64>,

    /// Maxima of the adaptive GitHub lane windows, e.g. `read=16,search=2,code_search=1,write=1`.
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_GITHUB_MAX_CONCURRENCY",
        value_name = "LANE=N,..."
    )]
    github_max_concurrency: Option<String>,

    /// Connector manifest JSON served (signed) by `get_connector_service_map`.
    #[arg(
        long,
        global = true,
        env = "CONNECTORS_MANIFEST_PATH",
        value_name = "PATH"
    )]
    connectors_manifest_path: Option<PathBuf>,

    /// Directory of OSV advisories (*.json) for `run_security_scan` dependency checks.
    #[arg(long, global = true, env = "ASBR_ADVISORIES_DIR", value_name = "DIR")]
    advisories_dir: Option<PathBuf>,
    /// Programs the mvp executor may start (comma-separated bare names, resolved on PATH).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_EXEC_ALLOW",
        value_delimiter = ','
    )]
    exec_allow: Option<Vec<String>>,

    /// Environment variables kept for child processes besides PATH and HOME (comma-separated).
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_EXEC_ENV_ALLOW",
        value_delimiter = ','
    )]
    exec_env_allow: Option<Vec<String>>,

    /// Child processes running at once (more wait in the `exec` lane).
    #[arg(long, global = true, env = "CORTEX_MCP_EXEC_MAX_PROCESSES")]
    exec_max_processes: Option<usize>,

    /// Default timeout of one child process, in seconds.
    #[arg(long, global = true, env = "CORTEX_MCP_EXEC_TIMEOUT_SECS")]
    exec_timeout_secs: Option<u64>,

    /// How child processes are confined: auto (the strongest available) | landlock | none.
    #[arg(long, global = true, env = "CORTEX_MCP_EXEC_SANDBOX")]
    exec_sandbox: Option<ExecSandbox>,

    /// Let child processes use the network (off by default).
    #[arg(long, global = true, env = "CORTEX_MCP_EXEC_NETWORK", num_args = 0..=1, default_missing_value = "true")]
    exec_network: Option<bool>,

    /// PRP runs kept in history (oldest evicted).
    #[arg(long, global = true, env = "CORTEX_MCP_PRP_HISTORY")]
    prp_history: Option<usize>,

    /// Teaching examples kept (oldest evicted).
    #[arg(long, global = true, env = "CORTEX_MCP_TEACHING_MAX_EXAMPLES")]
    teaching_max_examples: Option<usize>,

    /// Forward events over HTTP POST to this URL (an A2A bus); off when unset.
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_EVENTS_SINK_URL",
        value_name = "URL"
    )]
    events_sink_url: Option<String>,

    /// Send micro-batches (JSON arrays, up to 25 events or 50 ms) instead of one event per POST.
    #[arg(long, global = true, env = "CORTEX_MCP_EVENTS_SINK_BATCHING", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    events_sink_batching: Option<bool>,

    /// Event types forwarded: `*` (default), a prefix like `integrations.*`, or one type.
    #[arg(long, global = true, env = "CORTEX_MCP_EVENTS_SINK_FILTER")]
    events_sink_filter: Option<String>,

    /// Let integrations reach loopback and private addresses (default over stdio and
    /// loopback HTTP binds). Link-local / cloud-metadata addresses stay refused.
    #[arg(long, global = true, conflicts_with = "integrations_deny_private")]
    integrations_allow_private: bool,

    /// Refuse loopback and private addresses for integrations (default for non-loopback
    /// HTTP binds).
    #[arg(long, global = true)]
    integrations_deny_private: bool,
    /// How long a finished asbr task stays in memory: seconds or a duration like `90s`, `1h`.
    #[arg(
        long,
        global = true,
        env = "CORTEX_MCP_ASBR_TASK_RETENTION",
        value_name = "DURATION"
    )]
    asbr_task_retention: Option<String>,
    /// HTTP sessions alive at once (`--http-sessions`); past it `initialize` gets 503 with Retry-After.
    #[arg(long, global = true, env = "CORTEX_MCP_HTTP_MAX_SESSIONS")]
    http_max_sessions: Option<usize>,

    /// TCP connections the HTTP server serves at once; more wait in the listen backlog.
    #[arg(long, global = true, env = "CORTEX_MCP_HTTP_MAX_CONNECTIONS")]
    http_max_connections: Option<usize>,

    /// Seconds a client has to send a request's headers (and an idle keep-alive connection lasts).
    #[arg(long, global = true, env = "CORTEX_MCP_HTTP_HEADER_TIMEOUT_SECS")]
    http_header_timeout_secs: Option<u64>,

    /// Seconds a client has to send a whole request body (408 after).
    #[arg(long, global = true, env = "CORTEX_MCP_HTTP_BODY_TIMEOUT_SECS")]
    http_body_timeout_secs: Option<u64>,

    /// Longest stdio line in bytes; a longer one is skipped and answered -32600.
    #[arg(long, global = true, env = "CORTEX_MCP_STDIO_MAX_LINE_BYTES")]
    stdio_max_line_bytes: Option<usize>,
    /// Bytes of results and working data one tool call may hold, nested calls included
    /// (default 64 MiB); past it the call ends with an error naming this budget.
    #[arg(long, global = true, env = "CORTEX_MCP_CALL_MEMORY_BUDGET_BYTES")]
    call_memory_budget_bytes: Option<u64>,
}

impl CommonArgs {
    fn into_overrides(self) -> Overrides {
        Overrides {
            config: self.config,
            file: FileOptions {
                toolsets: self.toolsets,
                tools: self.tools,
                exclude_tools: self.exclude_tools,
                read_only: self.read_only,
                state_dir: self.state_dir,
                log_level: self.log_level,
                auth_token: self.auth_token,
                allowed_hosts: self.allowed_hosts,
                allowed_origins: self.allowed_origins,
                request_timeout_secs: self.request_timeout_secs,
                fsync: self.fsync,
                workspace_roots: self.workspace_roots,
                http_sessions: self.http_sessions,
                max_body_bytes: None,
                github_api_url: self.github_api_url,
                github_max_rate_wait_secs: self.github_max_rate_wait_secs,
                github_max_concurrency: self.github_max_concurrency,
                connectors_manifest_path: self.connectors_manifest_path,
                advisories_dir: self.advisories_dir,
                exec_allow: self.exec_allow,
                exec_env_allow: self.exec_env_allow,
                exec_max_processes: self.exec_max_processes,
                exec_timeout_secs: self.exec_timeout_secs,
                exec_sandbox: self.exec_sandbox,
                exec_network: self.exec_network,
                prp_history: self.prp_history,
                teaching_max_examples: self.teaching_max_examples,
                events_sink_url: self.events_sink_url,
                events_sink_batching: self.events_sink_batching,
                events_sink_filter: self.events_sink_filter,
                integrations_allow_private: match (
                    self.integrations_allow_private,
                    self.integrations_deny_private,
                ) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                asbr_task_retention: self.asbr_task_retention,
                http_max_sessions: self.http_max_sessions,
                http_max_connections: self.http_max_connections,
                http_header_timeout_secs: self.http_header_timeout_secs,
                http_body_timeout_secs: self.http_body_timeout_secs,
                stdio_max_line_bytes: self.stdio_max_line_bytes,
                call_memory_budget_bytes: self.call_memory_budget_bytes,
            },
            github_env: GithubEnv::from_process_env(),
        }
    }
}

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "diff") {
        return diff_files(&DiffCli::parse_from(&argv[1..]).args);
    }
    // `help diff` too: clap's own help would list the server options, which are global
    // to every subcommand of `Cli` but mean nothing to `diff`.
    if argv.get(1).is_some_and(|a| a == "help") && argv.get(2).is_some_and(|a| a == "diff") {
        return match <DiffCli as clap::CommandFactory>::command().print_help() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::from(2),
        };
    }
    let cli = Cli::parse_from(argv);
    if let Some(Command::Diff(args)) = &cli.command {
        return diff_files(args);
    }
    match start(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cortex-mcp: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `cortex-mcp diff OLD NEW`: no config, no async runtime; exit 0 same, 1 differ, 2 trouble.
fn diff_files(args: &DiffArgs) -> std::process::ExitCode {
    use cortex_mcp::patchkit::diff::{DiffAlgorithm, DiffOptions, Names, unified_text};
    use std::io::Write;
    let algorithm = match args.algorithm.as_str() {
        "myers" => DiffAlgorithm::Myers,
        "patience" => DiffAlgorithm::Patience,
        "histogram" => DiffAlgorithm::Histogram,
        other => {
            eprintln!(
                "cortex-mcp diff: --algorithm `{other}` is not one of myers|patience|histogram"
            );
            return std::process::ExitCode::from(2);
        }
    };
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| eprintln!("cortex-mcp diff: {}: {e}", p.display()))
    };
    let (Ok(old), Ok(new)) = (read(&args.old), read(&args.new)) else {
        return std::process::ExitCode::from(2);
    };
    if old == new {
        return std::process::ExitCode::SUCCESS;
    }
    let old = String::from_utf8_lossy(&old);
    let new = String::from_utf8_lossy(&new);
    let name = |p: &PathBuf| p.display().to_string().trim_start_matches('/').to_string();
    let names = Names::git_pair(
        &name(&args.old),
        &name(&args.new),
        cortex_mcp::patchkit::diff::ChangeType::Modified,
    );
    let opts = DiffOptions {
        context: args.unified,
        algorithm,
        timeout: std::time::Duration::from_secs(3600),
        ..DiffOptions::default()
    };
    if let Some(n) = args.bench {
        return bench(&names, &old, &new, &opts, n.max(1));
    }
    let out = unified_text(&names, &old, &new, &opts);
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(out.diff.as_bytes()).is_err() {
        return std::process::ExitCode::from(2);
    }
    std::process::ExitCode::from(1)
}

/// Mean in-process time of diffing and of applying the diff back, over `n` runs.
fn bench(
    names: &cortex_mcp::patchkit::diff::Names,
    old: &str,
    new: &str,
    opts: &cortex_mcp::patchkit::diff::DiffOptions,
    n: u32,
) -> std::process::ExitCode {
    use cortex_mcp::patchkit::{apply, diff::unified_text};
    let started = std::time::Instant::now();
    let mut text = String::new();
    for _ in 0..n {
        text = unified_text(names, old, new, opts).diff;
    }
    let diff_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let Ok(files) = apply::parse_patch(&text) else {
        eprintln!("cortex-mcp diff --bench: our own diff did not parse");
        return std::process::ExitCode::from(2);
    };
    let started = std::time::Instant::now();
    let mut ok = true;
    for _ in 0..n {
        let files = apply::parse_patch(&text).unwrap_or_else(|_| files.clone());
        ok &= apply::apply(old, &files[0], 0).content == new;
    }
    let apply_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    eprintln!("diff_ms={diff_ms:.3} apply_ms={apply_ms:.3} roundtrip_ok={ok}");
    std::process::ExitCode::from(if ok { 1 } else { 2 })
}

fn start(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.common.into_overrides())?;
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    if let Command::Serve(args) = &command {
        config.conformance_fixtures = args.conformance_fixtures;
        config.settle_integrations_private(args.http);
    }
    transport::init_logging(&config.log_level);
    match &config.config_file {
        Some(path) => tracing::info!(config_file = %path.display(), "configuration file read"),
        None => {
            tracing::info!("no configuration file read (defaults, CORTEX_MCP_* and flags only)")
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(command, config))
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let server = CortexServer::build(config)?;
            match args.http {
                Some(addr) => transport::http::serve(server.clone(), addr).await?,
                None => transport::stdio::serve(server.clone()).await?,
            }
            server.runtime().shutdown().await;
        }
        Command::Tools { json } => print_tools(&CortexServer::build(config)?, json)?,
        Command::Schemas { write, check } => {
            let server = CortexServer::build(config)?;
            match (write, check) {
                (Some(dir), None) => cortex_mcp::schemas::write(&server.catalog(), &dir)?,
                (None, Some(dir)) => cortex_mcp::schemas::check(&server.catalog(), &dir)?,
                _ => bail!("schemas: pass --write DIR or --check DIR"),
            }
        }
        Command::Diff(_) => bail!("diff is handled before the server starts"),
    }
    Ok(())
}

fn print_tools(server: &CortexServer, json: bool) -> anyhow::Result<()> {
    let catalog = server.catalog();
    if json {
        println!("{}", serde_json::to_string_pretty(&catalog)?);
        return Ok(());
    }
    for tool in catalog {
        let ro = tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false);
        let first_line = tool
            .description
            .as_deref()
            .unwrap_or("")
            .split(". ")
            .next()
            .unwrap_or("")
            .to_string();
        println!(
            "{:<28} {:<3} {}",
            tool.name,
            if ro { "ro" } else { "rw" },
            first_line
        );
    }
    Ok(())
}
