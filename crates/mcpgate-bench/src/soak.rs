//! `mcpgate-bench soak`: the bounded load test of issue 4. N sessions call tools on two
//! targets for a while (an HTTP example server, and a shared stdio one); midway one target is
//! killed (the HTTP server process, or the stdio process) and brought back. At the end it
//! checks, and says which check failed:
//! - every request was answered (a result or a JSON-RPC error; no client timeout, no broken
//!   connection);
//! - errors only for the killed target, and only while it was down (plus a recovery grace);
//! - the gateway's RSS at the end within a bound of its RSS after warm-up;
//! - its file descriptors back to the warm-up count with the sessions open, and back to the
//!   idle count once they are closed.
//!
//! Unlike the suite it asserts (exit status 1 on a failed check); it is a resilience test, not
//! a performance measurement.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::client::{Accept, ClientError, Endpoint, McpHttp};
use crate::procstat;

/// Which target is killed midway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Victim {
    /// Stop the HTTP example server process, then start a new one on the same port.
    Http,
    /// SIGKILL the stdio server process; the gateway restarts it.
    Stdio,
}

/// Options of `soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Length of the measured run (after warm-up).
    #[arg(long, default_value = "3m", value_parser = crate::parse_duration)]
    pub duration: Duration,
    /// Warm-up before the baseline is taken.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub warmup: Duration,
    /// Pause of each session between two calls.
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    pub think: Duration,
    /// The target killed midway.
    #[arg(long, value_enum, default_value_t = Victim::Http)]
    pub kill: Victim,
    /// How long the killed HTTP server stays down.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub down_for: Duration,
    /// After the target is back, errors are still expected for this long (reconnect backoff,
    /// re-initialized upstream sessions).
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    pub recovery: Duration,
    /// A request unanswered after this long counts as lost.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    pub request_timeout: Duration,
    /// Allowed RSS growth from the warm-up baseline to the end, in MiB.
    #[arg(long, default_value_t = 64)]
    pub rss_slack_mib: u64,
    /// Allowed difference in open file descriptors from the baseline.
    #[arg(long, default_value_t = 16)]
    pub fd_slack: usize,
    /// After the sessions close, how long the descriptors get to return to the idle count
    /// (idle pooled connections to HTTP upstreams are closed by the pool after 90 s).
    #[arg(long, default_value = "100s", value_parser = crate::parse_duration)]
    pub settle: Duration,
    /// Directory holding `mcpgate` and `mcpgate-example-server` (default: beside this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Counts per target.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    /// JSON-RPC errors (the gateway answered with an error).
    errors: AtomicU64,
    /// Errors outside the allowed window.
    errors_outside: AtomicU64,
    /// Client timeouts, broken connections, non-200 statuses: requests without an answer.
    unanswered: AtomicU64,
    /// First and last error, ms since the start (0: none).
    first_error_ms: AtomicU64,
    last_error_ms: AtomicU64,
    /// One error message, for the report.
    sample: std::sync::Mutex<Option<String>>,
}

#[derive(serde::Serialize)]
struct TargetReport {
    ok: u64,
    errors: u64,
    errors_outside_window: u64,
    unanswered: u64,
    first_error_ms: u64,
    last_error_ms: u64,
    error_sample: Option<String>,
}

impl Counts {
    fn report(&self) -> TargetReport {
        TargetReport {
            ok: self.ok.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            errors_outside_window: self.errors_outside.load(Ordering::Relaxed),
            unanswered: self.unanswered.load(Ordering::Relaxed),
            first_error_ms: self.first_error_ms.load(Ordering::Relaxed),
            last_error_ms: self.last_error_ms.load(Ordering::Relaxed),
            error_sample: self.sample.lock().ok().and_then(|s| s.clone()),
        }
    }
}

