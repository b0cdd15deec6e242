//! Streamable HTTP (2025-03-26 and later): POST, GET and DELETE on the MCP endpoint.

// Early-return helpers give back the finished HTTP error response; it is the cold path.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use mcpgate_core::{DownstreamKind, Session};
use mcpgate_proto::jsonrpc::Parsed;
use mcpgate_proto::{ErrorCode, Message, MessageKind, version};
use tokio::sync::mpsc;

use crate::AppState;
use crate::response::{json_message, jsonrpc_error, sse_response};
use crate::streams::{GeneralStream, SessionStreams};

pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// Does the `Accept` header admit `mime`? (No header admits everything.)
fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()) else {
        return true;
    };
    let (top, _) = mime.split_once('/').unwrap_or((mime, ""));
    accept.split(',').any(|part| {
        let t = part.split(';').next().unwrap_or("").trim();
        t.eq_ignore_ascii_case(mime) || t == "*/*" || t.strip_suffix("/*").is_some_and(|p| p.eq_ignore_ascii_case(top))
    })
}

fn is_json_content(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// Finds the session named by `Mcp-Session-Id`, or the HTTP error to answer.
fn lookup(state: &AppState, headers: &HeaderMap) -> Result<Arc<Session>, Response> {
    let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    match state.gw.session(id) {
        Some(s) if s.kind == DownstreamKind::StreamableHttp => Ok(s),
        _ => Err(jsonrpc_error(
            StatusCode::NOT_FOUND,
            ErrorCode::INVALID_REQUEST,
            "Session not found (expired or terminated); initialize a new session",
        )),
    }
}

fn check_version(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get(VERSION_HEADER).map(|v| v.to_str().unwrap_or("")) {
        Some(v) if !version::is_supported(v) => Err(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version `{v}` (supported: {})",
                version::SUPPORTED.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn session_streams(session: &Session) -> Option<Arc<SessionStreams>> {
    session
        .outbound()
        .as_any()
        .downcast_ref::<GeneralStream>()
        .map(|g| g.0.clone())
}

/// POST: one client message (or a 2025-03-26 batch).
pub(crate) async fn post(
    State(state): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_json_content(&headers) {
        return jsonrpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::INVALID_REQUEST,
            "Unsupported Media Type: Content-Type must be application/json",
        );
    }
    let accept_json = accepts(&headers, "application/json");
    let accept_sse = accepts(&headers, "text/event-stream");
    if !accept_json && !accept_sse {
        return jsonrpc_error(
            StatusCode::NOT_ACCEPTABLE,
            ErrorCode::INVALID_REQUEST,
            "Not Acceptable: Accept must include application/json and text/event-stream",
        );
    }
    let max_depth = state.gw.config().listen.max_json_depth;
    let parsed = match Message::parse_any_limited(body, max_depth) {
        Ok(p) => p,
        Err(e) => {
            if matches!(e, mcpgate_proto::ParseError::TooDeep(_)) {
                state.gw.telemetry().metrics().limit_rejected("max_json_depth");
            }
            return jsonrpc_error(StatusCode::BAD_REQUEST, e.code(), &e.to_string());
        }
    };
    let parent = state.gw.trace_parent(&headers);
    let msg = match parsed {
        Parsed::Single(m) => m,
        // Boxed here and below: a future awaited inline makes this handler's future as large
        // as the largest of them (the whole request handling, tens of KiB), and axum and
        // tower move and box that future several times per request.
        Parsed::Batch(items) => return Box::pin(batch(state, headers, items, parent)).await,
    };
    if crate::modern::is_modern(&headers, &msg) {
        let identity = caller.and_then(|c| c.0.0);
        return Box::pin(crate::modern::post(state, identity, headers, msg, accept_sse)).await;
    }
    if msg.method() == "initialize" && msg.kind() == MessageKind::Request {
        return initialize(state, msg, caller.map(|c| c.0.0).unwrap_or_default(), &parent);
    }
    if let Err(r) = check_version(&headers) {
        return r;
    }
    let session = match lookup(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match msg.kind() {
        MessageKind::Request => request(state, session, msg, accept_json, accept_sse, parent).await,
        _ => {
            Box::pin(state.gw.handle(&session, msg, None)).await;
            StatusCode::ACCEPTED.into_response()
        }
    }
}

fn initialize(
    state: AppState,
    msg: Message,
    identity: Option<Arc<mcpgate_auth::Identity>>,
    parent: &mcpgate_core::trace::TraceParent,
) -> Response {
    let cfg = state.gw.config();
    let streams = SessionStreams::new(cfg.listen.resume_buffer, false);
    let id = msg.id.clone().expect("request");
    match state.gw.initialize_traced(
        DownstreamKind::StreamableHttp,
        &msg,
        Box::new(GeneralStream(streams)),
        identity,
        parent,
    ) {
        Ok((session, result)) => {
            let mut resp = json_message(&Message::response(id, result));
            if let Ok(v) = HeaderValue::from_str(&session.id) {
                resp.headers_mut().insert(SESSION_HEADER, v);
            }
            resp
        }
        Err(e) => {
            if let Some(limit) = e.refused_by() {
                state.gw.telemetry().metrics().limit_rejected(limit);
            }
            let mut resp = json_message(&e.to_response(id));
            *resp.status_mut() = e
                .http_status()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            if resp.status() == StatusCode::TOO_MANY_REQUESTS || resp.status() == StatusCode::SERVICE_UNAVAILABLE {
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            }
            resp
        }
    }
}

/// The handling of one request, boxed so that it can outlive the POST that started it.
type Handling = Pin<Box<dyn Future<Output = Option<Message>> + Send>>;

/// Runs a request's handling inside the POST handler itself, so the common case costs no
/// task spawn and no cross-thread wake-up. A client disconnect is not a cancellation: if the
/// handler is dropped before the handling finished, the rest of it moves to a task of its own.
struct Detach(Option<Handling>);

impl Detach {
    fn new(
        session: &Arc<Session>,
        gw: mcpgate_core::Gateway,
        msg: Message,
        sink: mpsc::Sender<Message>,
        parent: mcpgate_core::trace::TraceParent,
    ) -> Self {
        let s = session.clone();
        Detach(Some(Box::pin(async move {
            // A panic is answered like any internal error, as when the request had its own task.
            AssertUnwindSafe(gw.handle_traced(&s, msg, Some(sink), &parent))
                .catch_unwind()
                .await
                .ok()
                .flatten()
        })))
    }
}

impl Future for Detach {
    type Output = Option<Message>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(handling) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        let out = std::task::ready!(handling.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(out)
    }
}

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(handling) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(handling);
        }
    }
}

/// A request: answered as JSON when nothing precedes the response, else as an SSE stream.
async fn request(
    state: AppState,
    session: Arc<Session>,
    msg: Message,
    accept_json: bool,
    accept_sse: bool,
    parent: mcpgate_core::trace::TraceParent,
) -> Response {
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let mut task = Detach::new(&session, state.gw.clone(), msg, tx, parent);
    tokio::select! {
        biased;
        Some(first) = rx.recv() => {
            if accept_sse && let Some(streams) = session_streams(&session) {
                return sse_stream(state, session, streams, first, rx, task);
            }
            // The client takes JSON only: related messages go to its GET stream.
            session.send(first);
            let s = session.clone();
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    s.send(m);
                }
            });
            finish_json(task.await, accept_json, &state, &session)
        }
        res = &mut task => {
            while let Ok(m) = rx.try_recv() {
                session.send(m);
            }
            finish_json(res, accept_json, &state, &session)
        }
    }
}

