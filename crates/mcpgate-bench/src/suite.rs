//! The benchmark suite: every scenario of the benchmark plan (docs/benchmarks.md), each run
//! **direct to the upstream and through the gateway in the same run, alternating** (ABBA
//! order across rounds, so drift in the machine's load hits both sides alike), with the
//! ratios, the gateway's CPU seconds per 1,000 calls and peak RSS from `/proc`, a JSON
//! results file and a markdown summary under `.bench/`.
//!
//! Everything it starts (fixture upstreams, gateways) listens on 127.0.0.1 ports chosen at
//! run time, is asked to stop (SIGTERM, then SIGKILL) when its scenario ends, and gets
//! SIGTERM from the kernel if the suite itself dies (`PR_SET_PDEATHSIG`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::client::{Accept, Endpoint, HttpConn, McpHttp, Transport};
use crate::load::{self, Call, IdleSessions, LoadSpec, Recorded, Report, ServerCost, new_histogram};
use crate::procstat::{self, ProcSample};

mod traces;

/// How long and how thoroughly to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Seconds: every scenario tiny, to check that the harness works.
    Smoke,
    /// About two minutes.
    Quick,
    /// Several minutes, more rounds and longer windows: for release notes.
    Full,
}

/// `mcpgate-bench suite`.
#[derive(Debug, clap::Args)]
pub struct SuiteArgs {
    /// quick (about two minutes), full (longer, for release notes) or smoke (seconds).
    #[arg(value_enum, default_value_t = Mode::Quick)]
    pub mode: Mode,
    /// Directory holding the `mcpgate` and `mcpgate-example-server` binaries.
    #[arg(long, default_value = "target/release")]
    pub bin_dir: PathBuf,
    /// Results directory (JSON and markdown).
    #[arg(long, default_value = ".bench")]
    pub out: PathBuf,
    /// The example config measured by scenario 7.
    #[arg(long, default_value = "examples/quickstart.yaml")]
    pub example_config: PathBuf,
    /// Run only these scenarios (comma-separated: 1,2,3,4,5,6,7,8,9).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Idle sessions held in scenario 4 (default: 10000; 200 in smoke mode).
    #[arg(long)]
    pub idle_sessions: Option<usize>,
}

