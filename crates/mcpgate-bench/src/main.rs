//! `mcpgate-bench`: the load generator (`load`, `setup`, `idle`) and the benchmark suite
//! (`suite quick|full|smoke`).

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mcpgate_bench::client::{Accept, Endpoint, Transport};
use mcpgate_bench::load::{self, Call, IdleSessions, LoadSpec};
use mcpgate_bench::{parse_duration, procstat, suite};

/// An MCP-aware load generator and the benchmark suite of mcpgate.
#[derive(Parser)]
#[command(name = "mcpgate-bench", version)]
struct Cli {
    /// Threads of the load generator's runtime (1 keeps it cheapest; it shares the machine
    /// with the server under test).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// N sessions sending one kind of request, closed-loop or at a fixed rate.
    Load(LoadArgs),
    /// Session set-up rate: initialize + notifications/initialized, back to back.
    Setup(SetupArgs),
    /// Opens N idle sessions (optionally each with an open GET stream) and reports the
    /// server's memory per session.
    Idle(IdleArgs),
    /// Every scenario, direct and through the gateway, alternating; writes `.bench/`.
    Suite(suite::SuiteArgs),
    /// The resilience soak test: N sessions on two targets, one killed and restarted midway;
    /// fails unless every request is answered and memory and descriptors stay flat.
    Soak(mcpgate_bench::soak::SoakArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum TransportArg {
    /// Streamable HTTP (`--url` is the MCP endpoint).
    Streamable,
    /// Legacy HTTP+SSE (`--url` is the SSE endpoint, e.g. http://127.0.0.1:8080/sse).
    Sse,
    /// A stdio server per session (`--stdio-command`).
    Stdio,
}

#[derive(Args)]
struct Common {
    /// The server: `http://127.0.0.1:PORT/mcp` (or the `/sse` URL with `--transport sse`).
    #[arg(long, default_value = "http://127.0.0.1:8080/mcp")]
    url: String,
    /// Send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN")]
    bearer: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also report CPU and memory of this process (the server under test) over the window.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    common: Common,
    /// Transport.
    #[arg(long, value_enum, default_value_t = TransportArg::Streamable)]
    transport: TransportArg,
    /// Command line of a stdio server, one argument per flag (`--stdio-command prog
    /// --stdio-command arg`).
    #[arg(long, value_name = "ARG")]
    stdio_command: Vec<String>,
    /// Accepted answer formats on POST.
    #[arg(long, value_enum, default_value_t = Accept::Both)]
    accept: Accept,
    /// Concurrent sessions.
    #[arg(short, long, default_value_t = 16)]
    concurrency: usize,
    /// Measured window.
    #[arg(short, long, value_parser = parse_duration, default_value = "5s")]
    duration: Duration,
    /// Unmeasured warm-up after every session's first request.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    warmup: Duration,
    /// Open loop at this many requests per second in total (default: closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Method to call.
    #[arg(long, default_value = "tools/call")]
    method: String,
    /// For tools/call: the tool.
    #[arg(long, default_value = "echo")]
    tool: String,
    /// For tools/call: the arguments (JSON).
    #[arg(long, default_value = r#"{"message":"hello"}"#)]
    arguments: String,
    /// Raw params for other methods (JSON).
    #[arg(long)]
    params: Option<String>,
    /// Bound on one request.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
}

#[derive(Args)]
struct SetupArgs {
    #[command(flatten)]
    common: Common,
    /// Concurrent workers (one connection each).
    #[arg(short, long, default_value_t = 16)]
    concurrency: usize,
    /// Measured window.
    #[arg(short, long, value_parser = parse_duration, default_value = "5s")]
    duration: Duration,
    /// Unmeasured warm-up.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    warmup: Duration,
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions to open.
    #[arg(short, long, default_value_t = 1000)]
    sessions: usize,
    /// Also open a GET stream per session (one connection each).
    #[arg(long)]
    get_streams: bool,
    /// Keep everything open this long before closing.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    hold: Duration,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()?
    };
    // On SIGINT or SIGTERM the run is dropped, which stops every process the suite started.
    rt.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = dispatch(cli.command) => r,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            _ = term.recv() => anyhow::bail!("terminated"),
        }
    })
}

