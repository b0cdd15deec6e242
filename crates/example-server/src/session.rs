//! Per-session state: negotiated protocol version, client capabilities, log level, resource
//! subscriptions, in-flight requests (for cancellation) and outstanding server→client requests.
//!
//! A session is one stdio connection, one Streamable HTTP `Mcp-Session-Id`, one legacy SSE
//! connection, or the single shared pseudo-session of stateless HTTP. Locks here are
//! `std::sync::Mutex`es held for a map operation only, never across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::jsonrpc::{self, Msg};

/// Protocol versions this server speaks, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// A supported protocol version; ordered oldest to newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// 2024-11-05 (HTTP+SSE era).
    V2024_11_05,
    /// 2025-03-26 (Streamable HTTP, batches, tool annotations, completions capability).
    V2025_03_26,
    /// 2025-06-18 (structured tool output, elicitation, titles).
    V2025_06_18,
    /// 2025-11-25 (elicitation modes, input validation as tool errors).
    V2025_11_25,
}

impl Version {
    /// The newest supported version.
    pub const LATEST: Version = Version::V2025_11_25;

    /// Parses a version string; `None` when unsupported.
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "2025-11-25" => Some(Version::V2025_11_25),
            "2025-06-18" => Some(Version::V2025_06_18),
            "2025-03-26" => Some(Version::V2025_03_26),
            "2024-11-05" => Some(Version::V2024_11_05),
            _ => None,
        }
    }

    /// Version negotiation as the lifecycle section specifies: the client's version when
    /// supported, otherwise the newest this server supports.
    pub fn negotiate(requested: &str) -> Version {
        Version::parse(requested).unwrap_or(Version::LATEST)
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2024_11_05 => "2024-11-05",
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
        }
    }

    fn from_u8(v: u8) -> Option<Version> {
        Some(match v {
            0 => Version::V2024_11_05,
            1 => Version::V2025_03_26,
            2 => Version::V2025_06_18,
            3 => Version::V2025_11_25,
            _ => return None,
        })
    }
}

/// MCP log levels (RFC 5424 severities), least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    /// Detailed debugging information.
    Debug,
    /// General information.
    Info,
    /// Normal but significant events.
    Notice,
    /// Warning conditions.
    Warning,
    /// Error conditions.
    Error,
    /// Critical conditions.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// System is unusable.
    Emergency,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    /// Parses a wire level name.
    pub fn parse(s: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }
}

/// Which transport a session lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Newline-delimited JSON-RPC on stdin/stdout (or any in-process byte stream).
    Stdio,
    /// Streamable HTTP with an `Mcp-Session-Id`.
    Streamable,
    /// The 2024-11-05 HTTP+SSE transport.
    LegacySse,
    /// Streamable HTTP without sessions.
    Stateless,
}

/// Client capability bits recorded at `initialize`.
pub mod caps {
    /// `sampling` declared.
    pub const SAMPLING: u8 = 1;
    /// `roots` declared.
    pub const ROOTS: u8 = 2;
    /// `elicitation` declared with form mode (or as `{}`).
    pub const ELICIT_FORM: u8 = 4;
}

/// What a client answered to a server→client request: its `result`, or its `error` object.
pub type ClientReply = Result<Value, Value>;

const NO_VERSION: u8 = u8::MAX;

/// One MCP session.
pub struct Session {
    /// The session id (`Mcp-Session-Id` / legacy `sessionId`; a fixed name for stdio).
    pub id: Arc<str>,
    /// The transport.
    pub transport: Transport,
    version: AtomicU8,
    caps: AtomicU8,
    initialized: AtomicBool,
    log_level: AtomicU8,
    subscriptions: Mutex<HashSet<Box<str>>>,
    inflight: Mutex<HashMap<Box<str>, CancellationToken>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<ClientReply>>>,
    next_request_id: AtomicU64,
    /// Where messages unrelated to any request go: stdout, the legacy SSE stream, or the
    /// buffer behind the Streamable HTTP GET stream. `None` in stateless mode.
    unrelated: Option<mpsc::Sender<Msg>>,
    /// The receiving end of `unrelated` while no GET stream holds it (Streamable HTTP only).
    get_rx: Mutex<Option<mpsc::Receiver<Msg>>>,
    /// Cancelled when the session ends; in-flight requests stop with it.
    pub closed: CancellationToken,
}

