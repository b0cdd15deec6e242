//! Traffic management on the request path: per-target endpoints with their circuit breakers
//! and outstanding-request counts, endpoint choice (load balancing), the concurrency limit,
//! the retry policy with its budget, and which outcomes say something about a target's health.
//!
//! `gateway.rs` calls in at a few narrow points: the rate limits at the top of a request, and
//! in `forward` a [`Ticket`] per attempt plus [`TargetTraffic::retry_after`] between
//! attempts. Health checks run in [`health`]. Nothing here knows about sessions or ids.

pub mod breaker;
pub(crate) mod health;
pub mod limits;
pub mod retry;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use mcpgate_config::traffic::{LoadBalancing, Traffic};
use mcpgate_upstream::TransportSpec;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::GatewayError;
use breaker::{Admission, Breaker, State, Transition};

/// One endpoint (replica) of a target.
pub struct Endpoint {
    /// How to reach it.
    pub spec: TransportSpec,
    /// Its URL without secrets, for `/readyz` (`None` for stdio).
    pub url: Option<String>,
    breaker: Mutex<Breaker>,
    outstanding: AtomicUsize,
}

impl Endpoint {
    /// Requests in flight on it.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Its circuit state now.
    pub fn circuit(&self) -> State {
        self.breaker.lock().state(Instant::now())
    }
}

/// Traffic state of one target.
pub struct TargetTraffic {
    /// Resolved settings.
    pub cfg: Traffic,
    /// Its endpoints (one for stdio and single-`url` targets).
    pub endpoints: Vec<Endpoint>,
    /// Requests in flight limit.
    pub concurrency: limits::ConcurrencyLimit,
    budget: Mutex<retry::Budget>,
    rr: AtomicUsize,
    /// Was the target in the merged lists when last checked (not every endpoint open)?
    listed: AtomicBool,
    /// Last health check: `None` before the first.
    pub(crate) last_health: Mutex<Option<health::Check>>,
    /// Health-check upstream sessions of the replicas the main session is not on.
    pub(crate) probes: Mutex<std::collections::HashMap<usize, crate::upstream::Upstream>>,
}

impl TargetTraffic {
    /// The traffic state of a target reached through `base` (its first endpoint).
    pub fn new(cfg: &Traffic, base: &TransportSpec) -> Self {
        let breaker = || Mutex::new(Breaker::new(cfg.breaker.clone()));
        let endpoints = if cfg.endpoints.len() <= 1 {
            vec![Endpoint {
                spec: base.clone(),
                url: cfg.endpoints.first().map(redact),
                breaker: breaker(),
                outstanding: AtomicUsize::new(0),
            }]
        } else {
            cfg.endpoints
                .iter()
                .map(|u| Endpoint {
                    spec: with_url(base, u),
                    url: Some(redact(u)),
                    breaker: breaker(),
                    outstanding: AtomicUsize::new(0),
                })
                .collect()
        };
        TargetTraffic {
            endpoints,
            concurrency: limits::ConcurrencyLimit::new(&cfg.concurrency),
            budget: Mutex::new(retry::Budget::new(&cfg.retries, Instant::now())),
            rr: AtomicUsize::new(0),
            listed: AtomicBool::new(true),
            last_health: Mutex::new(None),
            probes: Mutex::new(Default::default()),
            cfg: cfg.clone(),
        }
    }

    /// The endpoint for a new upstream session: among those whose circuit is not open, the
    /// next in turn (`round_robin`) or the least busy (`least_outstanding`); when every
    /// circuit is open, the next in turn anyway (the request then fails fast).
    pub fn pick(&self) -> usize {
        let n = self.endpoints.len();
        if n <= 1 {
            return 0;
        }
        let now = Instant::now();
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        let order = (0..n).map(|k| (start + k) % n);
        let open = |i: &usize| self.endpoints[*i].breaker.lock().is_open(now);
        let chosen = match self.cfg.load_balancing {
            LoadBalancing::RoundRobin => order.clone().find(|i| !open(i)),
            LoadBalancing::LeastOutstanding => order
                .clone()
                .filter(|i| !open(i))
                .min_by_key(|i| self.endpoints[*i].outstanding()),
        };
        chosen.unwrap_or(start % n)
    }

