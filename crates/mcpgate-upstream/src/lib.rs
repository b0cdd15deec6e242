//! mcpgate's MCP *client* side: one live session with one upstream MCP server.
//!
//! A [`Connection`] is started from a [`TransportSpec`] — a stdio subprocess, a legacy
//! HTTP+SSE server (2024-11-05) or a Streamable HTTP server (2025-03-26 and later) — and
//! finds out which protocol generation the server speaks: a 2026-07-28 server answers the
//! `server/discover` probe and is spoken to statelessly ([`modern`]), any other performs
//! `initialize` + `notifications/initialized`. After that it carries requests
//! ([`Connection::request`], matched to responses by our own numeric ids), notifications, and
//! answers to server→client requests ([`Connection::respond`]); everything the server sends
//! on its own is handed to an [`InboundHandler`] in arrival order.
//!
//! Messages are never fully decoded: the JSON-RPC envelope is read once into
//! [`mcpgate_proto::Message`] and `params`/`result` stay raw bytes.
//!
//! This crate owns transports, framing, session ids, stream resumption and process
//! supervision of *one* connection. It does not restart dead servers, re-initialize expired
//! sessions, remap ids for downstream clients or apply timeouts to individual calls: that is
//! the router's job, which gets what it needs from [`UpstreamError::is_retryable`],
//! [`Inbound::Closed`] and [`Connection::closed`].

#![warn(missing_docs)]

mod connection;
mod error;
mod http;
mod modern;
mod pending;
mod sse;
mod stderr;
mod stdio;
mod streamable;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mcpgate_proto::{Message, RawJson};
use url::Url;

pub use connection::{Connection, TraceHeaders};
pub use error::{BoxError, UpstreamError};
pub use http::HttpClient;
pub use modern::{Generation, PROBE_TIMEOUT, ToolHeaders};
pub use pending::PendingRequest;
pub use stderr::StderrTail;

/// Default bound on one upstream message, SSE event or HTTP body: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Default bound on connecting and initializing.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach one upstream MCP server.
#[derive(Clone, Debug)]
pub enum TransportSpec {
    /// A subprocess speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// Program to run (looked up in `PATH` when it has no slash).
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables added to the inherited environment.
        env: Vec<(String, String)>,
        /// Working directory (the gateway's own when `None`).
        cwd: Option<PathBuf>,
    },
    /// The 2024-11-05 HTTP+SSE transport: `url` is the SSE endpoint (GET), which names the
    /// POST endpoint in its first `endpoint` event.
    Sse {
        /// The SSE endpoint.
        url: Url,
        /// Headers sent with every request (credentials for this target).
        headers: ::http::HeaderMap,
    },
    /// Streamable HTTP (2025-03-26 and later): one MCP endpoint for POST, GET and DELETE.
    StreamableHttp {
        /// The MCP endpoint.
        url: Url,
        /// Headers sent with every request (credentials for this target).
        headers: ::http::HeaderMap,
    },
}

/// Parameters of one connection.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Target name, for logs.
    pub target: Arc<str>,
    /// `clientInfo` sent in `initialize`, e.g. `{"name":"mcpgate","version":"0.1.0"}`.
    pub client_info: RawJson,
    /// Client capabilities sent in `initialize`.
    pub capabilities: RawJson,
    /// Protocol version to request; the server may answer any of
    /// [`mcpgate_proto::version::SUPPORTED`].
    pub protocol_version: &'static str,
    /// Bound on process spawn / HTTP connect plus the `initialize` exchange.
    pub connect_timeout: Duration,
    /// Bound on one upstream message, SSE event or HTTP response body.
    pub max_message_bytes: usize,
    /// Shared HTTP client (connection pool).
    pub http: HttpClient,
    /// stdio: where the last stderr lines of the process are kept (besides the log).
    pub stderr: Option<Arc<StderrTail>>,
    /// Which protocol generation to speak: probe (`Auto`), session-based, or 2026-07-28.
    pub generation: Generation,
    /// 2026-07-28 over HTTP: the `x-mcp-header` parameters of the server's tools, shared by
    /// the connections of one target.
    pub tool_headers: Arc<ToolHeaders>,
}

impl ConnectOptions {
    /// Options with the defaults: mcpgate's client info, no capabilities, the latest protocol
    /// version, a 30 s connect timeout and a 16 MiB message bound.
    pub fn new(target: impl Into<Arc<str>>, http: HttpClient) -> Self {
        ConnectOptions {
            target: target.into(),
            client_info: RawJson::from_static(concat!(
                r#"{"name":"mcpgate","version":""#,
                env!("CARGO_PKG_VERSION"),
                r#""}"#
            )),
            capabilities: RawJson::from_static("{}"),
            protocol_version: mcpgate_proto::version::LATEST,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            http,
            stderr: None,
            generation: Generation::Auto,
            tool_headers: Arc::default(),
        }
    }
}

/// What the server answered to `initialize`.
#[derive(Clone, Debug)]
pub struct InitializeResult {
    /// The negotiated protocol version (one of [`mcpgate_proto::version::SUPPORTED`]).
    pub protocol_version: String,
    /// Server capabilities (`{}` if the server sent none).
    pub capabilities: RawJson,
    /// `serverInfo` (`{}` if the server sent none).
    pub server_info: RawJson,
    /// `instructions`, if any.
    pub instructions: Option<String>,
    /// The whole `result` object.
    pub raw: RawJson,
}

/// Receives everything a server sends on its own.
pub trait InboundHandler: Send + Sync + 'static {
    /// Called for every server→client notification or request, in arrival order per
    /// connection (per stream on HTTP transports), and once with [`Inbound::Closed`].
    /// Must not block: it runs on the connection's reader.
    fn on_message(&self, inbound: Inbound);
}

impl<F: Fn(Inbound) + Send + Sync + 'static> InboundHandler for F {
    fn on_message(&self, inbound: Inbound) {
        self(inbound)
    }
}

/// A message from the server that is not a response to one of our requests.
#[derive(Debug)]
pub enum Inbound {
    /// A notification. `related` is the id of *our* request whose response stream carried it
    /// (Streamable HTTP POST streams); `None` otherwise.
    Notification {
        /// The notification.
        message: Message,
        /// Our request id whose response stream carried it.
        related: Option<u64>,
    },
    /// A server→client request (sampling, elicitation, roots, ping). Answer it with
    /// [`Connection::respond`] using the message's own id.
    Request {
        /// The request, with the server's own id.
        message: Message,
        /// Our request id whose response stream carried it.
        related: Option<u64>,
    },
    /// The connection is gone for good; sent once. `error` is `None` after
    /// [`Connection::close`] or when the connection was dropped.
    Closed {
        /// Why, when it was not our own doing.
        error: Option<UpstreamError>,
    },
}
