//! The `mcpgate` command: run the gateway, check a config, or run the built-in example server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mcpgate_config::Config;

mod otlp;
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
        /// Enable the tool echo_meta (returns its request's params._meta), for tests of trace
        /// propagation.
        #[arg(long, hide = true)]
        echo_meta: bool,
        /// Protocol generation, for tests of the gateway: session | modern (only the stateless
        /// 2026-07-28) | dual (both).
        #[arg(long, value_name = "ERA", default_value = "session", hide = true)]
        era: mcpgate_example_server::Era,
        /// 2026-07-28: ttlMs of cacheable results, for tests of the gateway's cache hints.
        #[arg(long, value_name = "MS", default_value_t = mcpgate_example_server::DEFAULT_TTL_MS, hide = true)]
        ttl_ms: u64,
        /// 2026-07-28: cacheable results say cacheScope "private".
        #[arg(long, hide = true)]
        cache_private: bool,
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
            Command::ExampleServer {
                name,
                page_size,
                fault,
                echo_meta,
                era,
                ttl_ms,
                cache_private,
            } => {
                let opts = mcpgate_example_server::Options {
                    name,
                    page_size: (page_size > 0).then_some(page_size),
                    faults: fault,
                    echo_meta,
                    era,
                    ttl_ms,
                    cache_private,
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
    // Signals are caught from the start, so one arriving during start-up drains too.
    let mut signals = Signals::new()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // ---- Observability (issue 5): the access log file, a metrics listener of its own ----
    mcpgate_core::observe::check_access_log(&config).context("cannot open the access log file")?;
    let m = &config.observability.metrics;
    let metrics_listener = match m.address.filter(|_| m.enabled) {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (observability.metrics.address)"))?,
        ),
        None => None,
    };
    let (pipeline, tracing) = match &config.observability.tracing {
        Some(t) => {
            let (p, t) = otlp::start(t).context("cannot start the OpenTelemetry exporter")?;
            (Some(p), Some(t))
        }
        None => (None, None),
    };
    let gw = mcpgate_core::Gateway::start_traced(config, tracing);
    gw.config().auth.start();
    let _watcher = reload::spawn(path.clone(), gw.clone());
    let metrics_path = gw.config().observability.metrics.path.clone();
    let metrics_url = match metrics_listener {
        Some(l) => {
            let at = l.local_addr()?;
            // Serves until the process exits, so metrics stay scrapeable while draining.
            tokio::spawn(mcpgate_http::serve_metrics(l, gw.clone(), std::future::pending()));
            Some(format!("http://{at}{metrics_path}"))
        }
        None if gw.telemetry().metrics().enabled() => Some(format!("http://{local}{metrics_path}")),
        None => None,
    };
    tracing::info!(
        streamable_http = %format!("http://{local}{mcp}"),
        sse = %format!("http://{local}{sse}"),
        metrics = metrics_url.as_deref().unwrap_or("off"),
        targets = gw.config().targets.len(),
        "mcpgate is listening."
    );
    let (close_listener, listener_closed) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(mcpgate_http::serve(listener, gw.clone(), async move {
        let _ = listener_closed.await;
    }));
    let signal = tokio::select! {
        s = signals.next() => s,
        r = &mut server => {
            // The server stopped on its own: an error.
            gw.shutdown().await;
            return match r {
                Ok(r) => r.context("server failed"),
                Err(e) => Err(anyhow::anyhow!("server task failed: {e}")),
            };
        }
    };
    drain(gw, signals, signal, close_listener, server).await;
    if let Some(p) = pipeline {
        p.shutdown(Duration::from_secs(5)).await;
    }
    Ok(())
}

/// The graceful shutdown sequence (docs/operations.md): not ready and no new sessions →
/// (after `shutdown.announce`) the listener closes → in-flight requests get
/// `shutdown.drain_timeout` → sessions end (SSE streams flushed and closed) → upstreams close
/// (stdio process groups: TERM, grace, KILL). A second signal exits at once.
async fn drain(
    gw: mcpgate_core::Gateway,
    mut signals: Signals,
    signal: &'static str,
    close_listener: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let cfg = gw.config().shutdown.clone();
    tracing::info!(
        signal,
        drain_timeout_ms = cfg.drain_timeout.as_millis() as u64,
        "Shutting down gracefully; a second signal exits at once."
    );
    gw.begin_drain();
    {
        let gw = gw.clone();
        tokio::spawn(async move {
            let again = signals.next().await;
            tracing::warn!(signal = again, "Second signal: exiting now.");
            gw.kill_processes_now();
            std::process::exit(130);
        });
    }
    tokio::time::sleep(cfg.announce).await;
    let _ = close_listener.send(());
    if !gw.wait_idle(cfg.drain_timeout).await {
        tracing::warn!(
            in_flight = gw.in_flight_requests(),
            "Drain timeout: cancelling the requests still in flight."
        );
    }
    gw.close_all_sessions();
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "The listener ended with an error."),
        Err(_) => tracing::warn!("Connections still open after the drain; closing them."),
        _ => {}
    }
    if tokio::time::timeout(Duration::from_secs(15), gw.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Upstreams did not close in time; killing stdio process groups.");
        gw.kill_processes_now();
    }
    tracing::info!("Shut down.");
}

/// SIGTERM and SIGINT.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
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
        let detail = s
            .error
            .clone()
            .or(s
                .protocol_version
                .as_ref()
                .map(|v| format!("{v} ({})", s.generation.unwrap_or("session"))))
            .unwrap_or_default();
        println!("  {:<20} {:<10} {}", s.name, s.state, detail);
        if s.state != "up" {
            down += 1;
            if !s.stderr.is_empty() {
                println!("    last stderr lines:");
                for line in &s.stderr {
                    println!("      {line}");
                }
            }
        }
    }
    gw.shutdown().await;
    anyhow::ensure!(down == 0, "{down} target(s) did not answer");
    Ok(())
}