    /// Is every endpoint's circuit open? Then the soonest time one lets a probe through.
    pub fn all_open(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut soonest: Option<Duration> = None;
        for e in &self.endpoints {
            match e.breaker.lock().state(now) {
                State::Open { until } => {
                    let d = until - now;
                    soonest = Some(soonest.map_or(d, |s| s.min(d)));
                }
                _ => return None,
            }
        }
        soonest
    }

    /// Is endpoint `i` failing fast now?
    pub fn endpoint_open(&self, i: usize) -> bool {
        self.endpoints
            .get(i)
            .is_some_and(|e| e.breaker.lock().is_open(Instant::now()))
    }

    /// The circuit state summarised over endpoints: `open` when every one is open,
    /// `half_open` when none is closed, else `closed`.
    pub fn circuit(&self) -> &'static str {
        let now = Instant::now();
        let states: Vec<State> = self.endpoints.iter().map(|e| e.breaker.lock().state(now)).collect();
        if states.iter().all(|s| matches!(s, State::Open { .. })) {
            "open"
        } else if states.contains(&State::Closed) {
            "closed"
        } else {
            "half_open"
        }
    }

    /// Lets a request to endpoint `i` through the breaker, or fails fast.
    pub fn admit(&self, target: &str, i: usize) -> Result<Ticket<'_>, GatewayError> {
        let ep = &self.endpoints[i.min(self.endpoints.len() - 1)];
        let admission = ep.breaker.lock().admit(Instant::now());
        match admission {
            Ok(admission) => {
                ep.outstanding.fetch_add(1, Ordering::Relaxed);
                Ok(Ticket {
                    ep,
                    admission,
                    done: false,
                })
            }
            Err(retry_after) => {
                metrics_hook::circuit_rejected(target);
                Err(GatewayError::CircuitOpen {
                    target: target.to_owned(),
                    retry_after,
                })
            }
        }
    }

    /// Records a failure outside a request (a failed connect or health check) on endpoint `i`.
    pub fn record_failure(&self, i: usize) -> Option<Transition> {
        let ep = self.endpoints.get(i)?;
        let mut b = ep.breaker.lock();
        let now = Instant::now();
        match b.admit(now) {
            Ok(a) => b.record(a, Some(false), now),
            Err(_) => None,
        }
    }

    /// Whether the listed state changed since the last call (the target left or rejoined
    /// the merged lists).
    pub fn listed_changed(&self) -> bool {
        let listed = self.all_open().is_none();
        self.listed.swap(listed, Ordering::AcqRel) != listed
    }

    /// Is the target in the merged lists (not every circuit open)?
    pub fn is_listed(&self) -> bool {
        self.all_open().is_none()
    }

    /// Counts a request (for the retry budget).
    pub fn count_request(&self) {
        self.budget.lock().request(Instant::now());
    }

    /// After failed attempt number `attempt` of a request, how long to wait before the next,
    /// or `None` when it must not be retried: `sent` says whether the request may have
    /// reached the upstream, `idempotent` whether repeating it is harmless.
    pub fn retry_after(
        &self,
        metrics: Option<&mcpgate_telemetry::Metrics>,
        target: &std::sync::Arc<str>,
        err: &GatewayError,
        attempt: u32,
        sent: bool,
        idempotent: bool,
    ) -> Option<Duration> {
        if attempt >= self.cfg.retries.attempts {
            return None;
        }
        let transient = matches!(
            err,
            GatewayError::Unavailable { .. } | GatewayError::BadResponse { .. } | GatewayError::CircuitOpen { .. }
        );
        // A request never sent is always safe to try again; one that was sent only if it is
        // idempotent. A timeout is not retried: the caller's time is spent.
        if !transient || (sent && !idempotent) {
            return None;
        }
        if !self.budget.lock().try_retry(Instant::now()) {
            metrics_hook::retry_budget_exhausted(metrics, target);
            tracing::debug!(target = %target, "Retry budget exhausted; not retrying.");
            return None;
        }
        metrics_hook::retried(metrics, target);
        Some(retry::backoff(&self.cfg.retries, attempt))
    }

    /// May a `tools/call` of upstream tool `tool` be retried after it was sent? `annotations`
    /// reads the tool's annotations from the cached list, only when the target trusts them.
    pub fn tool_idempotent(&self, tool: &str, annotations: impl FnOnce() -> Option<(bool, bool)>) -> bool {
        let r = &self.cfg.retries;
        if r.idempotent_tools.iter().any(|g| g.matches(tool)) {
            return true;
        }
        // idempotentHint only means something for a tool that is not read-only
        // (the spec); a read-only tool is idempotent in any case.
        r.trust_idempotent_hint && annotations().is_some_and(|(read_only, idem)| read_only || idem)
    }
}

