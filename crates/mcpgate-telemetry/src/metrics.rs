//! Prometheus metrics: the registry, every metric's name, help, type and labels, and the
//! typed methods that record events.
//!
//! The per-request path touches no `Family` map: series for a method and outcome are resolved
//! once (a `OnceLock` per slot) and then updated with atomics; tool and upstream series live in
//! a per-target table behind one read lock. Label values are bounded: methods outside
//! [`METHODS`] count as `other`, and each target keeps at most `max_tools_per_target` distinct
//! tool labels, folding the rest into [`OTHER_LABEL`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::{Outcome, Request};

/// The label value that stands for tools beyond a target's cap, and for methods outside
/// [`METHODS`] (`other`) — see [`Metrics::request`].
pub const OTHER_LABEL: &str = "__other__";

/// MCP methods that get a `method` label value of their own; any other method is `other`.
pub const METHODS: [&str; 18] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "other",
];

fn method_index(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// Latency buckets in seconds: 0.5 ms to 5 min, for calls that range from a cached list to a
/// long-running tool.
const LATENCY_BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Settings of the metrics.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// Record metrics at all (off: every method returns at once and nothing is exposed).
    pub enabled: bool,
    /// Distinct `tool` label values kept per target; further tools count as [`OTHER_LABEL`].
    pub max_tools_per_target: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            enabled: true,
            max_tools_per_target: 1000,
        }
    }
}

