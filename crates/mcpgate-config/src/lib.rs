//! mcpgate's configuration: one YAML (or JSON) file, parsed, validated, then trusted.
//!
//! [`spec`] holds the serde types that mirror the file (`deny_unknown_fields`, a doc comment
//! on every field — they are the reference for `docs/configuration.md`). [`Config::load`]
//! parses a file, resolves secrets and validates everything into the runtime types of this
//! module, so nothing downstream ever re-validates. Every error names the file and, where the
//! parser knows it, the line and column.

mod duration;
mod glob;
mod load;
pub mod spec;
pub mod traffic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use duration::parse_duration;
pub use glob::Glob;
pub use load::ConfigError;
pub use spec::{AccessLogFormat, Generation, OtlpProtocol, PrefixMode, SessionMode};

/// A validated configuration snapshot.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file came from (for reloads and messages).
    pub source: Option<PathBuf>,
    /// Listener settings.
    pub listen: Listen,
    /// How exposed names are built.
    pub naming: Naming,
    /// Upstream MCP servers, in file order.
    pub targets: Vec<Target>,
    /// Authentication (disabled when the file has no `auth:`).
    pub auth: Arc<mcpgate_auth::Authenticator>,
    /// Authorization rules, compiled; the default is deny once authentication is on.
    pub policy: Arc<mcpgate_auth::Policy>,
    /// Graceful shutdown.
    pub shutdown: Shutdown,
    /// Restarts of targets' main sessions.
    pub supervision: Supervision,
    /// Metrics, access log and traces.
    pub observability: Observability,
    /// Traffic management: rate limits, in file order (issue 4).
    pub rate_limits: Vec<traffic::RateLimit>,
    /// Stateless (2026-07-28) clients (issue 6).
    pub stateless: Stateless,
}

/// Validated settings for stateless (2026-07-28) clients. They take effect at start-up.
#[derive(Debug, Clone)]
pub struct Stateless {
    /// The key sealing `requestState`; `None`: a random key per process.
    pub request_state_key: Option<Secret>,
    /// How long a call waiting for input is held.
    pub input_wait: std::time::Duration,
    /// Most calls held at once.
    pub max_held_calls: usize,
}

/// Validated telemetry settings.
#[derive(Debug, Clone, Default)]
pub struct Observability {
    /// OpenTelemetry tracing; `None`: off (no spans are made).
    pub tracing: Option<Tracing>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The access log.
    pub access_log: AccessLog,
    /// Ready only while at least this many targets are up (`None`: once every target settled).
    pub min_targets_up: Option<usize>,
}

/// Validated metrics settings. They take effect at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Record and serve metrics.
    pub enabled: bool,
    /// Path of the endpoint.
    pub path: String,
    /// A separate listener for the endpoint (`None`: the main listener serves it).
    pub address: Option<std::net::SocketAddr>,
    /// Distinct tool label values per target.
    pub max_tools_per_target: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: true,
            path: "/metrics".into(),
            address: None,
            max_tools_per_target: 1000,
        }
    }
}

/// Validated access log settings. They take effect at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessLog {
    /// Write it.
    pub enabled: bool,
    /// Line format.
    pub format: spec::AccessLogFormat,
    /// Destination.
    pub output: AccessLogOutput,
}

/// Where access log lines go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccessLogOutput {
    /// Standard error.
    #[default]
    Stderr,
    /// Standard output.
    Stdout,
    /// A file (absolute, or resolved against the config file's folder).
    File(PathBuf),
}

/// Validated OpenTelemetry tracing settings. They take effect at start-up; a reload keeps
/// the exporter the process started with.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracing {
    /// Full OTLP endpoint URL (for `http/protobuf`, with its `/v1/traces` path).
    pub endpoint: url::Url,
    /// OTLP transport.
    pub protocol: spec::OtlpProtocol,
    /// Headers (HTTP) or metadata (gRPC, lower-cased names) sent with every export.
    pub headers: Vec<(String, Secret)>,
    /// Bound on one export request.
    pub timeout: Duration,
    /// Fraction of new traces recorded, 0 to 1.
    pub sampling_ratio: f64,
    /// `service.name` of the exported resource.
    pub service_name: String,
}

/// Validated graceful-shutdown settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// Time between the first signal (readyz not ready, new sessions refused) and closing the listener.
    pub announce: Duration,
    /// Time allowed for in-flight requests to finish.
    pub drain_timeout: Duration,
}

/// Validated supervision settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervision {
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Failures within `crash_loop_window` that mean a crash loop.
    pub crash_loop_restarts: u32,
    /// Window for counting failures.
    pub crash_loop_window: Duration,
    /// Reconnect delay while in a crash loop.
    pub crash_loop_backoff: Duration,
    /// stderr lines kept per target.
    pub stderr_lines: usize,
}

impl Default for Supervision {
    fn default() -> Self {
        let s = spec::SupervisionSpec::default();
        Supervision {
            backoff_initial: s.backoff_initial.0,
            backoff_max: s.backoff_max.0,
            crash_loop_restarts: s.crash_loop_restarts,
            crash_loop_window: s.crash_loop_window.0,
            crash_loop_backoff: s.crash_loop_backoff.0,
            stderr_lines: s.stderr_lines,
        }
    }
}