/// A request let through an endpoint's breaker; records its outcome when finished (an
/// unfinished ticket, e.g. a cancelled request, counts as neither success nor failure).
pub struct Ticket<'a> {
    ep: &'a Endpoint,
    admission: Admission,
    done: bool,
}

impl Ticket<'_> {
    /// Is this request a half-open probe?
    pub fn is_probe(&self) -> bool {
        self.admission == Admission::Probe
    }

    /// Records the outcome: `Some(true)` the upstream answered, `Some(false)` it failed.
    pub fn finish(mut self, ok: Option<bool>) -> Option<Transition> {
        self.done = true;
        self.ep.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.ep.breaker.lock().record(self.admission, ok, Instant::now())
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.ep.outstanding.fetch_sub(1, Ordering::Relaxed);
            self.ep.breaker.lock().record(self.admission, None, Instant::now());
        }
    }
}

/// What an outcome says about the upstream's health: `Some(false)` for timeouts, lost or
/// refused connections and invalid responses; `None` for what is no fault of the upstream
/// (the client's mistakes, cancellations, the gateway's own limits).
pub fn health_signal(e: &GatewayError) -> Option<bool> {
    match e {
        GatewayError::Unavailable { .. }
        | GatewayError::Timeout { .. }
        | GatewayError::BadResponse { .. }
        | GatewayError::Upstream { .. } => Some(false),
        _ => None,
    }
}

fn with_url(base: &TransportSpec, url: &url::Url) -> TransportSpec {
    match base {
        TransportSpec::Sse { headers, .. } => TransportSpec::Sse {
            url: url.clone(),
            headers: headers.clone(),
        },
        TransportSpec::StreamableHttp { headers, .. } => TransportSpec::StreamableHttp {
            url: url.clone(),
            headers: headers.clone(),
        },
        other => other.clone(),
    }
}

fn redact(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("redacted"));
    }
    u.to_string()
}

/// Where traffic-management events are counted: the Prometheus metrics (when given) and a
/// log line with structured fields. Refusals also reach the request metrics through their
/// outcome (`rate_limited`, `overloaded`, `circuit_open`).
pub(crate) mod metrics_hook {
    use std::sync::Arc;

    use mcpgate_telemetry::Metrics;

    /// A request refused by a rate limit.
    pub fn rate_limited(m: &Metrics, scope: &'static str, target: Option<&str>) {
        m.rate_limited(scope);
        tracing::debug!(scope, target = target.unwrap_or(""), "Request refused by a rate limit.");
    }

    /// A request refused by a target's concurrency limit.
    pub fn overloaded(m: &Metrics, target: &str) {
        m.rate_limited("concurrency");
        tracing::debug!(target = %target, "Request refused by the target's concurrency limit.");
    }

    /// A request failed fast by an open circuit.
    pub fn circuit_rejected(target: &str) {
        tracing::debug!(target = %target, "Request failed fast: circuit open.");
    }

    /// A request retried.
    pub fn retried(m: Option<&Metrics>, target: &Arc<str>) {
        if let Some(m) = m {
            m.upstream_retry(target);
        }
        tracing::debug!(target = %target, "Retrying a request.");
    }

    /// A retry refused by the budget.
    pub fn retry_budget_exhausted(m: Option<&Metrics>, target: &Arc<str>) {
        if let Some(m) = m {
            m.retry_budget_exhausted(target);
        }
        tracing::debug!(target = %target, "Retry refused by the retry budget.");
    }

    /// An endpoint's circuit changed state; `listed`: whether the target is in the lists now.
    pub fn circuit_changed(m: &Metrics, target: &Arc<str>, endpoint: usize, state: &'static str, listed: bool) {
        m.circuit_open(target, !listed);
        tracing::warn!(target = %target, endpoint, state, "Circuit breaker changed state.");
    }
}

