//! OpenTelemetry spans for MCP traffic, following the OpenTelemetry semantic conventions for
//! MCP (`gen-ai/mcp.md`): a SERVER span for every request a client sends, a CLIENT span for
//! every request the gateway sends upstream on its behalf, and W3C trace context read from the
//! client (`params._meta`, HTTP headers) and written upstream (`params._meta` on every
//! transport, plus `traceparent`/`tracestate` headers on HTTP).
//!
//! Nothing here runs unless tracing is configured: the gateway holds an `Option<Tracing>` and
//! every call site branches on it before touching a span, so tracing off costs a branch.
//! The exporter (OTLP over HTTP or gRPC, batching, flushing) belongs to the binary; this
//! module only needs a tracer.
//!
//! The server span is the ambient OpenTelemetry context while its request is handled
//! (`FutureExt::with_context`), so the upstream calls made deep inside routing and list
//! merging find their parent without it being passed through every function.

use std::borrow::Cow;

use mcpgate_proto::raw::{member, str_member};
use mcpgate_proto::{Message, ObjectEdit, RawJson};
use mcpgate_upstream::TraceHeaders;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;

use crate::error::GatewayError;

/// Attribute names (OpenTelemetry semantic conventions, plus the gateway's own `mcpgate.*`).
pub mod attr {
    /// The JSON-RPC method.
    pub const METHOD: &str = "mcp.method.name";
    /// The MCP session id (the gateway's for server spans, the upstream's for client spans).
    pub const SESSION: &str = "mcp.session.id";
    /// The negotiated MCP protocol version.
    pub const PROTOCOL_VERSION: &str = "mcp.protocol.version";
    /// The JSON-RPC request id as text.
    pub const REQUEST_ID: &str = "jsonrpc.request.id";
    /// `tools/call`: the tool name.
    pub const TOOL: &str = "gen_ai.tool.name";
    /// `prompts/get`: the prompt name.
    pub const PROMPT: &str = "gen_ai.prompt.name";
    /// `resources/*`: the resource URI.
    pub const RESOURCE: &str = "mcp.resource.uri";
    /// `execute_tool` for `tools/call`.
    pub const OPERATION: &str = "gen_ai.operation.name";
    /// `tcp` (HTTP) or `pipe` (stdio).
    pub const TRANSPORT: &str = "network.transport";
    /// `http` when HTTP carries MCP.
    pub const PROTOCOL_NAME: &str = "network.protocol.name";
    /// Upstream host (client spans of HTTP targets).
    pub const SERVER_ADDRESS: &str = "server.address";
    /// Upstream port.
    pub const SERVER_PORT: &str = "server.port";
    /// Why the operation failed.
    pub const ERROR_TYPE: &str = "error.type";
    /// The JSON-RPC error code of the response.
    pub const STATUS_CODE: &str = "rpc.response.status_code";
    /// The target that served the request (gateway attribute).
    pub const TARGET: &str = "mcpgate.target";
    /// The downstream transport, `streamable_http` or `sse` (gateway attribute).
    pub const DOWNSTREAM: &str = "mcpgate.downstream.transport";
}

/// The tracer and the W3C propagator. Present in the gateway only when tracing is configured.
pub struct Tracing {
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

/// Trace context that arrived with a request outside the MCP message itself (the W3C
/// `traceparent`/`tracestate` HTTP headers of the POST). Empty when tracing is off or the
/// client sent none.
#[derive(Clone, Default)]
pub struct TraceParent(Option<Context>);

impl TraceParent {
    /// No incoming context.
    pub const NONE: TraceParent = TraceParent(None);
}

impl std::fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(cx) => write!(f, "TraceParent({:?})", cx.span().span_context()),
            None => f.write_str("TraceParent(none)"),
        }
    }
}

/// The server span of one client request (the context holding it).
pub struct ServerSpan {
    cx: Context,
    tool_call: bool,
}

/// A client span: one request sent upstream.
pub(crate) struct ClientSpan {
    cx: Context,
    tool_call: bool,
    ended: bool,
}

