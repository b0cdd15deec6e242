//! `mcpgate-example-server`: a small MCP server written on tokio, hyper and serde_json, without
//! an MCP SDK.
//!
//! It plays three roles:
//! 1. the example server that mcpgate's built-in example config runs over stdio — a new
//!    user's first MCP server, so every tool does something real;
//! 2. the in-process fixture upstream of mcpgate's integration tests ([`ExampleServer`],
//!    [`spawn_http`], [`ExampleServer::serve_io`], [`Stats`], fault injection via [`Fault`]);
//! 3. the fast upstream of the benchmark harness (`--extra-tools`, `--result-bytes`,
//!    pre-serialized lists, no locks across awaits).
//!
//! It speaks the session-based protocol versions [`SUPPORTED_VERSIONS`] over stdio,
//! Streamable HTTP (`/mcp`) and the legacy HTTP+SSE transport (`/sse` + `/message`); with
//! [`Options::era`] [`Era::Modern`] only the stateless revision [`MODERN_VERSION`]
//! (2026-07-28) instead, and with [`Era::Dual`] both side by side.
//! See `README.md` beside this crate for the tools, prompts, resources and flags.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mcpgate_example_server::{Options, spawn_http};
//! let server = spawn_http(Options::default()).await?;
//! println!("MCP endpoint: {}", server.mcp_url());
//! // ... drive a client against it, then:
//! assert!(server.stats().snapshot().requests > 0);
//! # Ok(()) }
//! ```

mod clock;
mod content;
mod http;
mod http_modern;
mod jsonrpc;
mod listen;
mod markdown;
mod modern;
mod mrtr;
mod options;
mod server;
mod session;
mod stats;
mod stdio;
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use content::{COUNTER_URI, LOGO_URI, NOTES_TEMPLATE, README_URI};
pub use http::{MCP_PATH, MESSAGE_PATH, SSE_PATH};
pub use markdown::convert as convert_to_markdown;
pub use modern::VERSION as MODERN_VERSION;
pub use options::{DEFAULT_NAME, DEFAULT_TTL_MS, Era, EraParseError, Fault, FaultParseError, Options};
pub use session::{LogLevel, SUPPORTED_VERSIONS};
pub use stats::{Stats, StatsSnapshot};

use server::Shared;

/// Why a `serve_*` function returned with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The `crash-after:N` fault fired (the binary exits with status 1).
    #[error("crash-after fault: stopped after the configured number of requests")]
    Crashed,
    /// Reading or writing the transport failed.
    #[error("transport i/o failed")]
    Io(#[source] std::io::Error),
}

/// A handle on one example server: its state, counters and notification triggers.
/// Cheap to clone; every clone drives the same server.
#[derive(Clone)]
pub struct ExampleServer {
    shared: Arc<Shared>,
}

impl ExampleServer {
    /// A server with these options (nothing is served until a `serve_*` method runs).
    pub fn new(opts: Options) -> ExampleServer {
        ExampleServer {
            shared: Shared::new(opts),
        }
    }

    /// The options it runs with.
    pub fn options(&self) -> &Options {
        &self.shared.opts
    }

    /// The `traceparent` headers of the POSTs received so far (recorded with
    /// [`Options::echo_meta`] only).
    pub fn traceparents(&self) -> Vec<String> {
        let seen = self.shared.traceparents.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().cloned().collect()
    }

    /// The `Mcp-*` / `MCP-*` request headers of each POST to `/mcp` received so far, oldest
    /// first, as (lower-case name, value) pairs in arrival order (the last 1000 POSTs).
    /// Recorded with [`Options::era`] `modern` or `dual`, or [`Options::echo_meta`]; a POST
    /// without such headers records an empty list.
    pub fn request_headers(&self) -> Vec<Vec<(String, String)>> {
        let seen = self.shared.request_headers.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().cloned().collect()
    }

    /// Open 2026-07-28 `subscriptions/listen` requests.
    pub fn subscription_count(&self) -> usize {
        self.shared.listeners.len()
    }

    /// Ends every open `subscriptions/listen` gracefully (`notifications/cancelled` for it,
    /// then its `resultType: "complete"` result); returns how many there were.
    pub fn end_subscriptions(&self) -> usize {
        self.shared.listeners.end_all()
    }

    /// Multi-round-trip `requestState`s issued and not yet used.
    pub fn pending_request_states(&self) -> usize {
        self.shared.mrtr.len()
    }

    /// Live counters (requests, per-method counts, tool calls, sessions, …).
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Sessions currently registered (stdio connections, HTTP sessions, legacy SSE streams).
    pub fn session_count(&self) -> usize {
        self.shared.session_count()
    }

    /// Adds an echo-like tool named `name` and sends `notifications/tools/list_changed` to
    /// every session (as the `add_tool` tool does). False when the name is taken.
    pub fn add_tool(&self, name: &str) -> bool {
        self.shared.add_tool(name)
    }

