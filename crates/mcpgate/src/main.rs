//! The `mcpgate` command: run the gateway, check a config, or run the built-in example server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mcpgate_config::Config;

mod reload;
mod token;

/// An MCP gateway: one MCP endpoint (Streamable HTTP and legacy SSE) in front of many MCP
/// servers (stdio, SSE, Streamable HTTP).
#[derive(Parser)]
#[command(name = "mcpgate", version, propagate_version = true)]
struct Cli {
    /// Log filter: a level (`info`, `debug`) or a tracing filter (`mcpgate_core=debug,info`).
    #[arg(long, global = true, env = "MCPGATE_LOG", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, env = "MCPGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines for a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway.
    Run {
        /// Configuration file (YAML, or JSON when it ends in .json).
        #[arg(short, long, env = "MCPGATE_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file, print its targets, and exit (non-zero on error).
    Check {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Also connect to every target and report whether it answers.
        #[arg(long)]
        connect: bool,
    },
    /// Test keys and tokens (ES256) for trying authentication without an identity provider.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Run the built-in example MCP server on stdio (used by examples/quickstart.yaml).
    ExampleServer {
        /// serverInfo.name to report.
        #[arg(long, default_value = mcpgate_example_server::DEFAULT_NAME)]
        name: String,
        /// Paginate lists with this page size (0: no pagination).
        #[arg(long, default_value_t = 0)]
        page_size: usize,
        /// Inject a fault, for tests of the gateway (repeatable): hang | crash-after:N |
        /// garbage | slow-start:MS.
        #[arg(long, value_name = "FAULT", hide = true)]
        fault: Vec<mcpgate_example_server::Fault>,
    },
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Run { config } => run(config).await,
            Command::Check { config, connect } => check(config, connect).await,
            Command::Token { command } => token::run(command),
            Command::ExampleServer { name, page_size, fault } => {
                let opts = mcpgate_example_server::Options {
                    name,
                    page_size: (page_size > 0).then_some(page_size),
                    faults: fault,
                    ..Default::default()
                };
                match mcpgate_example_server::serve_stdio(opts).await {
                    // The crash fault: exit at once, like a crash, without waiting for the
                    // runtime (its stdin reader thread would hold the exit up).
                    Err(e @ mcpgate_example_server::ServeError::Crashed) => {
                        eprintln!("mcpgate example-server: {e}");
                        std::process::exit(1);
                    }
                    other => other.context("example server failed"),
                }
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    let addr = config.listen.address;
    let (mcp, sse) = (config.listen.mcp_path.clone(), config.listen.sse_path.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let gw = mcpgate_core::Gateway::start(config);
    gw.config().auth.start();
    let _watcher = reload::spawn(path.clone(), gw.clone());
    tracing::info!(
        streamable_http = %format!("http://{local}{mcp}"),
        sse = %format!("http://{local}{sse}"),
        targets = gw.config().targets.len(),
        "mcpgate is listening."
    );
    let server = mcpgate_http::serve(listener, gw.clone(), shutdown_signal());
    server.await.context("server failed")?;
    tracing::info!("Shutting down.");
    tokio::time::timeout(Duration::from_secs(10), gw.shutdown()).await.ok();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn check(path: PathBuf, connect: bool) -> anyhow::Result<()> {
    let config = Config::load(&path)?;
    println!("{}: OK", path.display());
    println!(
        "listen: http://{}{} (Streamable HTTP), http://{}{} (SSE)",
        config.listen.address, config.listen.mcp_path, config.listen.address, config.listen.sse_path
    );
    println!("targets ({}):", config.targets.len());
    for t in &config.targets {
        println!("  {:<20} {:<16} {}", t.name, t.transport.kind(), t.transport.describe());
    }
    println!(
        "auth: {} · policies: {} rules, default {}",
        format!("{:?}", config.auth.mode()).to_lowercase(),
        config.policy.len(),
        if config.policy.default_allow() { "allow" } else { "deny" }
    );
    if !connect {
        return Ok(());
    }
    let wait = config
        .targets
        .iter()
        .map(|t| t.connect_timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(1);
    let gw = mcpgate_core::Gateway::start(config);
    gw.wait_targets_settled(wait).await;
    let mut down = 0;
    for s in gw.target_status() {
        let detail = s.error.clone().or(s.protocol_version.clone()).unwrap_or_default();
        println!("  {:<20} {:<10} {}", s.name, s.state, detail);
        if s.state != "up" {
            down += 1;
        }
    }
    gw.shutdown().await;
    anyhow::ensure!(down == 0, "{down} target(s) did not answer");
    Ok(())
}