impl Tracing {
    /// Tracing with `tracer` (built by the binary from `observability.tracing`).
    pub fn new(tracer: SdkTracer) -> Self {
        Tracing {
            tracer,
            propagator: TraceContextPropagator::new(),
        }
    }

    /// The context in W3C headers, if they carry a valid one.
    pub fn extract_headers(&self, headers: &http::HeaderMap) -> TraceParent {
        let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) else {
            return TraceParent::NONE;
        };
        let ts = headers.get("tracestate").and_then(|v| v.to_str().ok());
        self.extract(tp, ts)
    }

    fn extract(&self, traceparent: &str, tracestate: Option<&str>) -> TraceParent {
        let cx = self.propagator.extract(&Carrier {
            traceparent: Some(traceparent),
            tracestate,
        });
        if cx.span().span_context().is_valid() {
            TraceParent(Some(cx))
        } else {
            TraceParent::NONE
        }
    }

    /// Starts the SERVER span of client request `msg`. Its parent is the context in
    /// `params._meta` (the MCP convention) or else the one from the transport (`transport`);
    /// when both are present and differ, the transport's is added as a link.
    pub fn server_span(
        &self,
        msg: &Message,
        session: Option<(&str, &str, &str)>,
        transport: &TraceParent,
    ) -> ServerSpan {
        let method = msg.method();
        let meta = msg.params.as_ref().and_then(|p| member(p, "_meta"));
        let from_meta = meta
            .as_ref()
            .map_or(TraceParent::NONE, |m| match str_member(m, "traceparent") {
                Some(tp) => self.extract(&tp, str_member(m, "tracestate").as_deref()),
                None => TraceParent::NONE,
            });
        let (parent, link) = match (from_meta.0, &transport.0) {
            (Some(m), Some(t)) => {
                let differs = m.span().span_context().span_id() != t.span().span_context().span_id();
                (m, differs.then(|| t.span().span_context().clone()))
            }
            (Some(m), None) => (m, None),
            (None, Some(t)) => (t.clone(), None),
            (None, None) => (Context::new(), None),
        };
        let (name, mut attrs) = request_attributes(method, msg.id.as_ref(), msg.params.as_ref());
        attrs.push(KeyValue::new(attr::TRANSPORT, "tcp"));
        attrs.push(KeyValue::new(attr::PROTOCOL_NAME, "http"));
        if let Some((id, version, downstream)) = session {
            attrs.push(KeyValue::new(attr::SESSION, id.to_owned()));
            attrs.push(KeyValue::new(attr::PROTOCOL_VERSION, version.to_owned()));
            attrs.push(KeyValue::new(attr::DOWNSTREAM, downstream.to_owned()));
        }
        let mut builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attrs);
        if let Some(sc) = link {
            builder = builder.with_links(vec![Link::with_context(sc)]);
        }
        let span = self.tracer.build_with_context(builder, &parent);
        ServerSpan {
            cx: parent.with_span(span),
            tool_call: method == "tools/call",
        }
    }

    /// Starts the CLIENT span of request `method` to target `target` over `conn`, a child of
    /// the ambient server span. The target is also recorded on that server span.
    pub(crate) fn client_span(
        &self,
        target: &str,
        conn: &mcpgate_upstream::Connection,
        spec: &mcpgate_upstream::TransportSpec,
        method: &str,
        params: Option<&RawJson>,
    ) -> ClientSpan {
        let parent = Context::current();
        if parent.has_active_span() {
            parent
                .span()
                .set_attribute(KeyValue::new(attr::TARGET, target.to_owned()));
        }
        let (name, mut attrs) = request_attributes(method, None, params);
        attrs.push(KeyValue::new(attr::TARGET, target.to_owned()));
        attrs.push(KeyValue::new(
            attr::PROTOCOL_VERSION,
            conn.protocol_version().to_owned(),
        ));
        if let Some(sid) = conn.session_id() {
            attrs.push(KeyValue::new(attr::SESSION, sid.to_owned()));
        }
        match spec {
            mcpgate_upstream::TransportSpec::Stdio { .. } => attrs.push(KeyValue::new(attr::TRANSPORT, "pipe")),
            mcpgate_upstream::TransportSpec::Sse { url, .. }
            | mcpgate_upstream::TransportSpec::StreamableHttp { url, .. } => {
                attrs.push(KeyValue::new(attr::TRANSPORT, "tcp"));
                attrs.push(KeyValue::new(attr::PROTOCOL_NAME, "http"));
                if let Some(host) = url.host_str() {
                    attrs.push(KeyValue::new(attr::SERVER_ADDRESS, host.to_owned()));
                }
                if let Some(port) = url.port_or_known_default() {
                    attrs.push(KeyValue::new(attr::SERVER_PORT, i64::from(port)));
                }
            }
        }
        let builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attrs);
        let span = self.tracer.build_with_context(builder, &parent);
        ClientSpan {
            cx: parent.with_span(span),
            tool_call: method == "tools/call",
            ended: false,
        }
    }

    /// The SERVER span of a request an upstream (`target`) sends to the client of `session`
    /// (sampling, elicitation, roots, ping): the gateway receives it as the upstream's MCP
    /// client and relays it. Its parent is the context the upstream put in `_meta`, else the
    /// client span of the call it arrived during (`cause`); it ends when the answer is relayed.
    pub(crate) fn relay_span(
        &self,
        msg: &Message,
        target: &str,
        session: &crate::session::Session,
        cause: Option<Context>,
    ) -> ServerSpan {
        let meta = msg.params.as_ref().and_then(|p| member(p, "_meta"));
        let from_meta = meta.as_ref().and_then(|m| {
            let tp = str_member(m, "traceparent")?;
            self.extract(&tp, str_member(m, "tracestate").as_deref()).0
        });
        let parent = from_meta.or(cause).unwrap_or_default();
        let (name, mut attrs) = request_attributes(msg.method(), msg.id.as_ref(), msg.params.as_ref());
        attrs.push(KeyValue::new(attr::TARGET, target.to_owned()));
        attrs.push(KeyValue::new(attr::SESSION, session.id.to_string()));
        attrs.push(KeyValue::new(attr::DOWNSTREAM, session.kind.as_str()));
        let builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attrs);
        let span = self.tracer.build_with_context(builder, &parent);
        ServerSpan {
            cx: parent.with_span(span),
            tool_call: false,
        }
    }

    fn inject(&self, cx: &Context) -> (String, Option<String>) {
        let mut sink = Owned::default();
        self.propagator.inject_context(cx, &mut sink);
        (
            sink.traceparent.unwrap_or_default(),
            sink.tracestate.filter(|s| !s.is_empty()),
        )
    }
}

