//! The configuration file as written: serde types mirroring the YAML/JSON document.
//!
//! Every struct rejects unknown fields, so a typo is an error at load time, never a silently
//! ignored setting. These types are turned into the validated runtime types of the crate root
//! by `load`; nothing else should read them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use mcpgate_auth::spec::{AuthSpec, RuleSpec};

use crate::duration::HumanDuration;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// The downstream listener.
    #[serde(default)]
    pub listen: ListenSpec,
    /// How tool and prompt names are exposed.
    #[serde(default)]
    pub naming: NamingSpec,
    /// The upstream MCP servers to federate.
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Authentication of callers (JWT, API keys) and the protected-resource metadata.
    /// Absent: no authentication.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// Authorization rules (allow/deny of tools, prompts, resources and methods). With
    /// authentication on, whatever no rule allows is denied.
    #[serde(default)]
    pub policies: Vec<RuleSpec>,
    // ---- Stateless clients (issue 6) ----
    /// Stateless (2026-07-28) clients: the calls held for them while they gather input.
    #[serde(default)]
    pub stateless: StatelessSpec,
    // ---- Operations (issue 4: drain, supervision) ----
    /// What happens on SIGTERM/SIGINT.
    #[serde(default)]
    pub shutdown: ShutdownSpec,
    /// How stdio servers (and every target's main session) are restarted.
    #[serde(default)]
    pub supervision: SupervisionSpec,
    // ---- Traffic management (issue 4: rate limits, target defaults) ----
    /// Rate limits and defaults for every target's timeouts, retries, concurrency, health
    /// checks and circuit breaker.
    #[serde(default)]
    pub traffic: crate::traffic::TrafficSpec,
    // ---- Observability (issue 5) ----
    /// Metrics, access log and traces.
    #[serde(default)]
    pub observability: ObservabilitySpec,
}

/// Telemetry: what the gateway tells operators about the calls it serves.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservabilitySpec {
    /// OpenTelemetry traces exported over OTLP. Absent (the default): no spans are made at all.
    #[serde(default)]
    pub tracing: Option<TracingSpec>,
    /// Prometheus metrics (on by default, at `/metrics` on the main listener).
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// One line per MCP request (off by default).
    #[serde(default)]
    pub access_log: AccessLogSpec,
    /// When `/readyz` reports ready.
    #[serde(default)]
    pub readiness: ReadinessSpec,
}

/// Prometheus metrics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSpec {
    /// Record and serve metrics. Default `true`; `false` also removes the endpoint.
    pub enabled: bool,
    /// Path of the endpoint. Default `/metrics`.
    pub path: String,
    /// `host:port` of a separate listener that serves only the metrics endpoint (and
    /// `/healthz`, `/readyz`); when set, the main listener no longer serves it. Default: none
    /// (served on the main listener, without authentication).
    pub address: Option<String>,
    /// Distinct `tool` label values kept per target; calls to further tools are counted under
    /// the tool `__other__`. Default 1000.
    pub max_tools_per_target: usize,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            enabled: true,
            path: "/metrics".into(),
            address: None,
            max_tools_per_target: 1000,
        }
    }
}

/// The access log.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogSpec {
    /// Write one line per MCP request. Default `false`.
    pub enabled: bool,
    /// `json` (default: one object per line, for log pipelines) or `text` (for a terminal).
    pub format: AccessLogFormat,
    /// `stderr` (default), `stdout`, or a file path (appended to; relative to the config file).
    pub output: Option<String>,
}

/// Access log line format.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable `key=value` text.
    Text,
}

/// Readiness (`/readyz`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadinessSpec {
    /// Ready only while at least this many targets are connected. Absent (default): ready
    /// once every target has settled (is up or has failed), whatever their number up.
    pub min_targets_up: Option<usize>,
}

/// OpenTelemetry tracing: one span per client request, one child per upstream call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSpec {
    /// Where spans are sent.
    pub otlp: OtlpSpec,
    /// Fraction of new traces (requests without a sampled parent) that are recorded, 0 to 1.
    /// A request whose caller sent a `traceparent` follows the caller's sampling decision.
    /// Default 1 (every request).
    #[serde(default = "default_sampling_ratio")]
    pub sampling_ratio: f64,
    /// `service.name` of the exported resource. Default `mcpgate`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_sampling_ratio() -> f64 {
    1.0
}

fn default_service_name() -> String {
    "mcpgate".into()
}

