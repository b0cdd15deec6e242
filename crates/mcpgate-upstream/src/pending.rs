//! Requests waiting for their responses: the id counter, the id → waiter map, and the
//! [`PendingRequest`] future handed to callers.
//!
//! This module matches responses to requests; it does not know how bytes reach the server
//! (each transport hands a *driver* future that delivers the request and, on Streamable HTTP,
//! relays the response stream) nor what to do with server-initiated messages.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use mcpgate_proto::Message;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::UpstreamError;

type Waiter = oneshot::Sender<Result<Message, UpstreamError>>;

/// Hashes a request id (a counter) with one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct State {
    waiters: HashMap<u64, Waiter, BuildHasherDefault<IdHasher>>,
    /// Set once the connection is gone; later registrations fail with it.
    closed: Option<UpstreamError>,
}

/// The id counter and the map of requests awaiting a response.
pub(crate) struct PendingMap {
    next_id: AtomicU64,
    state: Mutex<State>,
}

impl PendingMap {
    pub(crate) fn new() -> Self {
        PendingMap {
            next_id: AtomicU64::new(0),
            state: Mutex::new(State {
                waiters: HashMap::default(),
                closed: None,
            }),
        }
    }

    /// Allocates a fresh id and registers a waiter for it (unless the connection is gone).
    #[allow(clippy::type_complexity)]
    pub(crate) fn register(
        &self,
    ) -> (
        u64,
        Result<oneshot::Receiver<Result<Message, UpstreamError>>, UpstreamError>,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut state = self.state.lock();
        if let Some(e) = &state.closed {
            return (id, Err(e.clone()));
        }
        state.waiters.insert(id, tx);
        (id, Ok(rx))
    }

    /// Completes request `id`. Returns false when no one waits for it (unknown or forgotten id).
    pub(crate) fn complete(&self, id: u64, outcome: Result<Message, UpstreamError>) -> bool {
        let waiter = self.state.lock().waiters.remove(&id);
        match waiter {
            Some(tx) => {
                // The receiver may be gone (future dropped between lookup and send): same as unknown.
                tx.send(outcome).is_ok()
            }
            None => false,
        }
    }

    /// Forgets request `id` (its future was dropped).
    pub(crate) fn forget(&self, id: u64) {
        self.state.lock().waiters.remove(&id);
    }

    /// Fails every waiting request with `error` and refuses new ones.
    pub(crate) fn close(&self, error: UpstreamError) {
        let waiters = {
            let mut state = self.state.lock();
            if state.closed.is_none() {
                state.closed = Some(error.clone());
            }
            std::mem::take(&mut state.waiters)
        };
        for (_, tx) in waiters {
            let _ = tx.send(Err(error.clone()));
        }
    }

    /// Number of requests waiting (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.state.lock().waiters.len()
    }
}

/// Delivers a request to the server (and, on Streamable HTTP, relays its response stream).
/// Resolves `Ok` once the response has been routed or will arrive on another stream.
pub(crate) type Driver = Pin<Box<dyn Future<Output = Result<(), UpstreamError>> + Send>>;

/// A look at a response before the caller gets it.
type Inspect = Box<dyn FnOnce(&Message) + Send>;

/// A request sent upstream; resolves to the response message (a result or a JSON-RPC error).
///
/// Dropping it forgets the pending entry: a response that arrives later is logged and dropped.
/// The request is delivered while this future is polled, so poll it (await it) promptly.
#[must_use = "the request is delivered and answered only while this future is polled"]
pub struct PendingRequest {
    id: u64,
    /// Looks at a successful response before the caller gets it.
    inspect: Option<Inspect>,
    owner: Option<Arc<PendingMap>>,
    driver: Option<Driver>,
    rx: Option<oneshot::Receiver<Result<Message, UpstreamError>>>,
    failed: Option<UpstreamError>,
}