impl ServerSpan {
    /// The context to run the request's handling in.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Records the session a request belongs to once it is known (`initialize`).
    pub fn set_session(&self, id: &str, version: &str, downstream: &str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(attr::SESSION, id.to_owned()));
        span.set_attribute(KeyValue::new(attr::PROTOCOL_VERSION, version.to_owned()));
        span.set_attribute(KeyValue::new(attr::DOWNSTREAM, downstream.to_owned()));
    }

    /// Ends the span with the response sent to the client.
    pub fn end(self, response: &Message) {
        let span = self.cx.span();
        for a in outcome_attributes(response, self.tool_call) {
            span.set_attribute(a.0);
            if let Some(status) = a.1 {
                span.set_status(status);
            }
        }
        span.end();
    }
}

impl ClientSpan {
    /// `params` with the span's context in `_meta.traceparent` (and `_meta.tracestate`),
    /// replacing what the client sent there; every other member is kept as it was.
    /// `None` when the span has no context to propagate (an invalid span context; the SDK
    /// always makes valid ones, sampled or not).
    pub(crate) fn inject_params(
        &self,
        tracing: &Tracing,
        params: Option<&RawJson>,
    ) -> Option<(Option<RawJson>, TraceHeaders)> {
        let (tp, ts) = tracing.inject(&self.cx);
        let headers = TraceHeaders {
            traceparent: http::HeaderValue::from_str(&tp).ok().filter(|v| !v.is_empty())?,
            tracestate: ts.as_deref().and_then(|s| http::HeaderValue::from_str(s).ok()),
        };
        Some(Self::with_meta(&tp, ts.as_deref(), params, headers))
    }

