//! [`Connection`]: the public handle on one upstream session, the state its transports share
//! ([`Shared`]: pending requests, the inbound handler, the close signal), message encoding,
//! and the `initialize` handshake.
//!
//! Transport details (processes, HTTP, SSE) live in [`crate::stdio`], [`crate::sse`] and
//! [`crate::streamable`]; this module only routes between them and the caller.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use mcpgate_proto::jsonrpc::Parsed;
use mcpgate_proto::raw::write_json_string;
use mcpgate_proto::{Message, ObjectEdit, ParseError, RawJson, version};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::modern::{Generation, ModernState, Probe, RequestHeaders};
use crate::pending::{Driver, PendingMap, PendingRequest};
use crate::sse::SseTransport;
use crate::stdio::StdioTransport;
use crate::streamable::StreamableTransport;
use crate::{ConnectOptions, Inbound, InboundHandler, InitializeResult, TransportSpec, UpstreamError};

/// W3C trace context of one upstream request, for the HTTP transports' headers.
#[derive(Clone, Debug)]
pub struct TraceHeaders {
    /// `traceparent`.
    pub traceparent: http::HeaderValue,
    /// `tracestate`, when the trace has one.
    pub tracestate: Option<http::HeaderValue>,
}

impl TraceHeaders {
    /// Adds the headers to `h`.
    pub(crate) fn apply(&self, h: &mut http::HeaderMap) {
        h.insert(http::HeaderName::from_static("traceparent"), self.traceparent.clone());
        if let Some(ts) = &self.tracestate {
            h.insert(http::HeaderName::from_static("tracestate"), ts.clone());
        }
    }
}

/// State shared by a connection's handle, its transport tasks and its pending requests.
pub(crate) struct Shared {
    /// Target name, for logs.
    pub(crate) target: Arc<str>,
    handler: Arc<dyn InboundHandler>,
    /// Requests awaiting responses.
    pub(crate) pending: Arc<PendingMap>,
    /// Fires when the connection is finished; transport tasks stop on it.
    pub(crate) cancel: CancellationToken,
    closed: AtomicBool,
    life: Mutex<Life>,
    /// Bound on one message / event / body.
    pub(crate) max_message_bytes: usize,
    /// Set when the server speaks the stateless generation (2026-07-28).
    pub(crate) modern: OnceLock<Arc<ModernState>>,
}

/// Whether the handler has been told about the end (it is told once, and only about
/// connections whose `connect` succeeded).
#[derive(Default)]
struct Life {
    announced: bool,
    /// `Some(reason)` once finished.
    ended: Option<Option<UpstreamError>>,
    told: bool,
}

impl Shared {
    pub(crate) fn new(target: Arc<str>, handler: Arc<dyn InboundHandler>, max_message_bytes: usize) -> Self {
        Shared {
            target,
            handler,
            pending: Arc::new(PendingMap::new()),
            cancel: CancellationToken::new(),
            closed: AtomicBool::new(false),
            life: Mutex::new(Life::default()),
            max_message_bytes,
            modern: OnceLock::new(),
        }
    }

    /// Routes one message from the server: responses to their pending request, everything
    /// else to the handler.
    pub(crate) fn dispatch(&self, message: Message, related: Option<u64>) {
        if message.is_response() {
            let Some(id) = response_id(&message) else {
                tracing::warn!(target = %self.target, id = ?message.id, error = ?message.error, "Dropped an upstream response whose id is not one of ours.");
                return;
            };
            if !self.pending.complete(id, Ok(message)) {
                tracing::debug!(target = %self.target, id, "Dropped an upstream response to an unknown or forgotten request.");
            }
            return;
        }
        let mut related = related;
        if let Some(state) = self.modern.get() {
            match crate::modern::on_subscription_notification(state, &message) {
                Some(true) => return,
                // A listen stream's notification belongs to the connection, not to a call.
                Some(false) => related = None,
                None => {}
            }
        }
        let inbound = if message.is_request() {
            Inbound::Request { message, related }
        } else {
            Inbound::Notification { message, related }
        };
        self.handler.on_message(inbound);
    }