/// An OTLP collector endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSpec {
    /// `http://` or `https://` URL. For `http/protobuf`, a URL without a path gets the
    /// standard `/v1/traces`; for `grpc`, the collector's address (e.g. `http://127.0.0.1:4317`).
    pub endpoint: String,
    /// `http/protobuf` (default) or `grpc`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Headers (HTTP) or metadata (gRPC) sent with every export, e.g. an API key; values may
    /// be secrets (`{ env: NAME }`, `{ file: PATH }`).
    #[serde(default)]
    pub headers: BTreeMap<String, SecretSpec>,
    /// Bound on one export request. Default `10s`.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// OTLP transport.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP POST (port 4318 by convention).
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// gRPC (port 4317 by convention).
    #[serde(rename = "grpc")]
    Grpc,
}

/// Stateless (2026-07-28) clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatelessSpec {
    /// Key that seals the `requestState` of multi-round-trip results (HMAC-SHA256), at least
    /// 32 bytes. Replicas behind one load balancer should share it, so that each can tell a
    /// genuine state from a forged one. Default: a random key per process.
    pub request_state_key: Option<SecretSpec>,
    /// How long a call waiting for a stateless client's input is held before it is cancelled
    /// upstream. Default `5m`.
    pub input_wait: HumanDuration,
    /// Most calls held at once; more are refused (and cancelled upstream). Default 1024.
    pub max_held_calls: usize,
}

impl Default for StatelessSpec {
    fn default() -> Self {
        StatelessSpec {
            request_state_key: None,
            input_wait: HumanDuration(std::time::Duration::from_secs(300)),
            max_held_calls: 1024,
        }
    }
}

/// Graceful shutdown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSpec {
    /// After the first SIGTERM/SIGINT, `/readyz` answers 503 and new sessions are refused for
    /// this long before the listener closes, so a load balancer can stop sending. Default `0s`.
    pub announce: HumanDuration,
    /// Time allowed for in-flight requests to finish once draining; then they are cancelled,
    /// streams end and upstreams are closed. Default `30s`.
    pub drain_timeout: HumanDuration,
}

impl Default for ShutdownSpec {
    fn default() -> Self {
        ShutdownSpec {
            announce: HumanDuration(std::time::Duration::ZERO),
            drain_timeout: HumanDuration(std::time::Duration::from_secs(30)),
        }
    }
}

/// Restarts of targets' main upstream sessions (a stdio server's process).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSpec {
    /// First delay before reconnecting a target that failed or closed. Default `250ms`.
    pub backoff_initial: HumanDuration,
    /// Largest delay between attempts (doubling from `backoff_initial`). Default `30s`.
    pub backoff_max: HumanDuration,
    /// This many failures (crashes or failed starts) within `crash_loop_window` put the target
    /// in the `crash_loop` state. Default 5.
    pub crash_loop_restarts: u32,
    /// Window for counting failures. Default `60s`.
    pub crash_loop_window: HumanDuration,
    /// Delay between attempts while in `crash_loop`. Default `5m`.
    pub crash_loop_backoff: HumanDuration,
    /// Last stderr lines kept per stdio target, shown in `/readyz` and by
    /// `mcpgate check --connect`. Default 20; 0 keeps none.
    pub stderr_lines: usize,
}

impl Default for SupervisionSpec {
    fn default() -> Self {
        SupervisionSpec {
            backoff_initial: HumanDuration(std::time::Duration::from_millis(250)),
            backoff_max: HumanDuration(std::time::Duration::from_secs(30)),
            crash_loop_restarts: 5,
            crash_loop_window: HumanDuration(std::time::Duration::from_secs(60)),
            crash_loop_backoff: HumanDuration(std::time::Duration::from_secs(300)),
            stderr_lines: 20,
        }
    }
}