    fn with_meta(
        tp: &str,
        ts: Option<&str>,
        params: Option<&RawJson>,
        headers: TraceHeaders,
    ) -> (Option<RawJson>, TraceHeaders) {
        let Ok(mut edit) = ObjectEdit::parse_or_new(params) else {
            // Not an object: the upstream will reject it; send it unchanged.
            return (params.cloned(), headers);
        };
        let mut meta = match edit.get("_meta").map(ObjectEdit::parse) {
            Some(Ok(m)) => m,
            Some(Err(_)) => return (params.cloned(), headers),
            None => ObjectEdit::new(),
        };
        meta.set("traceparent", RawJson::string(tp));
        match ts {
            Some(ts) => meta.set("tracestate", RawJson::string(ts)),
            None => {
                meta.remove("tracestate");
            }
        }
        edit.set("_meta", meta.to_raw());
        (Some(edit.to_raw()), headers)
    }

    /// Its context.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Records the upstream request id.
    pub(crate) fn set_request_id(&self, id: u64) {
        self.cx
            .span()
            .set_attribute(KeyValue::new(attr::REQUEST_ID, id.to_string()));
    }

    /// Ends the span with the upstream's answer or the failure to get one.
    pub(crate) fn end(mut self, outcome: Result<&Message, &GatewayError>) {
        self.ended = true;
        let span = self.cx.span();
        match outcome {
            Ok(resp) => {
                for a in outcome_attributes(resp, self.tool_call) {
                    span.set_attribute(a.0);
                    if let Some(status) = a.1 {
                        span.set_status(status);
                    }
                }
            }
            Err(e) => {
                span.set_attribute(KeyValue::new(attr::ERROR_TYPE, gateway_error_type(e)));
                span.set_status(Status::error(e.to_string()));
            }
        }
        span.end();
    }
}

impl Drop for ClientSpan {
    fn drop(&mut self) {
        if !self.ended {
            // Abandoned before an answer (a retry on a new upstream session, or the request
            // itself dropped): still exported, marked as such.
            let span = self.cx.span();
            span.set_attribute(KeyValue::new(attr::ERROR_TYPE, "abandoned"));
            span.set_status(Status::error("no answer was awaited"));
            span.end();
        }
    }
}

/// Sends request `method` on `conn` (target `target`). With tracing on, it goes inside a
/// CLIENT span whose context is put in `params._meta` and, on HTTP, in the request headers;
/// end the span with [`end_request`] once the answer (or the failure) is known.
pub(crate) fn send_request(
    tracing: Option<&Tracing>,
    target: &str,
    spec: &mcpgate_upstream::TransportSpec,
    conn: &mcpgate_upstream::Connection,
    method: &str,
    params: Option<RawJson>,
) -> (mcpgate_upstream::PendingRequest, Option<ClientSpan>) {
    let Some(tr) = tracing else {
        return (conn.request(method, params), None);
    };
    let span = tr.client_span(target, conn, spec, method, params.as_ref());
    let pending = match span.inject_params(tr, params.as_ref()) {
        Some((params, headers)) => conn.request_traced(method, params, &headers),
        None => conn.request(method, params),
    };
    span.set_request_id(pending.id());
    (pending, Some(span))
}

/// Ends the span of [`send_request`], if there is one.
pub(crate) fn end_request(span: Option<ClientSpan>, outcome: Result<&Message, &GatewayError>) {
    if let Some(s) = span {
        s.end(outcome);
    }
}

/// The low-cardinality `error.type` of a failure to get an upstream answer.
fn gateway_error_type(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::Timeout { .. } => "timeout",
        GatewayError::Cancelled => "cancelled",
        _ => "upstream_error",
    }
}

