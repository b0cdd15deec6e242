//! The Streamable HTTP transport (protocol 2025-03-26 and later).
//!
//! Every client message is a POST to the MCP endpoint. A request is answered with one JSON
//! body or an SSE stream that is relayed event by event as it arrives (server notifications
//! and requests go to the handler tagged with our request id; the response resolves the
//! request). A POST stream that ends before its response is resumed with GET +
//! `Last-Event-ID`, honouring `retry`. After `initialize` a standalone GET stream carries
//! server-initiated messages and is reconnected with backoff while the session lives.
//! `Mcp-Session-Id` and `MCP-Protocol-Version` are attached once known; a 404 on a request
//! carrying the session id ends the connection with [`UpstreamError::SessionExpired`].
//!
//! Re-initializing an expired session is the router's job, not this module's.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use hyper::body::Incoming;
use mcpgate_proto::Message;
use url::Url;

use crate::connection::{Shared, TraceHeaders, response_id};
use crate::http::{
    EventStream, carries_message, drain, is_event_stream, is_json, media_type, read_limited, status_error, to_uri,
};
use crate::modern::RequestHeaders;
use crate::pending::Driver;
use crate::{HttpClient, UpstreamError};

/// `Mcp-Session-Id`.
pub(crate) static SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`.
pub(crate) static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Last-Event-ID`.
pub(crate) static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