/// The knobs of one mode.
#[derive(Debug, Clone, Serialize)]
struct Params {
    rounds: usize,
    #[serde(serialize_with = "secs")]
    warmup: Duration,
    #[serde(serialize_with = "secs")]
    duration: Duration,
    small_concurrency: Vec<usize>,
    big_concurrency: Vec<usize>,
    stdio_concurrency: Vec<usize>,
    setup_concurrency: usize,
    list_first_repeats: usize,
    list_concurrency: Vec<usize>,
    list_targets: usize,
    list_processes: usize,
    idle_sessions: usize,
    startup_repeats: usize,
    transport_variants: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Params {
    fn for_mode(mode: Mode) -> Params {
        match mode {
            Mode::Smoke => Params {
                rounds: 1,
                warmup: Duration::from_millis(100),
                duration: Duration::from_millis(300),
                small_concurrency: vec![1, 4],
                big_concurrency: vec![2],
                stdio_concurrency: vec![2],
                setup_concurrency: 4,
                list_first_repeats: 1,
                list_concurrency: vec![1],
                list_targets: 10,
                list_processes: 2,
                idle_sessions: 200,
                startup_repeats: 2,
                transport_variants: true,
            },
            Mode::Quick => Params {
                rounds: 2,
                warmup: Duration::from_millis(300),
                duration: Duration::from_millis(1500),
                small_concurrency: vec![1, 16, 64],
                big_concurrency: vec![1, 16],
                stdio_concurrency: vec![16],
                setup_concurrency: 16,
                list_first_repeats: 3,
                list_concurrency: vec![1],
                list_targets: 100,
                list_processes: 4,
                idle_sessions: 10_000,
                startup_repeats: 5,
                transport_variants: false,
            },
            Mode::Full => Params {
                rounds: 4,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(4),
                small_concurrency: vec![1, 16, 64],
                big_concurrency: vec![1, 16, 64],
                stdio_concurrency: vec![1, 16],
                setup_concurrency: 16,
                list_first_repeats: 10,
                list_concurrency: vec![1, 4],
                list_targets: 100,
                list_processes: 4,
                idle_sessions: 10_000,
                startup_repeats: 20,
                transport_variants: true,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Processes

/// A process the suite started; stopped on drop if not stopped before.
struct Proc {
    name: String,
    child: Child,
    pid: u32,
    log: Arc<Mutex<VecDeque<String>>>,
    stopped: bool,
}

impl Proc {
    fn sample(&self) -> Option<ProcSample> {
        procstat::sample(self.pid).ok()
    }

    fn tail(&self) -> String {
        let log = self.log.lock().expect("log lock");
        let lines: Vec<String> = log.iter().cloned().collect();
        format!("{} (pid {}) said:\n{}", self.name, self.pid, lines.join("\n"))
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    async fn stop(mut self) {
        self.stopped = true;
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.stopped || matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.start_kill();
    }
}

/// A command whose process gets SIGTERM if the suite dies (`PR_SET_PDEATHSIG`). With
/// `guard` false it is started without that hook: a `pre_exec` hook makes the standard
/// library fork the suite's whole address space instead of spawning, which costs tens of
/// milliseconds once the suite has held 10,000 sessions — too much noise for start-up times.
fn command(prog: &Path, guard: bool) -> Command {
    let mut cmd = Command::new(prog);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if guard {
        // SAFETY: prctl is async-signal-safe; it only sets a flag of the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    cmd
}

/// Keeps the last lines of a stream, for error messages.
fn drain_into(stream: impl AsyncRead + Unpin + Send + 'static, log: Arc<Mutex<VecDeque<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut l = log.lock().expect("log lock");
            if l.len() >= 40 {
                l.pop_front();
            }
            l.push_back(line);
        }
    });
}

/// Reads lines until `pick` returns something (or the stream ends, or `timeout`).
async fn wait_line<R: AsyncRead + Unpin>(
    lines: &mut tokio::io::Lines<BufReader<R>>,
    log: &Arc<Mutex<VecDeque<String>>>,
    timeout: Duration,
    mut pick: impl FnMut(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let found = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(v) = pick(&line) {
                return Ok(v);
            }
            log.lock().expect("log lock").push_back(line);
        }
        bail!("the process ended before it was ready")
    })
    .await;
    match found {
        Ok(r) => r,
        Err(_) => bail!("not ready after {timeout:?}"),
    }
}

/// An HTTP process and its base URL (`http://127.0.0.1:PORT`).
struct Server {
    proc: Proc,
    base: String,
}

impl Server {
    fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn endpoint(&self, path: &str) -> Arc<Endpoint> {
        Arc::new(Endpoint::parse(&format!("{}{path}", self.base), None).expect("valid base URL"))
    }

    fn streamable(&self) -> Transport {
        Transport::Streamable {
            ep: self.endpoint("/mcp"),
            accept: Accept::Both,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Results

/// pass, miss, info, failed.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Pass,
    Miss,
    Info,
    Failed,
}

impl Verdict {
    fn md(self) -> &'static str {
        match self {
            Verdict::Pass => "✅ pass",
            Verdict::Miss => "❌ miss",
            Verdict::Info => "",
            Verdict::Failed => "💥 failed",
        }
    }
}

/// One line of the summary table.
#[derive(Debug, Clone, Serialize)]
struct Row {
    scenario: String,
    metric: String,
    unit: &'static str,
    direct: Option<f64>,
    gateway: Option<f64>,
    /// `gateway/direct` for throughputs, `gateway − direct` for latencies.
    versus: Option<String>,
    bar: Option<String>,
    verdict: Verdict,
    /// Spread of the per-round ratios (how noisy the figure was).
    #[serde(skip_serializing_if = "Option::is_none")]
    noise: Option<String>,
}

/// One direct-vs-gateway load comparison.
#[derive(Debug, Clone, Serialize)]
struct Comparison {
    label: String,
    transport: &'static str,
    method: String,
    concurrency: usize,
    direct: Report,
    gateway: Report,
    gateway_cost: Option<ServerCost>,
    throughput_ratio: f64,
    added_p50_us: f64,
    added_p99_us: f64,
    round_throughput_ratios: Vec<f64>,
    round_added_p50_us: Vec<f64>,
    direct_round_rps: Vec<f64>,
    gateway_round_rps: Vec<f64>,
}

impl Comparison {
    fn ratio_noise(&self) -> Option<String> {
        spread(&self.round_throughput_ratios).map(|(lo, hi)| format!("ratio {lo:.2}–{hi:.2}"))
    }

    fn p50_noise(&self) -> Option<String> {
        spread(&self.round_added_p50_us).map(|(lo, hi)| format!("+{lo:.0}…+{hi:.0} µs"))
    }
}

fn spread(v: &[f64]) -> Option<(f64, f64)> {
    if v.len() < 2 {
        return None;
    }
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    Some((lo, hi))
}

#[derive(Debug, Serialize)]
struct ScenarioResult {
    id: &'static str,
    title: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    comparisons: Vec<Comparison>,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    details: serde_json::Value,
}

// ---------------------------------------------------------------------------------------
// The suite

struct Suite {
    args: SuiteArgs,
    p: Params,
    run_dir: PathBuf,
    rows: Vec<Row>,
    scenarios: Vec<ScenarioResult>,
}

/// Runs the suite and writes the results.
pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let mut p = Params::for_mode(args.mode);
    if let Some(n) = args.idle_sessions {
        p.idle_sessions = n;
    }
    for bin in ["mcpgate", "mcpgate-example-server"] {
        let path = args.bin_dir.join(bin);
        anyhow::ensure!(
            path.exists(),
            "{} not found: build with `cargo build --release -p mcpgate -p mcpgate-example-server -p mcpgate-bench`",
            path.display()
        );
    }
    let bin_dir = std::fs::canonicalize(&args.bin_dir)?;
    let args = SuiteArgs { bin_dir, ..args };
    let run_dir = args.out.join("run");
    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    // Absolute: paths written into the configs are resolved relative to the config file.
    let run_dir = std::fs::canonicalize(&run_dir)?;
    p.idle_sessions = fit_fd_limit(p.idle_sessions);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let clock = Instant::now();
    let mut suite = Suite {
        args,
        p,
        run_dir,
        rows: Vec::new(),
        scenarios: Vec::new(),
    };
    eprintln!(
        "mcpgate-bench suite {:?}: {} round(s) of {:?} per comparison, bench runtime on 1 thread unless --threads",
        suite.args.mode, suite.p.rounds, suite.p.duration
    );
    // Scenarios that share the small/100 KB upstream.
    let want = |id: &str| suite.args.only.is_empty() || suite.args.only.iter().any(|o| o == id);
    let (w1, w2, w3, w4, w5, w6, w7, w8) = (
        want("1"),
        want("2"),
        want("3"),
        want("4"),
        want("5"),
        want("6"),
        want("7"),
        want("8"),
    );
    let w9 = want("9");
    let upstream = if w1 || w2 || w4 || w5 || w6 || w7 || w8 || w9 {
        Some(suite.start_upstream("fixture", &["--result-bytes", "102400"]).await?)
    } else {
        None
    };
    if w1 {
        let r = suite.scenario1(upstream.as_ref().expect("started")).await;
        suite.finish("1", "tools/call, small result, Streamable HTTP upstream", r);
    }
    if w2 {
        let r = suite.scenario2(upstream.as_ref().expect("started")).await;
        suite.finish("2", "tools/call, 100 KB result (HTTP) and through a stdio upstream", r);
    }
    if w3 {
        let r = suite.scenario3().await;
        suite.finish("3", "tools/list over 100 targets × 100 tools", r);
    }
    if w4 {
        let r = suite.scenario4(upstream.as_ref().expect("started")).await;
        suite.finish("4", "idle sessions with open GET streams: memory per session", r);
    }
    if w5 {
        let r = suite.scenario5(upstream.as_ref().expect("started")).await;
        suite.finish("5", "session set-up rate with 10 targets", r);
    }
    if w6 {
        let r = suite.scenario6(upstream.as_ref().expect("started")).await;
        suite.finish(
            "6",
            "scenario 1 with JWT authentication and a 50-rule policy, on vs off",
            r,
        );
    }
    if w7 {
        let r = suite.scenario7(upstream.as_ref().expect("started")).await;
        suite.finish("7", "start-up time and idle RSS", r);
    }
    if w8 {
        let r = suite.scenario8(upstream.as_ref().expect("started")).await;
        suite.finish("8", "scenario 1 with metrics and the access log, on vs off", r);
    }
    if w9 {
        let r = suite.scenario9(upstream.as_ref().expect("started")).await;
        suite.finish(
            "9",
            "scenario 1 with OpenTelemetry tracing, every span exported, on vs off",
            r,
        );
    }
    if let Some(u) = upstream {
        u.proc.stop().await;
    }
    suite.write(started, clock.elapsed()).await
}

/// Lowers the idle-session count to what the open-file limit allows (raising the soft
/// limit to the hard one first); children inherit the raised limit.
fn fit_fd_limit(wanted: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return wanted;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    // The bench holds one connection per stream; so does the gateway, plus its upstreams.
    let room = (lim.rlim_cur as usize).saturating_sub(512);
    if room < wanted {
        eprintln!(
            "open-file limit {} allows {room} idle sessions, not {wanted}; scenario 4 uses {room}",
            lim.rlim_cur
        );
        room
    } else {
        wanted
    }
}

impl Suite {
    fn bin(&self, name: &str) -> PathBuf {
        self.args.bin_dir.join(name)
    }

    fn finish(&mut self, id: &'static str, title: &'static str, r: anyhow::Result<ScenarioResult>) {
        match r {
            Ok(mut s) => {
                s.id = id;
                s.title = title;
                self.scenarios.push(s);
            }
            Err(e) => {
                eprintln!("scenario {id} failed: {e:#}");
                self.rows.push(Row {
                    scenario: id.into(),
                    metric: title.into(),
                    unit: "",
                    direct: None,
                    gateway: None,
                    versus: None,
                    bar: None,
                    verdict: Verdict::Failed,
                    noise: Some(format!("{e:#}").chars().take(200).collect()),
                });
                self.scenarios.push(ScenarioResult {
                    id,
                    title,
                    status: "failed",
                    error: Some(format!("{e:#}")),
                    comparisons: vec![],
                    details: serde_json::Value::Null,
                });
            }
        }
    }

    /// Starts `mcpgate-example-server --http 127.0.0.1:0 ARGS`.
    async fn start_upstream(&self, name: &str, args: &[&str]) -> anyhow::Result<Server> {
        let mut cmd = command(&self.bin("mcpgate-example-server"), true);
        cmd.args(["--http", "127.0.0.1:0"])
            .args(args)
            .env("MCPGATE_EXAMPLE_LOG", "warn");
        let mut child = cmd.spawn().context("cannot start mcpgate-example-server")?;
        let pid = child.id().unwrap_or(0);
        let log = Arc::new(Mutex::new(VecDeque::new()));
        drain_into(child.stderr.take().expect("piped"), log.clone());
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let base = wait_line(&mut lines, &log, Duration::from_secs(10), |l| {
            l.strip_prefix("listening on ").map(|u| u.trim().to_owned())
        })
        .await;
        let proc = Proc {
            name: name.to_owned(),
            child,
            pid,
            log: log.clone(),
            stopped: false,
        };
        let base = base.with_context(|| format!("example server {name}: {}", proc.tail()))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { proc, base })
    }

    fn write_config(&self, name: &str, yaml: &str) -> anyhow::Result<PathBuf> {
        let path = self.run_dir.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Starts `mcpgate run -c CONFIG` (the config must listen on 127.0.0.1:0) and returns it
    /// once it logged its address (`guard`: see [`command`]).
    async fn spawn_gateway(&self, name: &str, config: &Path, guard: bool) -> anyhow::Result<Server> {
        let mut cmd = command(&self.bin("mcpgate"), guard);
        cmd.args(["run", "-c"])
            .arg(config)
            .env("MCPGATE_LOG_FORMAT", "json")
            .env("MCPGATE_LOG", "info");
        let mut child = cmd.spawn().context("cannot start mcpgate")?;
        let pid = child.id().unwrap_or(0);
        let log = Arc::new(Mutex::new(VecDeque::new()));
        drain_into(child.stdout.take().expect("piped"), log.clone());
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let url = wait_line(&mut lines, &log, Duration::from_secs(20), |l| {
            if !l.contains("mcpgate is listening") {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v.get("streamable_http")
                .or_else(|| v.get("fields").and_then(|f| f.get("streamable_http")))
                .and_then(|u| u.as_str())
                .map(str::to_owned)
        })
        .await;
        let proc = Proc {
            name: name.to_owned(),
            child,
            pid,
            log: log.clone(),
            stopped: false,
        };
        let url = url.with_context(|| format!("gateway {name}: {}", proc.tail()))?;
        let base = url
            .strip_suffix("/mcp")
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("unexpected MCP URL {url}"))?;
        drain_into(lines.into_inner().into_inner(), log);
        Ok(Server { proc, base })
    }

    /// Starts a gateway and waits until `/readyz` says every target settled.
    async fn start_gateway(&self, name: &str, yaml: &str) -> anyhow::Result<Server> {
        let path = self.write_config(name, yaml)?;
        let gw = self.spawn_gateway(name, &path, true).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match http_get(&gw.base, "/readyz").await {
                Ok((200, _)) => break,
                _ if Instant::now() > deadline => {
                    bail!("gateway {name} not ready after 30 s: {}", gw.proc.tail())
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Ok(gw)
    }

    fn spec(&self, transport: &Transport, call: &Call, c: usize, pid: Option<u32>) -> LoadSpec {
        LoadSpec {
            transport: transport.clone(),
            call: call.clone(),
            concurrency: c,
            warmup: self.p.warmup,
            duration: self.p.duration,
            rate: None,
            timeout: Duration::from_secs(15),
            watch_pid: pid,
        }
    }

    /// Runs `call` at concurrency `c`, direct and through the gateway, alternating.
    async fn compare(
        &self,
        label: &str,
        direct: &Transport,
        gateway: &Transport,
        gw_pid: u32,
        call: &Call,
        c: usize,
    ) -> anyhow::Result<Comparison> {
        let mut d_all = Recorded::default();
        let mut g_all = Recorded::default();
        let (mut ratios, mut added, mut d_rps, mut g_rps) = (vec![], vec![], vec![], vec![]);
        for round in 0..self.p.rounds {
            let mut d = None;
            let mut g = None;
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            for through_gateway in order {
                if through_gateway {
                    let spec = self.spec(gateway, call, c, Some(gw_pid));
                    g = Some(
                        load::run(&spec)
                            .await
                            .with_context(|| format!("{label} through the gateway"))?,
                    );
                } else {
                    let spec = self.spec(direct, call, c, None);
                    d = Some(load::run(&spec).await.with_context(|| format!("{label} direct"))?);
                }
            }
            let (d, g) = (d.expect("ran"), g.expect("ran"));
            if d.throughput() > 0.0 {
                ratios.push(round2(g.throughput() / d.throughput()));
            }
            added.push(round1(g.latency().p50 - d.latency().p50));
            d_rps.push(round1(d.throughput()));
            g_rps.push(round1(g.throughput()));
            d_all.merge(&d, true);
            g_all.merge(&g, true);
        }
        let (dr, gr) = (d_all.report(), g_all.report());
        let cmp = Comparison {
            label: label.to_owned(),
            transport: direct.name(),
            method: call.method.clone(),
            concurrency: c,
            throughput_ratio: if dr.throughput_rps > 0.0 {
                round2(gr.throughput_rps / dr.throughput_rps)
            } else {
                0.0
            },
            added_p50_us: round1(gr.latency_us.p50 - dr.latency_us.p50),
            added_p99_us: round1(gr.latency_us.p99 - dr.latency_us.p99),
            gateway_cost: g_all.server,
            direct: dr,
            gateway: gr,
            round_throughput_ratios: ratios,
            round_added_p50_us: added,
            direct_round_rps: d_rps,
            gateway_round_rps: g_rps,
        };
        eprintln!(
            "  {label} c={c}: direct {:.0} req/s p50 {:.0} µs | gateway {:.0} req/s p50 {:.0} µs | ratio {:.2} (rounds {:?}) | errors {}/{}",
            cmp.direct.throughput_rps,
            cmp.direct.latency_us.p50,
            cmp.gateway.throughput_rps,
            cmp.gateway.latency_us.p50,
            cmp.throughput_ratio,
            cmp.round_throughput_ratios,
            cmp.direct.errors,
            cmp.gateway.errors,
        );
        Ok(cmp)
    }

    /// Summary rows of a comparison: throughput (ratio), p50 and p99 (added), CPU per 1k.
    fn comparison_rows(&mut self, scenario: &str, cmp: &Comparison, bars: Bars) {
        let name = format!("{} c={}", cmp.label, cmp.concurrency);
        let errors = cmp.direct.errors + cmp.gateway.errors;
        let err_note = (errors > 0).then(|| format!("{errors} errors"));
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: format!("{name}: throughput"),
            unit: "req/s",
            direct: Some(cmp.direct.throughput_rps),
            gateway: Some(cmp.gateway.throughput_rps),
            versus: Some(format!("{:.2}×", cmp.throughput_ratio)),
            bar: bars.ratio.map(|b| format!("≥ {b}×")),
            verdict: match bars.ratio {
                _ if errors > 0 => Verdict::Failed,
                Some(b) => verdict(cmp.throughput_ratio >= b),
                None => Verdict::Info,
            },
            noise: join_notes([cmp.ratio_noise(), err_note.clone()]),
        });
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: format!("{name}: p50 latency"),
            unit: "µs",
            direct: Some(cmp.direct.latency_us.p50),
            gateway: Some(cmp.gateway.latency_us.p50),
            versus: Some(format!("{:+.0} µs", cmp.added_p50_us)),
            bar: bars.p50.map(|b| format!("≤ +{b} µs")),
            verdict: bars.p50.map_or(Verdict::Info, |b| verdict(cmp.added_p50_us <= b)),
            noise: cmp.p50_noise(),
        });
        self.rows.push(Row {
            scenario: scenario.into(),
            metric: format!("{name}: p99 latency"),
            unit: "µs",
            direct: Some(cmp.direct.latency_us.p99),
            gateway: Some(cmp.gateway.latency_us.p99),
            versus: Some(format!("{:+.0} µs", cmp.added_p99_us)),
            bar: bars.p99.map(|b| format!("≤ +{b} µs")),
            verdict: bars.p99.map_or(Verdict::Info, |b| verdict(cmp.added_p99_us <= b)),
            noise: None,
        });
        if let Some(cost) = &cmp.gateway_cost {
            self.rows.push(Row {
                scenario: scenario.into(),
                metric: format!("{name}: gateway CPU per 1,000 calls"),
                unit: "CPU s",
                direct: None,
                gateway: Some(round3(cost.cpu_s_per_1k)),
                versus: None,
                bar: None,
                verdict: Verdict::Info,
                noise: None,
            });
        }
    }