    /// Parses and routes the bytes of one message (or a batch). Returns whether it held the
    /// response to request `ours`.
    pub(crate) fn dispatch_bytes(
        &self,
        bytes: Bytes,
        related: Option<u64>,
        ours: Option<u64>,
    ) -> Result<bool, ParseError> {
        let is_ours = |m: &Message| ours.is_some() && m.is_response() && response_id(m) == ours;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
            let message = Message::parse(bytes)?;
            let hit = is_ours(&message);
            self.dispatch(message, related);
            return Ok(hit);
        }
        let mut hit = false;
        match Message::parse_any(bytes)? {
            Parsed::Single(message) => {
                hit = is_ours(&message);
                self.dispatch(message, related);
            }
            Parsed::Batch(items) => {
                for item in items {
                    match item {
                        Ok(message) => {
                            hit |= is_ours(&message);
                            self.dispatch(message, related);
                        }
                        Err(e) => {
                            tracing::warn!(target = %self.target, error = %e, "Skipped an invalid message in an upstream batch.")
                        }
                    }
                }
            }
        }
        Ok(hit)
    }

    /// Ends the connection once: fails pending requests, stops the transport tasks and tells
    /// the handler. Returns false if it had already ended.
    pub(crate) fn finish(&self, error: Option<UpstreamError>) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        match &error {
            // A failed connect is reported by its caller.
            Some(e) if self.life.lock().announced => {
                tracing::warn!(target = %self.target, error = %e, "Upstream connection lost.")
            }
            _ => tracing::debug!(target = %self.target, error = ?error, "Upstream connection closed."),
        }
        let for_pending = error.as_ref().map_or_else(
            || UpstreamError::Closed("the connection was closed".into()),
            UpstreamError::for_pending,
        );
        self.pending.close(for_pending);
        self.cancel.cancel();
        let tell = {
            let mut life = self.life.lock();
            life.ended = Some(error.clone());
            let tell = life.announced && !life.told;
            life.told |= tell;
            tell
        };
        if tell {
            self.handler.on_message(Inbound::Closed { error });
        }
        true
    }

    /// Marks the connection as handed to the caller; from now on its end is reported.
    fn announce(&self) {
        let tell = {
            let mut life = self.life.lock();
            life.announced = true;
            match life.ended.clone() {
                Some(error) if !life.told => {
                    life.told = true;
                    Some(error)
                }
                _ => None,
            }
        };
        if let Some(error) = tell {
            self.handler.on_message(Inbound::Closed { error });
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The error for an operation attempted after the end.
    pub(crate) fn closed_error(&self) -> UpstreamError {
        match &self.life.lock().ended {
            Some(Some(e)) => e.for_pending(),
            _ => UpstreamError::Closed("the connection was closed".into()),
        }
    }
}

/// What the `server/discover` probe found.
enum Era {
    Modern(InitializeResult),
    Legacy,
    /// No answer yet; the probe is still waiting.
    Unknown(PendingRequest),
}

/// `{}`: the answer of a removed method the connection takes care of itself (the id is set
/// by [`Connection::local`]).
fn accepted() -> Message {
    Message::response(RawJson::from_static("null"), RawJson::from_static("{}"))
}

/// A result message with an empty object for `m`'s result (a mapped `ping`).
fn empty(m: Message) -> Message {
    Message {
        result: Some(RawJson::from_static("{}")),
        ..m
    }
}

/// Opens a `subscriptions/listen` request on a 2026-07-28 connection.
pub(crate) fn send_listen(inner: &Arc<ConnInner>, params: RawJson) -> PendingRequest {
    let conn = Connection(inner.clone());
    let state = inner.shared.modern.get().expect("modern connection").clone();
    let params = crate::modern::stamp_meta(Some(&params), &state.capabilities, &state.client_info);
    let headers = RequestHeaders::for_request("subscriptions/listen", Some(&params));
    conn.send_request_with("subscriptions/listen", Some(params), None, Some(headers))
}

/// Ends listen request `id` (its request future has been dropped, which on HTTP closed the
/// stream; stdio needs `notifications/cancelled`).
pub(crate) async fn cancel_listen(inner: &Arc<ConnInner>, id: u64) {
    if let Transport::Stdio(t) = &inner.transport {
        let params = RawJson::assume_valid(Bytes::from(format!("{{\"requestId\":{id}}}")));
        let body = encode_notification("notifications/cancelled", Some(&params), Framing::Line);
        let _ = t.send(body).await;
    }
}

/// Our ids are non-negative JSON numbers.
pub(crate) fn response_id(message: &Message) -> Option<u64> {
    message.id.as_ref()?.as_str().parse().ok()
}

/// How messages are framed on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One line per message (stdio): no raw line breaks inside, `\n` after.
    Line,
    /// One HTTP body per message.
    Body,
}