    /// Sends `notifications/tools/list_changed` to every session and to the 2026-07-28
    /// subscriptions that asked for it; returns how many took it.
    pub fn notify_tools_list_changed(&self) -> usize {
        self.shared.list_changed(listen::ListKind::Tools)
    }

    /// Sends `notifications/prompts/list_changed` to every session (and subscription).
    pub fn notify_prompts_list_changed(&self) -> usize {
        self.shared.list_changed(listen::ListKind::Prompts)
    }

    /// Sends `notifications/resources/list_changed` to every session (and subscription).
    pub fn notify_resources_list_changed(&self) -> usize {
        self.shared.list_changed(listen::ListKind::Resources)
    }

    /// Sends `notifications/resources/updated` to the sessions subscribed to `uri` (and the
    /// 2026-07-28 subscriptions listing it) (bumping
    /// the counter first when `uri` is [`COUNTER_URI`]); returns how many were notified.
    pub fn notify_resource_updated(&self, uri: &str) -> usize {
        if uri == COUNTER_URI {
            self.shared.bump_counter();
        }
        self.shared.notify_resource_updated(uri)
    }

    /// Sends a `notifications/message` outside any request to every session whose level
    /// (`logging/setLevel`) lets it through.
    pub fn log(&self, level: LogLevel, message: &str) -> usize {
        self.shared.log_all(level, "example", message)
    }

    /// While `on`, every new `tools/call` hangs (as under the `hang` fault); calls already
    /// hanging stay so. For tests of servers that stop answering and recover.
    pub fn set_hang(&self, on: bool) {
        self.shared.set_hang(on);
    }

    /// Stops every transport loop of this server (`serve_*` return soon after).
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Serves Streamable HTTP (`/mcp`) and legacy SSE (`/sse`, `/message`) on `listener` until
    /// [`ExampleServer::shutdown`]; dropping the future closes every connection.
    pub async fn serve_http(&self, listener: TcpListener) -> std::io::Result<()> {
        http::serve(self.shared.clone(), listener).await
    }

    /// Serves one stdio session over the process's stdin and stdout until stdin ends.
    pub async fn serve_stdio(&self) -> Result<(), ServeError> {
        self.serve_io(tokio::io::stdin(), tokio::io::stdout()).await
    }

    /// Serves one newline-delimited JSON-RPC session over any byte streams (e.g. the halves of
    /// a `tokio::io::duplex`) until `reader` ends. Requests still running at the end get
    /// two seconds to finish. Under the crash fault it returns [`ServeError::Crashed`] without
    /// writing anything more.
    pub async fn serve_io<R, W>(&self, reader: R, writer: W) -> Result<(), ServeError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        stdio::serve(self.shared.clone(), reader, writer).await
    }
}

/// Serves HTTP on `listener` with `opts` (see [`ExampleServer::serve_http`]).
pub async fn serve_http(listener: TcpListener, opts: Options) -> std::io::Result<()> {
    ExampleServer::new(opts).serve_http(listener).await
}

/// Serves stdio with `opts` (see [`ExampleServer::serve_stdio`]).
pub async fn serve_stdio(opts: Options) -> Result<(), ServeError> {
    ExampleServer::new(opts).serve_stdio().await
}

/// An example server running on `127.0.0.1:<ephemeral port>` in a background task, for tests
/// and benchmarks. Dropping it stops the server and closes its connections.
pub struct HttpFixture {
    addr: SocketAddr,
    server: ExampleServer,
    task: JoinHandle<std::io::Result<()>>,
}

/// Starts an HTTP example server on an ephemeral loopback port.
pub async fn spawn_http(opts: Options) -> std::io::Result<HttpFixture> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let server = ExampleServer::new(opts);
    let task = tokio::spawn({
        let server = server.clone();
        async move { server.serve_http(listener).await }
    });
    Ok(HttpFixture { addr, server, task })
}

impl HttpFixture {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/mcp` (Streamable HTTP).
    pub fn mcp_url(&self) -> String {
        format!("http://{}{MCP_PATH}", self.addr)
    }

    /// `http://127.0.0.1:PORT/sse` (legacy HTTP+SSE).
    pub fn sse_url(&self) -> String {
        format!("http://{}{SSE_PATH}", self.addr)
    }

    /// The server handle (stats, notification triggers).
    pub fn server(&self) -> &ExampleServer {
        &self.server
    }

    /// Shorthand for `self.server().stats()`.
    pub fn stats(&self) -> &Stats {
        self.server.stats()
    }

    /// Shorthand for `self.server().request_headers()`: the `Mcp-*` headers of each POST.
    pub fn request_headers(&self) -> Vec<Vec<(String, String)>> {
        self.server.request_headers()
    }

    /// Shorthand for `self.server().traceparents()`.
    pub fn traceparents(&self) -> Vec<String> {
        self.server.traceparents()
    }

    /// Stops the server and waits for its accept loop to end (open connections close).
    pub async fn shutdown(mut self) {
        self.server.shutdown();
        let _ = (&mut self.task).await;
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        self.server.shutdown();
        self.task.abort();
    }
}

/// A fresh, unguessable session id (128 random bits, hex).
fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