const ACCEPT_POST: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const ACCEPT_SSE: HeaderValue = HeaderValue::from_static("text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Attempts to resume one POST stream before its request fails.
const RESUME_ATTEMPTS: u32 = 5;
/// Wait before resuming when the server gave no `retry` (doubles per attempt).
const RESUME_DELAY: Duration = Duration::from_millis(500);
/// First and largest wait before reopening the GET stream when the server gave no `retry`.
const GET_BACKOFF_START: Duration = Duration::from_secs(1);
const GET_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bound on the DELETE sent when closing.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of a one-way POST's answer body is read (and discarded).
const DRAIN_LIMIT: usize = 64 * 1024;

/// The client side of a Streamable HTTP server. Cheap to clone.
#[derive(Clone)]
pub(crate) struct StreamableTransport(Arc<Inner>);

struct Inner {
    http: HttpClient,
    url: Uri,
    headers: HeaderMap,
    shared: Arc<Shared>,
    session: OnceLock<HeaderValue>,
    version: OnceLock<HeaderValue>,
    /// POST and GET headers, built once the session id and version are known.
    ready: OnceLock<(HeaderMap, HeaderMap)>,
    get_started: AtomicBool,
    /// The server speaks 2026-07-28: no session, and an HTTP 4xx with a JSON-RPC error body
    /// is that request's answer.
    modern: AtomicBool,
}

impl StreamableTransport {
    pub(crate) fn new(
        http: &HttpClient,
        url: &Url,
        headers: &HeaderMap,
        shared: Arc<Shared>,
    ) -> Result<Self, UpstreamError> {
        Ok(StreamableTransport(Arc::new(Inner {
            http: http.clone(),
            url: to_uri(url)?,
            headers: headers.clone(),
            shared,
            session: OnceLock::new(),
            version: OnceLock::new(),
            ready: OnceLock::new(),
            get_started: AtomicBool::new(false),
            modern: AtomicBool::new(false),
        })))
    }

    /// Sends `MCP-Protocol-Version` from now on (called after `initialize`, when the session
    /// id is known too, so the headers of every later request are built here once).
    pub(crate) fn set_protocol_version(&self, version: &'static str) {
        let _ = self.0.version.set(HeaderValue::from_static(version));
        let _ = self.0.ready.set((
            self.request_headers(ACCEPT_POST, true),
            self.request_headers(ACCEPT_SSE, false),
        ));
    }

    /// The server speaks 2026-07-28 (called once, after the probe): every later request
    /// carries `MCP-Protocol-Version: 2026-07-28` and no session.
    pub(crate) fn set_modern(&self) {
        self.0.modern.store(true, Ordering::Release);
        self.set_protocol_version(mcpgate_proto::modern::V2026_07_28);
    }

    fn is_modern(&self) -> bool {
        self.0.modern.load(Ordering::Acquire)
    }

    fn post_headers(&self) -> Cow<'_, HeaderMap> {
        match self.0.ready.get() {
            Some((post, _)) => Cow::Borrowed(post),
            None => Cow::Owned(self.request_headers(ACCEPT_POST, true)),
        }
    }

    fn get_headers(&self) -> HeaderMap {
        match self.0.ready.get() {
            Some((_, get)) => get.clone(),
            None => self.request_headers(ACCEPT_SSE, false),
        }
    }

    fn request_headers(&self, accept: HeaderValue, json_body: bool) -> HeaderMap {
        let inner = &self.0;
        let mut h = inner.headers.clone();
        // Set here once rather than formatted by the HTTP client on every request.
        if !h.contains_key(HOST)
            && let Some(host) = host_header(&inner.url)
        {
            h.insert(HOST, host);
        }
        h.insert(ACCEPT, accept);
        if json_body {
            h.insert(CONTENT_TYPE, JSON);
        }
        if let Some(s) = inner.session.get() {
            h.insert(SESSION_ID.clone(), s.clone());
        }
        if let Some(v) = inner.version.get() {
            h.insert(PROTOCOL_VERSION.clone(), v.clone());
        }
        h
    }

    /// Remembers the session id the server assigned (on the `initialize` response).
    fn capture_session(&self, resp: &Response<Incoming>) {
        if self.0.session.get().is_some() || self.is_modern() {
            return;
        }
        if let Some(v) = resp.headers().get(&SESSION_ID) {
            if !v.is_empty() && v.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b)) {
                let _ = self.0.session.set(v.clone());
            } else {
                tracing::warn!(target = %self.0.shared.target, "Ignored an Mcp-Session-Id that is not visible ASCII.");
            }
        }
    }

    /// Maps a non-success status to an error; a 404 while we hold a session id expires it.
    async fn check(&self, resp: Response<Incoming>, had_session: bool) -> Result<Response<Incoming>, UpstreamError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if status == StatusCode::NOT_FOUND && had_session {
            self.0.shared.finish(Some(UpstreamError::SessionExpired));
            return Err(UpstreamError::SessionExpired);
        }
        Err(status_error(resp).await)
    }

    /// The session id the server assigned, once known.
    pub(crate) fn session_id(&self) -> Option<&str> {
        self.0.session.get().and_then(|v| v.to_str().ok())
    }

    async fn post(&self, body: Bytes) -> Result<Response<Incoming>, UpstreamError> {
        self.post_traced(body, None, None).await
    }

    async fn post_traced(
        &self,
        body: Bytes,
        trace: Option<&TraceHeaders>,
        modern: Option<&RequestHeaders>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let had_session = self.0.session.get().is_some();
        let mut headers = self.post_headers();
        if let Some(t) = trace {
            t.apply(headers.to_mut());
        }
        if let Some(m) = modern {
            m.apply(headers.to_mut());
        }
        let resp = self.0.http.send(Method::POST, &self.0.url, &headers, body).await?;
        self.capture_session(&resp);
        // A 2026-07-28 server answers some JSON-RPC errors with 4xx (header mismatch, missing
        // capability, unsupported version): those bodies are the request's answer.
        if modern.is_some() && resp.status().is_client_error() && is_json(resp.headers()) {
            return Ok(resp);
        }
        self.check(resp, had_session).await
    }

    /// POSTs a notification or a response (202 Accepted expected).
    pub(crate) async fn post_one_way(&self, body: Bytes) -> Result<(), UpstreamError> {
        let resp = self.post(body).await?;
        if resp.status() != StatusCode::ACCEPTED && !is_event_stream(resp.headers()) {
            drain(resp, DRAIN_LIMIT).await;
        }
        Ok(())
    }

    /// A driver that POSTs request `id` and relays its answer.
    pub(crate) fn request_driver(
        &self,
        id: u64,
        body: Bytes,
        trace: Option<TraceHeaders>,
        modern: Option<RequestHeaders>,
    ) -> Driver {
        let this = self.clone();
        Box::pin(async move { this.exchange(id, body, trace, modern).await })
    }

    async fn exchange(
        self,
        id: u64,
        body: Bytes,
        trace: Option<TraceHeaders>,
        modern: Option<RequestHeaders>,
    ) -> Result<(), UpstreamError> {
        let resp = self.post_traced(body, trace.as_ref(), modern.as_ref()).await?;
        if !resp.status().is_success() {
            // Only a 2026-07-28 JSON error body gets here (see post_traced).
            let status = resp.status().as_u16();
            let body = read_limited(resp, self.0.shared.max_message_bytes).await?;
            return match Message::parse(body.clone()) {
                Ok(m) if m.is_response() && m.error.is_some() => {
                    self.0.shared.pending.complete(id, Ok(m));
                    Ok(())
                }
                _ => Err(UpstreamError::Http {
                    status,
                    body: String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
                }),
            };
        }
        let max = self.0.shared.max_message_bytes;
        if is_event_stream(resp.headers()) {
            return self.relay(EventStream::new(resp, max), id).await;
        }
        if is_json(resp.headers()) {
            let body = read_limited(resp, max).await?;
            let message = Message::parse(body)
                .map_err(|e| UpstreamError::Protocol(format!("the response body is not a JSON-RPC message: {e}")))?;
            // One POST carries one request: a response to it, or an error with a null id
            // (the server could not read our id), answers it.
            let answers = message.is_response()
                && (response_id(&message) == Some(id) || message.id.as_ref().is_some_and(|i| i.is_null()));
            if !answers {
                return Err(UpstreamError::Protocol(format!(
                    "the JSON response body does not answer request {id}"
                )));
            }
            self.0.shared.pending.complete(id, Ok(message));
            return Ok(());
        }
        if resp.status() == StatusCode::ACCEPTED {
            return Err(UpstreamError::Protocol(
                "the upstream answered a request with 202 Accepted".into(),
            ));
        }
        Err(UpstreamError::Protocol(format!(
            "the response to a request has content type `{}`",
            media_type(resp.headers())
        )))
    }

    /// Relays an SSE response stream until it carries the response to `id`, resuming it with
    /// GET + `Last-Event-ID` when it ends early.
    async fn relay(&self, mut events: EventStream, id: u64) -> Result<(), UpstreamError> {
        let shared = &self.0.shared;
        let mut last_event: Option<String> = None;
        let mut retry: Option<Duration> = None;
        let mut attempts = 0u32;
        loop {
            let ended = loop {
                match events.next().await {
                    Ok(Some(mut event)) => {
                        if let Some(event_id) = event.id.take() {
                            last_event = Some(event_id);
                        }
                        if let Some(ms) = event.retry {
                            retry = Some(Duration::from_millis(ms));
                        }
                        attempts = 0;
                        if !carries_message(&event) {
                            continue;
                        }
                        match shared.dispatch_bytes(event.data, Some(id), Some(id)) {
                            Ok(true) => return Ok(()),
                            Ok(false) => {}
                            Err(e) => {
                                return Err(UpstreamError::Protocol(format!(
                                    "an event on the response stream is not a JSON-RPC message: {e}"
                                )));
                            }
                        }
                    }
                    Ok(None) => break UpstreamError::Closed("the response stream ended before the response".into()),
                    Err(e @ UpstreamError::Io(_)) => break e,
                    Err(e) => return Err(e),
                }
            };
            events = loop {
                let Some(last) = last_event.as_deref() else {
                    return Err(ended);
                };
                if attempts >= RESUME_ATTEMPTS {
                    return Err(UpstreamError::Closed(format!(
                        "the response stream could not be resumed after {RESUME_ATTEMPTS} attempts"
                    )));
                }
                let wait = retry.unwrap_or(RESUME_DELAY * 2u32.pow(attempts));
                attempts += 1;
                tracing::debug!(target = %shared.target, id, last_event = last, ?wait, "Resuming an upstream response stream.");
                tokio::time::sleep(wait).await;
                match self.open_get(Some(last)).await {
                    Ok(Some(events)) => break events,
                    Ok(None) => {
                        return Err(UpstreamError::Closed(
                            "the response stream ended and the upstream does not allow resuming it".into(),
                        ));
                    }
                    Err(e) if e.is_retryable() && !matches!(e, UpstreamError::SessionExpired) => {
                        tracing::debug!(target = %shared.target, id, error = %e, "Resuming an upstream response stream failed.");
                    }
                    Err(e) => return Err(e),
                }
            };
        }
    }

    /// Opens a GET stream (resuming after `last_event` if given). `None` on 405.
    async fn open_get(&self, last_event: Option<&str>) -> Result<Option<EventStream>, UpstreamError> {
        let had_session = self.0.session.get().is_some();
        let mut headers = self.get_headers();
        if let Some(last) = last_event {
            let value = HeaderValue::from_str(last)
                .map_err(|_| UpstreamError::Protocol("an SSE event id cannot be sent back as a header".into()))?;
            headers.insert(LAST_EVENT_ID.clone(), value);
        }
        let resp = self
            .0
            .http
            .send(Method::GET, &self.0.url, &headers, Bytes::new())
            .await?;
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(None);
        }
        let resp = self.check(resp, had_session).await?;
        if !is_event_stream(resp.headers()) {
            return Err(UpstreamError::Protocol(format!(
                "the GET stream has content type `{}`",
                media_type(resp.headers())
            )));
        }
        Ok(Some(EventStream::new(resp, self.0.shared.max_message_bytes)))
    }

    /// Starts the standalone GET stream for server-initiated messages (once).
    /// The returned receiver fires once the first attempt to open it has finished (opened,
    /// refused or failed).
    pub(crate) fn start_get_stream(&self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.0.get_started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().run_get_stream(Some(tx)));
        }
        rx
    }

    async fn run_get_stream(self, mut first_attempt: Option<tokio::sync::oneshot::Sender<()>>) {
        let shared = self.0.shared.clone();
        let mut last_event: Option<String> = None;
        let mut retry: Option<Duration> = None;
        let mut backoff = GET_BACKOFF_START;
        loop {
            let opened = tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => return,
                opened = self.open_get(last_event.as_deref()) => opened,
            };
            if let Some(tx) = first_attempt.take() {
                let _ = tx.send(());
            }
            match opened {
                Ok(Some(mut events)) => loop {
                    let next = tokio::select! {
                        biased;
                        _ = shared.cancel.cancelled() => return,
                        next = events.next() => next,
                    };
                    match next {
                        Ok(Some(mut event)) => {
                            backoff = GET_BACKOFF_START;
                            if let Some(event_id) = event.id.take() {
                                last_event = Some(event_id);
                            }
                            if let Some(ms) = event.retry {
                                retry = Some(Duration::from_millis(ms));
                            }
                            if carries_message(&event)
                                && let Err(e) = shared.dispatch_bytes(event.data, None, None)
                            {
                                tracing::warn!(target = %shared.target, error = %e, "Skipped an event on the GET stream that is not a JSON-RPC message.");
                            }
                        }
                        Ok(None) => {
                            tracing::debug!(target = %shared.target, "The upstream GET stream ended; reconnecting.");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(target = %shared.target, error = %e, "The upstream GET stream failed; reconnecting.");
                            break;
                        }
                    }
                },
                Ok(None) => {
                    tracing::debug!(target = %shared.target, "The upstream offers no GET stream (405).");
                    return;
                }
                Err(UpstreamError::SessionExpired) => return,
                Err(UpstreamError::Http { status, body })
                    if (400..500).contains(&status) && !matches!(status, 408 | 429) =>
                {
                    tracing::warn!(target = %shared.target, status, body = %body, "The upstream refused the GET stream; server-initiated messages will only arrive on response streams.");
                    return;
                }
                Err(UpstreamError::Connect(e)) => {
                    // Nothing listens any more: the server is gone, and with it this session.
                    // Closing lets the owner mark the target down and reconnect with backoff.
                    tracing::warn!(target = %shared.target, error = %e, "The upstream is unreachable; closing its session.");
                    shared.finish(Some(UpstreamError::Closed(format!("upstream unreachable: {e}"))));
                    return;
                }
                Err(e) => {
                    tracing::warn!(target = %shared.target, error = %e, "Could not open the upstream GET stream; retrying.");
                }
            }
            let wait = retry.unwrap_or(backoff);
            backoff = (backoff * 2).min(GET_BACKOFF_MAX);
            tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Ends the session on the server (DELETE; 405 is fine). Bounded in time.
    pub(crate) async fn delete_session(&self) {
        if self.0.session.get().is_none() {
            return;
        }
        let headers = self.request_headers(ACCEPT_POST, false);
        let send = self.0.http.send(Method::DELETE, &self.0.url, &headers, Bytes::new());
        match tokio::time::timeout(DELETE_TIMEOUT, send).await {
            Ok(Ok(resp)) => {
                let status = resp.status();
                if !status.is_success() && status != StatusCode::METHOD_NOT_ALLOWED {
                    tracing::debug!(target = %self.0.shared.target, status = status.as_u16(), "The upstream refused to delete the session.");
                }
                drain(resp, DRAIN_LIMIT).await;
            }
            Ok(Err(e)) => {
                tracing::debug!(target = %self.0.shared.target, error = %e, "Could not delete the upstream session.")
            }
            Err(_) => tracing::debug!(target = %self.0.shared.target, "Deleting the upstream session timed out."),
        }
    }

    /// Sends the DELETE from a background task (the connection was dropped without close).
    pub(crate) fn delete_in_background(&self) {
        if self.0.session.get().is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            runtime.spawn(async move { this.delete_session().await });
        }
    }
}

/// The `Host` header for `url`, as the HTTP client would write it: the host, and the port
/// when it is not the scheme's default.
fn host_header(url: &Uri) -> Option<HeaderValue> {
    let host = url.host()?;
    let default_port = match url.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    match url.port_u16() {
        Some(port) if port != default_port => HeaderValue::from_str(&format!("{host}:{port}")).ok(),
        _ => HeaderValue::from_str(host).ok(),
    }
}