// ---- the gateway's hooks ----

impl crate::gateway::Inner {
    /// The global and per-identity rate limits, checked for every client request but `ping`.
    pub(crate) fn admit_request(
        &self,
        rt: &crate::gateway::Runtime,
        session: &crate::session::Session,
        method: &str,
    ) -> Result<(), GatewayError> {
        use mcpgate_config::traffic::RateScope;
        if rt.limits.is_empty() || method == "ping" {
            return Ok(());
        }
        let subject = limits::Subject {
            identity: session.identity().map(|i| i.subject.as_str()),
            target: None,
            tool: None,
        };
        rt.limits
            .check(&[RateScope::Global, RateScope::Identity], &subject)
            .map_err(|l| {
                metrics_hook::rate_limited(self.telemetry.metrics(), l.scope, None);
                GatewayError::RateLimited {
                    scope: l.scope,
                    rate: l.rate,
                    target: None,
                    retry_after: l.retry_after,
                }
            })
    }

    /// The per-target and per-tool rate limits, for a request about to go to `t`
    /// (`tool`: the upstream name of a `tools/call`).
    pub(crate) fn admit_target(&self, t: &crate::target::TargetRt, tool: Option<&str>) -> Result<(), GatewayError> {
        use mcpgate_config::traffic::RateScope;
        let rt = self.runtime.load();
        if rt.limits.is_empty() {
            return Ok(());
        }
        let subject = limits::Subject {
            identity: None,
            target: Some(t.name()),
            tool,
        };
        rt.limits
            .check(&[RateScope::Target, RateScope::Tool], &subject)
            .map_err(|l| {
                metrics_hook::rate_limited(self.telemetry.metrics(), l.scope, Some(t.name()));
                GatewayError::RateLimited {
                    scope: l.scope,
                    rate: l.rate,
                    target: Some(t.name().to_string()),
                    retry_after: l.retry_after,
                }
            })
    }

    /// A slot under `t`'s concurrency limit (`None` when it has none).
    pub(crate) async fn concurrency_slot(
        &self,
        t: &crate::target::TargetRt,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, GatewayError> {
        t.traffic.concurrency.acquire().await.map_err(|why| {
            metrics_hook::overloaded(self.telemetry.metrics(), t.name());
            tracing::debug!(target = %t.name(), reason = ?why, "Concurrency limit reached.");
            GatewayError::Overloaded {
                target: t.name().to_string(),
                max: t.traffic.cfg.concurrency.max_in_flight,
            }
        })
    }

    /// May request `method` (for `tools/call`: of upstream tool `tool`) be sent again after
    /// it may have reached `t`?
    pub(crate) fn idempotent(&self, t: &crate::target::TargetRt, method: &str, tool: Option<&str>) -> bool {
        match (method, tool) {
            ("tools/call", Some(tool)) => t.traffic.tool_idempotent(tool, || t.tool_hints(tool)),
            ("tools/call", None) => false,
            (m, _) => retry::idempotent_method(m),
        }
    }

    /// An endpoint's circuit changed: log it, and when the target as a whole left or rejoined
    /// the lists, tell clients; when it opened, also schedule the end of the cool-down (the
    /// target is listed again then, and the next request is a probe).
    pub(crate) fn circuit_transition(
        &self,
        t: &std::sync::Arc<crate::target::TargetRt>,
        endpoint: usize,
        tr: Transition,
    ) {
        let state = match tr {
            Transition::Opened => "open",
            Transition::Closed => "closed",
        };
        let changed = t.traffic.listed_changed();
        metrics_hook::circuit_changed(
            self.telemetry.metrics(),
            t.name(),
            endpoint,
            state,
            t.traffic.is_listed(),
        );
        if changed {
            self.membership_changed(true);
        }
        if tr == Transition::Opened {
            let me = self.me.clone();
            let t = t.clone();
            let wait = t.traffic.cfg.breaker.open_for;
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if let Some(gw) = me.upgrade()
                    && t.traffic.listed_changed()
                {
                    gw.telemetry.metrics().circuit_open(t.name(), !t.traffic.is_listed());
                    tracing::info!(target = %t.name(), "Circuit cool-down over; the target is listed again and probed.");
                    gw.membership_changed(true);
                }
            });
        }
    }
}