fn finish_json(res: Option<Message>, accept_json: bool, state: &AppState, session: &Arc<Session>) -> Response {
    let resp = match res {
        Some(m) => m,
        None => {
            return jsonrpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::INTERNAL_ERROR,
                "internal error",
            );
        }
    };
    if accept_json {
        return json_message(&resp);
    }
    // SSE only: one event with the response.
    let Some(streams) = session_streams(session) else {
        return json_message(&resp);
    };
    let (n, live) = streams.open_post_stream();
    streams.write(n, &resp, true);
    let keep_alive = state.gw.config().listen.keep_alive;
    sse_response(live, None, keep_alive, session.closed.clone(), || {})
}

fn sse_stream(
    state: AppState,
    session: Arc<Session>,
    streams: Arc<SessionStreams>,
    first: Message,
    mut rx: mpsc::Receiver<Message>,
    mut task: Detach,
) -> Response {
    streams.prune(16);
    let (n, live) = streams.open_post_stream();
    if session.protocol_version >= version::V2025_11_25 {
        streams.prime(n);
    }
    streams.write(n, &first, false);
    let pump = streams.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                Some(m) = rx.recv() => pump.write(n, &m, false),
                res = &mut task => {
                    while let Ok(m) = rx.try_recv() {
                        pump.write(n, &m, false);
                    }
                    let resp = match res {
                        Some(m) => m,
                        None => Message::error(mcpgate_proto::RawJson::from_static("null"), ErrorCode::INTERNAL_ERROR, "internal error", None),
                    };
                    pump.write(n, &resp, true);
                    break;
                }
            }
        }
    });
    let keep_alive = state.gw.config().listen.keep_alive;
    let gw = state.gw.clone();
    let s = session.clone();
    sse_response(live, None, keep_alive, session.closed.clone(), move || gw.touch(&s))
}

