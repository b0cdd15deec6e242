//! Helpers shared by the transport tests: a recording inbound handler, default options,
//! and JSON shortcuts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mcpgate_proto::{Message, RawJson};
use mcpgate_upstream::{ConnectOptions, HttpClient, Inbound, InboundHandler};
use serde_json::Value;
use tokio::sync::mpsc;

/// Everything the connection handed to its handler, in order.
pub struct Inbox(pub mpsc::UnboundedReceiver<Inbound>);

impl Inbox {
    /// The next inbound message (fails the test after 5 s).
    pub async fn next(&mut self) -> Inbound {
        tokio::time::timeout(Duration::from_secs(5), self.0.recv())
            .await
            .expect("timed out waiting for an inbound message")
            .expect("handler dropped")
    }

    /// The next notification, skipping nothing: fails on anything else.
    pub async fn notification(&mut self) -> (Message, Option<u64>) {
        match self.next().await {
            Inbound::Notification { message, related } => (message, related),
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    /// The next server→client request.
    pub async fn request(&mut self) -> (Message, Option<u64>) {
        match self.next().await {
            Inbound::Request { message, related } => (message, related),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// The next message, which must be `Closed`.
    pub async fn closed(&mut self) -> Option<mcpgate_upstream::UpstreamError> {
        match self.next().await {
            Inbound::Closed { error } => error,
            other => panic!("expected Closed, got {other:?}"),
        }
    }

    /// Nothing more arrives within `wait`.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        if let Ok(Some(m)) = tokio::time::timeout(wait, self.0.recv()).await {
            panic!("unexpected inbound message {m:?}");
        }
    }
}

/// A handler that records into an [`Inbox`].
pub fn recorder() -> (Arc<dyn InboundHandler>, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |inbound: Inbound| {
        let _ = tx.send(inbound);
    };
    (Arc::new(handler), Inbox(rx))
}

/// Options for tests: a 10 s connect timeout.
pub fn options(target: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(target, HttpClient::new());
    o.connect_timeout = Duration::from_secs(10);
    o.capabilities = raw(r#"{"sampling":{},"roots":{"listChanged":true}}"#);
    o
}

/// Raw JSON from a literal.
pub fn raw(s: &str) -> RawJson {
    RawJson::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

/// Raw JSON from a value.
pub fn rawv(v: Value) -> RawJson {
    RawJson::from(v)
}

/// The decoded `result` of a response (panics on an error response).
pub fn result(m: &Message) -> Value {
    match &m.result {
        Some(r) => r.decode().unwrap(),
        None => panic!("expected a result, got {m:?}"),
    }
}

/// A response message answering a server request.
pub fn answer(request: &Message, result: Value) -> Message {
    Message::response(request.id.clone().unwrap(), RawJson::from(result))
}

/// Bounds a future in a test.
pub async fn within<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("the operation did not finish in time")
}

/// Runs `slow` requests with decreasing delays concurrently and checks that each got its own
/// answer and that they finished in reverse order (so they really were in flight together).
pub async fn slow_requests_in_parallel(conn: &mcpgate_upstream::Connection) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let finished = std::sync::Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = [400u64, 200, 0]
        .iter()
        .enumerate()
        .map(|(n, ms)| {
            let call = conn.request("slow", Some(rawv(serde_json::json!({"ms": ms, "n": n}))));
            let finished = finished.clone();
            async move {
                let r = call.await;
                (n, r, finished.fetch_add(1, Ordering::SeqCst))
            }
        })
        .collect();
    for (n, r, rank) in within(10, futures_util::future::join_all(calls)).await {
        assert_eq!(result(&r.unwrap()), serde_json::json!({"n": n}));
        assert_eq!(rank, 2 - n, "request {n} finished at rank {rank}");
    }
    assert_eq!(conn.pending_requests(), 0);
}
