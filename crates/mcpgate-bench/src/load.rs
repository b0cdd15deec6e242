//! Load generation: N session workers, closed-loop (each sends its next request when the
//! previous one is answered) or open-loop (requests at a fixed overall rate, latency measured
//! from the time a request was *due*, so a stall is not hidden by the stalled client sending
//! less — the coordinated-omission correction), recorded in HDR histograms.
//!
//! A run is: open every session (initialize + initialized), one warm-up request per session
//! (which also opens a gateway's upstream session), a warm-up period, then the measured window.
//! Only requests that start and finish inside the window count; after it every session is
//! closed (DELETE for Streamable HTTP).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::client::{Accept, ClientError, Endpoint, McpHttp, OpenStream, Session, SessionInfo, Transport};
use crate::procstat;

/// What each request is.
#[derive(Debug, Clone)]
pub struct Call {
    /// JSON-RPC method.
    pub method: String,
    /// Raw JSON params.
    pub params: Option<String>,
}

impl Call {
    /// `tools/call` of `tool` with raw JSON `arguments`.
    pub fn tool(tool: &str, arguments: &str) -> Call {
        Call {
            method: "tools/call".into(),
            params: Some(format!(r#"{{"name":"{tool}","arguments":{arguments}}}"#)),
        }
    }

    /// A method without params (`tools/list`, `ping`).
    pub fn bare(method: &str) -> Call {
        Call {
            method: method.into(),
            params: None,
        }
    }
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Where to send.
    pub transport: Transport,
    /// What to send.
    pub call: Call,
    /// Concurrent sessions (one connection each).
    pub concurrency: usize,
    /// Unmeasured time after every session's first request.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Open loop: total requests per second. `None`: closed loop.
    pub rate: Option<f64>,
    /// Bound on one request.
    pub timeout: Duration,
    /// A process (the server under test) whose CPU time and memory are read at the start
    /// and end of the window.
    pub watch_pid: Option<u32>,
}

/// What the watched server process spent over the window(s).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct ServerCost {
    /// CPU seconds (user + system).
    pub cpu_s: f64,
    /// Requests answered meanwhile.
    pub calls: u64,
    /// CPU seconds per 1,000 requests.
    pub cpu_s_per_1k: f64,
    /// RSS at the end, KiB.
    pub rss_kb: u64,
    /// Peak RSS of the process so far, KiB.
    pub hwm_kb: u64,
}

impl ServerCost {
    fn new(a: procstat::ProcSample, b: procstat::ProcSample, calls: u64) -> Self {
        let mut c = ServerCost {
            cpu_s: b.cpu_s - a.cpu_s,
            calls,
            cpu_s_per_1k: 0.0,
            rss_kb: b.rss_kb,
            hwm_kb: b.hwm_kb,
        };
        c.update_rate();
        c
    }

    fn update_rate(&mut self) {
        // /proc counts clock ticks (10 ms): three decimals are all there is.
        self.cpu_s = (self.cpu_s * 1000.0).round() / 1000.0;
        self.cpu_s_per_1k = if self.calls > 0 {
            (self.cpu_s / self.calls as f64 * 1e6).round() / 1000.0
        } else {
            0.0
        };
    }

    fn merge(&mut self, other: &ServerCost) {
        self.cpu_s += other.cpu_s;
        self.calls += other.calls;
        self.update_rate();
        self.rss_kb = other.rss_kb;
        self.hwm_kb = self.hwm_kb.max(other.hwm_kb);
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What a run (or several merged runs) measured.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Latencies in nanoseconds.
    pub hist: Histogram<u64>,
    /// Successful requests in the window(s).
    pub ok: u64,
    /// Failed requests, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Sum of result sizes.
    pub bytes: u64,
    /// Length of the window(s).
    pub elapsed: Duration,
    /// First error message seen, for diagnosis.
    pub first_error: Option<String>,
    /// The watched server's costs, when a process was watched.
    pub server: Option<ServerCost>,
}

impl Default for Recorded {
    fn default() -> Self {
        Recorded {
            hist: new_histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            bytes: 0,
            elapsed: Duration::ZERO,
            first_error: None,
            server: None,
        }
    }
}

/// A histogram from 1 ns to 100 s with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

impl Recorded {
    fn record_ok(&mut self, latency: Duration, bytes: usize) {
        self.ok += 1;
        self.bytes += bytes as u64;
        self.hist.saturating_record(latency.as_nanos() as u64);
    }