/// A JSON-RPC batch (2025-03-26 only): answered as one JSON array.
async fn batch(
    state: AppState,
    headers: HeaderMap,
    items: Vec<Result<Message, mcpgate_proto::ParseError>>,
    parent: mcpgate_core::trace::TraceParent,
) -> Response {
    if let Err(r) = check_version(&headers) {
        return r;
    }
    let session = match lookup(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !version::allows_batches(session.protocol_version) {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            &format!(
                "JSON-RPC batches are not supported in protocol version {}",
                session.protocol_version
            ),
        );
    }
    let futs = items.into_iter().map(|item| {
        let state = state.clone();
        let session = session.clone();
        let parent = &parent;
        async move {
            match item {
                Err(e) => Some(e.to_response()),
                Ok(m) if m.method() == "initialize" => Some(Message::error(
                    m.id.clone().unwrap_or(mcpgate_proto::RawJson::from_static("null")),
                    ErrorCode::INVALID_REQUEST,
                    "initialize must not be part of a batch",
                    None,
                )),
                Ok(m) => state.gw.handle_traced(&session, m, None, parent).await,
            }
        }
    });
    let responses: Vec<Message> = futures_util::future::join_all(futs)
        .await
        .into_iter()
        .flatten()
        .collect();
    if responses.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    let mut body = bytes::BytesMut::new();
    body.extend_from_slice(b"[");
    for (i, m) in responses.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b",");
        }
        m.write(&mut body);
    }
    body.extend_from_slice(b"]");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.freeze(),
    )
        .into_response()
}

/// GET: the session's general stream, or the resumption of a broken stream.
pub(crate) async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !accepts(&headers, "text/event-stream") || headers.get(header::ACCEPT).is_none() {
        return jsonrpc_error(
            StatusCode::NOT_ACCEPTABLE,
            ErrorCode::INVALID_REQUEST,
            "Not Acceptable: Accept must include text/event-stream",
        );
    }
    if let Err(r) = check_version(&headers) {
        return r;
    }
    let session = match lookup(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(streams) = session_streams(&session) else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::INTERNAL_ERROR,
            "session has no streams",
        );
    };
    let max_streams = state.gw.config().listen.max_streams_per_session;
    let Some(slot) = streams.open_get(max_streams) else {
        state.gw.telemetry().metrics().limit_rejected("max_streams_per_session");
        let mut resp = jsonrpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::INVALID_REQUEST,
            &format!(
                "Too Many Requests: this session already has {max_streams} open GET streams (listen.max_streams_per_session)"
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    let live = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(last) => match streams.resume(last) {
            Some(live) => live,
            None => streams.attach_general(),
        },
        None => streams.attach_general(),
    };
    let keep_alive = state.gw.config().listen.keep_alive;
    let gw = state.gw.clone();
    let s = session.clone();
    sse_response(live, None, keep_alive, session.closed.clone(), move || {
        let _counted = &slot;
        gw.touch(&s)
    })
}

/// DELETE: the client ends its session.
pub(crate) async fn delete(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match lookup(&state, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(streams) = session_streams(&session) {
        streams.close();
    }
    state.gw.close_session(&session.id);
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, "application/json"));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream;q=0.9"),
        );
        assert!(accepts(&h, "application/json") && accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/*"));
        assert!(accepts(&h, "text/event-stream") && !accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert!(!accepts(&h, "text/event-stream"));
    }
}
