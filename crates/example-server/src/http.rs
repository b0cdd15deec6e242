//! The HTTP transports on one listener, served with hyper directly:
//!
//! - **Streamable HTTP** at `/mcp`: `POST` carries one message (or a batch); requests are answered
//!   with `application/json` when nothing else needs to be sent first, and with
//!   `text/event-stream` when the request produces progress, log messages or server→client
//!   requests before its response (or always with `sse_responses`). `GET` opens the session's
//!   stream for unrelated messages, `DELETE` ends the session. `Mcp-Session-Id` is issued at
//!   `initialize`; a missing id is 400, an unknown one 404. With `stateless` there are no
//!   session ids, no GET stream and no server→client requests.
//! - **Legacy HTTP+SSE** (2024-11-05): `GET /sse` opens a session whose first event is
//!   `endpoint` (`/message?sessionId=…`); `POST /message?sessionId=…` returns 202 and every
//!   answer arrives on the SSE stream as `event: message`.
//!
//! hyper is used without a router so that the crash fault can drop the very connection that
//! carries the fatal request, and so the benchmark's upstream costs as little as possible.
//! No lock is held across an `.await`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method as HttpMethod, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::http_modern;
use crate::jsonrpc::{self, Kind, Method, Msg, PARSE_ERROR, RpcError};
use crate::options::Era;
use crate::server::{self, Ctx, Shared};
use crate::session::{Session, Transport, UNRELATED_CAPACITY, Version};
use crate::stdio::join_array;

/// Largest accepted POST body.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The Streamable HTTP endpoint path.
pub const MCP_PATH: &str = "/mcp";
/// The legacy SSE endpoint path.
pub const SSE_PATH: &str = "/sse";
/// The legacy POST endpoint path.
pub const MESSAGE_PATH: &str = "/message";

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// Accepts connections on `listener` until the server shuts down (or this future is dropped,
/// which also closes every open connection).
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) -> std::io::Result<()> {
    let conns = CancellationToken::new();
    let _close_all = conns.clone().drop_guard();
    if let Ok(addr) = listener.local_addr() {
        if shared.opts.era == Era::Modern {
            tracing::info!(
                name = %shared.opts.name,
                %addr,
                era = %shared.opts.era,
                "The example MCP server is ready on http://{addr}{MCP_PATH} (MCP 2026-07-28 only)."
            );
        } else {
            tracing::info!(
                name = %shared.opts.name,
                %addr,
                stateless = shared.opts.stateless,
                era = %shared.opts.era,
                "The example MCP server is ready on http://{addr}{MCP_PATH} (legacy SSE at {SSE_PATH})."
            );
        }
    }
    loop {
        let (stream, _) = tokio::select! {
            _ = shared.shutdown.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let closed = conns.child_token();
        tokio::spawn(async move {
            let abort = CancellationToken::new();
            let svc = {
                let abort = abort.clone();
                service_fn(move |req| {
                    let shared = shared.clone();
                    let abort = abort.clone();
                    async move { Ok::<_, Infallible>(route(shared, req, abort).await) }
                })
            };
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = closed.cancelled() => {}
                _ = abort.cancelled() => {}
            }
        });
    }
}

type Req = Request<hyper::body::Incoming>;