/// A label value shared with the config (target and tool names).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Name(Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodOutcome {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    target: Name,
    tool: Name,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    target: Name,
    tool: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetMethod {
    target: Name,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabel {
    scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetKind {
    target: Name,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListTarget {
    list: &'static str,
    target: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// Resolved series of one method.
#[derive(Default)]
struct MethodSeries {
    requests: [OnceLock<Counter>; Outcome::ALL.len()],
    duration: OnceLock<Histogram>,
    bytes_in: OnceLock<Counter>,
    bytes_out: OnceLock<Counter>,
}

/// Resolved series of one tool (or of a target's [`OTHER_LABEL`] tools).
#[derive(Default)]
struct ToolSeries {
    calls: [OnceLock<Counter>; Outcome::ALL.len()],
    duration: OnceLock<Histogram>,
}

/// Resolved series of one target.
#[derive(Default)]
struct TargetSeries {
    tools: HashMap<Arc<str>, ToolSeries>,
    other_tools: ToolSeries,
    upstream: [OnceLock<Histogram>; METHODS.len()],
}

/// The families, for resolving series the first time they are needed.
struct Families {
    requests: Family<MethodOutcome, Counter>,
    request_duration: HistogramFamily<MethodLabel>,
    request_bytes: Family<MethodLabel, Counter>,
    response_bytes: Family<MethodLabel, Counter>,
    tool_calls: Family<ToolOutcome, Counter>,
    tool_duration: HistogramFamily<ToolLabel>,
    upstream_duration: HistogramFamily<TargetMethod>,
    sessions: Family<TransportLabel, Gauge>,
    sessions_started: Family<TransportLabel, Counter>,
    upstream_sessions: Family<TargetLabel, Gauge>,
    target_up: Family<TargetLabel, Gauge>,
    target_restarts: Family<TargetLabel, Counter>,
    auth_failures: Family<ReasonLabel, Counter>,
    authz_denials: Family<TargetKind, Counter>,
    list_failures: Family<ListTarget, Counter>,
    // ---- traffic management (issue 4) ----
    rate_limited: Family<ScopeLabel, Counter>,
    retries: Family<TargetLabel, Counter>,
    retry_budget_exhausted: Family<TargetLabel, Counter>,
    circuit_open: Family<TargetLabel, Gauge>,
    // ---- operations (issue 4) ----
    limit_rejections: Family<LimitLabel, Counter>,
    crash_loop: Family<TargetLabel, Gauge>,
    // ---- MCP 2026-07-28 (issue 6) ----
    tools_rejected: Family<TargetLabel, Gauge>,
}

/// The gateway's Prometheus metrics. Every method is cheap and returns at once when metrics
/// are disabled.
pub struct Metrics {
    enabled: bool,
    max_tools: usize,
    registry: Registry,
    families: Families,
    methods: [MethodSeries; METHODS.len()],
    targets: RwLock<HashMap<Arc<str>, TargetSeries>>,
    access_log_dropped: Counter,
}

impl Metrics {
    /// Builds the registry with every metric registered (exposed once it has a series).
    pub fn new(opts: &MetricsOptions) -> Metrics {
        let mut registry = Registry::with_prefix("mcpgate");
        let hist: fn() -> Histogram = latency_histogram;
        let families = Families {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(hist),
            request_bytes: Family::default(),
            response_bytes: Family::default(),
            tool_calls: Family::default(),
            tool_duration: Family::new_with_constructor(hist),
            upstream_duration: Family::new_with_constructor(hist),
            sessions: Family::default(),
            sessions_started: Family::default(),
            upstream_sessions: Family::default(),
            target_up: Family::default(),
            target_restarts: Family::default(),
            auth_failures: Family::default(),
            authz_denials: Family::default(),
            list_failures: Family::default(),
            rate_limited: Family::default(),
            retries: Family::default(),
            retry_budget_exhausted: Family::default(),
            circuit_open: Family::default(),
            limit_rejections: Family::default(),
            crash_loop: Family::default(),
            tools_rejected: Family::default(),
        };
        let f = &families;
        registry.register(
            "build",
            "mcpgate build information",
            Info::new(VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        registry.register(
            "mcp_requests",
            "MCP requests (JSON-RPC requests from clients) by method and outcome",
            f.requests.clone(),
        );
        registry.register_with_unit(
            "mcp_request_duration",
            "Time from receiving an MCP request to having its response, by method",
            Unit::Seconds,
            f.request_duration.clone(),
        );
        registry.register_with_unit(
            "mcp_request",
            "Size of MCP request messages received from clients, by method",
            Unit::Bytes,
            f.request_bytes.clone(),
        );
        registry.register_with_unit(
            "mcp_response",
            "Size of the responses sent to clients for MCP requests, by method",
            Unit::Bytes,
            f.response_bytes.clone(),
        );
        registry.register(
            "tool_calls",
            "tools/call requests by target, upstream tool name and outcome",
            f.tool_calls.clone(),
        );
        registry.register_with_unit(
            "tool_call_duration",
            "Time from receiving a tools/call to having its response, by target and tool",
            Unit::Seconds,
            f.tool_duration.clone(),
        );
        registry.register_with_unit(
            "upstream_request_duration",
            "Time spent waiting for an upstream's response to a forwarded request, by target and method",
            Unit::Seconds,
            f.upstream_duration.clone(),
        );
        registry.register(
            "downstream_sessions",
            "Live client sessions by transport",
            f.sessions.clone(),
        );
        registry.register(
            "downstream_sessions_started",
            "Client sessions started (initialize succeeded) by transport",
            f.sessions_started.clone(),
        );
        registry.register(
            "upstream_sessions",
            "Open upstream MCP sessions (for stdio: processes) by target, the discovery session included",
            f.upstream_sessions.clone(),
        );
        registry.register(
            "target_up",
            "1 when the target's main upstream session is connected, else 0",
            f.target_up.clone(),
        );
        registry.register(
            "target_restarts",
            "Times a target's main upstream session was lost after being up (for stdio: the process exited) and is reconnected",
            f.target_restarts.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused by authentication, by reason",
            f.auth_failures.clone(),
        );
        registry.register(
            "authorization_denials",
            "Requests refused by an authorization policy, by target and kind (tool, prompt, resource, method)",
            f.authz_denials.clone(),
        );
        registry.register(
            "list_merge_failures",
            "Times a target was left out of a merged list because listing it failed, by list and target",
            f.list_failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit or a target's concurrency limit, by scope (global, identity, target, tool, concurrency)",
            f.rate_limited.clone(),
        );
        registry.register(
            "upstream_retries",
            "Upstream requests sent again after a failure (connect failures, idempotent reads, tools marked idempotent), by target",
            f.retries.clone(),
        );
        registry.register(
            "retry_budget_exhausted",
            "Retries not made because the target's retry budget was spent, by target",
            f.retry_budget_exhausted.clone(),
        );
        registry.register(
            "circuit_open",
            "1 while every endpoint of the target has an open circuit (calls fail fast, the target is left out of lists), else 0",
            f.circuit_open.clone(),
        );
        registry.register(
            "limit_rejections",
            "Work refused by an operations limit, by limit (draining, max_sessions, max_sessions_per_identity, max_streams_per_session, max_processes, max_json_depth)",
            f.limit_rejections.clone(),
        );
        registry.register(
            "target_crash_loop",
            "1 while the target is in a crash loop (too many failures within supervision.crash_loop_window; restarts are spaced by crash_loop_backoff), else 0",
            f.crash_loop.clone(),
        );
        registry.register(
            "tools_rejected",
            "Tools left out of the merged tools/list because their x-mcp-header annotations are invalid (MCP 2026-07-28), by target, as of the latest list",
            f.tools_rejected.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access log lines dropped because the writer could not keep up",
            access_log_dropped.clone(),
        );
        Metrics {
            enabled: opts.enabled,
            max_tools: opts.max_tools_per_target.max(1),
            registry,
            families,
            methods: Default::default(),
            targets: RwLock::new(HashMap::new()),
            access_log_dropped,
        }
    }

    /// Are metrics recorded and exposed?
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The exposition in the OpenMetrics text format (which Prometheus scrapes natively);
    /// serve it with [`Metrics::CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The content type of [`Metrics::encode`].
    pub const CONTENT_TYPE: &'static str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    pub(crate) fn access_log_dropped(&self) -> Counter {
        self.access_log_dropped.clone()
    }

    /// One finished MCP request: `mcp_requests`, `mcp_request_duration`, bytes, and for
    /// `tools/call` the tool-call series; the upstream part into `upstream_request_duration`.
    pub fn request(&self, r: &Request<'_>) {
        if !self.enabled {
            return;
        }
        let mi = method_index(r.method);
        let method = METHODS[mi];
        let m = &self.methods[mi];
        let f = &self.families;
        m.requests[r.outcome.index()]
            .get_or_init(|| {
                f.requests.get_or_create_owned(&MethodOutcome {
                    method,
                    outcome: r.outcome.as_str(),
                })
            })
            .inc();
        let secs = r.duration.as_secs_f64();
        m.duration
            .get_or_init(|| f.request_duration.get_or_create_owned(&MethodLabel { method }))
            .observe(secs);
        m.bytes_in
            .get_or_init(|| f.request_bytes.get_or_create_owned(&MethodLabel { method }))
            .inc_by(r.bytes_in);
        m.bytes_out
            .get_or_init(|| f.response_bytes.get_or_create_owned(&MethodLabel { method }))
            .inc_by(r.bytes_out);
        let Some(target) = r.target else { return };
        let tool = (mi == 3).then_some(r.name).flatten();
        if !self.with_target(target, tool, |t| Self::record_target(f, t, target, tool, mi, r, secs)) {
            let mut targets = self.targets.write();
            let t = targets.entry(Arc::from(target)).or_default();
            if let Some(tool) = tool
                && !t.tools.contains_key(tool)
                && t.tools.len() < self.max_tools
            {
                t.tools.insert(Arc::from(tool), ToolSeries::default());
            }
            Self::record_target(f, t, target, tool, mi, r, secs);
        }
    }

    /// Runs `f` on the target's series under the read lock, unless the target is new or the
    /// tool is new and still fits under the cap (then the caller inserts it).
    fn with_target(&self, target: &str, tool: Option<&str>, f: impl FnOnce(&TargetSeries)) -> bool {
        let targets = self.targets.read();
        let Some(t) = targets.get(target) else { return false };
        if let Some(tool) = tool
            && !t.tools.contains_key(tool)
            && t.tools.len() < self.max_tools
        {
            return false;
        }
        f(t);
        true
    }

    fn record_target(
        f: &Families,
        t: &TargetSeries,
        target: &str,
        tool: Option<&str>,
        mi: usize,
        r: &Request<'_>,
        secs: f64,
    ) {
        if let Some(up) = r.upstream_duration {
            t.upstream[mi]
                .get_or_init(|| {
                    f.upstream_duration.get_or_create_owned(&TargetMethod {
                        target: Name(Arc::from(target)),
                        method: METHODS[mi],
                    })
                })
                .observe(up.as_secs_f64());
        }
        let Some(tool) = tool else { return };
        let (label, series) = match t.tools.get_key_value(tool) {
            Some((k, s)) => (k.clone(), s),
            None => (Arc::from(OTHER_LABEL), &t.other_tools),
        };
        let labels = || ToolLabel {
            target: Name(Arc::from(target)),
            tool: Name(label.clone()),
        };
        series.calls[r.outcome.index()]
            .get_or_init(|| {
                let l = labels();
                f.tool_calls.get_or_create_owned(&ToolOutcome {
                    target: l.target,
                    tool: l.tool,
                    outcome: r.outcome.as_str(),
                })
            })
            .inc();
        series
            .duration
            .get_or_init(|| f.tool_duration.get_or_create_owned(&labels()))
            .observe(secs);
    }

    /// A client session started on `transport` (`streamable_http`, `sse`).
    pub fn session_started(&self, transport: &'static str) {
        if !self.enabled {
            return;
        }
        let l = TransportLabel { transport };
        self.families.sessions.get_or_create(&l).inc();
        self.families.sessions_started.get_or_create(&l).inc();
    }

    /// A client session ended.
    pub fn session_ended(&self, transport: &'static str) {
        if !self.enabled {
            return;
        }
        self.families
            .sessions
            .get_or_create(&TransportLabel { transport })
            .dec();
    }

    /// An upstream session to `target` was opened.
    pub fn upstream_session_opened(&self, target: &Arc<str>) {
        if self.enabled {
            self.families
                .upstream_sessions
                .get_or_create(&target_label(target))
                .inc();
        }
    }

    /// An upstream session to `target` closed.
    pub fn upstream_session_closed(&self, target: &Arc<str>) {
        if self.enabled {
            self.families
                .upstream_sessions
                .get_or_create(&target_label(target))
                .dec();
        }
    }

    /// The target's main upstream session is connected (`true`) or not.
    pub fn target_up(&self, target: &Arc<str>, up: bool) {
        if self.enabled {
            self.families
                .target_up
                .get_or_create(&target_label(target))
                .set(up as i64);
        }
    }

    /// `target` is no longer configured (a reload removed it): its state gauges (up, circuit,
    /// crash loop, upstream sessions) leave the exposition instead of reporting a stale
    /// value forever. Its counters stay, as counters of a finished series do.
    pub fn target_removed(&self, target: &Arc<str>) {
        if self.enabled {
            let label = target_label(target);
            let f = &self.families;
            f.target_up.remove(&label);
            f.circuit_open.remove(&label);
            f.crash_loop.remove(&label);
            f.upstream_sessions.remove(&label);
            f.tools_rejected.remove(&label);
        }
    }

    /// The target's main upstream session was lost and will be re-established.
    pub fn target_restarted(&self, target: &Arc<str>) {
        if self.enabled {
            self.families.target_restarts.get_or_create(&target_label(target)).inc();
        }
    }

    /// A request was refused by authentication for `reason` (a fixed word such as `missing`,
    /// `expired`, `bad_signature`, `session_owner_mismatch`).
    pub fn auth_failure(&self, reason: &'static str) {
        if self.enabled {
            self.families.auth_failures.get_or_create(&ReasonLabel { reason }).inc();
        }
    }

    /// A policy denied a request of `kind` (`tool`, `prompt`, `resource`, `method`) on `target`.
    pub fn authorization_denied(&self, target: &Arc<str>, kind: &'static str) {
        if self.enabled {
            self.families
                .authz_denials
                .get_or_create(&TargetKind {
                    target: Name(target.clone()),
                    kind,
                })
                .inc();
        }
    }

    /// A request was refused by a rate limit of `scope` (`global`, `identity`, `target`,
    /// `tool`) or by a target's concurrency limit (`concurrency`).
    pub fn rate_limited(&self, scope: &'static str) {
        if self.enabled {
            self.families.rate_limited.get_or_create(&ScopeLabel { scope }).inc();
        }
    }

    /// A request to `target` is sent again.
    pub fn upstream_retry(&self, target: &Arc<str>) {
        if self.enabled {
            self.families.retries.get_or_create(&target_label(target)).inc();
        }
    }

    /// A retry to `target` was not made: its retry budget is spent.
    pub fn retry_budget_exhausted(&self, target: &Arc<str>) {
        if self.enabled {
            self.families
                .retry_budget_exhausted
                .get_or_create(&target_label(target))
                .inc();
        }
    }

    /// `target`'s circuit is open (every endpoint) or not.
    pub fn circuit_open(&self, target: &Arc<str>, open: bool) {
        if self.enabled {
            self.families
                .circuit_open
                .get_or_create(&target_label(target))
                .set(open as i64);
        }
    }

    /// Work was refused by the operations limit `limit` (a fixed name such as `max_sessions`).
    pub fn limit_rejected(&self, limit: &'static str) {
        if self.enabled {
            self.families
                .limit_rejections
                .get_or_create(&LimitLabel { limit })
                .inc();
        }
    }

    /// `target` entered (`true`) or left a crash loop.
    pub fn crash_loop(&self, target: &Arc<str>, looping: bool) {
        if self.enabled {
            self.families
                .crash_loop
                .get_or_create(&target_label(target))
                .set(looping as i64);
        }
    }

    /// The latest merged `tools/list` left out `count` of `target`'s tools because their
    /// `x-mcp-header` annotations are invalid (0 removes the series).
    pub fn tools_rejected(&self, target: &Arc<str>, count: usize) {
        if self.enabled {
            let label = target_label(target);
            if count == 0 {
                self.families.tools_rejected.remove(&label);
            } else {
                self.families.tools_rejected.get_or_create(&label).set(count as i64);
            }
        }
    }

    /// `target` was left out of a merged `list` (`tools/list`, …) because listing it failed.
    pub fn list_merge_failed(&self, list: &'static str, target: &Arc<str>) {
        if self.enabled {
            self.families
                .list_failures
                .get_or_create(&ListTarget {
                    list,
                    target: Name(target.clone()),
                })
                .inc();
        }
    }
}

fn target_label(target: &Arc<str>) -> TargetLabel {
    TargetLabel {
        target: Name(target.clone()),
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("enabled", &self.enabled).finish()
    }
}

#[cfg(test)]
mod tests;
