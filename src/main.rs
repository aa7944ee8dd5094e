//! The `cortex-mcp` command line: `serve` (stdio by default, `--http ADDR`), `tools`
//! (`--json`, `--stats`), `schemas`, `diff` and `setup`. Parses flags and `CORTEX_MCP_*` variables (clap), loads the config,
//! and hands over to the server and transports.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use cortex_mcp::{
    config::{Config, Options},
    server::CortexServer,
    transport,
};

/// The allocator of the server, chosen here and not in the library (so embedders and
/// test binaries keep their own). Event publishing allocates many small short-lived
/// objects across threads, where glibc's malloc spent close to half the CPU of a
/// task-event burst (consolidating and unlinking chunks). Built without transparent huge
/// pages (`no_thp`): with them an idle server held 11 MB more resident memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cortex-mcp",
    version,
    about = "MCP server for the Cortex-OS toolsets"
)]
struct Cli {
    #[command(flatten)]
    options: Options,
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
        #[arg(long, conflicts_with = "stats")]
        json: bool,
        /// Print the size of tools/list (bytes, ~tokens) per toolset and in total.
        #[arg(long)]
        stats: bool,
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
    /// Print (or, with --write, merge into its config file) an MCP client's entry for this server.
    Setup(SetupArgs),
}

/// `cortex-mcp setup ...`, parsed on its own (the server options mean nothing to it;
/// server flags for the entry go after `--`).
#[derive(Parser)]
#[command(
    name = "cortex-mcp setup",
    bin_name = "cortex-mcp setup",
    about = "Print the MCP client configuration entry that runs (stdio) or reaches (--http) this server, or merge it into the client's config file with --write."
)]
struct SetupCli {
    #[command(flatten)]
    args: SetupArgs,
}