#[derive(serde::Serialize)]
struct Report {
    sessions: usize,
    duration_s: f64,
    killed: Victim,
    down_s: f64,
    /// ms since the start: the kill, and the end of the allowed error window.
    kill_ms: u64,
    window_end_ms: u64,
    http_target: TargetReport,
    stdio_target: TargetReport,
    sessions_failed_to_open: u64,
    rss_kib_after_warmup: u64,
    rss_kib_end: u64,
    rss_kib_peak: u64,
    fds_idle: usize,
    fds_after_warmup: usize,
    fds_end: usize,
    /// Of `fds_after_warmup` / `fds_end`: connections to the HTTP upstream.
    upstream_after_warmup: usize,
    upstream_end: usize,
    fds_after_close: usize,
    /// Seconds until the descriptors were back (or the settle time ran out).
    settled_s: f64,
    /// Of `fds_after_close`: idle pooled connections to the HTTP upstream.
    pooled_upstream_connections: usize,
    failures: Vec<String>,
}

/// The shared clock of the run: when errors are allowed for the killed target.
struct Window {
    start: Instant,
    /// Milliseconds since `start`: the kill, and the end of the recovery (0: not yet known).
    kill_ms: AtomicU64,
    back_ms: AtomicU64,
}

impl Window {
    fn allows_error(&self, at: Instant) -> bool {
        let t = at.duration_since(self.start).as_millis() as u64;
        let kill = self.kill_ms.load(Ordering::Acquire);
        let back = self.back_ms.load(Ordering::Acquire);
        kill != 0 && t + 50 >= kill && (back == 0 || t <= back)
    }
}