/// Encodes a request without building a [`Message`] (one allocation).
pub(crate) fn encode_request(id: u64, method: &str, params: Option<&RawJson>, framing: Framing) -> Bytes {
    let mut buf = BytesMut::with_capacity(48 + method.len() + params.map_or(0, |p| p.as_bytes().len()));
    buf.put_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    let _ = write!(buf, "{id}");
    buf.put_slice(b",\"method\":");
    write_json_string(&mut buf, method);
    if let Some(p) = params {
        buf.put_slice(b",\"params\":");
        buf.put_slice(p.as_bytes());
    }
    buf.put_u8(b'}');
    frame(buf, framing)
}

/// Encodes a notification.
pub(crate) fn encode_notification(method: &str, params: Option<&RawJson>, framing: Framing) -> Bytes {
    let mut buf = BytesMut::with_capacity(40 + method.len() + params.map_or(0, |p| p.as_bytes().len()));
    buf.put_slice(b"{\"jsonrpc\":\"2.0\",\"method\":");
    write_json_string(&mut buf, method);
    if let Some(p) = params {
        buf.put_slice(b",\"params\":");
        buf.put_slice(p.as_bytes());
    }
    buf.put_u8(b'}');
    frame(buf, framing)
}

/// Encodes any message.
pub(crate) fn encode_message(message: &Message, framing: Framing) -> Bytes {
    let mut buf = BytesMut::new();
    message.write(&mut buf);
    frame(buf, framing)
}

fn frame(mut buf: BytesMut, framing: Framing) -> Bytes {
    if framing == Framing::Line {
        flatten_line_breaks(&mut buf);
        buf.put_u8(b'\n');
    }
    buf.freeze()
}

/// Replaces raw CR/LF with spaces. In valid JSON they can only be whitespace between tokens
/// (strings cannot contain raw control characters), so the value is unchanged.
pub(crate) fn flatten_line_breaks(buf: &mut [u8]) {
    let mut at = 0;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', &buf[at..]) {
        buf[at + i] = b' ';
        at += i + 1;
    }
}

/// The transport under a connection.
pub(crate) enum Transport {
    Stdio(StdioTransport),
    Sse(SseTransport),
    Streamable(StreamableTransport),
}

impl Transport {
    fn framing(&self) -> Framing {
        match self {
            Transport::Stdio(_) => Framing::Line,
            _ => Framing::Body,
        }
    }

    /// Starts delivering request `id`; the returned driver (if any) must be polled. `trace`
    /// goes out as HTTP headers (stdio has none: the caller carries it in `params._meta`).
    fn start_request(
        &self,
        id: u64,
        body: Bytes,
        trace: Option<&TraceHeaders>,
        modern: Option<RequestHeaders>,
    ) -> Result<Option<Driver>, UpstreamError> {
        match self {
            Transport::Stdio(t) => t.start(body),
            Transport::Sse(t) => Ok(Some(t.post_driver(body, trace.cloned()))),
            Transport::Streamable(t) => Ok(Some(t.request_driver(id, body, trace.cloned(), modern))),
        }
    }

    /// Delivers a notification or response.
    async fn send(&self, body: Bytes) -> Result<(), UpstreamError> {
        match self {
            Transport::Stdio(t) => t.send(body).await,
            Transport::Sse(t) => t.post(body).await,
            Transport::Streamable(t) => t.post_one_way(body).await,
        }
    }

    /// Resolves when the transport is fully torn down (the process reaped).
    async fn terminated(&self, shared: &Shared) {
        match self {
            Transport::Stdio(t) => t.terminated().await,
            _ => shared.cancel.cancelled().await,
        }
    }
}