    fn record_err(&mut self, e: &ClientError) {
        *self.errors.entry(e.kind().to_owned()).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Adds another worker's or round's figures; `elapsed` adds up when `sequential`.
    pub fn merge(&mut self, other: &Recorded, sequential: bool) {
        self.hist.add(&other.hist).expect("same bounds");
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.bytes += other.bytes;
        if sequential {
            self.elapsed += other.elapsed;
        } else {
            self.elapsed = self.elapsed.max(other.elapsed);
        }
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        match (&mut self.server, &other.server) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.server = Some(*b),
            _ => {}
        }
    }

    /// Total errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Requests per second over the window(s).
    pub fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    /// Percentiles in microseconds.
    pub fn latency(&self) -> Latency {
        if self.hist.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        Latency {
            p50: us(self.hist.value_at_quantile(0.50)),
            p90: us(self.hist.value_at_quantile(0.90)),
            p99: us(self.hist.value_at_quantile(0.99)),
            p999: us(self.hist.value_at_quantile(0.999)),
            max: us(self.hist.max()),
            mean: (self.hist.mean() / 100.0).round() / 10.0,
        }
    }

    /// The serializable summary.
    pub fn report(&self) -> Report {
        Report {
            requests: self.ok,
            errors: self.error_count(),
            error_kinds: self.errors.clone(),
            first_error: self.first_error.clone(),
            duration_s: (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            throughput_rps: (self.throughput() * 10.0).round() / 10.0,
            result_bytes_mean: self.bytes.checked_div(self.ok).unwrap_or(0),
            latency_us: self.latency(),
        }
    }
}

/// The summary of a run, as printed with `--json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Report {
    /// Successful requests counted.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by kind (`io`, `http`, `status`, `jsonrpc`, `protocol`, `timeout`).
    pub error_kinds: BTreeMap<String, u64>,
    /// The first failure's message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_error: Option<String>,
    /// Measured window in seconds.
    pub duration_s: f64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Mean size of a result in bytes.
    pub result_bytes_mean: u64,
    /// Latency percentiles (µs).
    pub latency_us: Latency,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency_us;
        write!(
            f,
            "{:>9.1} req/s  p50 {:>8.1} µs  p90 {:>8.1}  p99 {:>8.1}  p99.9 {:>8.1}  max {:>9.1}  ok {}  errors {}",
            self.throughput_rps, l.p50, l.p90, l.p99, l.p999, l.max, self.requests, self.errors
        )?;
        if let Some(e) = &self.first_error {
            write!(f, " (first: {e})")?;
        }
        Ok(())
    }
}

/// How late a timer may fire without the request counting as held up (open loop).
const TIMER_SLACK: Duration = Duration::from_millis(2);

struct Window {
    start: Instant,
    end: Instant,
}

/// Runs `spec` and returns what the measured window saw.
pub async fn run(spec: &LoadSpec) -> anyhow::Result<Recorded> {
    let c = spec.concurrency.max(1);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<Result<(), String>>(c);
    let (go_tx, go_rx) = tokio::sync::watch::channel::<Option<Arc<Window>>>(None);
    let spec = Arc::new(spec.clone());
    let mut workers = Vec::with_capacity(c);
    for w in 0..c {
        let spec = spec.clone();
        let ready = ready_tx.clone();
        let mut go = go_rx.clone();
        workers.push(tokio::spawn(async move {
            let mut rec = Recorded::default();
            let mut session = match open_and_warm(&spec, w).await {
                Ok(s) => {
                    let _ = ready.send(Ok(())).await;
                    s
                }
                Err(e) => {
                    let _ = ready.send(Err(e.to_string())).await;
                    return rec;
                }
            };
            drop(ready);
            let Ok(window) = go.wait_for(Option::is_some).await.map(|w| w.clone().expect("set")) else {
                session.close().await;
                return rec;
            };
            let interval = spec.rate.map(|r| Duration::from_secs_f64(c as f64 / r.max(0.001)));
            // Open loop: worker w's requests are due at t0 + w·interval/c + k·interval.
            let t0 = window.start - spec.warmup;
            let mut due = interval.map(|i| t0 + i.mul_f64(w as f64 / c as f64));
            let mut id = 1u64;
            loop {
                let sent_at = match (&mut due, interval) {
                    (Some(d), Some(i)) => {
                        let at = *d;
                        *d += i;
                        if at >= window.end {
                            break;
                        }
                        tokio::time::sleep_until(at).await;
                        // Timers fire up to a millisecond late: a request sent within
                        // TIMER_SLACK of its due time is timed from when it was sent; one
                        // sent later was held up by the server, and is timed from when it
                        // was due.
                        let now = Instant::now();
                        if now.saturating_duration_since(at) <= TIMER_SLACK {
                            now
                        } else {
                            at
                        }
                    }
                    _ => {
                        let now = Instant::now();
                        if now >= window.end {
                            break;
                        }
                        now
                    }
                };
                id += 1;
                let res = match tokio::time::timeout(
                    spec.timeout,
                    session.request(id, &spec.call.method, spec.call.params.as_deref()),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(ClientError::Timeout),
                };
                let done = Instant::now();
                let counted = sent_at >= window.start && done <= window.end;
                match res {
                    Ok(a) if counted => rec.record_ok(a.received - sent_at, a.result_bytes),
                    Ok(_) => {}
                    Err(e) => {
                        if counted {
                            rec.record_err(&e);
                        }
                        if e.breaks_session() {
                            // Start over with a new session; give a failing server a moment.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            match Session::open(&spec.transport).await {
                                Ok(s) => {
                                    let old = std::mem::replace(&mut session, s);
                                    drop(old);
                                }
                                Err(e) => {
                                    rec.record_err(&e);
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                            }
                        }
                    }
                }
            }
            rec.elapsed = window.end - window.start;
            session.close().await;
            rec
        }));
    }
    drop(ready_tx);
    let mut failures = Vec::new();
    for _ in 0..c {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => failures.push(e),
            None => break,
        }
    }
    if !failures.is_empty() {
        drop(go_tx);
        for w in workers {
            let _ = w.await;
        }
        anyhow::bail!(
            "{} of {c} sessions could not be opened; first error: {}",
            failures.len(),
            failures[0]
        );
    }
    let start = Instant::now() + spec.warmup;
    let end = start + spec.duration;
    let _ = go_tx.send(Some(Arc::new(Window { start, end })));
    let watch = spec.watch_pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            let a = procstat::sample(pid).ok()?;
            tokio::time::sleep_until(end).await;
            let b = procstat::sample(pid).ok()?;
            Some((a, b))
        })
    });
    let mut total = Recorded::default();
    for w in workers {
        let rec = w.await?;
        total.merge(&rec, false);
    }
    if let Some(Ok(Some((a, b)))) = match watch {
        Some(w) => Some(w.await),
        None => None,
    } {
        total.server = Some(ServerCost::new(a, b, total.ok + total.error_count()));
    }
    Ok(total)
}