#[derive(Args)]
struct SetupArgs {
    /// The client: claude-code (.mcp.json), claude-desktop, vscode (.vscode/mcp.json) or
    /// cursor (.cursor/mcp.json).
    #[arg(value_enum)]
    client: cortex_mcp::setup::Client,
    /// Reach a running HTTP server at this URL (e.g. http://127.0.0.1:7439/mcp) instead
    /// of starting this binary over stdio.
    #[arg(long, value_name = "URL")]
    http: Option<String>,
    /// With --http: send `Authorization: Bearer` with this environment variable's value
    /// (referenced in the client's syntax, never copied). Default CORTEX_MCP_AUTH_TOKEN
    /// for a URL that is not loopback.
    #[arg(long, value_name = "VAR", requires = "http")]
    token_env: Option<String>,
    /// Merge the entry into the client's config file (existing entries kept).
    #[arg(long)]
    write: bool,
    /// The config file to print for / write to, instead of the client's documented one.
    #[arg(long, value_name = "FILE")]
    config_path: Option<PathBuf>,
    /// The server's name in the client's config.
    #[arg(long, default_value = "cortex-mcp")]
    name: String,
    /// Server flags for the stdio entry (after `--`), e.g. `-- --dynamic-toolsets`.
    #[arg(last = true, value_name = "SERVE_ARGS")]
    serve_args: Vec<String>,
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

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "diff") {
        return diff_files(&DiffCli::parse_from(&argv[1..]).args);
    }
    // `help diff` too: clap's own help would list the server options, which are global
    // to every subcommand of `Cli` but mean nothing to `diff`.
    if argv.get(1).is_some_and(|a| a == "help") && argv.get(2).is_some_and(|a| a == "setup") {
        return match <SetupCli as clap::CommandFactory>::command().print_help() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::from(2),
        };
    }
    if argv.get(1).is_some_and(|a| a == "help") && argv.get(2).is_some_and(|a| a == "diff") {
        return match <DiffCli as clap::CommandFactory>::command().print_help() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::from(2),
        };
    }
    if argv.get(1).is_some_and(|a| a == "setup") {
        return setup(&SetupCli::parse_from(&argv[1..]).args);
    }
    let cli = Cli::parse_from(argv);
    match &cli.command {
        Some(Command::Diff(args)) => return diff_files(args),
        Some(Command::Setup(args)) => return setup(args),
        _ => {}
    }
    match start(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cortex-mcp: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `cortex-mcp diff OLD NEW`: no config, no async runtime; exit 0 same, 1 differ, 2
/// trouble. The work is patchkit's CLI seam ([`cortex_mcp::patchkit::cli`]).
fn diff_files(args: &DiffArgs) -> std::process::ExitCode {
    std::process::ExitCode::from(cortex_mcp::patchkit::cli::diff(
        &cortex_mcp::patchkit::cli::DiffCommand {
            old: &args.old,
            new: &args.new,
            context: args.unified,
            algorithm: &args.algorithm,
            bench: args.bench,
        },
    ))
}

/// `cortex-mcp setup CLIENT`: prints the entry (and where it goes), or merges it into
/// the client's config file. No config, no async runtime; exit 2 on trouble.
fn setup(args: &SetupArgs) -> std::process::ExitCode {
    match run_setup(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cortex-mcp setup: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run_setup(args: &SetupArgs) -> anyhow::Result<()> {
    use cortex_mcp::setup::{self, Client, Target};
    let target = match &args.http {
        Some(url) => {
            let loopback = url::Url::parse(url)
                .ok()
                .is_some_and(|u| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")));
            Target::Http {
                url: url.clone(),
                token_env: args
                    .token_env
                    .clone()
                    .or_else(|| (!loopback).then(|| "CORTEX_MCP_AUTH_TOKEN".to_string())),
            }
        }
        None => {
            let exe = std::env::current_exe().context("finding this binary's path")?;
            let exe = exe.canonicalize().unwrap_or(exe);
            let mut serve = vec!["serve".to_string()];
            serve.extend(args.serve_args.iter().cloned());
            Target::Stdio {
                command: exe.to_string_lossy().into_owned(),
                args: serve,
            }
        }
    };
    let entry = setup::entry(args.client, &target)?;
    let path = match &args.config_path {
        Some(p) => p.clone(),
        None => args
            .client
            .default_path(&std::env::current_dir().context("reading the working directory")?)?,
    };
    if args.write {
        let replaced = setup::write(args.client, &path, &args.name, &entry)?;
        eprintln!(
            "{} `{}` in {}",
            if replaced { "replaced" } else { "added" },
            args.name,
            path.display()
        );
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&setup::document(args.client, &args.name, &entry))?
        );
        eprintln!("(merge into {}, or run again with --write)", path.display());
    }
    if args.client == Client::ClaudeDesktop {
        eprintln!(
            "note: Claude Desktop expands no variables; for the github tools add \"env\": {{\"GITHUB_TOKEN\": \"...\"}} to the entry by hand (keep the file private)"
        );
    }
    Ok(())
}

fn start(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.options)?;
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    if let Command::Serve(args) = &command {
        config.conformance_fixtures = args.conformance_fixtures;
        config.settle_integrations_private(args.http);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // The trace exporter batches on the runtime: set up inside it.
    let traces = {
        let _inside = runtime.enter();
        init_logging(&command, &config)?
    };
    match &config.config_file {
        Some(path) => tracing::info!(config_file = %path.display(), "configuration file read"),
        None => {
            tracing::info!("no configuration file read (defaults, CORTEX_MCP_* and flags only)")
        }
    }
    runtime.block_on(async move {
        let result = run(command, config).await;
        if let Some(traces) = traces {
            traces.shutdown().await;
        }
        result
    })
}

/// The stderr log and, for `serve` with `--otlp-endpoint`, the trace exporter (flushed
/// after serving ends).
#[cfg(feature = "otlp")]
fn init_logging(
    command: &Command,
    config: &Config,
) -> anyhow::Result<Option<cortex_mcp::runtime::telemetry::TraceExport>> {
    let otlp = match command {
        Command::Serve(_) => config.otlp.as_ref(),
        _ => None,
    };
    Ok(transport::init_logging_and_traces(
        &config.log_level,
        otlp,
        config.replica_id.as_deref(),
    )?)
}

/// The stderr log (a build without the `otlp` feature refuses `--otlp-endpoint` in the
/// config, so there is never an exporter here).
#[cfg(not(feature = "otlp"))]
fn init_logging(_command: &Command, config: &Config) -> anyhow::Result<Option<NoTraces>> {
    transport::init_logging(&config.log_level);
    Ok(None)
}

/// The exporter of a build without the `otlp` feature: none.
#[cfg(not(feature = "otlp"))]
enum NoTraces {}

#[cfg(not(feature = "otlp"))]
impl NoTraces {
    async fn shutdown(self) {
        match self {}
    }
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
        Command::Tools { stats: true, .. } => {
            let server = CortexServer::build(config)?;
            let tools: Vec<_> = server
                .registry()
                .tools()
                .iter()
                .map(|t| (t.toolset, t.tool.clone()))
                .collect();
            print!(
                "{}",
                cortex_mcp::schemas::render_sizes(&cortex_mcp::schemas::sizes(&tools))
            );
        }
        Command::Tools { json, .. } => print_tools(&CortexServer::build(config)?, json)?,
        Command::Schemas { write, check } => {
            let server = CortexServer::build(config)?;
            match (write, check) {
                (Some(dir), None) => cortex_mcp::schemas::write(&server.catalog(), &dir)?,
                (None, Some(dir)) => cortex_mcp::schemas::check(&server.catalog(), &dir)?,
                _ => bail!("schemas: pass --write DIR or --check DIR"),
            }
        }
        Command::Diff(_) | Command::Setup(_) => {
            bail!("diff and setup are handled before the server starts")
        }
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