/// Waits for a call's answer under its timeouts: `call` since the start or since the last
/// progress notification (`alive`), and never beyond `max_call` in total. `None` on timeout.
pub(crate) async fn within_call_timeout<T>(
    timeouts: &mcpgate_config::traffic::Timeouts,
    alive: Option<&tokio::sync::Notify>,
    answer: impl std::future::Future<Output = T>,
) -> Option<T> {
    let start = Instant::now();
    let hard = start + timeouts.max_call;
    let mut deadline = (start + timeouts.call).min(hard);
    tokio::pin!(answer);
    loop {
        let progress = async {
            match alive {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut answer => return Some(r),
            _ = tokio::time::sleep_until(deadline) => return None,
            _ = progress => deadline = (Instant::now() + timeouts.call).min(hard),
        }
    }
}

impl crate::gateway::Inner {
    /// Forgets `session`'s upstream session `up` on `t` (if it still holds it) and closes it,
    /// so the next request opens a new one.
    pub(crate) fn drop_upstream(
        &self,
        session: &crate::session::Session,
        t: &crate::target::TargetRt,
        up: &crate::upstream::Upstream,
    ) {
        {
            let mut st = session.state.lock();
            let held = st
                .upstreams
                .get(t.name())
                .and_then(|c| c.get())
                .is_some_and(|u| std::sync::Arc::ptr_eq(&u.routes, &up.routes));
            if held {
                st.upstreams.remove(t.name());
            }
        }
        let conn = up.conn.clone();
        tokio::spawn(async move { conn.close().await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(call_ms: u64, max_ms: u64) -> mcpgate_config::traffic::Timeouts {
        mcpgate_config::traffic::Timeouts {
            list: Duration::from_secs(30),
            call: Duration::from_millis(call_ms),
            max_call: Duration::from_millis(max_ms),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn progress_extends_a_call_up_to_its_maximum() {
        let to = timeouts(100, 350);
        // No progress: the call timeout.
        let start = Instant::now();
        assert_eq!(within_call_timeout(&to, None, std::future::pending::<()>()).await, None);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        // Progress every 80 ms keeps it alive until max_call.
        let alive = std::sync::Arc::new(tokio::sync::Notify::new());
        let a = alive.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(80)).await;
                a.notify_one();
            }
        });
        let start = Instant::now();
        assert_eq!(
            within_call_timeout(&to, Some(&alive), std::future::pending::<()>()).await,
            None
        );
        assert_eq!(start.elapsed(), Duration::from_millis(350));
        ticker.abort();
        // An answer in time is returned.
        let answer = async {
            tokio::time::sleep(Duration::from_millis(90)).await;
            7
        };
        assert_eq!(within_call_timeout(&to, None, answer).await, Some(7));
    }
}

/// A target's traffic state for `/readyz` and `mcpgate check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrafficStatus {
    /// `closed`, `half_open` or `open` (every endpoint open): an open target is left out of
    /// the lists and its calls fail fast.
    pub circuit: &'static str,
    /// Requests in flight to the target (counted by its endpoints).
    pub in_flight: usize,
    /// Requests waiting for a slot under `concurrency.max_in_flight`.
    pub queued: usize,
    /// Why the last active health check failed (absent when it passed or none ran yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_error: Option<String>,
    /// Per-endpoint state, for targets with several `urls`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointStatus>,
}

/// One endpoint's state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndpointStatus {
    /// Its URL (password redacted).
    pub url: String,
    /// `closed`, `half_open` or `open`.
    pub circuit: &'static str,
    /// Requests in flight on it.
    pub in_flight: usize,
}

impl TargetTraffic {
    /// The state reported in `/readyz`.
    pub fn status(&self) -> TrafficStatus {
        TrafficStatus {
            circuit: self.circuit(),
            in_flight: self.endpoints.iter().map(Endpoint::outstanding).sum(),
            queued: self.concurrency.queued(),
            health_error: self.last_health.lock().as_ref().and_then(|c| c.error.clone()),
            endpoints: if self.endpoints.len() > 1 {
                self.endpoints
                    .iter()
                    .map(|e| EndpointStatus {
                        url: e.url.clone().unwrap_or_default(),
                        circuit: e.circuit().as_str(),
                        in_flight: e.outstanding(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}