async fn open_and_warm(spec: &LoadSpec, worker: usize) -> Result<Session, ClientError> {
    // Spread connection set-up a little so a big run does not overflow the accept queue.
    tokio::time::sleep(Duration::from_micros((worker as u64 % 64) * 50)).await;
    let mut s = tokio::time::timeout(spec.timeout, Session::open(&spec.transport))
        .await
        .map_err(|_| ClientError::Timeout)??;
    tokio::time::timeout(
        spec.timeout,
        s.request(1, &spec.call.method, spec.call.params.as_deref()),
    )
    .await
    .map_err(|_| ClientError::Timeout)??;
    Ok(s)
}

/// Session set-up rate: `concurrency` workers, each on one keep-alive connection, open
/// sessions back to back (`initialize` + `notifications/initialized`; the latency recorded
/// is the pair). The sessions are DELETEd after the window, unmeasured.
pub async fn setup_rate(
    ep: Arc<Endpoint>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<Recorded> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let ep = ep.clone();
        workers.push(tokio::spawn(async move {
            let mut rec = Recorded::default();
            let mut ids: Vec<SessionInfo> = Vec::new();
            let mut conn = None;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                if conn.as_ref().is_none_or(McpHttp::is_closed) {
                    match McpHttp::connect(ep.clone()).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            rec.record_err(&e);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("connected");
                let res = tokio::time::timeout(timeout, c.initialize(Accept::Both)).await;
                let done = Instant::now();
                let counted = now >= start && done <= end;
                match res {
                    Ok(Ok(info)) => {
                        if counted {
                            rec.record_ok(done - now, 0);
                        }
                        ids.push(info);
                    }
                    Ok(Err(e)) => {
                        if counted {
                            rec.record_err(&e);
                        }
                        conn = None;
                    }
                    Err(_) => {
                        if counted {
                            rec.record_err(&ClientError::Timeout);
                        }
                        conn = None;
                    }
                }
            }
            rec.elapsed = end - start;
            if let Some(mut c) = conn.filter(|c| !c.is_closed()) {
                for info in &ids {
                    if tokio::time::timeout(timeout, c.delete(info)).await.is_err() {
                        break;
                    }
                }
            }
            rec
        }));
    }
    let mut total = Recorded::default();
    for w in workers {
        total.merge(&w.await?, false);
    }
    Ok(total)
}