/// Capacity of the per-session channel for unrelated messages; beyond it new messages are
/// dropped (the transport spec allows a server to lose messages nobody listens for).
pub const UNRELATED_CAPACITY: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    /// A new session. `unrelated` is the sender for unrelated messages; `get_rx` its receiver
    /// when a GET stream will pick it up later.
    pub fn new(
        id: Arc<str>,
        transport: Transport,
        unrelated: Option<mpsc::Sender<Msg>>,
        get_rx: Option<mpsc::Receiver<Msg>>,
    ) -> Arc<Session> {
        Arc::new(Session {
            id,
            transport,
            version: AtomicU8::new(NO_VERSION),
            caps: AtomicU8::new(0),
            initialized: AtomicBool::new(false),
            log_level: AtomicU8::new(LogLevel::Debug as u8),
            subscriptions: Mutex::default(),
            inflight: Mutex::default(),
            pending: Mutex::default(),
            next_request_id: AtomicU64::new(1),
            unrelated,
            get_rx: Mutex::new(get_rx),
            closed: CancellationToken::new(),
        })
    }

    /// The negotiated version, or `None` before `initialize`.
    pub fn version(&self) -> Option<Version> {
        Version::from_u8(self.version.load(Relaxed))
    }

    /// Records the outcome of `initialize`.
    pub fn set_initialize(&self, version: Version, client_caps: u8) {
        self.version.store(version as u8, Relaxed);
        self.caps.store(client_caps, Relaxed);
    }

    /// Whether the client declared a capability (bits from [`caps`]).
    pub fn has_cap(&self, bit: u8) -> bool {
        self.caps.load(Relaxed) & bit != 0
    }

    /// Records `notifications/initialized`.
    pub fn mark_initialized(&self) {
        self.initialized.store(true, Relaxed);
    }

    /// The minimum level of `notifications/message` sent to this session.
    pub fn log_level(&self) -> LogLevel {
        LogLevel::ALL[usize::from(self.log_level.load(Relaxed)).min(7)]
    }

    /// Sets the minimum log level (`logging/setLevel`).
    pub fn set_log_level(&self, level: LogLevel) {
        self.log_level.store(level as u8, Relaxed);
    }

    /// Subscribes to updates of `uri`.
    pub fn subscribe(&self, uri: &str) {
        lock(&self.subscriptions).insert(uri.into());
    }

    /// Unsubscribes from `uri`.
    pub fn unsubscribe(&self, uri: &str) {
        lock(&self.subscriptions).remove(uri);
    }

    /// Whether the session subscribed to `uri`.
    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }

    /// Registers an in-flight request under its raw id; the guard unregisters it.
    pub fn track(self: &Arc<Self>, raw_id: &str) -> InflightGuard {
        let token = self.closed.child_token();
        lock(&self.inflight).insert(raw_id.into(), token.clone());
        InflightGuard {
            session: self.clone(),
            key: raw_id.into(),
            token,
        }
    }

    /// Cancels the in-flight request with this raw id; false when unknown (finished already).
    pub fn cancel(&self, raw_id: &str) -> bool {
        match lock(&self.inflight).remove(raw_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Sends a message unrelated to any request (list changes, resource updates, logs outside
    /// a request). Never waits: when nobody drains the channel the message is dropped.
    pub fn send_unrelated(&self, msg: Msg) -> bool {
        match &self.unrelated {
            Some(tx) => tx.try_send(msg).is_ok(),
            None => false,
        }
    }

    /// Takes the receiver for a Streamable HTTP GET stream (None if one is open already).
    pub fn take_get_stream(&self) -> Option<mpsc::Receiver<Msg>> {
        lock(&self.get_rx).take()
    }

    /// Gives the receiver back when a GET stream closes, so the next GET resumes it.
    pub fn return_get_stream(&self, rx: mpsc::Receiver<Msg>) {
        *lock(&self.get_rx) = Some(rx);
    }

    /// Starts a server→client request: allocates an id and registers the reply slot.
    pub fn begin_client_request(self: &Arc<Self>) -> (PendingRequest, oneshot::Receiver<ClientReply>) {
        let id = self.next_request_id.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        (
            PendingRequest {
                session: self.clone(),
                id,
                answered: false,
                cancel_via: None,
            },
            rx,
        )
    }

    /// Delivers a client's response. Returns false when no request with that id is pending.
    pub fn complete_client_request(&self, raw_id: &str, reply: ClientReply) -> bool {
        let Some(id) = parse_request_id(raw_id) else {
            return false;
        };
        match lock(&self.pending).remove(&id) {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// The sender for unrelated messages (stdio and legacy SSE also send responses on it).
    pub fn unrelated_sender(&self) -> Option<mpsc::Sender<Msg>> {
        self.unrelated.clone()
    }

    /// Fails every pending server→client request (the client can no longer answer).
    pub fn abandon_client_requests(&self) {
        lock(&self.pending).clear();
    }

    /// Ends the session: cancels in-flight requests and fails pending server→client requests.
    pub fn close(&self) {
        self.closed.cancel();
        lock(&self.pending).clear();
        lock(&self.inflight).clear();
    }
}

/// Our outgoing ids are integers; accept them back as numbers or numeric strings.
fn parse_request_id(raw: &str) -> Option<u64> {
    raw.trim_matches('"').parse().ok()
}

/// Unregisters an in-flight request when it finishes (or is dropped).
pub struct InflightGuard {
    session: Arc<Session>,
    key: Box<str>,
    /// Cancelled by `notifications/cancelled` for this request or by the session closing.
    pub token: CancellationToken,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        lock(&self.session.inflight).remove(&self.key);
    }
}

/// An outstanding server→client request. Dropping it before the answer arrived (cancellation,
/// timeout) forgets the request and tells the client with `notifications/cancelled`.
pub struct PendingRequest {
    session: Arc<Session>,
    /// The JSON-RPC id used on the wire.
    pub id: u64,
    answered: bool,
    cancel_via: Option<mpsc::Sender<Msg>>,
}

impl PendingRequest {
    /// Where to send `notifications/cancelled` if this request is abandoned.
    pub fn cancel_via(&mut self, out: mpsc::Sender<Msg>) {
        self.cancel_via = Some(out);
    }

    /// Marks the request answered: no cancellation is sent on drop.
    pub fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        lock(&self.session.pending).remove(&self.id);
        if !self.answered
            && let Some(out) = &self.cancel_via
        {
            let params = serde_json::json!({
                "requestId": self.id,
                "reason": "The tool call that sent this request ended.",
            });
            let _ = out.try_send(Msg::other(jsonrpc::notification("notifications/cancelled", &params)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_versions() {
        for v in SUPPORTED_VERSIONS {
            assert_eq!(Version::negotiate(v).as_str(), v);
        }
        assert_eq!(Version::negotiate("1999-01-01"), Version::LATEST);
        assert_eq!(Version::negotiate("2026-07-28"), Version::LATEST);
        assert!(Version::V2024_11_05 < Version::V2025_11_25);
    }

    #[test]
    fn log_levels_order_and_parse() {
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::parse(l.as_str()), Some(l));
        }
        assert!(LogLevel::Warning > LogLevel::Info);
        assert_eq!(LogLevel::parse("verbose"), None);
    }

    #[tokio::test]
    async fn tracks_cancellation_and_client_requests() {
        let s = Session::new("t".into(), Transport::Stdio, None, None);
        let g = s.track("\"a\"");
        assert!(s.cancel("\"a\""));
        assert!(g.token.is_cancelled());
        drop(g);
        assert!(!s.cancel("\"a\""));

        let (mut p, rx) = s.begin_client_request();
        let id = p.id;
        assert!(s.complete_client_request(&id.to_string(), Ok(serde_json::json!({"ok":1}))));
        p.answered();
        assert_eq!(rx.await.unwrap().unwrap()["ok"], 1);
        assert!(!s.complete_client_request(&id.to_string(), Ok(Value::Null)));

        let (tx, mut orx) = mpsc::channel(4);
        let (mut p, _rx) = s.begin_client_request();
        p.cancel_via(tx);
        let id = p.id;
        drop(p);
        let m = orx.recv().await.unwrap();
        let v: Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["method"], "notifications/cancelled");
        assert_eq!(v["params"]["requestId"], id);
    }
}
