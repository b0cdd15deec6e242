//! The `mcpgate-example-server` binary: parses flags into [`Options`] and serves stdio (the
//! default) or HTTP. Logs go to stderr only; on stdio, stdout carries nothing but MCP messages.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mcpgate_example_server::{DEFAULT_NAME, DEFAULT_TTL_MS, Era, ExampleServer, Fault, Options, ServeError};

/// A small MCP server: example tools, prompts and resources, plus fixture knobs for tests and
/// benchmarks. Serves stdio unless --http is given.
#[derive(Debug, Parser)]
#[command(name = "mcpgate-example-server", version)]
struct Cli {
    /// Serve HTTP on this address (e.g. 127.0.0.1:0) instead of stdio: Streamable HTTP at /mcp,
    /// legacy HTTP+SSE at /sse and /message. Prints `listening on http://ADDR` on stdout first.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// HTTP: no sessions (no Mcp-Session-Id, no GET stream, no server-to-client requests).
    #[arg(long, requires = "http")]
    stateless: bool,
    /// HTTP: answer every POSTed request with an SSE stream instead of JSON.
    #[arg(long, requires = "http")]
    sse_responses: bool,
    /// serverInfo.name reported by initialize.
    #[arg(long, default_value = DEFAULT_NAME)]
    name: String,
    /// Paginate tools/prompts/resources/templates lists with this page size (0 = no pagination).
    #[arg(long, value_name = "N", default_value_t = 0)]
    page_size: usize,
    /// Add N generated echo tools tool_0000, tool_0001, … (for big-list benchmarks).
    #[arg(long, value_name = "N", default_value_t = 0)]
    extra_tools: usize,
    /// Enable the tool blob_result, which returns a text of exactly N bytes.
    #[arg(long, value_name = "N")]
    result_bytes: Option<usize>,
    /// Delay every tools/call by this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    delay_ms: u64,
    /// Inject a fault (repeatable): hang | crash-after:N | garbage | slow-start:MS | hang-after:N | flaky-lists:N.
    #[arg(long, value_name = "FAULT")]
    fault: Vec<Fault>,
    /// Enable the tool echo_meta, which returns its request's params._meta.
    #[arg(long)]
    echo_meta: bool,
    /// Protocol generation: session (initialize and sessions, 2024-11-05 to 2025-11-25),
    /// modern (only the stateless 2026-07-28: server/discover, per-request _meta,
    /// input_required results, subscriptions/listen; initialize is refused with -32022), or
    /// dual (both; a request whose _meta carries io.modelcontextprotocol/protocolVersion is
    /// served statelessly, initialize opens a session).
    #[arg(long, value_name = "ERA", default_value = "session")]
    era: Era,
    /// 2026-07-28: ttlMs of cacheable results (server/discover, lists, resources/read).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TTL_MS)]
    ttl_ms: u64,
    /// Add the x-mcp-header fixtures: xh_route (parameters mirrored into Mcp-Param-*
    /// headers) and xh_bad_* (invalid annotations, which clients must not list).
    #[arg(long)]
    xheader_tools: bool,
    /// 2026-07-28 over HTTP: an SSE comment on a subscriptions/listen stream after this many
    /// milliseconds without a notification (0 = none).
    #[arg(long, value_name = "MS", default_value_t = 0, requires = "http")]
    keep_alive_ms: u64,
    /// 2026-07-28: cacheable results say cacheScope "private" instead of "public".
    #[arg(long)]
    cache_private: bool,
}

impl Cli {
    fn options(&self) -> Options {
        Options {
            name: self.name.clone(),
            page_size: (self.page_size > 0).then_some(self.page_size),
            extra_tools: self.extra_tools,
            result_bytes: self.result_bytes,
            call_delay: Duration::from_millis(self.delay_ms),
            faults: self.fault.clone(),
            stateless: self.stateless,
            sse_responses: self.sse_responses,
            echo_meta: self.echo_meta,
            era: self.era,
            ttl_ms: self.ttl_ms,
            xheader_tools: self.xheader_tools,
            listen_keep_alive: (self.keep_alive_ms > 0).then(|| Duration::from_millis(self.keep_alive_ms)),
            cache_private: self.cache_private,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MCPGATE_EXAMPLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpgate-example-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => {
            // Do not wait for a blocked stdin reader thread.
            runtime.shutdown_timeout(Duration::from_millis(100));
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "The example server stopped.");
            // Exit at once, like a crash: no runtime teardown, nothing more on stdout.
            std::process::exit(1);
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let server = ExampleServer::new(cli.options());
    match cli.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let bound = listener.local_addr()?;
            {
                let mut out = std::io::stdout().lock();
                writeln!(out, "listening on http://{bound}")?;
                out.flush()?;
            }
            let stop = server.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    stop.shutdown();
                }
            });
            server.serve_http(listener).await?;
            Ok(())
        }
        None => match server.serve_stdio().await {
            Ok(()) => Ok(()),
            Err(ServeError::Crashed) => Err(anyhow::anyhow!(ServeError::Crashed)),
            Err(e) => Err(e.into()),
        },
    }
}