async fn dispatch(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Load(a) => load_cmd(a).await,
        Cmd::Setup(a) => setup_cmd(a).await,
        Cmd::Idle(a) => idle_cmd(a).await,
        Cmd::Suite(a) => suite::run(a).await,
        Cmd::Soak(a) => mcpgate_bench::soak::run(a).await,
    }
}

fn endpoint(c: &Common) -> anyhow::Result<Arc<Endpoint>> {
    Ok(Arc::new(Endpoint::parse(&c.url, c.bearer.as_deref())?))
}

async fn load_cmd(a: LoadArgs) -> anyhow::Result<()> {
    let transport = match a.transport {
        TransportArg::Streamable => Transport::Streamable {
            ep: endpoint(&a.common)?,
            accept: a.accept,
        },
        TransportArg::Sse => Transport::Legacy {
            ep: endpoint(&a.common)?,
        },
        TransportArg::Stdio => {
            anyhow::ensure!(!a.stdio_command.is_empty(), "--transport stdio needs --stdio-command");
            Transport::Stdio {
                command: a.stdio_command.clone(),
            }
        }
    };
    let call = if a.method == "tools/call" {
        Call::tool(&a.tool, &a.arguments)
    } else {
        Call {
            method: a.method.clone(),
            params: a.params.clone(),
        }
    };
    let spec = LoadSpec {
        transport,
        call,
        concurrency: a.concurrency,
        warmup: a.warmup,
        duration: a.duration,
        rate: a.rate,
        timeout: a.timeout,
        watch_pid: a.common.pid,
    };
    let rec = load::run(&spec).await?;
    let report = rec.report();
    if a.common.json {
        let out = serde_json::json!({
            "kind": "load",
            "url": a.common.url,
            "transport": spec.transport.name(),
            "method": spec.call.method,
            "concurrency": spec.concurrency,
            "mode": if spec.rate.is_some() { "open" } else { "closed" },
            "target_rate_rps": spec.rate,
            "report": report,
            "server": rec.server,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} {} c={} {}: {report}",
            spec.transport.name(),
            spec.call.method,
            spec.concurrency,
            match spec.rate {
                Some(r) => format!("open loop at {r} req/s"),
                None => "closed loop".into(),
            }
        );
        if let Some(s) = &rec.server {
            println!(
                "server: {:.3} CPU s per 1000 requests, RSS {} KiB, peak {} KiB",
                s.cpu_s_per_1k, s.rss_kb, s.hwm_kb
            );
        }
    }
    Ok(())
}

async fn setup_cmd(a: SetupArgs) -> anyhow::Result<()> {
    let ep = endpoint(&a.common)?;
    let rec = load::setup_rate(ep, a.concurrency, a.warmup, a.duration, Duration::from_secs(10)).await?;
    let report = rec.report();
    if a.common.json {
        let out = serde_json::json!({
            "kind": "setup",
            "url": a.common.url,
            "concurrency": a.concurrency,
            "report": report,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("session set-up c={}: {report}", a.concurrency);
    }
    Ok(())
}

async fn idle_cmd(a: IdleArgs) -> anyhow::Result<()> {
    let ep = endpoint(&a.common)?;
    let pid = a.common.pid;
    let read = || pid.and_then(|p| procstat::sample(p).ok());
    let before = read();
    let mut idle = IdleSessions::open(ep, a.sessions, 32).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opened = read();
    if a.get_streams {
        idle.open_streams(64).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let streamed = read();
    tokio::time::sleep(a.hold).await;
    let per = |a: Option<procstat::ProcSample>, b: Option<procstat::ProcSample>, n: usize| match (a, b) {
        (Some(a), Some(b)) if n > 0 => Some((b.rss_kb as f64 - a.rss_kb as f64) * 1024.0 / n as f64),
        _ => None,
    };
    let out = serde_json::json!({
        "kind": "idle",
        "url": a.common.url,
        "sessions": idle.len(),
        "get_streams": idle.streams(),
        "errors": idle.errors,
        "rss_kb": { "before": before.map(|s| s.rss_kb), "sessions": opened.map(|s| s.rss_kb), "streams": streamed.map(|s| s.rss_kb) },
        "bytes_per_session": per(before, opened, idle.len()),
        "bytes_per_session_with_stream": if a.get_streams { per(before, streamed, idle.len()) } else { None },
    });
    let n = idle.len();
    idle.close(32).await;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{n} idle sessions: {out}");
    }
    Ok(())
}
