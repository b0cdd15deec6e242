//! mcpgate's telemetry: what every MCP request and every gateway event leaves behind for an
//! operator — Prometheus metrics ([`Metrics`]) and the access log ([`AccessLog`]).
//!
//! The federation core and the HTTP edge report *events* through typed methods (one call per
//! event: [`Telemetry::request`] once per MCP request, [`Metrics::session_started`],
//! [`Metrics::auth_failure`], …); this crate owns metric names, help texts, label sets and
//! their bounds, and the log line formats. It knows nothing of MCP sessions or HTTP; callers
//! hand it plain strings and durations. Tracing (OpenTelemetry spans) is not here.
//!
//! Adding a metric: a field in [`Metrics`], its registration in [`Metrics::new`] (name without
//! the `mcpgate_` prefix, a help sentence, base units), and one typed method that records the
//! event. Label values must be bounded: targets, tools (capped per target), methods (a fixed
//! list), outcomes and reasons (enums or `&'static str`) — never subjects, sessions or arguments.

mod access_log;
mod metrics;
mod outcome;

use std::time::Duration;

pub use access_log::{AccessLog, AccessLogOptions, LogFormat, LogOutput};
pub use metrics::{Metrics, MetricsOptions, OTHER_LABEL};
pub use outcome::Outcome;

/// Everything observable about one finished MCP request (a JSON-RPC request from a client).
/// Borrowed for the duration of the report; nothing is kept unless the access log is on.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Downstream session id (`None` for a failed `initialize`).
    pub session: Option<&'a str>,
    /// Downstream transport (`streamable_http`, `sse`).
    pub transport: &'a str,
    /// Authenticated subject (`None`: anonymous).
    pub subject: Option<&'a str>,
    /// `clientInfo.name` from the session's `initialize`.
    pub client_name: Option<&'a str>,
    /// `clientInfo.version`.
    pub client_version: Option<&'a str>,
    /// JSON-RPC method as the client sent it.
    pub method: &'a str,
    /// The target that served it (`None`: answered by the gateway itself, or not routed).
    pub target: Option<&'a str>,
    /// The tool, prompt or resource on that target (its upstream name, or the resource URI).
    pub name: Option<&'a str>,
    /// How it ended.
    pub outcome: Outcome,
    /// The JSON-RPC error code of an error response.
    pub error_code: Option<i64>,
    /// Time from receiving the request to having its response.
    pub duration: Duration,
    /// Time spent waiting for the upstream (`None`: no upstream request was made).
    pub upstream_duration: Option<Duration>,
    /// Size of the request message in bytes.
    pub bytes_in: u64,
    /// Size of the response message in bytes.
    pub bytes_out: u64,
    /// The call's arguments as raw JSON, when the target opted in (`log_arguments`).
    pub arguments: Option<&'a str>,
    /// The result as raw JSON, when the target opted in (`log_results`).
    pub result: Option<&'a str>,
}

/// Settings of the whole telemetry.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Metrics.
    pub metrics: MetricsOptions,
    /// The access log.
    pub access_log: AccessLogOptions,
}

/// Metrics and the access log, as one handle owned by the gateway.
pub struct Telemetry {
    metrics: Metrics,
    access_log: Option<AccessLog>,
}

impl Telemetry {
    /// Builds the registry and opens the access log's output.
    pub fn new(opts: &Options) -> std::io::Result<Telemetry> {
        let metrics = Metrics::new(&opts.metrics);
        let access_log = if opts.access_log.enabled {
            Some(AccessLog::open(&opts.access_log, metrics.access_log_dropped())?)
        } else {
            None
        };
        Ok(Telemetry { metrics, access_log })
    }

    /// Telemetry with metrics on and no access log (tests, tools).
    pub fn metrics_only() -> Telemetry {
        Telemetry {
            metrics: Metrics::new(&MetricsOptions::default()),
            access_log: None,
        }
    }

    /// Does a finished request need to be reported at all? When false the caller can skip
    /// measuring it.
    pub fn wants_requests(&self) -> bool {
        self.metrics.enabled() || self.access_log.is_some()
    }

    /// Is the access log on?
    pub fn access_log_enabled(&self) -> bool {
        self.access_log.is_some()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Reports one finished MCP request: metrics and, when on, one access log line.
    pub fn request(&self, r: &Request<'_>) {
        self.metrics.request(r);
        if let Some(log) = &self.access_log {
            log.write(r);
        }
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("metrics", &self.metrics.enabled())
            .field("access_log", &self.access_log.is_some())
            .finish()
    }
}