/// Span name (`{method} {tool or prompt}`) and the request attributes.
fn request_attributes(
    method: &str,
    id: Option<&RawJson>,
    params: Option<&RawJson>,
) -> (Cow<'static, str>, Vec<KeyValue>) {
    let mut attrs = Vec::with_capacity(12);
    attrs.push(KeyValue::new(attr::METHOD, method.to_owned()));
    if let Some(id) = id.filter(|i| !i.is_null()) {
        let text = id
            .as_json_str()
            .map_or_else(|| id.as_str().to_owned(), |s| s.as_str().to_owned());
        attrs.push(KeyValue::new(attr::REQUEST_ID, text));
    }
    let mut name: Cow<'static, str> = Cow::Owned(method.to_owned());
    match method {
        "tools/call" | "prompts/get" => {
            if let Some(n) = params.and_then(|p| str_member(p, "name")) {
                let key = if method == "tools/call" {
                    attr::TOOL
                } else {
                    attr::PROMPT
                };
                name = Cow::Owned(format!("{method} {}", n.as_str()));
                attrs.push(KeyValue::new(key, n.as_str().to_owned()));
            }
            if method == "tools/call" {
                attrs.push(KeyValue::new(attr::OPERATION, "execute_tool"));
            }
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            if let Some(uri) = params.and_then(|p| str_member(p, "uri")) {
                attrs.push(KeyValue::new(attr::RESOURCE, uri.as_str().to_owned()));
            }
        }
        _ => {}
    }
    (name, attrs)
}

/// Attributes (each maybe with a status) for a response: a JSON-RPC error sets `error.type`
/// and `rpc.response.status_code` to its code and the status to its message; a tool result
/// with `isError: true` sets `error.type` to `tool_error`.
fn outcome_attributes(resp: &Message, tool_call: bool) -> Vec<(KeyValue, Option<Status>)> {
    if let Some(err) = resp.error_object() {
        let code = err.code.to_string();
        return vec![
            (KeyValue::new(attr::STATUS_CODE, code.clone()), None),
            (KeyValue::new(attr::ERROR_TYPE, code), Some(Status::error(err.message))),
        ];
    }
    if tool_call && resp.is_tool_error() {
        return vec![(
            KeyValue::new(attr::ERROR_TYPE, "tool_error"),
            Some(Status::error("the tool reported an error")),
        )];
    }
    Vec::new()
}

