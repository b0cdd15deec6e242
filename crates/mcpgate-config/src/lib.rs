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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use duration::parse_duration;
pub use glob::Glob;
pub use load::ConfigError;
pub use spec::{PrefixMode, SessionMode};

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
}

/// Validated naming settings.
#[derive(Debug, Clone)]
pub struct Naming {
    /// Separator between target and tool name.
    pub separator: String,
    /// When names get the target prefix.
    pub prefix: PrefixMode,
}

/// A validated upstream target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Unique name (safe to use as a prefix and a metric label).
    pub name: Arc<str>,
    /// How to reach it.
    pub transport: Transport,
    /// Which of its tools are exposed.
    pub tools: NameFilter,
    /// Whether downstream sessions share one upstream session.
    pub session: SessionMode,
    /// Time allowed to start/connect and initialize.
    pub connect_timeout: Duration,
    /// Default time allowed for one request.
    pub request_timeout: Duration,
    /// Forward the client's `Authorization` header to this target.
    pub forward_authorization: bool,
}

/// How to reach a target.
#[derive(Clone)]
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
#[derive(Debug, Clone, Default)]
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