async fn route(shared: Arc<Shared>, req: Req, abort: CancellationToken) -> Response<Body> {
    shared.stats.count_http();
    if !origin_allowed(req.headers()) {
        return error_response(StatusCode::FORBIDDEN, "Forbidden: Origin not allowed");
    }
    let path = req.uri().path();
    if shared.opts.era == Era::Modern {
        // 2026-07-28 only: POST /mcp; GET and DELETE are 405 (no stream, no session), and
        // the 2024-11-05 endpoints do not exist.
        return match (req.method(), path) {
            (&HttpMethod::POST, MCP_PATH) => post_mcp(&shared, req, &abort).await,
            (_, MCP_PATH) => method_not_allowed("POST"),
            _ => error_response(StatusCode::NOT_FOUND, "Not Found"),
        };
    }
    match (req.method(), path) {
        (&HttpMethod::POST, MCP_PATH) => post_mcp(&shared, req, &abort).await,
        (&HttpMethod::GET, MCP_PATH) => get_mcp(&shared, &req),
        (&HttpMethod::DELETE, MCP_PATH) => delete_mcp(&shared, &req),
        (&HttpMethod::GET, SSE_PATH) => legacy_sse(&shared),
        (&HttpMethod::POST, MESSAGE_PATH) => legacy_post(&shared, req, &abort).await,
        (_, MCP_PATH) => method_not_allowed("GET, POST, DELETE"),
        (_, SSE_PATH) => method_not_allowed("GET"),
        (_, MESSAGE_PATH) => method_not_allowed("POST"),
        _ => error_response(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// DNS-rebinding protection: a browser `Origin`, when present, must be a loopback host.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    let host = if host.starts_with('[') {
        host.split_once(']').map_or(host, |(h, _)| &h[1..])
    } else {
        host.split(':').next().unwrap_or(host)
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Waits forever after asking the connection task to drop the connection (crash fault).
pub(crate) async fn crash(abort: &CancellationToken) -> Response<Body> {
    tracing::warn!("Crash fault: dropping the connection.");
    abort.cancel();
    std::future::pending().await
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    match header_str(headers, header::ACCEPT.as_str()) {
        None => true,
        Some(a) => a.split(',').any(|part| {
            let m = part.split(';').next().unwrap_or("").trim();
            m == mime || m == "*/*" || m.strip_suffix("/*").is_some_and(|t| mime.starts_with(t))
        }),
    }
}

pub(crate) async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(error_response(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large"))
        }
        Err(_) => Err(error_response(StatusCode::BAD_REQUEST, "Bad Request: unreadable body")),
    }
}

pub(crate) fn parse_error_response() -> Response<Body> {
    let body = jsonrpc::error(None, &RpcError::new(PARSE_ERROR, "Parse error"));
    json_response(StatusCode::BAD_REQUEST, body)
}

async fn post_mcp(shared: &Arc<Shared>, req: Req, abort: &CancellationToken) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    if !accepts(headers, "application/json") && !accepts(headers, "text/event-stream") {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: accept application/json and text/event-stream",
        );
    }
    if let Some(ct) = header_str(headers, header::CONTENT_TYPE.as_str())
        && !ct.trim_start().to_ascii_lowercase().starts_with("application/json")
    {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: use application/json",
        );
    }
    let session_id = header_str(headers, SESSION_HEADER);
    let era = shared.opts.era;
    if era.modern() || shared.opts.echo_meta {
        shared.record_headers(mcp_headers(headers));
    }
    // 2026-07-28: every POST of a modern-only server; for a dual-era one, a POST without a
    // session whose version header or `_meta` is modern (decided once the body is parsed).
    let modern_candidate = era == Era::Modern || (era == Era::Dual && session_id.is_none());
    if modern_candidate && (era == Era::Modern || http_modern::header_is_modern(headers)) {
        let body = match read_body(body).await {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        return match jsonrpc::parse(body) {
            Ok((msgs, batch)) => http_modern::serve(shared, headers, msgs, batch, abort).await,
            Err(_) => parse_error_response(),
        };
    }
    let header_version = match header_str(headers, VERSION_HEADER) {
        None => None,
        Some(v) => match Version::parse(v) {
            Some(v) => Some(v),
            None => {
                return error_response(StatusCode::BAD_REQUEST, "Bad Request: unsupported MCP-Protocol-Version");
            }
        },
    };
    if shared.opts.echo_meta
        && let Some(tp) = header_str(headers, "traceparent")
    {
        let mut seen = shared.traceparents.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() == 1000 {
            seen.pop_front();
        }
        seen.push_back(tp.to_owned());
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (msgs, batch) = match jsonrpc::parse(body) {
        Ok(p) => p,
        Err(_) => return parse_error_response(),
    };
    if modern_candidate && http_modern::is_modern(headers, &msgs, batch) {
        return http_modern::serve(shared, headers, msgs, batch, abort).await;
    }
    let is_init = msgs.iter().any(|m| {
        matches!(
            m.kind,
            Kind::Request {
                method: Method::Initialize,
                ..
            }
        )
    });

    let opts = &shared.opts;
    let mut new_session = None;
    let session = if opts.stateless {
        shared.stateless.clone()
    } else if is_init {
        if msgs.len() > 1 {
            return error_response(
                StatusCode::BAD_REQUEST,
                "Bad Request: initialize must not be part of a batch",
            );
        }
        let (tx, rx) = mpsc::channel(UNRELATED_CAPACITY);
        let s = Session::new(
            crate::new_session_id().into(),
            Transport::Streamable,
            Some(tx),
            Some(rx),
        );
        shared.register(s.clone());
        new_session = Some(s.id.clone());
        s
    } else {
        match session_id {
            None => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: Mcp-Session-Id header is required",
                );
            }
            Some(id) => match shared.session(id) {
                Some(s) => s,
                None => return error_response(StatusCode::NOT_FOUND, "Session not found"),
            },
        }
    };
    let version = if opts.stateless {
        header_version.unwrap_or(Version::V2025_03_26)
    } else {
        session.version().or(header_version).unwrap_or(Version::LATEST)
    };

    // Notifications and responses are handled right away; requests are counted.
    let mut requests = 0usize;
    let mut single_instant = None;
    for m in &msgs {
        match m.kind {
            Kind::Notification { .. } => shared.on_notification(&session, m),
            Kind::Response { .. } => shared.on_response(&session, m),
            Kind::Invalid { .. } => requests += 1,
            Kind::Request { .. } => {
                requests += 1;
                single_instant = Some(shared.runs_inline(m));
            }
        }
    }
    if requests == 0 {
        return status_response(StatusCode::ACCEPTED);
    }
    let mk_ctx = |out| Ctx {
        shared: shared.clone(),
        session: session.clone(),
        out,
        version,
        meta: None,
    };

    // Fast path: one request that is answered at once, as JSON.
    if !batch && !opts.sse_responses && single_instant == Some(true) {
        let msg = &msgs[0];
        if !shared.admit(msg.method().unwrap_or(Method::Other)) {
            return crash(abort).await;
        }
        let reply = server::handle_request(&mk_ctx(shared.null_out()), msg).await;
        let mut resp = match reply {
            Some(m) => json_response(StatusCode::OK, m.bytes),
            None => status_response(StatusCode::ACCEPTED),
        };
        let new_session = keep_if_initialized(shared, &session, new_session);
        add_session_header(&mut resp, new_session.as_deref());
        return resp;
    }

    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let mut finals: Vec<Msg> = Vec::new();
    for m in msgs {
        match m.kind {
            Kind::Invalid { .. } => finals.push(server::invalid_request(&m)),
            Kind::Request { method, .. } => {
                if !shared.admit(method) {
                    return crash(abort).await;
                }
                let guard = session.track(m.id().unwrap_or("null"));
                tokio::spawn(server::run_tracked(mk_ctx(tx.clone()), m, guard));
            }
            _ => {}
        }
    }
    drop(tx);

    let mut resp = if opts.sse_responses {
        let remaining = requests - finals.len();
        sse_response(SseBody::new(
            finals.iter().map(|m| sse_event(&m.bytes)).collect(),
            rx,
            Some(remaining),
            None,
        ))
    } else {
        loop {
            if finals.len() == requests {
                break final_json(&finals, batch);
            }
            match rx.recv().await {
                Some(m) if m.is_response => finals.push(m),
                Some(m) => {
                    // Something must go out before the response: switch to SSE.
                    let remaining = requests - finals.len();
                    let mut head: VecDeque<Bytes> = finals.iter().map(|f| sse_event(&f.bytes)).collect();
                    head.push_back(sse_event(&m.bytes));
                    break sse_response(SseBody::new(head, rx, Some(remaining), None));
                }
                // Every remaining request was cancelled: end with an empty event stream.
                None if finals.is_empty() => {
                    break sse_response(SseBody::new(VecDeque::new(), rx, Some(0), None));
                }
                None => break final_json(&finals, batch),
            }
        }
    };
    // A forced SSE stream starts before initialize finishes, so it always gets the header.
    let new_session = if opts.sse_responses {
        new_session
    } else {
        keep_if_initialized(shared, &session, new_session)
    };
    add_session_header(&mut resp, new_session.as_deref());
    resp
}