    fn info_row(&mut self, scenario: &str, metric: String, unit: &'static str, gateway: f64) {
        self.rows.push(Row {
            scenario: scenario.into(),
            metric,
            unit,
            direct: None,
            gateway: Some(gateway),
            versus: None,
            bar: None,
            verdict: Verdict::Info,
            noise: None,
        });
    }

    fn peak_row(&mut self, scenario: &str, gw: &Server, what: &str) -> Option<ProcSample> {
        let s = gw.proc.sample()?;
        self.info_row(scenario, format!("gateway peak RSS ({what})"), "MiB", mib(s.hwm_kb));
        Some(s)
    }

    // ---- scenario 1 ----
    async fn scenario1(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        eprintln!("scenario 1: tools/call with a small result");
        let gw = self.start_gateway("s1", &one_target_yaml(&up.mcp())).await?;
        let call = Call::tool("echo", r#"{"message":"hello"}"#);
        let mut comparisons = Vec::new();
        for c in self.p.small_concurrency.clone() {
            let cmp = self
                .compare(
                    "tools/call small",
                    &up.streamable(),
                    &gw.streamable(),
                    gw.proc.pid,
                    &call,
                    c,
                )
                .await?;
            let bars = if c == 1 {
                Bars {
                    ratio: None,
                    p50: Some(60.0),
                    p99: Some(250.0),
                }
            } else {
                Bars {
                    ratio: Some(0.6),
                    p50: None,
                    p99: None,
                }
            };
            self.comparison_rows("1", &cmp, bars);
            comparisons.push(cmp);
        }
        if self.p.transport_variants {
            // SSE answers end to end: an upstream that always streams, a client that takes SSE only.
            let sse_up = self.start_upstream("fixture-sse", &["--sse-responses"]).await?;
            let gw_sse = self.start_gateway("s1-sse", &one_target_yaml(&sse_up.mcp())).await?;
            let sse = |s: &Server| Transport::Streamable {
                ep: s.endpoint("/mcp"),
                accept: Accept::Sse,
            };
            let cmp = self
                .compare(
                    "tools/call small, SSE answers",
                    &sse(&sse_up),
                    &sse(&gw_sse),
                    gw_sse.proc.pid,
                    &call,
                    16,
                )
                .await?;
            self.comparison_rows("1", &cmp, Bars::default());
            comparisons.push(cmp);
            gw_sse.proc.stop().await;
            sse_up.proc.stop().await;
            // Legacy HTTP+SSE downstream and upstream.
            let legacy = |s: &Server| Transport::Legacy { ep: s.endpoint("/sse") };
            let cmp = self
                .compare(
                    "tools/call small, legacy SSE",
                    &legacy(up),
                    &legacy(&gw),
                    gw.proc.pid,
                    &call,
                    16,
                )
                .await?;
            self.comparison_rows("1", &cmp, Bars::default());
            comparisons.push(cmp);
        }
        let peak = self.peak_row("1", &gw, "scenario 1");
        gw.proc.stop().await;
        Ok(ScenarioResult {
            id: "1",
            title: "",
            status: "ok",
            error: None,
            comparisons,
            details: serde_json::json!({ "gateway_process": peak }),
        })
    }

    // ---- scenario 2 ----
    async fn scenario2(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        eprintln!("scenario 2: 100 KB results; a stdio upstream");
        let mut comparisons = Vec::new();
        let big = Call::tool("blob_result", "{}");
        let small = Call::tool("echo", r#"{"message":"hello"}"#);
        let gw = self.start_gateway("s2-http", &one_target_yaml(&up.mcp())).await?;
        for c in self.p.big_concurrency.clone() {
            let cmp = self
                .compare(
                    "tools/call 100 KB",
                    &up.streamable(),
                    &gw.streamable(),
                    gw.proc.pid,
                    &big,
                    c,
                )
                .await?;
            self.comparison_rows("2", &cmp, Bars::default());
            comparisons.push(cmp);
        }
        let peak_http = self.peak_row("2", &gw, "100 KB results over HTTP");
        gw.proc.stop().await;

        let exe = self.bin("mcpgate-example-server");
        let stdio_args = ["--result-bytes", "102400"];
        let yaml = format!(
            "listen:\n  address: 127.0.0.1:0\ntargets:\n  - name: fx\n    stdio:\n      command: {}\n      args: [{}]\n",
            yaml_str(&exe.to_string_lossy()),
            stdio_args.iter().map(|a| yaml_str(a)).collect::<Vec<_>>().join(", ")
        );
        let gw = self.start_gateway("s2-stdio", &yaml).await?;
        let mut command = vec![exe.to_string_lossy().into_owned()];
        command.extend(stdio_args.iter().map(|s| s.to_string()));
        let direct = Transport::Stdio { command };
        for (label, call) in [("stdio tools/call small", &small), ("stdio tools/call 100 KB", &big)] {
            for c in self.p.stdio_concurrency.clone() {
                let cmp = self
                    .compare(label, &direct, &gw.streamable(), gw.proc.pid, call, c)
                    .await?;
                self.comparison_rows("2", &cmp, Bars::default());
                comparisons.push(cmp);
            }
        }
        let peak_stdio = self.peak_row("2", &gw, "stdio upstream");
        gw.proc.stop().await;
        Ok(ScenarioResult {
            id: "2",
            title: "",
            status: "ok",
            error: None,
            comparisons,
            details: serde_json::json!({
                "gateway_process_http": peak_http,
                "gateway_process_stdio": peak_stdio,
                "note": "direct stdio = the bench starts one example-server process per session and speaks stdio to it; through the gateway = Streamable HTTP to the gateway, which starts one stdio process per session (per_client, the default)",
            }),
        })
    }

    // ---- scenario 3 ----
    async fn scenario3(&mut self) -> anyhow::Result<ScenarioResult> {
        let targets = self.p.list_targets;
        let procs = self.p.list_processes.max(1);
        let per_target = 100;
        eprintln!("scenario 3: tools/list over {targets} targets × {per_target} tools ({procs} fixture processes)");
        let mut ups = Vec::new();
        for i in 0..procs {
            ups.push(
                self.start_upstream(&format!("list-{i}"), &["--extra-tools", &per_target.to_string()])
                    .await?,
            );
        }
        let total = targets * per_target;
        let direct_up = self
            .start_upstream("list-direct", &["--extra-tools", &total.to_string()])
            .await?;
        let mut yaml = String::from("listen:\n  address: 127.0.0.1:0\nnaming:\n  prefix: always\ntargets:\n");
        for t in 0..targets {
            let _ = write!(
                yaml,
                "  - name: t{t:03}\n    streamable_http:\n      url: {}\n    tools:\n      allow: [\"tool_*\"]\n",
                ups[t % procs].mcp()
            );
        }
        let list = Call::bare("tools/list");
        // First list after start: a new gateway each time, targets connected, caches cold.
        let mut first = new_histogram();
        let mut first_direct = new_histogram();
        let mut tools_seen = None;
        let mut list_bytes = 0;
        let mut gw = None;
        for i in 0..self.p.list_first_repeats {
            if let Some(old) = gw.take() {
                let old: Server = old;
                old.proc.stop().await;
            }
            let g = self.start_gateway("s3", &yaml).await?;
            let (elapsed, body) = timed_list(&g.endpoint("/mcp")).await?;
            first.saturating_record(elapsed.as_nanos() as u64);
            if i == 0 {
                tools_seen = Some(count_tools(&body)?);
                list_bytes = body.len();
            }
            let (elapsed, _) = timed_list(&direct_up.endpoint("/mcp")).await?;
            first_direct.saturating_record(elapsed.as_nanos() as u64);
            gw = Some(g);
        }
        let gw = gw.ok_or_else(|| anyhow::anyhow!("no repeats"))?;
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| round3(h.value_at_quantile(q) as f64 / 1e6);
        let first_p50 = ms(&first, 0.5);
        eprintln!(
            "  first tools/list: gateway p50 {first_p50} ms (max {} ms), direct p50 {} ms; {} tools, {} bytes",
            ms(&first, 1.0),
            ms(&first_direct, 0.5),
            tools_seen.unwrap_or(0),
            list_bytes
        );
        self.rows.push(Row {
            scenario: "3".into(),
            metric: format!("first tools/list after start ({total} tools)"),
            unit: "ms",
            direct: Some(ms(&first_direct, 0.5)),
            gateway: Some(first_p50),
            versus: Some(format!("{:+.1} ms", first_p50 - ms(&first_direct, 0.5))),
            bar: Some("≤ 60 ms".into()),
            verdict: verdict(first_p50 <= 60.0),
            noise: (self.p.list_first_repeats > 1).then(|| {
                format!(
                    "{} starts: {}–{} ms",
                    self.p.list_first_repeats,
                    ms(&first, 0.0),
                    ms(&first, 1.0)
                )
            }),
        });
        if tools_seen != Some(total) {
            bail!("the merged list has {tools_seen:?} tools, expected {total}");
        }
        let mut comparisons = Vec::new();
        for c in self.p.list_concurrency.clone() {
            let cmp = self
                .compare(
                    "tools/list steady state",
                    &direct_up.streamable(),
                    &gw.streamable(),
                    gw.proc.pid,
                    &list,
                    c,
                )
                .await?;
            self.comparison_rows("3", &cmp, Bars::default());
            if c == 1 {
                let p50_ms = round3(cmp.gateway.latency_us.p50 / 1000.0);
                self.rows.push(Row {
                    scenario: "3".into(),
                    metric: format!("tools/list steady state ({total} tools) c=1: p50"),
                    unit: "ms",
                    direct: Some(round3(cmp.direct.latency_us.p50 / 1000.0)),
                    gateway: Some(p50_ms),
                    versus: None,
                    bar: Some("≤ 5 ms".into()),
                    verdict: verdict(p50_ms <= 5.0),
                    noise: None,
                });
            }
            comparisons.push(cmp);
        }
        let peak = self.peak_row("3", &gw, &format!("{targets} targets, {total} tools"));
        gw.proc.stop().await;
        direct_up.proc.stop().await;
        for u in ups {
            u.proc.stop().await;
        }
        Ok(ScenarioResult {
            id: "3",
            title: "",
            status: "ok",
            error: None,
            comparisons,
            details: serde_json::json!({
                "targets": targets,
                "fixture_processes": procs,
                "tools": tools_seen,
                "list_bytes": list_bytes,
                "first_list_ms": { "p50": first_p50, "min": ms(&first, 0.0), "max": ms(&first, 1.0), "repeats": self.p.list_first_repeats },
                "first_list_direct_ms": { "p50": ms(&first_direct, 0.5) },
                "gateway_process": peak,
                "note": "direct = one example-server with the same number of tools in one list",
            }),
        })
    }

    // ---- scenario 4 ----
    async fn scenario4(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        let n = self.p.idle_sessions;
        eprintln!("scenario 4: {n} idle sessions, then a GET stream on each");
        let gw = self.start_gateway("s4", &one_target_yaml(&up.mcp())).await?;
        let through = idle_memory(&gw, n, "gateway").await?;
        let direct = idle_memory(up, n, "direct").await?;
        let held = through.held;
        let (per, per_stream) = (through.per_session_b, through.per_session_with_stream_b);
        self.rows.push(Row {
            scenario: "4".into(),
            metric: format!("memory per idle session ({n} sessions, 1 HTTP target)"),
            unit: "KiB",
            direct: Some(round1(direct.per_session_b / 1024.0)),
            gateway: Some(round1(per / 1024.0)),
            versus: None,
            bar: Some("≤ 4 KiB".into()),
            verdict: verdict(per <= 4096.0),
            noise: None,
        });
        self.rows.push(Row {
            scenario: "4".into(),
            metric: "memory per session with an open GET stream".into(),
            unit: "KiB",
            direct: Some(round1(direct.per_session_with_stream_b / 1024.0)),
            gateway: Some(round1(per_stream / 1024.0)),
            versus: None,
            bar: Some("≤ 16 KiB".into()),
            verdict: verdict(per_stream <= 16.0 * 1024.0),
            noise: None,
        });
        self.rows.push(Row {
            scenario: "4".into(),
            metric: "sessions held with open GET streams".into(),
            unit: "sessions",
            direct: Some(direct.streams as f64),
            gateway: Some(held as f64),
            versus: None,
            bar: Some("10,000".into()),
            verdict: if n < 10_000 {
                Verdict::Info
            } else {
                verdict(held >= 10_000 && through.streams >= 10_000)
            },
            noise: (through.errors > 0).then(|| format!("{} errors", through.errors)),
        });
        let peak = self.peak_row("4", &gw, &format!("{n} sessions with GET streams"));
        gw.proc.stop().await;
        Ok(ScenarioResult {
            id: "4",
            title: "",
            status: "ok",
            error: None,
            comparisons: vec![],
            details: serde_json::json!({ "gateway": through, "direct": direct, "gateway_process": peak }),
        })
    }

    // ---- scenario 5 ----
    async fn scenario5(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        eprintln!("scenario 5: session set-up with 10 targets");
        let mut yaml = String::from("listen:\n  address: 127.0.0.1:0\ntargets:\n");
        for t in 0..10 {
            let _ = write!(yaml, "  - name: t{t}\n    streamable_http:\n      url: {}\n", up.mcp());
        }
        let gw = self.start_gateway("s5", &yaml).await?;
        let c = self.p.setup_concurrency;
        let (mut d_all, mut g_all) = (Recorded::default(), Recorded::default());
        let mut ratios = Vec::new();
        for round in 0..self.p.rounds {
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            let (mut d, mut g) = (Recorded::default(), Recorded::default());
            for through_gateway in order {
                let ep = if through_gateway {
                    gw.endpoint("/mcp")
                } else {
                    up.endpoint("/mcp")
                };
                let before = through_gateway.then(|| gw.proc.sample()).flatten();
                let r = load::setup_rate(ep, c, self.p.warmup, self.p.duration, Duration::from_secs(10)).await?;
                if through_gateway {
                    g = r;
                    if let (Some(a), Some(b)) = (before, gw.proc.sample()) {
                        // CPU over the whole round (warm-up and deletes included).
                        g.server = Some(ServerCost {
                            cpu_s: b.cpu_s - a.cpu_s,
                            calls: g.ok,
                            cpu_s_per_1k: 0.0,
                            rss_kb: b.rss_kb,
                            hwm_kb: b.hwm_kb,
                        });
                    }
                } else {
                    d = r;
                }
            }
            if d.throughput() > 0.0 {
                ratios.push(round2(g.throughput() / d.throughput()));
            }
            d_all.merge(&d, true);
            g_all.merge(&g, true);
        }
        let (dr, gr) = (d_all.report(), g_all.report());
        eprintln!(
            "  set-up c={c}: direct {:.0}/s p50 {:.0} µs | gateway {:.0}/s p50 {:.0} µs | rounds {ratios:?}",
            dr.throughput_rps, dr.latency_us.p50, gr.throughput_rps, gr.latency_us.p50
        );
        let errors = dr.errors + gr.errors;
        self.rows.push(Row {
            scenario: "5".into(),
            metric: format!("session set-up (initialize + initialized), 10 targets, c={c}"),
            unit: "setups/s",
            direct: Some(dr.throughput_rps),
            gateway: Some(gr.throughput_rps),
            versus: Some(format!("{:.2}×", gr.throughput_rps / dr.throughput_rps.max(1e-9))),
            bar: Some("≥ 1,200/s".into()),
            verdict: if errors > 0 {
                Verdict::Failed
            } else {
                verdict(gr.throughput_rps >= 1200.0)
            },
            noise: join_notes([
                spread(&ratios).map(|(lo, hi)| format!("ratio {lo:.2}–{hi:.2}")),
                (errors > 0).then(|| format!("{errors} errors")),
            ]),
        });
        self.rows.push(Row {
            scenario: "5".into(),
            metric: format!("session set-up c={c}: p50 latency"),
            unit: "µs",
            direct: Some(dr.latency_us.p50),
            gateway: Some(gr.latency_us.p50),
            versus: Some(format!("{:+.0} µs", gr.latency_us.p50 - dr.latency_us.p50)),
            bar: None,
            verdict: Verdict::Info,
            noise: None,
        });
        let peak = self.peak_row("5", &gw, "session set-up");
        gw.proc.stop().await;
        Ok(ScenarioResult {
            id: "5",
            title: "",
            status: "ok",
            error: None,
            comparisons: vec![],
            details: serde_json::json!({
                "concurrency": c,
                "direct": dr,
                "gateway": gr,
                "round_ratios": ratios,
                "gateway_process": peak,
                "note": "each worker opens sessions back to back on one keep-alive connection; the sessions are DELETEd after the window, unmeasured",
            }),
        })
    }

    // ---- scenario 6 ----
    async fn scenario6(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        eprintln!("scenario 6: JWT authentication and a 50-rule policy, on vs off");
        let key = self.run_dir.join("s6-key.pem");
        let jwks = self.run_dir.join("s6-jwks.json");
        let mcpgate = self.bin("mcpgate");
        let out = Command::new(&mcpgate)
            .args(["token", "keygen", "--key"])
            .arg(&key)
            .arg("--jwks")
            .arg(&jwks)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "mcpgate token keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&mcpgate)
            .args(["token", "sign", "--key"])
            .arg(&key)
            .args([
                "--sub",
                "me",
                "--iss",
                "mcpgate-bench",
                "--aud",
                "mcpgate",
                "--ttl",
                "1h",
            ])
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "mcpgate token sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout)?.trim().to_owned();
        let yaml = format!(
            "{}auth:\n  jwt:\n    issuers: [mcpgate-bench]\n    audiences: [mcpgate]\n    jwks: {{ file: {} }}\n{}",
            one_target_yaml(&up.mcp()),
            yaml_str(&jwks.to_string_lossy()),
            fifty_rules()
        );
        let off = self.start_gateway("s6-off", &one_target_yaml(&up.mcp())).await?;
        let on = self.start_gateway("s6-on", &yaml).await?;
        let with_token = Transport::Streamable {
            ep: Arc::new(Endpoint::parse(&on.mcp(), Some(&token))?),
            accept: Accept::Both,
        };
        let call = Call::tool("echo", r#"{"message":"hello"}"#);
        let mut comparisons = Vec::new();
        for c in self.p.small_concurrency.iter().copied().filter(|c| *c <= 16) {
            let cmp = self
                .compare(
                    "JWT + 50 rules, on vs off",
                    &off.streamable(),
                    &with_token,
                    on.proc.pid,
                    &call,
                    c,
                )
                .await?;
            let added_pct = round1(cmp.added_p50_us / cmp.direct.latency_us.p50.max(1e-9) * 100.0);
            let errors = cmp.direct.errors + cmp.gateway.errors;
            self.rows.push(Row {
                scenario: "6".into(),
                metric: format!("JWT + 50-rule policy, c={c}: p50 latency, auth off → on"),
                unit: "µs",
                direct: Some(cmp.direct.latency_us.p50),
                gateway: Some(cmp.gateway.latency_us.p50),
                versus: Some(format!("{added_pct:+.1} %")),
                bar: (c == 16).then(|| "≤ +10 %".into()),
                verdict: if errors > 0 {
                    Verdict::Failed
                } else if c == 16 {
                    verdict(added_pct <= 10.0)
                } else {
                    Verdict::Info
                },
                noise: join_notes([cmp.p50_noise(), (errors > 0).then(|| format!("{errors} errors"))]),
            });
            self.rows.push(Row {
                scenario: "6".into(),
                metric: format!("JWT + 50-rule policy, c={c}: throughput, auth off → on"),
                unit: "req/s",
                direct: Some(cmp.direct.throughput_rps),
                gateway: Some(cmp.gateway.throughput_rps),
                versus: Some(format!("{:.2}×", cmp.throughput_ratio)),
                bar: None,
                verdict: Verdict::Info,
                noise: cmp.ratio_noise(),
            });
            comparisons.push(cmp);
        }
        off.proc.stop().await;
        on.proc.stop().await;
        Ok(ScenarioResult {
            id: "6",
            title: "",
            status: "ok",
            error: None,
            comparisons,
            details: serde_json::json!({
                "note": "direct = the same gateway without auth; gateway = JWT (ES256, local JWKS, token cached after its first verification) and 50 rules, the matching one last",
            }),
        })
    }

    // ---- scenario 8 ----
    /// The cost of observability on the hot path: the same tools/call load through a gateway
    /// with metrics and the access log off, and through one with both on (metrics at their
    /// default, the JSON access log written to a file).
    async fn scenario8(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        eprintln!("scenario 8: metrics and the access log, on vs off");
        let log = self.run_dir.join("s8-access.log");
        let _ = std::fs::remove_file(&log);
        let off_yaml = format!(
            "{}observability:\n  metrics: {{ enabled: false }}\n",
            one_target_yaml(&up.mcp())
        );
        let on_yaml = format!(
            "{}observability:\n  access_log: {{ enabled: true, format: json, output: {} }}\n",
            one_target_yaml(&up.mcp()),
            yaml_str(&log.to_string_lossy())
        );
        let off = self.start_gateway("s8-off", &off_yaml).await?;
        let on = self.start_gateway("s8-on", &on_yaml).await?;
        let call = Call::tool("echo", r#"{"message":"hello"}"#);
        let mut comparisons = Vec::new();
        for c in self.p.small_concurrency.clone() {
            let cmp = self
                .compare(
                    "metrics + access log, on vs off",
                    &off.streamable(),
                    &on.streamable(),
                    on.proc.pid,
                    &call,
                    c,
                )
                .await?;
            let p50_pct = change_pct(cmp.gateway.latency_us.p50, cmp.direct.latency_us.p50);
            let p99_pct = change_pct(cmp.gateway.latency_us.p99, cmp.direct.latency_us.p99);
            let errors = cmp.direct.errors + cmp.gateway.errors;
            let err_note = (errors > 0).then(|| format!("{errors} errors"));
            self.rows.push(Row {
                scenario: "8".into(),
                metric: format!("metrics + access log, c={c}: p50 latency, off → on"),
                unit: "µs",
                direct: Some(cmp.direct.latency_us.p50),
                gateway: Some(cmp.gateway.latency_us.p50),
                versus: Some(format!("{p50_pct:+.1} %")),
                bar: (c == 16).then(|| "≤ +5 %".into()),
                verdict: if errors > 0 {
                    Verdict::Failed
                } else if c == 16 {
                    verdict(p50_pct <= 5.0)
                } else {
                    Verdict::Info
                },
                noise: join_notes([cmp.p50_noise(), err_note.clone()]),
            });
            self.rows.push(Row {
                scenario: "8".into(),
                metric: format!("metrics + access log, c={c}: p99 latency, off → on"),
                unit: "µs",
                direct: Some(cmp.direct.latency_us.p99),
                gateway: Some(cmp.gateway.latency_us.p99),
                versus: Some(format!("{p99_pct:+.1} %")),
                bar: None,
                verdict: Verdict::Info,
                noise: None,
            });
            self.rows.push(Row {
                scenario: "8".into(),
                metric: format!("metrics + access log, c={c}: throughput, off → on"),
                unit: "req/s",
                direct: Some(cmp.direct.throughput_rps),
                gateway: Some(cmp.gateway.throughput_rps),
                versus: Some(format!("{:.2}×", cmp.throughput_ratio)),
                bar: (c == 16).then(|| "≥ 0.95×".into()),
                verdict: if errors > 0 {
                    Verdict::Failed
                } else if c == 16 {
                    verdict(cmp.throughput_ratio >= 0.95)
                } else {
                    Verdict::Info
                },
                noise: join_notes([cmp.ratio_noise(), err_note]),
            });
            comparisons.push(cmp);
        }
        // Every call through the "on" gateway left one line (plus initialize and the readiness
        // probe's), so the log was really written during the measurement.
        let metrics = http_get(&on.base, "/metrics").await.map(|(_, b)| b).unwrap_or_default();
        let logged = std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0);
        off.proc.stop().await;
        on.proc.stop().await;
        anyhow::ensure!(logged > 0, "the access log {} stayed empty", log.display());
        let counted = String::from_utf8_lossy(&metrics)
            .lines()
            .find_map(|l| {
                l.strip_prefix(r#"mcpgate_mcp_requests_total{method="tools/call",outcome="ok"} "#)
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .unwrap_or(0.0);
        Ok(ScenarioResult {
            id: "8",
            title: "",
            status: "ok",
            error: None,
            comparisons,
            details: serde_json::json!({
                "note": "direct = the gateway with metrics and access log off; gateway = the same with metrics on and a JSON access log written to a file",
                "access_log_lines": logged,
                "tools_call_ok_counted": counted,
            }),
        })
    }

    // ---- scenario 7 ----
    async fn scenario7(&mut self, up: &Server) -> anyhow::Result<ScenarioResult> {
        eprintln!("scenario 7: start-up time and idle RSS");
        let example = std::fs::read_to_string(&self.args.example_config)
            .with_context(|| format!("cannot read {}", self.args.example_config.display()))?;
        let example = listen_anywhere(&example);
        let configs = [
            ("example config", example),
            ("one HTTP target", one_target_yaml(&up.mcp())),
        ];
        let mut details = serde_json::Map::new();
        for (i, (what, yaml)) in configs.iter().enumerate() {
            let path = self.write_config(&format!("s7-{i}"), yaml)?;
            let mut startup = new_histogram();
            let mut listening = new_histogram();
            let mut last = None;
            for _ in 0..self.p.startup_repeats {
                let started = Instant::now();
                let gw = self.spawn_gateway("s7", &path, false).await?;
                listening.saturating_record(started.elapsed().as_nanos() as u64);
                let ep = gw.endpoint("/mcp");
                let mut conn = McpHttp::connect(ep).await?;
                conn.initialize(Accept::Both).await?;
                startup.saturating_record(started.elapsed().as_nanos() as u64);
                if let Some(old) = last.replace(gw) {
                    let old: Server = old;
                    old.proc.stop().await;
                }
            }
            let gw = last.ok_or_else(|| anyhow::anyhow!("no repeats"))?;
            // Idle: targets connected, nothing else going on.
            let deadline = Instant::now() + Duration::from_secs(20);
            while !matches!(http_get(&gw.base, "/readyz").await, Ok((200, _))) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let idle = gw.proc.sample();
            gw.proc.stop().await;
            let ms = |q: f64| round3(startup.value_at_quantile(q) as f64 / 1e6);
            let rss = idle.map(|s| mib(s.rss_kb)).unwrap_or(0.0);
            eprintln!(
                "  {what}: start-up to initialize p50 {} ms (min {}, max {}; listening after {} ms), idle RSS {rss} MiB",
                ms(0.5),
                ms(0.0),
                ms(1.0),
                round3(listening.value_at_quantile(0.5) as f64 / 1e6),
            );
            self.rows.push(Row {
                scenario: "7".into(),
                metric: format!("start-up to answering initialize ({what})"),
                unit: "ms",
                direct: None,
                gateway: Some(ms(0.5)),
                versus: None,
                bar: Some("≤ 10 ms (one target)".into()),
                verdict: verdict(ms(0.5) <= 10.0),
                noise: Some(format!("{} starts: {}–{} ms", self.p.startup_repeats, ms(0.0), ms(1.0))),
            });
            self.rows.push(Row {
                scenario: "7".into(),
                metric: format!("idle RSS ({what})"),
                unit: "MiB",
                direct: None,
                gateway: Some(rss),
                versus: None,
                bar: Some("≤ 20 MiB".into()),
                verdict: verdict(rss <= 20.0),
                noise: None,
            });
            details.insert(
                what.to_string(),
                serde_json::json!({
                    "startup_ms": { "p50": ms(0.5), "min": ms(0.0), "max": ms(1.0), "repeats": self.p.startup_repeats },
                    "listening_ms_p50": round3(listening.value_at_quantile(0.5) as f64 / 1e6),
                    "idle": idle,
                }),
            );
        }
        Ok(ScenarioResult {
            id: "7",
            title: "",
            status: "ok",
            error: None,
            comparisons: vec![],
            details: serde_json::Value::Object(details),
        })
    }

    // ---- output ----
    async fn write(self, started: u64, took: Duration) -> anyhow::Result<()> {
        let commit = git(&["rev-parse", "--short=12", "HEAD"])
            .await
            .unwrap_or_else(|| "unknown".into());
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .await
            .is_some_and(|s| !s.trim().is_empty());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        let doc = serde_json::json!({
            "schema": 1,
            "commit": commit,
            "dirty": dirty,
            "mode": self.args.mode,
            "started_unix": started,
            "took_s": round1(took.as_secs_f64()),
            "machine": { "cpus": cpus, "kernel": kernel },
            "params": self.p,
            "summary": self.rows,
            "scenarios": self.scenarios,
        });
        let mode = format!("{:?}", self.args.mode).to_lowercase();
        let stem = format!("{mode}-{commit}{}-{started}", if dirty { "-dirty" } else { "" });
        let json_path = self.args.out.join(format!("results-{stem}.json"));
        let md_path = self.args.out.join(format!("summary-{stem}.md"));
        let json = serde_json::to_string_pretty(&doc)?;
        std::fs::write(&json_path, &json)?;
        std::fs::write(self.args.out.join("latest.json"), &json)?;
        let md = markdown(&self.rows, &commit, dirty, &mode, took, cpus);
        std::fs::write(&md_path, &md)?;
        std::fs::write(self.args.out.join("latest.md"), &md)?;
        println!("{md}");
        eprintln!("wrote {} and {}", json_path.display(), md_path.display());
        if self.rows.iter().any(|r| r.verdict == Verdict::Failed) {
            bail!("some scenarios failed (see above)");
        }
        Ok(())
    }
}

#[derive(Default, Clone, Copy)]
struct Bars {
    ratio: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
}

fn verdict(ok: bool) -> Verdict {
    if ok { Verdict::Pass } else { Verdict::Miss }
}

fn join_notes<const N: usize>(notes: [Option<String>; N]) -> Option<String> {
    let v: Vec<String> = notes.into_iter().flatten().collect();
    (!v.is_empty()).then(|| v.join("; "))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
/// How much `on` exceeds `off`, in percent of `off` (one decimal).
fn change_pct(on: f64, off: f64) -> f64 {
    round1((on - off) / off.max(1e-9) * 100.0)
}
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
fn mib(kb: u64) -> f64 {
    round1(kb as f64 / 1024.0)
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// 50 policy rules: 45 allows for other subjects, 4 denies that do not match, and last the
/// one that lets subject `me` call `fx:echo`.
fn fifty_rules() -> String {
    let mut y = String::from("policies:\n");
    for i in 0..45 {
        let _ = write!(
            y,
            "  - name: user{i}\n    allow: {{ tools: [\"fx:tool_{i:04}\", \"other{i}:*\"] }}\n    when: {{ claims: {{ sub: user{i} }} }}\n"
        );
    }
    for i in 0..4 {
        let _ = write!(
            y,
            "  - name: no-delete-{i}\n    deny: {{ tools: [\"*:delete_{i}_*\"] }}\n"
        );
    }
    y.push_str("  - name: bench\n    allow: { tools: [\"fx:echo\"] }\n    when: { claims: { sub: me } }\n");
    y
}

fn one_target_yaml(url: &str) -> String {
    format!("listen:\n  address: 127.0.0.1:0\ntargets:\n  - name: fx\n    streamable_http:\n      url: {url}\n")
}

/// The example config with its listener moved to a run-time port.
fn listen_anywhere(yaml: &str) -> String {
    let mut out = String::new();
    let mut replaced = false;
    for line in yaml.lines() {
        let t = line.trim_start();
        if !replaced && t.starts_with("address:") && line.starts_with("  ") {
            out.push_str("  address: 127.0.0.1:0\n");
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        out = format!("listen:\n  address: 127.0.0.1:0\n{out}");
    }
    out
}

async fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().await.ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A plain GET on `base` + `path`: status and body.
async fn http_get(base: &str, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let ep = Endpoint::parse(&format!("{base}{path}"), None)?;
    let mut conn = HttpConn::open(ep.addr).await?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(http::header::HOST, ep.host.clone())
        .body(Full::new(Bytes::new()))?;
    let resp = conn.send(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status.as_u16(), body))
}

/// A fresh session's first `tools/list`: time from sending to the last byte, and the body.
async fn timed_list(ep: &Arc<Endpoint>) -> anyhow::Result<(Duration, Bytes)> {
    let mut conn = McpHttp::connect(ep.clone()).await?;
    let info = conn.initialize(Accept::Both).await?;
    let started = Instant::now();
    let body = conn.request_body(&info, 1, "tools/list").await?;
    let took = started.elapsed();
    let _ = conn.delete(&info).await;
    Ok((took, body))
}

fn count_tools(body: &[u8]) -> anyhow::Result<usize> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    v.pointer("/result/tools")
        .and_then(|t| t.as_array())
        .map(Vec::len)
        .ok_or_else(|| anyhow::anyhow!("tools/list answer without result.tools"))
}

#[derive(Debug, Serialize)]
struct IdleMemory {
    sessions: usize,
    streams: usize,
    held: usize,
    errors: u64,
    rss_kb_baseline: u64,
    rss_kb_sessions: u64,
    rss_kb_streams: u64,
    per_session_b: f64,
    per_session_with_stream_b: f64,
}

/// Opens `n` sessions on `server`, then a GET stream on each, reading the server's RSS after
/// each step; closes everything.
async fn idle_memory(server: &Server, n: usize, what: &str) -> anyhow::Result<IdleMemory> {
    let ep = server.endpoint("/mcp");
    // Warm the allocator and the listener with a few hundred sessions first.
    let mut warm = IdleSessions::open(ep.clone(), 200.min(n), 16).await?;
    warm.open_streams(32).await?;
    warm.close(16).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss = || server.proc.sample().map(|s| s.rss_kb).unwrap_or(0);
    let base = rss();
    let t = Instant::now();
    let mut idle = IdleSessions::open(ep, n, 32).await?;
    let opened = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_sessions = rss();
    let t = Instant::now();
    idle.open_streams(64).await?;
    let streamed = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_streams = rss();
    let held = match http_get(&server.base, "/readyz").await {
        Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("sessions").and_then(|s| s.as_u64()))
            .map_or(idle.len(), |s| s as usize),
        _ => idle.len(),
    };
    let errors = idle.errors.values().sum();
    let (sessions, streams) = (idle.len(), idle.streams());
    idle.close(32).await;
    let per = |a: u64, b: u64| {
        if sessions > 0 {
            round1((b as f64 - a as f64) * 1024.0 / sessions as f64)
        } else {
            0.0
        }
    };
    let m = IdleMemory {
        sessions,
        streams,
        held,
        errors,
        rss_kb_baseline: base,
        rss_kb_sessions: with_sessions,
        rss_kb_streams: with_streams,
        per_session_b: per(base, with_sessions),
        per_session_with_stream_b: per(base, with_streams),
    };
    eprintln!(
        "  {what}: {sessions} sessions in {opened:.1?} → {:.1} KiB each; {streams} GET streams in {streamed:.1?} → {:.1} KiB per session with a stream; held {held}; errors {errors}",
        m.per_session_b / 1024.0,
        m.per_session_with_stream_b / 1024.0,
    );
    Ok(m)
}

fn fmt_num(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(v) => {
            let s = if v.abs() >= 1000.0 {
                format!("{v:.0}")
            } else if v.abs() >= 10.0 || unit == "sessions" {
                format!("{v:.1}")
            } else {
                format!("{v:.3}")
            };
            format!("{s} {unit}")
        }
    }
}

fn markdown(rows: &[Row], commit: &str, dirty: bool, mode: &str, took: Duration, cpus: usize) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# mcpgate benchmark ({mode}) at {commit}{}\n",
        if dirty { " (uncommitted changes)" } else { "" }
    );
    let _ = writeln!(
        md,
        "{cpus} CPUs shared by the load generator, the gateway and the upstream; took {:.0} s. \
         Direct and gateway runs alternate in the same run; \"vs direct\" is gateway/direct for \
         throughput and gateway − direct for latency; \"noise\" is the spread of the per-round figures.\n",
        took.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| # | metric | direct | gateway | vs direct | bar | verdict | noise |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---|---|---|");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.metric,
            fmt_num(r.direct, r.unit),
            fmt_num(r.gateway, r.unit),
            r.versus.as_deref().unwrap_or(""),
            r.bar.as_deref().unwrap_or(""),
            r.verdict.md(),
            r.noise.as_deref().unwrap_or("").replace('|', "/"),
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_listens_on_a_runtime_port() {
        let y = "listen:\n  address: 127.0.0.1:8080\ntargets: []\n";
        assert_eq!(listen_anywhere(y), "listen:\n  address: 127.0.0.1:0\ntargets: []\n");
        assert!(listen_anywhere("targets: []\n").starts_with("listen:\n  address: 127.0.0.1:0\n"));
    }

    #[test]
    fn scenario_6_policy_loads_with_fifty_rules() {
        let yaml = format!("{}{}", one_target_yaml("http://127.0.0.1:9/mcp"), fifty_rules());
        let cfg = mcpgate_config::Config::from_str(&yaml, "s6.yaml", false).expect("loads");
        assert_eq!(cfg.policy.len(), 50);
    }

    #[test]
    fn table() {
        let rows = vec![Row {
            scenario: "1".into(),
            metric: "x".into(),
            unit: "µs",
            direct: Some(12.0),
            gateway: Some(40.5),
            versus: Some("+28 µs".into()),
            bar: Some("≤ +60 µs".into()),
            verdict: Verdict::Pass,
            noise: None,
        }];
        let md = markdown(&rows, "abc", false, "quick", Duration::from_secs(3), 2);
        assert!(
            md.contains("| 1 | x | 12.0 µs | 40.5 µs | +28 µs | ≤ +60 µs | ✅ pass |  |"),
            "{md}"
        );
    }
}
