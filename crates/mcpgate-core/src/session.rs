//! Downstream sessions: what the gateway remembers about one connected MCP client.
//!
//! A session is created by `initialize` and lives until the client deletes it, its legacy
//! SSE stream closes, or it is idle for too long. It owns the client's per-client upstream
//! sessions, its in-flight requests (for cancellation), the server→client requests relayed to
//! it and awaiting an answer, its resource subscriptions and its log level. How messages
//! reach the client (event ids, streams, resumption) is the transport's business, behind
//! [`Outbound`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mcpgate_proto::{Message, RawJson};
use parking_lot::Mutex;
use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use crate::upstream::Upstream;

/// Which downstream transport a session arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownstreamKind {
    /// Streamable HTTP (2025-03-26 and later).
    StreamableHttp,
    /// Legacy HTTP+SSE (2024-11-05).
    LegacySse,
    /// A stateless 2026-07-28 request (never registered as a session).
    Modern,
}

impl DownstreamKind {
    /// Short label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DownstreamKind::StreamableHttp => "streamable_http",
            DownstreamKind::LegacySse => "sse",
            DownstreamKind::Modern => "stateless",
        }
    }
}

/// Delivery of messages that are not tied to a request's response stream (the Streamable
/// HTTP GET stream, or the legacy SSE stream). Implemented by the transport.
pub trait Outbound: Send + Sync + 'static {
    /// Queues `msg` for the client. Returns false when the client is gone for good.
    fn send(&self, msg: Message) -> bool;

    /// The transport's own type, so it can find its state again from a [`Session`].
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Delivery of messages related to one in-flight request (its POST's SSE stream).
pub type RelatedSink = mpsc::Sender<Message>;

/// MCP logging levels in increasing severity.
pub const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Severity rank of a level name (unknown names rank as `info`).
pub fn level_rank(level: &str) -> usize {
    LOG_LEVELS.iter().position(|l| *l == level).unwrap_or(1)
}

/// One connected client.
pub struct Session {
    /// The `Mcp-Session-Id` (or legacy `sessionId`).
    pub id: Arc<str>,
    /// Transport it arrived on.
    pub kind: DownstreamKind,
    /// Negotiated protocol version.
    pub protocol_version: &'static str,
    /// `clientInfo` from initialize.
    pub client_info: RawJson,
    /// `capabilities` from initialize.
    pub client_capabilities: RawJson,
    outbound: Box<dyn Outbound>,
    pub(crate) state: Mutex<SessionState>,
    last_active: AtomicU64,
    next_server_request: AtomicU64,
    /// Cancelled when the session ends.
    pub closed: CancellationToken,
    /// Who started the session (set once, at initialize; `None`: anonymous).
    pub(crate) identity: std::sync::OnceLock<Arc<mcpgate_auth::Identity>>,
    /// This session's policy-filtered views of the merged lists.
    pub(crate) visible: crate::authz::VisibleLists,
}

#[derive(Default)]
pub(crate) struct SessionState {
    /// Per-client upstream sessions by target name, opened on first use.
    pub upstreams: HashMap<Arc<str>, Arc<OnceCell<Upstream>>>,
    /// In-flight client requests by their JSON id text.
    pub in_flight: HashMap<RawJson, InFlight>,
    /// Server→client requests relayed to this client, by the id the gateway gave them.
    pub server_requests: HashMap<u64, PendingServerRequest>,
    /// Subscribed resource URIs.
    pub subscriptions: HashSet<String>,
    /// Level set with `logging/setLevel`.
    pub log_level: Option<usize>,
    /// `notifications/initialized` received.
    pub initialized: bool,
    /// Tasks created by task-augmented calls, by task id → target index.
    pub tasks: HashMap<String, usize>,
}

pub(crate) struct InFlight {
    pub cancel: CancellationToken,
}

pub(crate) struct PendingServerRequest {
    /// Who waits for the client's answer.
    pub reply_to: ReplyTo,
    /// Its span (tracing on), ended when the client's answer is relayed.
    pub trace: Option<crate::trace::ServerSpan>,
}

/// Where the client's answer to a server→client request goes.
pub(crate) enum ReplyTo {
    /// A session-based upstream's request: the answer is relayed under its own id.
    Upstream { upstream: Upstream, upstream_id: RawJson },
    /// The gateway's own question: an input request of a 2026-07-28 upstream's
    /// `input_required` result, asked of a session-based client (modern/bridge.rs).
    Gateway(tokio::sync::oneshot::Sender<Message>),
}

impl Session {
    pub(crate) fn new(
        id: Arc<str>,
        kind: DownstreamKind,
        protocol_version: &'static str,
        client_info: RawJson,
        client_capabilities: RawJson,
        outbound: Box<dyn Outbound>,
        now_ms: u64,
    ) -> Self {
        Session {
            id,
            kind,
            protocol_version,
            client_info,
            client_capabilities,
            outbound,
            state: Mutex::new(SessionState::default()),
            last_active: AtomicU64::new(now_ms),
            next_server_request: AtomicU64::new(1),
            closed: CancellationToken::new(),
            identity: std::sync::OnceLock::new(),
            visible: Default::default(),
        }
    }

    /// Who started the session (`None`: anonymous or authentication off).
    pub fn identity(&self) -> Option<&Arc<mcpgate_auth::Identity>> {
        self.identity.get()
    }

    /// The transport behind the session's general stream.
    pub fn outbound(&self) -> &dyn Outbound {
        &*self.outbound
    }

    /// Sends a message on the session's general stream.
    pub fn send(&self, msg: Message) -> bool {
        self.outbound.send(msg)
    }

    /// Sends on `sink` when given and still open, else on the general stream.
    pub(crate) fn send_related(&self, sink: Option<&RelatedSink>, msg: Message) {
        if let Some(sink) = sink {
            match sink.try_send(msg) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(m)) | Err(mpsc::error::TrySendError::Closed(m)) => {
                    self.outbound.send(m);
                    return;
                }
            }
        }
        self.outbound.send(msg);
    }

    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_active.store(now_ms, Ordering::Relaxed);
    }

    /// Milliseconds (gateway clock) of the last activity.
    pub fn last_active_ms(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }

    pub(crate) fn mint_server_request_id(&self) -> u64 {
        self.next_server_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Has the client subscribed to `uri`?
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.state.lock().subscriptions.contains(uri)
    }

    /// Does a log message at `level` pass this session's `logging/setLevel`? `None` when the
    /// client never set a level.
    pub(crate) fn log_passes(&self, level: &str) -> Option<bool> {
        self.state.lock().log_level.map(|min| level_rank(level) >= min)
    }

    /// Does the client declare capability `name` (e.g. `sampling`)?
    pub fn has_capability(&self, name: &str) -> bool {
        mcpgate_proto::raw::member(&self.client_capabilities, name).is_some_and(|v| !v.is_null())
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish()
    }
}