/// Runs the soak test.
pub async fn run(a: SoakArgs) -> anyhow::Result<()> {
    let bin = match &a.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has no directory")?
            .to_path_buf(),
    };
    let dir = tempdir()?;
    let http_port = free_port()?;
    let mut upstream = start_example(&bin, http_port).await?;
    let gw_port = free_port()?;
    let stdio_marker = format!("soak-stdio-{}", std::process::id());
    let config = format!(
        "listen:\n  address: 127.0.0.1:{gw_port}\n  max_sessions: {max}\nsupervision:\n  backoff_initial: 100ms\n  backoff_max: 1s\n  crash_loop_restarts: 100\ntargets:\n  - name: web\n    streamable_http:\n      url: http://127.0.0.1:{http_port}/mcp\n    connect_timeout: 2s\n    request_timeout: 20s\n    circuit_breaker:\n      open_for: 2s\n  - name: local\n    stdio:\n      command: {mcpgate:?}\n      args: [example-server, --name, {stdio_marker}]\n    session: shared\n    request_timeout: 20s\n",
        max = a.sessions * 2 + 100,
        mcpgate = bin.join("mcpgate").display().to_string(),
    );
    let cfg_path = dir.join("soak.yaml");
    std::fs::write(&cfg_path, config)?;
    let mut gw = Command::new(bin.join("mcpgate"))
        .args(["run", "-c"])
        .arg(&cfg_path)
        .env("MCPGATE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("gateway.log"))?))
        .kill_on_drop(true)
        .spawn()
        .context("cannot start mcpgate")?;
    let gw_pid = gw.id().context("mcpgate exited")?;
    wait_ready(gw_port).await?;
    let fds_idle = fds(gw_pid);

    let ep = Arc::new(Endpoint::parse(&format!("http://127.0.0.1:{gw_port}/mcp"), None)?);
    let web = Arc::new(Counts::default());
    let local = Arc::new(Counts::default());
    let window = Arc::new(Window {
        start: Instant::now(),
        kill_ms: AtomicU64::new(0),
        back_ms: AtomicU64::new(0),
    });
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let open_failures = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(a.sessions);
    for i in 0..a.sessions {
        let w = Worker {
            ep: ep.clone(),
            web: web.clone(),
            local: local.clone(),
            window: window.clone(),
            measuring: measuring.clone(),
            stop: stop.clone(),
            open_failures: open_failures.clone(),
            think: a.think,
            timeout: a.request_timeout,
            // Spread the sessions over one think time.
            offset: a.think.mul_f64(i as f64 / a.sessions.max(1) as f64),
        };
        workers.push(tokio::spawn(w.run()));
    }

    tokio::time::sleep(a.warmup).await;
    measuring.store(true, Ordering::Release);
    let base = procstat::sample(gw_pid)?;
    let fds_after_warmup = fds(gw_pid);
    let upstream_after_warmup = sockets_to(gw_pid, http_port);
    procstat::reset_peak(gw_pid);
    let measured_from = Instant::now();

    // Midway: kill the victim, bring it back.
    tokio::time::sleep(a.duration / 3).await;
    window
        .kill_ms
        .store(window.start.elapsed().as_millis().max(1) as u64, Ordering::Release);
    let down_started = Instant::now();
    match a.kill {
        Victim::Http => {
            let _ = upstream.kill().await;
            tokio::time::sleep(a.down_for).await;
            upstream = start_example(&bin, http_port).await?;
        }
        Victim::Stdio => {
            let pids = processes_with(&stdio_marker);
            if pids.is_empty() {
                bail!("no stdio server process with {stdio_marker} to kill");
            }
            for pid in pids {
                // SAFETY: kill(2) on a process this run started (through the gateway).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
    let down = down_started.elapsed();
    window.back_ms.store(
        (window.start.elapsed() + a.recovery).as_millis() as u64,
        Ordering::Release,
    );
    let rest = a.duration.saturating_sub(measured_from.elapsed());
    tokio::time::sleep(rest).await;

    let end = procstat::sample(gw_pid)?;
    let fds_end = fds(gw_pid);
    let upstream_end = sockets_to(gw_pid, http_port);
    stop.store(true, Ordering::Release);
    for w in workers {
        let _ = w.await;
    }
    // Sessions are closed (DELETE) by the workers; the upstream pool keeps idle connections
    // for up to 90 s.
    let settle_from = Instant::now();
    // Idle pooled connections to the HTTP upstream are reported apart: they are bounded by
    // the peak of concurrent upstream requests, not by time.
    let settled = |pooled: usize, fds: usize| fds <= fds_idle + a.fd_slack + pooled;
    let mut fds_after_close = fds(gw_pid);
    let mut pooled = sockets_to(gw_pid, http_port);
    while !settled(pooled, fds_after_close) && settle_from.elapsed() < a.settle {
        tokio::time::sleep(Duration::from_secs(1)).await;
        fds_after_close = fds(gw_pid);
        pooled = sockets_to(gw_pid, http_port);
    }
    let settled_s = settle_from.elapsed().as_secs_f64();

    let mut failures = Vec::new();
    let (wr, lr) = (web.report(), local.report());
    let (killed, other, killed_name, other_name) = match a.kill {
        Victim::Http => (&wr, &lr, "web (HTTP)", "local (stdio)"),
        Victim::Stdio => (&lr, &wr, "local (stdio)", "web (HTTP)"),
    };
    if wr.unanswered + lr.unanswered > 0 {
        failures.push(format!(
            "{} request(s) got no answer (timeout or broken connection)",
            wr.unanswered + lr.unanswered
        ));
    }
    if other.errors > 0 {
        failures.push(format!(
            "{} error(s) on {other_name}, which was never killed",
            other.errors
        ));
    }
    if killed.errors_outside_window > 0 {
        failures.push(format!(
            "{} error(s) on {killed_name} outside the window it was down",
            killed.errors_outside_window
        ));
    }
    if killed.ok == 0 || other.ok == 0 {
        failures.push("a target answered no call at all".into());
    }
    if end.rss_kb > base.rss_kb + a.rss_slack_mib * 1024 {
        failures.push(format!(
            "RSS grew from {} KiB after warm-up to {} KiB at the end (allowed: +{} MiB)",
            base.rss_kb, end.rss_kb, a.rss_slack_mib
        ));
    }
    // With the same sessions open, descriptors other than connections to the HTTP upstream
    // must stay put. Those connections are the pool's: after the upstream was killed and came
    // back their number follows the peak of concurrent requests, not the sessions, and is
    // bounded apart (two per session, below).
    let others_warm = fds_after_warmup.saturating_sub(upstream_after_warmup);
    let others_end = fds_end.saturating_sub(upstream_end);
    if others_end > others_warm + a.fd_slack {
        failures.push(format!(
            "file descriptors other than upstream connections grew from {others_warm} to {others_end} with the same sessions open"
        ));
    }
    if upstream_end > 2 * a.sessions + a.fd_slack {
        failures.push(format!(
            "{upstream_end} connections to the HTTP upstream with {} sessions open (bound: two per session)",
            a.sessions
        ));
    }
    if fds_after_close > fds_idle + a.fd_slack + pooled {
        failures.push(format!(
            "{fds_after_close} file descriptors open after every session closed (idle: {fds_idle}, idle pooled upstream connections: {pooled})"
        ));
    }
    // Each per-client upstream session may have had its GET stream and a POST in flight at
    // once: two connections per session bound the pool.
    if pooled > 2 * a.sessions + a.fd_slack {
        failures.push(format!(
            "{pooled} pooled connections to the HTTP upstream for {} sessions (bound: two per session)",
            a.sessions
        ));
    }
    let report = Report {
        sessions: a.sessions,
        duration_s: a.duration.as_secs_f64(),
        killed: a.kill,
        down_s: down.as_secs_f64(),
        kill_ms: window.kill_ms.load(Ordering::Relaxed),
        window_end_ms: window.back_ms.load(Ordering::Relaxed),
        http_target: wr,
        stdio_target: lr,
        sessions_failed_to_open: open_failures.load(Ordering::Relaxed),
        rss_kib_after_warmup: base.rss_kb,
        rss_kib_end: end.rss_kb,
        rss_kib_peak: end.hwm_kb,
        fds_idle,
        fds_after_warmup,
        fds_end,
        upstream_after_warmup,
        upstream_end,
        fds_after_close,
        settled_s,
        pooled_upstream_connections: pooled,
        failures,
    };
    if report.sessions_failed_to_open > 0 {
        // Counted among unanswered requests too; reported for clarity.
    }
    // The gateway drains and exits cleanly on SIGTERM.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(gw_pid as i32, libc::SIGTERM) };
    let exit = tokio::time::timeout(Duration::from_secs(40), gw.wait()).await;
    let _ = upstream.kill().await;
    let mut report = report;
    match exit {
        Ok(Ok(s)) if s.success() => {}
        other => report
            .failures
            .push(format!("the gateway did not exit cleanly on SIGTERM: {other:?}")),
    }
    if !processes_with(&stdio_marker).is_empty() {
        report
            .failures
            .push("a stdio server process outlived the gateway".into());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !report.failures.is_empty() {
        bail!("soak failed: {}", report.failures.join("; "));
    }
    Ok(())
}

fn print_report(r: &Report) {
    println!(
        "soak: {} sessions for {:.0} s; killed the {:?} target for {:.1} s",
        r.sessions, r.duration_s, r.killed, r.down_s
    );
    println!(
        "  killed at {:.1} s; errors allowed until {:.1} s",
        r.kill_ms as f64 / 1000.0,
        r.window_end_ms as f64 / 1000.0
    );
    for (name, t) in [("web (HTTP)", &r.http_target), ("local (stdio)", &r.stdio_target)] {
        println!(
            "  {name:<14} ok {:>8}  errors {:>6} (outside the down window: {}, from {:.1} s to {:.1} s)  unanswered {}",
            t.ok,
            t.errors,
            t.errors_outside_window,
            t.first_error_ms as f64 / 1000.0,
            t.last_error_ms as f64 / 1000.0,
            t.unanswered
        );
        if let Some(e) = &t.error_sample {
            println!("    e.g. {e}");
        }
    }
    println!(
        "  gateway RSS: {} KiB after warm-up, {} KiB at the end (peak {} KiB)",
        r.rss_kib_after_warmup, r.rss_kib_end, r.rss_kib_peak
    );
    println!(
        "  gateway fds: {} idle, {} after warm-up ({} to the HTTP upstream), {} at the end ({} to the HTTP upstream), {} after the sessions closed (after {:.0} s; {} of them idle pooled connections to the HTTP upstream)",
        r.fds_idle,
        r.fds_after_warmup,
        r.upstream_after_warmup,
        r.fds_end,
        r.upstream_end,
        r.fds_after_close,
        r.settled_s,
        r.pooled_upstream_connections
    );
    if r.failures.is_empty() {
        println!("  every check passed");
    } else {
        for f in &r.failures {
            println!("  FAILED: {f}");
        }
    }
}

struct Worker {
    ep: Arc<Endpoint>,
    web: Arc<Counts>,
    local: Arc<Counts>,
    window: Arc<Window>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open_failures: Arc<AtomicU64>,
    think: Duration,
    timeout: Duration,
    offset: Duration,
}

impl Worker {
    async fn run(self) {
        tokio::time::sleep(self.offset).await;
        let mut id = 1u64;
        let mut turn = 0usize;
        'session: while !self.stop.load(Ordering::Acquire) {
            let opened = tokio::time::timeout(self.timeout, async {
                let mut conn = McpHttp::connect(self.ep.clone()).await?;
                let info = conn.initialize(Accept::Both).await?;
                Ok::<_, ClientError>((conn, info))
            })
            .await;
            let (mut conn, info) = match opened {
                Ok(Ok(c)) => c,
                _ => {
                    self.open_failures.fetch_add(1, Ordering::Relaxed);
                    if self.measuring.load(Ordering::Acquire) {
                        self.web.unanswered.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(self.think).await;
                    continue;
                }
            };
            while !self.stop.load(Ordering::Acquire) {
                turn += 1;
                id += 1;
                let (tool, counts) = if turn.is_multiple_of(2) {
                    ("web_echo", &self.web)
                } else {
                    ("local_echo", &self.local)
                };
                let params = format!(r#"{{"name":"{tool}","arguments":{{"message":"soak {id}"}}}}"#);
                let answer = tokio::time::timeout(
                    self.timeout,
                    conn.request(&info, Accept::Both, id, "tools/call", Some(&params)),
                )
                .await;
                let at = Instant::now();
                let measuring = self.measuring.load(Ordering::Acquire);
                match answer {
                    Ok(Ok(_)) => {
                        if measuring {
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(Err(ClientError::Rpc(e))) => {
                        if measuring {
                            let t = at.duration_since(self.window.start).as_millis() as u64;
                            let _ = counts
                                .first_error_ms
                                .compare_exchange(0, t, Ordering::Relaxed, Ordering::Relaxed);
                            counts.last_error_ms.fetch_max(t, Ordering::Relaxed);
                            if let Ok(mut s) = counts.sample.lock()
                                && s.is_none()
                            {
                                *s = Some(e);
                            }
                            counts.errors.fetch_add(1, Ordering::Relaxed);
                            if !self.window.allows_error(at) {
                                counts.errors_outside.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => {
                        if measuring {
                            counts.unanswered.fetch_add(1, Ordering::Relaxed);
                        }
                        continue 'session;
                    }
                }
                tokio::time::sleep(self.think).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.delete(&info)).await;
        }
    }
}

async fn start_example(bin: &Path, port: u16) -> anyhow::Result<Child> {
    let child = Command::new(bin.join("mcpgate-example-server"))
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env("MCPGATE_EXAMPLE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start mcpgate-example-server")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if Instant::now() > deadline {
            bail!("the example server did not listen on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(child)
}

async fn wait_ready(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let _ = s
                .write_all(b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            if buf.starts_with(b"HTTP/1.1 200") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the gateway was not ready after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("mcpgate-soak-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Sockets of process `pid` connected to 127.0.0.1:`port` (from `/proc/PID/net/tcp`).
fn sockets_to(pid: u32, port: u16) -> usize {
    let mine: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    l.to_str()
                        .and_then(|s| s.strip_prefix("socket:["))
                        .and_then(|s| s.strip_suffix(']'))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let want = format!(":{port:04X}");
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[2].ends_with(&want) && mine.contains(f[9])
        })
        .count()
}

/// Pids whose command line has `arg` as one argument.
fn processes_with(arg: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && c.split(|b| *b == 0).any(|a| a == arg.as_bytes())
        {
            out.push(pid);
        }
    }
    out
}
