//! Counters that tests and benchmarks read to assert what reached the example server
//! (e.g. "the gateway served the second `tools/list` from its cache").
//!
//! Plain relaxed atomics: counting never takes a lock and never allocates.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::jsonrpc::Method;

/// Live counters of one example server. Read them through [`crate::ExampleServer::stats`].
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    notifications: AtomicU64,
    responses: AtomicU64,
    by_method: [AtomicU64; Method::COUNT],
    tool_calls: AtomicU64,
    cancellations: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_closed: AtomicU64,
    http_requests: AtomicU64,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// JSON-RPC requests received (all methods, all transports).
    pub requests: u64,
    /// JSON-RPC notifications received.
    pub notifications: u64,
    /// Responses received to server→client requests (sampling, elicitation, roots).
    pub responses: u64,
    /// `tools/call` requests received.
    pub tool_calls: u64,
    /// Requests stopped by `notifications/cancelled` before they finished, and (2026-07-28
    /// over HTTP) requests whose client closed the response before the answer, including
    /// `subscriptions/listen` streams closed by their client.
    pub cancellations: u64,
    /// Sessions opened (stdio connection, Streamable HTTP `initialize`, legacy `GET /sse`).
    pub sessions_opened: u64,
    /// Sessions ended (stdio EOF, HTTP DELETE, legacy SSE stream closed).
    pub sessions_closed: u64,
    /// HTTP requests received (any method, any path).
    pub http_requests: u64,
}

impl StatsSnapshot {
    /// Sessions currently open.
    pub fn active_sessions(&self) -> u64 {
        self.sessions_opened.saturating_sub(self.sessions_closed)
    }
}

impl Stats {
    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Relaxed),
            notifications: self.notifications.load(Relaxed),
            responses: self.responses.load(Relaxed),
            tool_calls: self.tool_calls.load(Relaxed),
            cancellations: self.cancellations.load(Relaxed),
            sessions_opened: self.sessions_opened.load(Relaxed),
            sessions_closed: self.sessions_closed.load(Relaxed),
            http_requests: self.http_requests.load(Relaxed),
        }
    }

    /// Requests and notifications received for one method name (e.g. `"tools/list"`,
    /// `"notifications/initialized"`); unknown names count together under any unknown name.
    pub fn method(&self, name: &str) -> u64 {
        self.by_method[Method::parse(name) as usize].load(Relaxed)
    }

    /// `tools/call` requests received.
    pub fn tool_calls(&self) -> u64 {
        self.tool_calls.load(Relaxed)
    }

    /// JSON-RPC requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    /// Sessions currently open.
    pub fn active_sessions(&self) -> u64 {
        self.snapshot().active_sessions()
    }

    pub(crate) fn count_request(&self, m: Method) -> u64 {
        self.by_method[m as usize].fetch_add(1, Relaxed);
        if m == Method::ToolsCall {
            self.tool_calls.fetch_add(1, Relaxed);
        }
        self.requests.fetch_add(1, Relaxed) + 1
    }

    pub(crate) fn count_notification(&self, m: Method) {
        self.by_method[m as usize].fetch_add(1, Relaxed);
        self.notifications.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_response(&self) {
        self.responses.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_cancellation(&self) {
        self.cancellations.fetch_add(1, Relaxed);
    }

    pub(crate) fn session_opened(&self) {
        self.sessions_opened.fetch_add(1, Relaxed);
    }

    pub(crate) fn session_closed(&self) {
        self.sessions_closed.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_http(&self) {
        self.http_requests.fetch_add(1, Relaxed);
    }
}