/// Validated listener settings.
#[derive(Debug, Clone)]
pub struct Listen {
    /// Socket address to bind.
    pub address: std::net::SocketAddr,
    /// Streamable HTTP endpoint path.
    pub mcp_path: String,
    /// Legacy SSE stream path (GET).
    pub sse_path: String,
    /// Legacy SSE message path (POST).
    pub message_path: String,
    /// Origins allowed in addition to the listener's own host (exact `scheme://host[:port]`, or `*`).
    pub allowed_origins: Vec<String>,
    /// Host header values allowed (empty: loopback names when bound to loopback, anything otherwise).
    pub allowed_hosts: Vec<String>,
    /// Interval of SSE keep-alive comments on idle streams.
    pub keep_alive: Duration,
    /// A session with no activity for this long is closed.
    pub session_idle_timeout: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Events kept per SSE stream for `Last-Event-ID` resumption.
    pub resume_buffer: usize,
    /// Items per page of merged lists (0: one page).
    pub page_size: usize,
    /// Deepest array/object nesting accepted in a client message.
    pub max_json_depth: usize,
    /// Live sessions in total (0: no limit).
    pub max_sessions: usize,
    /// Live sessions per identity (0: no limit).
    pub max_sessions_per_identity: usize,
    /// Concurrent GET/SSE connections per session.
    pub max_streams_per_session: usize,
}

/// Validated naming settings.
#[derive(Debug, Clone)]
pub struct Naming {
    /// Separator between target and tool name.
    pub separator: String,
    /// When names get the target prefix.
    pub prefix: PrefixMode,
}

/// A validated upstream target. Two targets are equal when every field is (a reload replaces
/// a target whose configuration changed in any way and keeps one that did not).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Unique name (safe to use as a prefix and a metric label).
    pub name: Arc<str>,
    /// How to reach it.
    pub transport: Transport,
    /// Which of its tools are exposed.
    pub tools: NameFilter,
    /// Whether downstream sessions share one upstream session.
    pub session: SessionMode,
    /// Which protocol generation to speak to it.
    pub generation: Generation,
    /// Time allowed to start/connect and initialize.
    pub connect_timeout: Duration,
    /// Default time allowed for one request.
    pub request_timeout: Duration,
    /// Forward the client's `Authorization` header to this target.
    pub forward_authorization: bool,
    /// Log this target's request arguments in the access log.
    pub log_arguments: bool,
    /// Log this target's results in the access log.
    pub log_results: bool,
    /// Largest message accepted from this target.
    pub max_message_bytes: usize,
    /// `per_client`: most upstream sessions open at once (0: no limit).
    pub max_processes: usize,
    /// Traffic management: timeouts, retries, concurrency, health, circuit breaker, endpoints.
    pub traffic: traffic::Traffic,
}

/// How to reach a target.
#[derive(Clone, PartialEq)]
pub enum Transport {
    /// A child process speaking newline-delimited JSON-RPC on stdio.
    Stdio {
        /// Program to run.
        command: String,
        /// Arguments.
        args: Vec<String>,
        /// Extra environment (secrets resolved).
        env: Vec<(String, Secret)>,
        /// Working directory.
        cwd: Option<PathBuf>,
    },
    /// Legacy HTTP+SSE (2024-11-05).
    Sse {
        /// The SSE stream URL.
        url: url::Url,
        /// Extra request headers (secrets resolved).
        headers: Vec<(String, Secret)>,
    },
    /// Streamable HTTP (2025-03-26 and later).
    StreamableHttp {
        /// The MCP endpoint URL.
        url: url::Url,
        /// Extra request headers (secrets resolved).
        headers: Vec<(String, Secret)>,
    },
}

impl Transport {
    /// A short name of the transport kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Stdio { .. } => "stdio",
            Transport::Sse { .. } => "sse",
            Transport::StreamableHttp { .. } => "streamable_http",
        }
    }

    /// Where it points, without secrets (for `mcpgate check` and logs).
    pub fn describe(&self) -> String {
        match self {
            Transport::Stdio { command, args, .. } => {
                let mut s = command.clone();
                for a in args {
                    s.push(' ');
                    s.push_str(a);
                }
                s
            }
            Transport::Sse { url, .. } | Transport::StreamableHttp { url, .. } => redact_url(url),
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.kind(), self.describe())
    }
}

fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("redacted"));
    }
    u.to_string()
}

/// A secret value: printed as `<redacted>` by `Debug` so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(v: impl Into<String>) -> Self {
        Secret(v.into())
    }

    /// The value; use only where it is sent to the upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Tool allow/deny lists of one target. Deny wins; an empty allow list allows everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameFilter {
    /// Patterns that expose a tool.
    pub allow: Vec<Glob>,
    /// Patterns that hide a tool.
    pub deny: Vec<Glob>,
}

impl NameFilter {
    /// Is the upstream name `name` exposed?
    pub fn permits(&self, name: &str) -> bool {
        if self.deny.iter().any(|g| g.matches(name)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|g| g.matches(name))
    }
}

impl Config {
    /// Loads and validates a config file (`.json` is parsed as JSON, anything else as YAML).
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        load::load_file(path)
    }

    /// Parses and validates config text; `origin` names it in error messages.
    pub fn from_str(text: &str, origin: &str, json: bool) -> Result<Config, ConfigError> {
        load::load_text(text, origin, json, None)
    }

    /// A target by name.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| &*t.name == name)
    }
}