/// A borrowed W3C carrier for extraction.
#[derive(Default)]
struct Carrier<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// An owned W3C carrier for injection.
#[derive(Default)]
struct Owned {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Owned {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.traceparent = Some(value),
            "tracestate" => self.tracestate = Some(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    fn tracing() -> Tracing {
        // No processor: spans are made (and recorded) but go nowhere.
        Tracing::new(SdkTracerProvider::builder().build().tracer("test"))
    }

    fn request(params: &str) -> Message {
        let text = format!(r#"{{"jsonrpc":"2.0","id":"r-1","method":"tools/call","params":{params}}}"#);
        Message::parse(bytes::Bytes::from(text)).unwrap()
    }

    fn headers(tp: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("traceparent", http::HeaderValue::from_str(tp).unwrap());
        h
    }

    const HEADER_TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const META_TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn the_parent_is_meta_then_header_then_none() {
        let t = tracing();
        let from_header = t.extract_headers(&headers(HEADER_TP));
        let msg = request(&format!(r#"{{"name":"a","_meta":{{"traceparent":"{META_TP}"}}}}"#));
        let s = t.server_span(&msg, None, &from_header);
        let sc = s.context().span().span_context().clone();
        assert_eq!(sc.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        let s = t.server_span(&request(r#"{"name":"a"}"#), None, &from_header);
        assert_eq!(
            s.context().span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let s = t.server_span(&request(r#"{"name":"a"}"#), None, &TraceParent::NONE);
        assert!(s.context().span().span_context().is_valid());
        assert_ne!(
            s.context().span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        // Garbage is ignored, not an error.
        assert!(t.extract_headers(&headers("00-xyz")).0.is_none());
        let bad = request(r#"{"name":"a","_meta":{"traceparent":"nope"}}"#);
        let s = t.server_span(&bad, None, &from_header);
        assert_eq!(
            s.context().span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn injection_replaces_traceparent_and_keeps_the_rest() {
        let t = tracing();
        let span = ClientSpan {
            cx: Context::new().with_span(t.tracer.start("x")),
            tool_call: true,
            ended: true,
        };
        let own = format!(
            "00-{}-{}-01",
            span.cx.span().span_context().trace_id(),
            span.cx.span().span_context().span_id()
        );
        let params = RawJson::parse(bytes::Bytes::from_static(
            br#"{"name":"x","arguments":{"a":[1,2]},"_meta":{"progressToken":7,"traceparent":"00-old","tracestate":"a=b","vendor/k":{"z":1}}}"#,
        ))
        .unwrap();
        let (out, headers) = span.inject_params(&t, Some(&params)).unwrap();
        let v: serde_json::Value = out.unwrap().decode().unwrap();
        assert_eq!(v["_meta"]["traceparent"], own.as_str());
        assert!(
            v["_meta"].get("tracestate").is_none(),
            "the span's own (empty) tracestate: {v}"
        );
        assert_eq!(v["_meta"]["progressToken"], 7);
        assert_eq!(v["_meta"]["vendor/k"]["z"], 1);
        assert_eq!(v["arguments"]["a"][1], 2);
        assert_eq!(headers.traceparent.to_str().unwrap(), own);
        // No params, or params without _meta, get one.
        let (out, _) = span.inject_params(&t, None).unwrap();
        let v: serde_json::Value = out.unwrap().decode().unwrap();
        assert_eq!(v["_meta"]["traceparent"], own.as_str());
        // A _meta that is not an object is left alone (the upstream will say what is wrong).
        let odd = RawJson::parse(bytes::Bytes::from_static(br#"{"_meta":3}"#)).unwrap();
        let (out, _) = span.inject_params(&t, Some(&odd)).unwrap();
        assert_eq!(out.unwrap().as_str(), r#"{"_meta":3}"#);
        // No valid context: nothing is injected (the request goes out as the client sent it).
        let none = ClientSpan {
            cx: Context::new(),
            tool_call: false,
            ended: true,
        };
        assert!(none.inject_params(&t, Some(&params)).is_none());
    }

    #[test]
    fn outcomes_follow_the_convention() {
        let err = Message::error(RawJson::from_static("1"), mcpgate_proto::ErrorCode(-32602), "bad", None);
        let a = outcome_attributes(&err, true);
        assert_eq!(a[0].0, KeyValue::new(attr::STATUS_CODE, "-32602"));
        assert_eq!(a[1].0, KeyValue::new(attr::ERROR_TYPE, "-32602"));
        assert_eq!(a[1].1, Some(Status::error("bad")));
        let tool_error = Message::response(
            RawJson::from_static("1"),
            RawJson::from_static(r#"{"content":[],"isError":true}"#),
        );
        assert_eq!(
            outcome_attributes(&tool_error, true)[0].0,
            KeyValue::new(attr::ERROR_TYPE, "tool_error")
        );
        assert!(
            outcome_attributes(&tool_error, false).is_empty(),
            "isError means something only for tools/call"
        );
        let ok = Message::response(RawJson::from_static("1"), RawJson::from_static(r#"{"isError":false}"#));
        assert!(outcome_attributes(&ok, true).is_empty());
    }

    #[test]
    fn names_and_request_attributes() {
        let (name, attrs) = request_attributes(
            "tools/call",
            Some(&RawJson::from_static(r#""r-1""#)),
            Some(&RawJson::from_static(r#"{"name":"gh_search"}"#)),
        );
        assert_eq!(name, "tools/call gh_search");
        assert!(attrs.contains(&KeyValue::new(attr::REQUEST_ID, "r-1")));
        assert!(attrs.contains(&KeyValue::new(attr::TOOL, "gh_search")));
        assert!(attrs.contains(&KeyValue::new(attr::OPERATION, "execute_tool")));
        let (name, attrs) = request_attributes(
            "resources/read",
            Some(&RawJson::from_static("7")),
            Some(&RawJson::from_static(r#"{"uri":"file:///a b"}"#)),
        );
        assert_eq!(name, "resources/read", "URIs never go into span names");
        assert!(attrs.contains(&KeyValue::new(attr::RESOURCE, "file:///a b")));
        assert!(attrs.contains(&KeyValue::new(attr::REQUEST_ID, "7")));
    }
}