pub(crate) struct ConnInner {
    pub(crate) shared: Arc<Shared>,
    transport: Transport,
    requested_version: &'static str,
    version: OnceLock<&'static str>,
    closing: AtomicBool,
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        if let Transport::Streamable(t) = &self.transport
            && !self.shared.is_closed()
            && !self.closing.load(Ordering::Acquire)
        {
            t.delete_in_background();
        }
        self.shared.finish(None);
    }
}

/// One live session with one upstream MCP server. Cheap to clone; the session ends when
/// [`Connection::close`] is called or the last clone is dropped (which also tears down a
/// stdio server's process group).
#[derive(Clone)]
pub struct Connection(Arc<ConnInner>);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.0.shared.target)
            .field("protocol_version", &self.protocol_version())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Starts the transport and performs `initialize` + `notifications/initialized`, all
    /// bounded by `opts.connect_timeout`.
    ///
    /// Fails with [`UpstreamError::Protocol`] if the server answers a protocol version mcpgate
    /// does not speak. The handler may receive server messages before this returns, but
    /// [`Inbound::Closed`] only for connections this returned.
    ///
    /// A [`TransportSpec::StreamableHttp`] URL whose `initialize` POST is answered 400, 404 or
    /// 405 is tried once more as a legacy HTTP+SSE endpoint (GET, `endpoint` event), as the
    /// specification's backwards-compatibility section recommends; if that fails too, the
    /// original error is returned.
    pub async fn connect(
        spec: &TransportSpec,
        opts: ConnectOptions,
        handler: Arc<dyn InboundHandler>,
    ) -> Result<(Connection, InitializeResult), UpstreamError> {
        let deadline = tokio::time::Instant::now() + opts.connect_timeout;
        let first = Self::connect_once(spec, &opts, handler.clone(), deadline).await;
        let (
            Err(UpstreamError::Http {
                status: 400 | 404 | 405,
                ..
            }),
            TransportSpec::StreamableHttp { url, headers },
        ) = (&first, spec)
        else {
            return first;
        };
        let legacy = TransportSpec::Sse {
            url: url.clone(),
            headers: headers.clone(),
        };
        match Self::connect_once(&legacy, &opts, handler, deadline).await {
            Ok(connected) => {
                tracing::info!(target = %opts.target, url = %url, "The upstream speaks only the legacy HTTP+SSE transport; using it.");
                Ok(connected)
            }
            Err(e) => {
                tracing::debug!(target = %opts.target, error = %e, "The legacy HTTP+SSE fallback failed too.");
                first
            }
        }
    }

    async fn connect_once(
        spec: &TransportSpec,
        opts: &ConnectOptions,
        handler: Arc<dyn InboundHandler>,
        deadline: tokio::time::Instant,
    ) -> Result<(Connection, InitializeResult), UpstreamError> {
        let shared = Arc::new(Shared::new(opts.target.clone(), handler, opts.max_message_bytes));
        let attempt = async {
            let transport = match spec {
                TransportSpec::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => Transport::Stdio(StdioTransport::spawn(
                    command,
                    args,
                    env,
                    cwd.as_deref(),
                    shared.clone(),
                    opts.stderr.clone(),
                )?),
                TransportSpec::Sse { url, headers } => {
                    Transport::Sse(SseTransport::connect(&opts.http, url, headers, shared.clone()).await?)
                }
                TransportSpec::StreamableHttp { url, headers } => {
                    Transport::Streamable(StreamableTransport::new(&opts.http, url, headers, shared.clone())?)
                }
            };
            let conn = Connection(Arc::new(ConnInner {
                shared: shared.clone(),
                transport,
                requested_version: opts.protocol_version,
                version: OnceLock::new(),
                closing: AtomicBool::new(false),
            }));
            let init = match conn.probe(opts).await? {
                Era::Modern(init) => init,
                Era::Legacy => conn.initialize(opts).await?,
                // No answer in time (a slow start, or a server that ignores requests before
                // `initialize`): `initialize` decides, but a modern server rejects it, and
                // then its late answer to the probe does.
                Era::Unknown(late) => match conn.initialize(opts).await {
                    Ok(init) => init,
                    Err(e) => match crate::modern::classify(late.await) {
                        Ok(Probe::Modern(init)) => conn.become_modern(opts, init),
                        _ => return Err(e),
                    },
                },
            };
            Ok((conn, init))
        };
        let outcome = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(UpstreamError::Timeout),
        };
        match outcome {
            Ok((conn, init)) => {
                shared.announce();
                tracing::debug!(target = %shared.target, version = %init.protocol_version, "Upstream connected.");
                if shared.modern.get().is_some() {
                    tokio::spawn(crate::modern::listen_loop(Arc::downgrade(&conn.0)));
                }
                Ok((conn, init))
            }
            Err(e) => {
                shared.finish(Some(e.clone()));
                Err(e)
            }
        }
    }

    /// Finds out whether the server speaks the stateless generation (`server/discover`).
    async fn probe(&self, opts: &ConnectOptions) -> Result<Era, UpstreamError> {
        if opts.generation == Generation::Session || matches!(self.0.transport, Transport::Sse(_)) {
            if opts.generation == Generation::Stateless {
                return Err(UpstreamError::Protocol(
                    "the legacy HTTP+SSE transport cannot carry the stateless generation".into(),
                ));
            }
            return Ok(Era::Legacy);
        }
        let params = crate::modern::stamp_meta(None, &opts.capabilities, &opts.client_info);
        let headers = RequestHeaders::for_request("server/discover", Some(&params));
        let mut probe = self.send_request_with("server/discover", Some(params), None, Some(headers));
        let wait = if opts.generation == Generation::Stateless {
            opts.connect_timeout
        } else {
            crate::modern::PROBE_TIMEOUT
        };
        let outcome = match tokio::time::timeout(wait, &mut probe).await {
            Ok(outcome) => outcome,
            Err(_) if opts.generation == Generation::Auto => return Ok(Era::Unknown(probe)),
            Err(_) => Err(UpstreamError::Timeout),
        };
        match crate::modern::classify(outcome)? {
            Probe::Modern(init) => Ok(Era::Modern(self.become_modern(opts, init))),
            Probe::Legacy(why) if opts.generation == Generation::Stateless => Err(UpstreamError::Protocol(format!(
                "the target is configured as stateless (2026-07-28) but the upstream is session-based: {why}"
            ))),
            Probe::Legacy(why) => {
                tracing::debug!(target = %opts.target, reason = %why, "The upstream is session-based; initializing.");
                Ok(Era::Legacy)
            }
        }
    }

    /// Switches the connection to the stateless generation after a successful probe.
    fn become_modern(&self, opts: &ConnectOptions, init: InitializeResult) -> InitializeResult {
        let state = ModernState::new(
            opts.capabilities.clone(),
            opts.client_info.clone(),
            init.capabilities.clone(),
            opts.tool_headers.clone(),
        );
        let _ = self.0.shared.modern.set(Arc::new(state));
        let _ = self.0.version.set(mcpgate_proto::modern::V2026_07_28);
        if let Transport::Streamable(t) = &self.0.transport {
            t.set_modern();
        }
        tracing::info!(target = %opts.target, "The upstream speaks the stateless generation (2026-07-28).");
        init
    }

    async fn initialize(&self, opts: &ConnectOptions) -> Result<InitializeResult, UpstreamError> {
        let mut params =
            BytesMut::with_capacity(64 + opts.capabilities.as_bytes().len() + opts.client_info.as_bytes().len());
        params.put_slice(b"{\"protocolVersion\":");
        write_json_string(&mut params, opts.protocol_version);
        params.put_slice(b",\"capabilities\":");
        params.put_slice(opts.capabilities.as_bytes());
        params.put_slice(b",\"clientInfo\":");
        params.put_slice(opts.client_info.as_bytes());
        params.put_u8(b'}');
        let params = RawJson::parse(params.freeze())
            .map_err(|e| UpstreamError::Protocol(format!("invalid client info or capabilities: {e}")))?;

        let response = self.request("initialize", Some(params)).await?;
        if let Some(error) = &response.error {
            return Err(UpstreamError::Protocol(format!(
                "the upstream rejected initialize: {error}"
            )));
        }
        let result = response.result.unwrap_or_else(|| RawJson::from_static("null"));
        let fields = ObjectEdit::parse(&result)
            .map_err(|_| UpstreamError::Protocol("the initialize result is not an object".into()))?;
        let answered = fields
            .get("protocolVersion")
            .and_then(RawJson::as_json_str)
            .ok_or_else(|| UpstreamError::Protocol("the initialize result has no protocolVersion".into()))?;
        let Some(negotiated) = version::SUPPORTED.iter().copied().find(|v| *v == answered.as_str()) else {
            return Err(UpstreamError::Protocol(format!(
                "the upstream answered protocol version {answered}, which mcpgate does not speak"
            )));
        };
        let _ = self.0.version.set(negotiated);
        if let Transport::Streamable(t) = &self.0.transport {
            t.set_protocol_version(negotiated);
        }
        // Open the GET stream before `initialized`: servers often send their first requests
        // (e.g. `roots/list`) right after it, unrelated to any request, and a server with no
        // GET stream to put them on drops them.
        if let Transport::Streamable(t) = &self.0.transport {
            let opened = t.start_get_stream();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), opened).await;
        }
        self.notify("notifications/initialized", None).await?;
        let object = |key| fields.get(key).cloned().unwrap_or_else(|| RawJson::from_static("{}"));
        Ok(InitializeResult {
            protocol_version: negotiated.to_owned(),
            capabilities: object("capabilities"),
            server_info: object("serverInfo"),
            instructions: fields
                .get("instructions")
                .and_then(RawJson::as_json_str)
                .map(|s| s.as_str().to_owned()),
            raw: result,
        })
    }

    /// Sends a request with a fresh upstream id; resolves to the response message (a result or
    /// a JSON-RPC error). Dropping the future forgets the pending entry.
    pub fn request(&self, method: &str, params: Option<RawJson>) -> PendingRequest {
        self.send_request(method, params, None)
    }

    /// [`Connection::request`] with W3C trace context, sent as `traceparent`/`tracestate`
    /// headers on the HTTP transports. stdio has no headers: put the context in
    /// `params._meta` as well (the MCP convention, which serves every transport).
    pub fn request_traced(&self, method: &str, params: Option<RawJson>, trace: &TraceHeaders) -> PendingRequest {
        self.send_request(method, params, Some(trace))
    }

    fn send_request(&self, method: &str, params: Option<RawJson>, trace: Option<&TraceHeaders>) -> PendingRequest {
        match self.0.shared.modern.get() {
            Some(state) => self.send_modern(state, method, params, trace),
            None => self.send_request_with(method, params, trace, None),
        }
    }

    /// A request to a 2026-07-28 server: `_meta` stamped, headers added, and the methods that
    /// generation removed mapped onto what it has instead.
    fn send_modern(
        &self,
        state: &Arc<ModernState>,
        method: &str,
        params: Option<RawJson>,
        trace: Option<&TraceHeaders>,
    ) -> PendingRequest {
        match method {
            // Liveness: a discover round trip, answered `{}` like a ping.
            "ping" => {
                let discover = self.send_modern(state, "server/discover", None, trace);
                self.local(async move { discover.await.map(|m| if m.error.is_some() { m } else { empty(m) }) })
            }
            // The level travels on each request (`_meta` logLevel), set by the caller.
            "logging/setLevel" => self.local(async { Ok(accepted()) }),
            "resources/subscribe" | "resources/unsubscribe" => {
                let uri = params.as_ref().and_then(|p| mcpgate_proto::raw::str_member(p, "uri"));
                let Some(uri) = uri.map(|u| u.as_str().to_owned()) else {
                    let e = Message::error(
                        RawJson::from_static("null"),
                        mcpgate_proto::ErrorCode::INVALID_PARAMS,
                        "Invalid params: uri is required",
                        None,
                    );
                    return self.local(async move { Ok(e) });
                };
                let subscribe = method == "resources/subscribe";
                let state = state.clone();
                self.local(async move {
                    let since = state.acked.borrow().0;
                    let changed = {
                        let mut subs = state.subscriptions.lock();
                        if subscribe {
                            subs.insert(uri.clone())
                        } else {
                            subs.remove(&uri)
                        }
                    };
                    if !changed || !subscribe {
                        if changed {
                            state.reopen.notify_one();
                        }
                        return Ok(accepted());
                    }
                    state.reopen.notify_one();
                    if crate::modern::await_ack(&state, since, &uri).await? {
                        Ok(accepted())
                    } else {
                        state.subscriptions.lock().remove(&uri);
                        Ok(Message::error(
                            RawJson::from_static("null"),
                            mcpgate_proto::ErrorCode::INVALID_PARAMS,
                            &format!("the upstream does not offer updates of {uri}"),
                            None,
                        ))
                    }
                })
            }
            _ => {
                let http = matches!(self.0.transport, Transport::Streamable(_));
                let mirrored = match method {
                    "tools/call" if http => match state.tool_headers.headers_for(params.as_ref()) {
                        Ok(h) => h,
                        Err(why) => {
                            let e = Message::error(
                                RawJson::from_static("null"),
                                mcpgate_proto::ErrorCode::INVALID_PARAMS,
                                &format!("Invalid params: {why}"),
                                None,
                            );
                            return self.local(async move { Ok(e) });
                        }
                    },
                    _ => Vec::new(),
                };
                let params = crate::modern::stamp_meta(params.as_ref(), &state.capabilities, &state.client_info);
                let mut headers = RequestHeaders::for_request(method, Some(&params));
                headers.0.extend(mirrored);
                let pending = self.send_request_with(method, Some(params), trace, Some(headers));
                if method == "tools/list" && http {
                    let learnt = state.tool_headers.clone();
                    return pending.inspect(move |m| {
                        if let Some(result) = &m.result {
                            learnt.record(result);
                        }
                    });
                }
                pending
            }
        }
    }

    /// A request answered by the connection itself (a mapping of a removed method): a
    /// pending entry completed by `work`.
    fn local(
        &self,
        work: impl std::future::Future<Output = Result<Message, UpstreamError>> + Send + 'static,
    ) -> PendingRequest {
        let shared = &self.0.shared;
        let (id, rx) = match shared.pending.register() {
            (id, Ok(rx)) => (id, rx),
            (id, Err(e)) => return PendingRequest::failed(id, e),
        };
        let pending = shared.pending.clone();
        let driver: Driver = Box::pin(async move {
            let outcome = work.await.map(|m| Message {
                id: Some(RawJson::from_value(&id)),
                ..m
            });
            pending.complete(id, outcome);
            Ok(())
        });
        PendingRequest::new(id, shared.pending.clone(), rx, Some(driver))
    }

    fn send_request_with(
        &self,
        method: &str,
        params: Option<RawJson>,
        trace: Option<&TraceHeaders>,
        headers: Option<RequestHeaders>,
    ) -> PendingRequest {
        let shared = &self.0.shared;
        let (id, rx) = match shared.pending.register() {
            (id, Ok(rx)) => (id, rx),
            (id, Err(e)) => return PendingRequest::failed(id, e),
        };
        let body = encode_request(id, method, params.as_ref(), self.0.transport.framing());
        match self.0.transport.start_request(id, body, trace, headers) {
            Ok(driver) => PendingRequest::new(id, shared.pending.clone(), rx, driver),
            Err(e) => {
                shared.pending.forget(id);
                PendingRequest::failed(id, e)
            }
        }
    }

    /// Sends a notification.
    ///
    /// To a 2026-07-28 server only `notifications/cancelled` means anything, and only on
    /// stdio: over HTTP a request is cancelled by closing its response stream (dropping its
    /// [`PendingRequest`]). Other notifications are not sent to such a server.
    pub async fn notify(&self, method: &str, params: Option<RawJson>) -> Result<(), UpstreamError> {
        if self.0.shared.is_closed() {
            return Err(self.0.shared.closed_error());
        }
        if self.0.shared.modern.get().is_some()
            && (method != "notifications/cancelled" || !matches!(self.0.transport, Transport::Stdio(_)))
        {
            return Ok(());
        }
        let body = encode_notification(method, params.as_ref(), self.0.transport.framing());
        self.0.transport.send(body).await
    }

    /// Answers a server→client request: `response` is a result or error message whose id is
    /// the upstream's original id.
    pub async fn respond(&self, response: Message) -> Result<(), UpstreamError> {
        if !response.is_response() || response.id.is_none() {
            return Err(UpstreamError::Protocol(
                "respond() needs a response message with an id".into(),
            ));
        }
        if self.0.shared.is_closed() {
            return Err(self.0.shared.closed_error());
        }
        if self.0.shared.modern.get().is_some() {
            return Err(UpstreamError::Protocol(
                "a 2026-07-28 server sends no requests to answer (it asks for input in its results)".into(),
            ));
        }
        let body = encode_message(&response, self.0.transport.framing());
        self.0.transport.send(body).await
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> &str {
        self.0.version.get().copied().unwrap_or(self.0.requested_version)
    }

    /// The protocol generation in use: [`Generation::Stateless`] for a 2026-07-28 server,
    /// [`Generation::Session`] otherwise.
    pub fn generation(&self) -> Generation {
        if self.0.shared.modern.get().is_some() {
            Generation::Stateless
        } else {
            Generation::Session
        }
    }

    /// The session id a Streamable HTTP server assigned (`Mcp-Session-Id`), if any.
    pub fn session_id(&self) -> Option<&str> {
        match &self.0.transport {
            Transport::Streamable(t) => t.session_id(),
            _ => None,
        }
    }

    /// The target name this connection was opened for.
    pub fn target(&self) -> &Arc<str> {
        &self.0.shared.target
    }

    /// The stdio server's process id (and process group id); `None` on HTTP transports.
    pub fn pid(&self) -> Option<u32> {
        match &self.0.transport {
            Transport::Stdio(t) => Some(t.pid()),
            _ => None,
        }
    }

    /// SIGKILLs a stdio server's process group at once, without a grace period (for a forced
    /// exit); nothing on HTTP transports.
    pub fn kill_now(&self) {
        if let Transport::Stdio(t) = &self.0.transport {
            crate::stdio::kill_group_now(t.pid());
        }
    }

    /// Is the connection gone?
    pub fn is_closed(&self) -> bool {
        self.0.shared.is_closed()
    }

    /// Resolves when the connection is gone.
    pub async fn closed(&self) {
        self.0.shared.cancel.cancelled().await
    }

    /// Number of requests awaiting a response (a 2026-07-28 connection's own
    /// `subscriptions/listen` stream is not one).
    pub fn pending_requests(&self) -> usize {
        let listening = self.0.shared.modern.get().is_some_and(|m| m.listen_id.lock().is_some());
        self.0.shared.pending.len().saturating_sub(usize::from(listening))
    }

    /// Closes gracefully: DELETEs the HTTP session, or closes a stdio server's stdin, waits a
    /// grace period, then SIGTERMs and finally SIGKILLs its process group, and reaps it.
    /// Pending requests fail with [`UpstreamError::Closed`]. Idempotent; every call returns
    /// once the connection is fully torn down.
    pub async fn close(&self) {
        let inner = &self.0;
        if !inner.closing.swap(true, Ordering::AcqRel) {
            if let (Transport::Streamable(t), false) = (&inner.transport, inner.shared.is_closed()) {
                t.delete_session().await;
            }
            inner.shared.finish(None);
        }
        inner.transport.terminated(&inner.shared).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_framing_never_embeds_newlines() {
        let params = RawJson::parse(Bytes::from_static(b"{\n  \"text\": \"a\\nb\",\r\n  \"n\": [1,\n2]\n}")).unwrap();
        let line = encode_request(7, "tools/call", Some(&params), Framing::Line);
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
        assert!(!line.contains(&b'\r'));
        let m = Message::parse(line.slice(..line.len() - 1)).unwrap();
        assert_eq!(m.id.unwrap().as_i64(), Some(7));
        let v: serde_json::Value = m.params.unwrap().decode().unwrap();
        assert_eq!(v["text"], "a\nb");
        assert_eq!(v["n"][1], 2);
    }

    #[test]
    fn encodings_are_valid_messages() {
        let n = encode_notification("notifications/initialized", None, Framing::Body);
        assert!(Message::parse(n).unwrap().is_notification());
        let r = encode_request(u64::MAX, "a\"b", None, Framing::Body);
        let m = Message::parse(r).unwrap();
        assert_eq!(m.method(), "a\"b");
        assert_eq!(m.id.unwrap().as_str(), u64::MAX.to_string());
    }
}