/// The `mcp-*` request headers (lower-case names), in order.
fn mcp_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("mcp-"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A session created for an `initialize` that failed (bad params) is removed again, and no
/// `Mcp-Session-Id` is issued for it.
fn keep_if_initialized(shared: &Shared, session: &Session, new_session: Option<Arc<str>>) -> Option<Arc<str>> {
    let id = new_session?;
    if session.version().is_some() {
        Some(id)
    } else {
        shared.unregister(&id);
        None
    }
}

fn final_json(finals: &[Msg], batch: bool) -> Response<Body> {
    if batch {
        let items: Vec<Bytes> = finals.iter().map(|m| m.bytes.clone()).collect();
        json_response(StatusCode::OK, join_array(&items))
    } else {
        json_response(StatusCode::OK, finals[0].bytes.clone())
    }
}

fn add_session_header(resp: &mut Response<Body>, id: Option<&str>) {
    if let Some(v) = id.and_then(|id| HeaderValue::from_str(id).ok()) {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
}

fn session_from_header(shared: &Shared, headers: &HeaderMap) -> Result<Arc<Session>, (StatusCode, &'static str)> {
    match header_str(headers, SESSION_HEADER) {
        None => Err((
            StatusCode::BAD_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        )),
        Some(id) => shared.session(id).ok_or((StatusCode::NOT_FOUND, "Session not found")),
    }
}

fn get_mcp(shared: &Arc<Shared>, req: &Req) -> Response<Body> {
    if shared.opts.stateless {
        return method_not_allowed("POST");
    }
    if !accepts(req.headers(), "text/event-stream") {
        return error_response(StatusCode::NOT_ACCEPTABLE, "Not Acceptable: accept text/event-stream");
    }
    let session = match session_from_header(shared, req.headers()) {
        Ok(s) => s,
        Err((status, message)) => return error_response(status, message),
    };
    let Some(rx) = session.take_get_stream() else {
        return error_response(
            StatusCode::CONFLICT,
            "Conflict: a GET stream is already open for this session",
        );
    };
    let closed = session.closed.clone();
    let on_close: OnClose = Box::new(move |rx| {
        if let Some(rx) = rx {
            session.return_get_stream(rx);
        }
    });
    sse_response(SseBody::new(VecDeque::new(), rx, None, Some(on_close)).until(closed))
}

fn delete_mcp(shared: &Arc<Shared>, req: &Req) -> Response<Body> {
    if shared.opts.stateless {
        return method_not_allowed("POST");
    }
    match session_from_header(shared, req.headers()) {
        Ok(s) => {
            shared.unregister(&s.id);
            status_response(StatusCode::OK)
        }
        Err((status, message)) => error_response(status, message),
    }
}

fn legacy_sse(shared: &Arc<Shared>) -> Response<Body> {
    let (tx, rx) = mpsc::channel(UNRELATED_CAPACITY);
    let session = Session::new(crate::new_session_id().into(), Transport::LegacySse, Some(tx), None);
    shared.register(session.clone());
    let endpoint = format!("event: endpoint\ndata: {MESSAGE_PATH}?sessionId={}\n\n", session.id);
    let shared = shared.clone();
    let id = session.id.clone();
    let on_close: OnClose = Box::new(move |_| {
        shared.unregister(&id);
    });
    sse_response(SseBody::new(
        VecDeque::from([Bytes::from(endpoint)]),
        rx,
        None,
        Some(on_close),
    ))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn legacy_post(shared: &Arc<Shared>, req: Req, abort: &CancellationToken) -> Response<Body> {
    let Some(id) = req.uri().query().and_then(|q| query_param(q, "sessionId")) else {
        return error_response(StatusCode::BAD_REQUEST, "Bad Request: sessionId is required");
    };
    let Some(session) = shared.session(id) else {
        return error_response(StatusCode::NOT_FOUND, "Session not found");
    };
    let Some(out) = session.unrelated_sender() else {
        return error_response(StatusCode::NOT_FOUND, "Session not found");
    };
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Ok((msgs, _batch)) = jsonrpc::parse(body) else {
        return parse_error_response();
    };
    for m in msgs {
        match m.kind {
            Kind::Notification { .. } => shared.on_notification(&session, &m),
            Kind::Response { .. } => shared.on_response(&session, &m),
            Kind::Invalid { .. } => {
                let _ = out.try_send(server::invalid_request(&m));
            }
            Kind::Request { method, .. } => {
                if !shared.admit(method) {
                    return crash(abort).await;
                }
                let ctx = Ctx {
                    shared: shared.clone(),
                    session: session.clone(),
                    out: out.clone(),
                    version: session.version().unwrap_or(Version::V2024_11_05),
                    meta: None,
                };
                let guard = session.track(m.id().unwrap_or("null"));
                tokio::spawn(server::run_tracked(ctx, m, guard));
            }
        }
    }
    let mut resp = Response::new(Body::full(Bytes::from_static(b"Accepted")));
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp
}

/// Frames one message as an SSE `message` event.
pub fn sse_event(data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(data.len() + 24);
    v.extend_from_slice(b"event: message\ndata: ");
    v.extend_from_slice(data);
    v.extend_from_slice(b"\n\n");
    Bytes::from(v)
}

pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn status_response(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

/// An HTTP error whose body is a JSON-RPC error without id, as the transport section allows.
pub(crate) fn error_response(status: StatusCode, message: &'static str) -> Response<Body> {
    let code = match status {
        StatusCode::NOT_FOUND => -32001,
        _ => -32000,
    };
    json_response(status, jsonrpc::error(None, &RpcError::new(code, message)))
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = error_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

pub(crate) fn sse_response(body: SseBody) -> Response<Body> {
    let mut resp = Response::new(Body::Sse(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Called with the stream's receiver when an SSE body is dropped (client gone or stream done).
pub(crate) type OnClose = Box<dyn FnOnce(Option<mpsc::Receiver<Msg>>) + Send + Sync>;

/// A response body: a single buffer, or an SSE stream fed by a channel.
pub enum Body {
    /// A complete body (taken on first poll).
    Full(Option<Bytes>),
    /// A server-sent-events stream.
    Sse(SseBody),
}

impl Body {
    pub(crate) fn full(b: Bytes) -> Body {
        Body::Full(Some(b))
    }

    fn empty() -> Body {
        Body::Full(None)
    }
}

/// An SSE stream: pre-encoded events first, then one event per channel message; it ends after
/// `remaining` responses (POST streams), or when the channel closes.
pub struct SseBody {
    head: VecDeque<Bytes>,
    rx: Option<mpsc::Receiver<Msg>>,
    remaining: Option<usize>,
    on_close: Option<OnClose>,
    /// Ends the stream when the session ends (DELETE), for streams that outlive requests.
    session_closed: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// Sends an SSE comment (`:`) whenever this long passes without a message.
    keep_alive: Option<Pin<Box<tokio::time::Interval>>>,
}

impl SseBody {
    /// Sends an SSE comment line after every `every` without a message (a keep-alive).
    pub(crate) fn keep_alive(mut self, every: std::time::Duration) -> SseBody {
        let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.keep_alive = Some(Box::pin(iv));
        self
    }

    /// Ends this stream when `token` is cancelled.
    fn until(mut self, token: CancellationToken) -> SseBody {
        self.session_closed = Some(Box::pin(token.cancelled_owned()));
        self
    }

    pub(crate) fn new(
        head: VecDeque<Bytes>,
        rx: mpsc::Receiver<Msg>,
        remaining: Option<usize>,
        on_close: Option<OnClose>,
    ) -> SseBody {
        SseBody {
            head,
            rx: Some(rx),
            remaining,
            on_close,
            session_closed: None,
            keep_alive: None,
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        if let Some(f) = self.on_close.take() {
            f(self.rx.take());
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Sse(s) => {
                if let Some(b) = s.head.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                if s.remaining == Some(0) {
                    return Poll::Ready(None);
                }
                if let Some(closed) = s.session_closed.as_mut()
                    && closed.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(None);
                }
                let Some(rx) = s.rx.as_mut() else {
                    return Poll::Ready(None);
                };
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(msg)) => {
                        if msg.is_response
                            && let Some(n) = s.remaining.as_mut()
                        {
                            *n = n.saturating_sub(1);
                        }
                        if let Some(iv) = s.keep_alive.as_mut() {
                            iv.as_mut().reset();
                        }
                        Poll::Ready(Some(Ok(Frame::data(sse_event(&msg.bytes)))))
                    }
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => {
                        let tick = s
                            .keep_alive
                            .as_mut()
                            .is_some_and(|iv| iv.as_mut().poll_tick(cx).is_ready());
                        if tick {
                            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b":\n\n")))))
                        } else {
                            Poll::Pending
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(b) => b.is_none(),
            Body::Sse(s) => s.head.is_empty() && s.remaining == Some(0),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Body::Full(Some(b)) => http_body::SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => http_body::SizeHint::with_exact(0),
            Body::Sse(_) => http_body::SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn origin_check_allows_loopback_only() {
        assert!(origin_allowed(&HeaderMap::new()));
        for ok in ["http://localhost:6274", "http://127.0.0.1", "http://[::1]:80"] {
            assert!(origin_allowed(&origin(ok)), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://localhost.evil.example:80",
            "http://10.0.0.1",
        ] {
            assert!(!origin_allowed(&origin(bad)), "{bad}");
        }
    }

    #[test]
    fn accept_header_matching() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, "text/event-stream"));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        assert!(accepts(&h, "text/event-stream") && accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/*;q=0.5"));
        assert!(accepts(&h, "text/event-stream") && !accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("image/png"));
        assert!(!accepts(&h, "text/event-stream"));
    }

    #[test]
    fn frames_events_and_reads_query() {
        assert_eq!(&sse_event(b"{}")[..], b"event: message\ndata: {}\n\n");
        assert_eq!(query_param("a=1&sessionId=xyz", "sessionId"), Some("xyz"));
        assert_eq!(query_param("a=1", "sessionId"), None);
    }
}