impl PendingRequest {
    pub(crate) fn new(
        id: u64,
        owner: Arc<PendingMap>,
        rx: oneshot::Receiver<Result<Message, UpstreamError>>,
        driver: Option<Driver>,
    ) -> Self {
        PendingRequest {
            id,
            inspect: None,
            owner: Some(owner),
            driver,
            rx: Some(rx),
            failed: None,
        }
    }

    pub(crate) fn failed(id: u64, error: UpstreamError) -> Self {
        PendingRequest {
            id,
            inspect: None,
            owner: None,
            driver: None,
            rx: None,
            failed: Some(error),
        }
    }

    /// The upstream JSON-RPC id of this request.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Runs `f` on the response message, if one arrives, before the caller gets it.
    pub(crate) fn inspect(mut self, f: impl FnOnce(&Message) + Send + 'static) -> Self {
        self.inspect = Some(Box::new(f));
        self
    }

    fn finish(&mut self) {
        self.driver = None;
        self.rx = None;
        if let Some(owner) = self.owner.take() {
            owner.forget(self.id);
        }
    }
}

impl Future for PendingRequest {
    type Output = Result<Message, UpstreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        let Some(rx) = this.rx.as_mut() else {
            return Poll::Ready(Err(UpstreamError::Closed("request polled after completion".into())));
        };
        if let Some(driver) = this.driver.as_mut() {
            match driver.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => this.driver = None,
                Poll::Ready(Err(e)) => {
                    // A response routed just before the driver failed still wins.
                    let outcome = match rx.try_recv() {
                        Ok(outcome) => outcome,
                        Err(_) => Err(e),
                    };
                    this.finish();
                    return Poll::Ready(outcome);
                }
                Poll::Pending => {}
            }
        }
        match Pin::new(rx).poll(cx) {
            Poll::Ready(outcome) => {
                let outcome = outcome.unwrap_or_else(|_| Err(UpstreamError::Closed("connection dropped".into())));
                // Whoever completed the waiter already removed the entry.
                this.owner = None;
                this.finish();
                if let (Ok(m), Some(f)) = (&outcome, this.inspect.take()) {
                    f(m);
                }
                Poll::Ready(outcome)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.forget(self.id);
        }
    }
}

impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn response(id: u64) -> Message {
        Message::parse(Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#))).unwrap()
    }

    #[tokio::test]
    async fn completes_by_id_and_forgets_on_drop() {
        let map = Arc::new(PendingMap::new());
        let (a, rx_a) = map.register();
        let rx_a = rx_a.unwrap();
        let (b, rx_b) = map.register();
        let rx_b = rx_b.unwrap();
        assert_ne!(a, b);
        let fa = PendingRequest::new(a, map.clone(), rx_a, None);
        let fb = PendingRequest::new(b, map.clone(), rx_b, None);
        assert_eq!(map.len(), 2);
        assert!(map.complete(b, Ok(response(b))));
        let got = fb.await.unwrap();
        assert_eq!(got.id.unwrap().as_i64(), Some(b as i64));
        drop(fa);
        assert_eq!(map.len(), 0);
        assert!(!map.complete(a, Ok(response(a))), "a forgotten id is unknown");
    }

    #[tokio::test]
    async fn close_fails_waiters_and_later_registrations() {
        let map = Arc::new(PendingMap::new());
        let (a, rx) = map.register();
        let rx = rx.unwrap();
        let f = PendingRequest::new(a, map.clone(), rx, None);
        map.close(UpstreamError::SessionExpired);
        assert!(matches!(f.await, Err(UpstreamError::SessionExpired)));
        assert!(matches!(map.register().1, Err(UpstreamError::SessionExpired)));
    }

    #[tokio::test]
    async fn driver_failure_fails_the_request() {
        let map = Arc::new(PendingMap::new());
        let (a, rx) = map.register();
        let rx = rx.unwrap();
        let driver: Driver = Box::pin(async { Err(UpstreamError::Protocol("garbage".into())) });
        let f = PendingRequest::new(a, map.clone(), rx, Some(driver));
        assert!(matches!(f.await, Err(UpstreamError::Protocol(_))));
        assert_eq!(map.len(), 0);
    }
}