/// The downstream listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenSpec {
    /// `host:port` to bind. Default `127.0.0.1:8080`.
    pub address: String,
    /// Streamable HTTP endpoint path. Default `/mcp`.
    pub mcp_path: String,
    /// Legacy HTTP+SSE stream path (GET). Default `/sse`.
    pub sse_path: String,
    /// Legacy HTTP+SSE message path (POST). Default `/message`.
    pub message_path: String,
    /// Browser origins allowed to call the gateway besides the listener's own address
    /// (`http://localhost:6274`, or `*` for any). Requests with another `Origin` get 403.
    pub allowed_origins: Vec<String>,
    /// Accepted `Host` header values (host or host:port). Empty: only loopback names when
    /// bound to a loopback address (DNS-rebinding protection), any host otherwise.
    pub allowed_hosts: Vec<String>,
    /// Interval between keep-alive comments on idle SSE streams. Default `15s`.
    pub keep_alive: HumanDuration,
    /// Sessions idle for longer are closed (their id then gets 404). Default `30m`.
    pub session_idle_timeout: HumanDuration,
    /// Largest request body in bytes. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Events kept per SSE stream for `Last-Event-ID` resumption. Default 64.
    pub resume_buffer: usize,
    /// Items per page of merged `*/list` results; 0 (default) returns every item in one
    /// page. Cursors are the gateway's own and opaque.
    pub page_size: usize,
    // ---- Limits (issue 4) ----
    /// Deepest nesting of arrays and objects accepted in a client message; deeper gets a
    /// JSON-RPC -32600 error naming this limit. Default 64.
    pub max_json_depth: usize,
    /// Live sessions in total; `initialize` beyond gets HTTP 503. Default 10000; 0: no limit.
    pub max_sessions: usize,
    /// Live sessions per identity (JWT subject or API key; anonymous clients count as one
    /// identity); `initialize` beyond gets HTTP 429. Default 0 (no limit).
    pub max_sessions_per_identity: usize,
    /// Concurrent GET (SSE) connections per session, counting resumptions; more get HTTP 429.
    /// Default 4.
    pub max_streams_per_session: usize,
}

impl Default for ListenSpec {
    fn default() -> Self {
        ListenSpec {
            address: "127.0.0.1:8080".into(),
            mcp_path: "/mcp".into(),
            sse_path: "/sse".into(),
            message_path: "/message".into(),
            allowed_origins: vec![],
            allowed_hosts: vec![],
            keep_alive: HumanDuration(std::time::Duration::from_secs(15)),
            session_idle_timeout: HumanDuration(std::time::Duration::from_secs(30 * 60)),
            max_body_bytes: 4 << 20,
            resume_buffer: 64,
            page_size: 0,
            max_json_depth: 64,
            max_sessions: 10_000,
            max_sessions_per_identity: 0,
            max_streams_per_session: 4,
        }
    }
}

/// How names are exposed downstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamingSpec {
    /// Separator between target name and tool/prompt name. `_` (default), `-`, `__` or similar;
    /// only `_` and `-`, so exposed names stay within `^[a-zA-Z0-9_-]{1,64}$`.
    pub separator: String,
    /// When to prefix names with the target name.
    pub prefix: PrefixMode,
}

impl Default for NamingSpec {
    fn default() -> Self {
        NamingSpec {
            separator: "_".into(),
            prefix: PrefixMode::Auto,
        }
    }
}

/// When exposed tool and prompt names carry their target's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrefixMode {
    /// Always `<target><sep><name>`.
    Always,
    /// Prefixed only when two or more targets are configured (default).
    #[default]
    Auto,
    /// Never prefixed; on a collision the first target in file order wins and the others'
    /// duplicates are hidden (reported at load and in logs).
    Never,
}

/// Whether downstream sessions share one upstream session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// One upstream session (one process for stdio) serves every downstream session. The
    /// gateway tracks subscriptions and log levels per client and routes progress by token,
    /// but server-side session state (roots, toggles, caches) is shared by all clients, and a
    /// server→client request is relayed to the client whose call is in flight. Use only for
    /// servers without per-client state.
    Shared,
    /// Each downstream session gets its own upstream session, opened on its first request
    /// to the target (for stdio: its own process, ended with the session). The default.
    PerClient,
}

/// Which MCP protocol generation to speak to a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    /// Probe with `server/discover` (2026-07-28) and fall back to `initialize` when the
    /// server is session-based. The default.
    #[default]
    Auto,
    /// Session-based (`initialize`) only, without the probe.
    Session,
    /// The stateless generation (2026-07-28) only: a server that is not is an error.
    Stateless,
}