/// Many idle sessions, opened over a few connections and optionally each given an open GET
/// stream on its own connection, for memory-per-session measurements.
pub struct IdleSessions {
    ep: Arc<Endpoint>,
    sessions: Vec<SessionInfo>,
    streams: Vec<OpenStream>,
    /// Failures while opening, by kind.
    pub errors: BTreeMap<String, u64>,
}

impl IdleSessions {
    /// Initializes `n` sessions over `parallel` connections.
    pub async fn open(ep: Arc<Endpoint>, n: usize, parallel: usize) -> anyhow::Result<IdleSessions> {
        let parallel = parallel.clamp(1, n.max(1));
        let mut tasks = Vec::new();
        for p in 0..parallel {
            let ep = ep.clone();
            let count = n / parallel + usize::from(p < n % parallel);
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::with_capacity(count);
                let mut errors = BTreeMap::<String, u64>::new();
                let mut conn = McpHttp::connect(ep.clone()).await?;
                for _ in 0..count {
                    if conn.is_closed() {
                        conn = McpHttp::connect(ep.clone()).await?;
                    }
                    match conn.initialize(Accept::Both).await {
                        Ok(info) => out.push(info),
                        Err(e) => *errors.entry(e.kind().to_owned()).or_default() += 1,
                    }
                }
                Ok::<_, ClientError>((out, errors))
            }));
        }
        let mut me = IdleSessions {
            ep,
            sessions: Vec::with_capacity(n),
            streams: Vec::new(),
            errors: BTreeMap::new(),
        };
        for t in tasks {
            let (s, e) = t.await??;
            me.sessions.extend(s);
            for (k, v) in e {
                *me.errors.entry(k).or_default() += v;
            }
        }
        Ok(me)
    }

    /// Sessions opened.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No sessions?
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Open GET streams.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Opens a GET stream for every session, each on its own connection, `parallel` at a time.
    pub async fn open_streams(&mut self, parallel: usize) -> anyhow::Result<()> {
        let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = Vec::with_capacity(self.sessions.len());
        for info in &self.sessions {
            let info = info.clone();
            let ep = self.ep.clone();
            let permit = sem.clone().acquire_owned().await?;
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                let conn = McpHttp::connect(ep).await?;
                conn.open_get(&info).await
            }));
        }
        for t in tasks {
            match t.await? {
                Ok(s) => self.streams.push(s),
                Err(e) => *self.errors.entry(e.kind().to_owned()).or_default() += 1,
            }
        }
        Ok(())
    }

    /// Closes the streams and DELETEs every session over `parallel` connections.
    pub async fn close(mut self, parallel: usize) {
        self.streams.clear();
        let parallel = parallel.clamp(1, self.sessions.len().max(1));
        let chunk = self.sessions.len().div_ceil(parallel).max(1);
        let mut tasks = Vec::new();
        for part in self.sessions.chunks(chunk) {
            let part = part.to_vec();
            let ep = self.ep.clone();
            tasks.push(tokio::spawn(async move {
                let Ok(mut conn) = McpHttp::connect(ep.clone()).await else {
                    return;
                };
                for info in &part {
                    if conn.is_closed() {
                        match McpHttp::connect(ep.clone()).await {
                            Ok(c) => conn = c,
                            Err(_) => return,
                        }
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn.delete(info)).await;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_percentiles() {
        let mut a = Recorded::default();
        for i in 1..=100u64 {
            a.record_ok(Duration::from_micros(i), 10);
        }
        a.elapsed = Duration::from_secs(1);
        let mut b = Recorded::default();
        b.record_err(&ClientError::Timeout);
        b.elapsed = Duration::from_secs(1);
        let mut total = Recorded::default();
        total.merge(&a, true);
        total.merge(&b, true);
        let r = total.report();
        assert_eq!((r.requests, r.errors), (100, 1));
        assert_eq!(r.throughput_rps, 50.0);
        assert!((r.latency_us.p50 - 50.0).abs() < 0.1, "{:?}", r.latency_us);
        assert!((r.latency_us.p99 - 99.0).abs() < 0.1, "{:?}", r.latency_us);
        assert_eq!(r.result_bytes_mean, 10);
    }
}
