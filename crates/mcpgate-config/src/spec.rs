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
    pub url: String,
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