/// One upstream MCP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Unique name: letters, digits and `-` (and `_` when the separator is not `_`); 1–32 chars.
    pub name: String,
    /// Run the server as a child process speaking stdio.
    #[serde(default)]
    pub stdio: Option<StdioSpec>,
    /// Connect with the legacy HTTP+SSE transport (2024-11-05).
    #[serde(default)]
    pub sse: Option<HttpSpec>,
    /// Connect with Streamable HTTP (2025-03-26 and later).
    #[serde(default)]
    pub streamable_http: Option<HttpSpec>,
    /// Which tools are exposed.
    #[serde(default)]
    pub tools: Option<FilterSpec>,
    /// `per_client` (default: one upstream session, or process, per client) or `shared`.
    #[serde(default)]
    pub session: Option<SessionMode>,
    /// `auto` (default: probe with `server/discover`, fall back to `initialize`), `session`
    /// or `stateless`.
    #[serde(default)]
    pub generation: Generation,
    /// Time to start or connect and initialize. Default `10s` (`30s` for stdio).
    #[serde(default)]
    pub connect_timeout: Option<HumanDuration>,
    /// Default time for one request. Default `5m`.
    #[serde(default)]
    pub request_timeout: Option<HumanDuration>,
    /// Send the client's own `Authorization` header to this target (default `false`: the
    /// client's token never leaves the gateway; use `headers` for upstream credentials).
    #[serde(default)]
    pub forward_authorization: bool,
    // ---- Observability (issue 5) ----
    /// Put the arguments of this target's `tools/call`, `prompts/get` and
    /// `completion/complete` requests in the access log (default `false`: never logged).
    #[serde(default)]
    pub log_arguments: bool,
    /// Put this target's results in the access log (default `false`). Results can be large.
    #[serde(default)]
    pub log_results: bool,
    // ---- Traffic management (issue 4): see `traffic.rs` ----
    /// Timeouts per method class (`list`, `call`, `max_call`).
    #[serde(default)]
    pub timeouts: Option<crate::traffic::TimeoutsSpec>,
    /// Retries of requests that are safe to repeat, within a retry budget.
    #[serde(default)]
    pub retries: Option<crate::traffic::RetriesSpec>,
    /// Limit on requests in flight to this target, with a bounded wait.
    #[serde(default)]
    pub concurrency: Option<crate::traffic::ConcurrencySpec>,
    /// Active health checks (`ping`).
    #[serde(default)]
    pub health: Option<crate::traffic::HealthSpec>,
    /// Circuit breaking after consecutive failures.
    #[serde(default)]
    pub circuit_breaker: Option<crate::traffic::CircuitBreakerSpec>,
    /// `round_robin` (default) or `least_outstanding`, for HTTP targets with several `urls`.
    #[serde(default)]
    pub load_balancing: Option<crate::traffic::LoadBalancing>,
    // ---- Limits and supervision (issue 4) ----
    /// Largest message (stdout line, HTTP body or SSE event) accepted from this target; a
    /// larger one fails its request with -32004. Default 16 MiB.
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    /// `per_client` targets: most upstream sessions (for stdio: processes) open at once; a
    /// client needing one more gets -32001. Default 0 (no limit).
    #[serde(default)]
    pub max_processes: Option<usize>,
}

/// A child process.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioSpec {
    /// Program to run (looked up in `PATH` when not a path). `${NAME}` is replaced by the
    /// environment variable `NAME`; `${MCPGATE_EXE}` by the running mcpgate executable.
    pub command: String,
    /// Arguments (`${NAME}` expanded as in `command`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables; values may come from the gateway's environment or a file.
    #[serde(default)]
    pub env: BTreeMap<String, SecretSpec>,
    /// Working directory (relative paths are relative to the config file).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// An HTTP upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// URL of the SSE stream (`sse`) or the MCP endpoint (`streamable_http`).
    #[serde(default)]
    pub url: Option<String>,
    /// Several URLs of replicas of the same server, instead of `url` (traffic management:
    /// load balancing with session affinity).
    #[serde(default)]
    pub urls: Vec<String>,
    /// Extra request headers; values may come from the environment or a file.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretSpec>,
}

/// Allow and deny lists of upstream tool names (glob patterns: `*`, `?`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// Only these are exposed (empty: all).
    #[serde(default)]
    pub allow: Vec<String>,
    /// These are never exposed (wins over `allow`).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A value written inline, or read from an environment variable or a file at load time.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SecretSpec {
    /// The value itself.
    Inline(String),
    /// `{ env: NAME }`: the gateway's environment variable `NAME`.
    Env {
        /// Variable name.
        env: String,
    },
    /// `{ file: PATH }`: the file's contents, trailing newline trimmed.
    File {
        /// Path (relative to the config file).
        file: PathBuf,
    },
}
