//! OpenTelemetry tracing end to end: the `mcpgate` binary, configured to export over OTLP,
//! fronting the example server over Streamable HTTP (in process) and stdio; a real OTLP
//! receiver built here from the OpenTelemetry protobuf definitions (a tonic `TraceService`
//! for gRPC, an HTTP endpoint decoding `ExportTraceServiceRequest` for http/protobuf).
//!
//! Checked against the OpenTelemetry semantic conventions for MCP and the MCP `_meta` trace
//! context convention: the server span continues the caller's trace (HTTP `traceparent`, or
//! `params._meta.traceparent`, which wins and links the header's span), every upstream call is
//! a client span under it, and the upstream receives the client span's context (in `_meta`
//! on every transport, and as headers on HTTP).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message as _;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// The OTLP receiver
// ---------------------------------------------------------------------------------------------

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent: String,
    attrs: HashMap<String, String>,
    status: i32,
    status_message: String,
    links: Vec<(String, String)>,
    service: String,
}

impl Span {
    fn attr(&self, key: &str) -> &str {
        self.attrs
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("span {} has no attribute {key}: {:?}", self.name, self.attrs))
    }
}

/// What reached the receiver: spans, and the `x-test-key` header/metadata of each export.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    keys: Arc<Mutex<Vec<String>>>,
}

impl Received {
    fn add(&self, req: ExportTraceServiceRequest, key: Option<&str>) {
        self.keys.lock().unwrap().push(key.unwrap_or("").to_owned());
        let mut out = self.spans.lock().unwrap();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .map(|kv| value_text(kv.value.as_ref()))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let attrs = s
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), value_text(kv.value.as_ref())))
                        .collect();
                    let status = s.status.clone().unwrap_or_default();
                    out.push(Span {
                        name: s.name.clone(),
                        kind: s.kind,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent: hex(&s.parent_span_id),
                        attrs,
                        status: status.code,
                        status_message: status.message,
                        links: s.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
                        service: service.clone(),
                    });
                }
            }
        }
    }

    /// The one span named `name` of `kind` in trace `trace`.
    fn one_in(&self, trace: &str, name: &str, kind: SpanKind) -> Span {
        let all = self.spans();
        let found: Vec<&Span> = all
            .iter()
            .filter(|s| s.trace_id == trace && s.name == name && s.kind == kind as i32)
            .collect();
        assert_eq!(found.len(), 1, "one {kind:?} span {name} in trace {trace}: {all:#?}");
        found[0].clone()
    }

    /// The CLIENT spans whose parent is `parent`.
    fn children(&self, parent: &Span) -> Vec<Span> {
        self.spans()
            .into_iter()
            .filter(|s| s.kind == SpanKind::Client as i32 && s.parent == parent.span_id)
            .collect()
    }

    /// The one `tools/call` CLIENT span whose parent is `parent` (a request may also refill
    /// a list cache on its way).
    fn child(&self, parent: &Span) -> Span {
        let mut found = self.children(parent);
        found.retain(|s| s.name.starts_with("tools/call"));
        assert_eq!(found.len(), 1, "one client call under {}: {found:#?}", parent.name);
        found[0].clone()
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// The one span named `name` of `kind` (panics unless exactly one).
    fn one(&self, name: &str, kind: SpanKind) -> Span {
        let all = self.spans();
        let found: Vec<&Span> = all.iter().filter(|s| s.name == name && s.kind == kind as i32).collect();
        assert_eq!(found.len(), 1, "one {kind:?} span {name}: {all:#?}");
        found[0].clone()
    }
}

fn value_text(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Grpc(Received);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let key = request
            .metadata()
            .get("x-test-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.0.add(request.into_inner(), key.as_deref());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// An OTLP/gRPC receiver on an ephemeral loopback port; returns its `http://` address.
async fn grpc_receiver(rec: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Grpc(rec)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    format!("http://{addr}")
}

/// An OTLP/HTTP (protobuf) receiver at `/v1/traces`; returns its base URL (no path, so the
/// gateway's default path is exercised).
async fn http_receiver(rec: Received) -> String {
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let rec = rec.clone();
            async move {
                let ctype = headers.get("content-type").and_then(|v| v.to_str().ok());
                if ctype != Some("application/x-protobuf") {
                    return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
                }
                let Ok(req) = ExportTraceServiceRequest::decode(body) else {
                    return (StatusCode::BAD_REQUEST, Vec::new());
                };
                rec.add(req, headers.get("x-test-key").and_then(|v| v.to_str().ok()));
                let resp = ExportTraceServiceResponse { partial_success: None };
                (StatusCode::OK, resp.encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------------------------

struct Process {
    child: tokio::process::Child,
    mcp_url: String,
}

/// Runs `mcpgate run` on `yaml` (listening on 127.0.0.1:0) and waits for its listening line.
async fn run_gateway(dir: &tempfile::TempDir, yaml: &str, batch_delay_ms: u64) -> Process {
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = tokio::process::Command::new(MCPGATE)
        .args(["run", "-c", path.to_str().unwrap()])
        .env("MCPGATE_LOG", "info")
        .env("MCPGATE_LOG_FORMAT", "json")
        .env("OTEL_BSP_SCHEDULE_DELAY", batch_delay_ms.to_string())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mcpgate starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mcp_url = within("the gateway to listen", async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the gateway logs its address");
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "mcpgate is listening."
            {
                return v["streamable_http"].as_str().unwrap().to_owned();
            }
        }
    })
    .await;
    // Keep draining the log so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Process { child, mcp_url }
}

impl Process {
    /// SIGTERM, then wait for the exit (the exporter flushes on the way out).
    async fn stop(mut self) {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: a plain kill(2) of our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = within("the gateway to exit", self.child.wait()).await.unwrap();
        assert!(status.success(), "the gateway exits cleanly on SIGTERM: {status}");
    }
}

fn config_yaml(endpoint: &str, protocol: &str, web: &str) -> String {
    config(
        &format!(
            "listen:\n  address: 127.0.0.1:0\nobservability:\n  tracing:\n    service_name: mcpgate-test\n    otlp:\n      endpoint: {endpoint}\n      protocol: {protocol}\n      headers: {{ X-Test-Key: s3cret }}\n"
        ),
        &[http_target("web", web, ""), stdio_target("local", &["--echo-meta"], "")],
    )
}

/// A `tools/call` POST with extra headers and `_meta`; returns the response message.
async fn call_with(c: &Client, tool: &str, meta: Option<Value>, headers: &[(&'static str, &str)]) -> (Value, Value) {
    let id = c.next_id();
    let mut params = json!({ "name": tool, "arguments": {} });
    if let Some(m) = meta {
        params["_meta"] = m;
    }
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
    let mut h = c.headers();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    let resp = c.post_raw(h, serde_json::to_vec(&body).unwrap()).await;
    let msg = classify(resp).await.into_message(&id).await;
    (id, msg)
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";
const META_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const META_PARENT: &str = "b7ad6b7169203331";
const LEGACY_TRACE: &str = "5e1e9a0c4b7f4d2a9c3b8a7d6e5f4a3b";

/// The whole scenario; `protocol` is `grpc` or `http/protobuf`.
async fn scenario(protocol: &str, received: &Received, endpoint: &str, batch_delay_ms: u64, spans_before_stop: bool) {
    // The gateway runs in another process: this one's HTTP clients need a TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let web = fixture(mcpgate_example_server::Options {
        name: "web".into(),
        echo_meta: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let gw = run_gateway(&dir, &config_yaml(endpoint, protocol, &web.mcp_url()), batch_delay_ms).await;
    let mut c = Client::new(&gw.mcp_url);
    c.initialize(LATEST, all_client_capabilities()).await;
    let session = c.session.clone().expect("a session");

    // A merged list: fetched from both targets under the first request's span.
    let names = c.tool_names().await;
    assert!(
        names.contains(&"web_echo_meta".to_string()) && names.contains(&"local_echo_meta".to_string()),
        "{names:?}"
    );

    // 1. HTTP target, context from the caller's traceparent header.
    let (id1, m1) = call_with(
        &c,
        "web_echo_meta",
        None,
        &[
            ("traceparent", &format!("00-{TRACE}-{CALLER}-01")),
            ("tracestate", "vendor=x"),
        ],
    )
    .await;
    let meta1 = &m1["result"]["structuredContent"]["meta"];
    let tp1 = meta1["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("the upstream got _meta.traceparent: {m1}"));
    assert_eq!(meta1["tracestate"], "vendor=x", "tracestate travels with it: {meta1}");

    // 2. stdio target, context in _meta (wins over the header, which becomes a link); the
    //    request's other _meta members reach the upstream untouched.
    let (_id2, m2) = call_with(
        &c,
        "local_echo_meta",
        Some(json!({ "traceparent": format!("00-{META_TRACE}-{META_PARENT}-01"), "com.example/keep": [1, "x"] })),
        &[("traceparent", &format!("00-{TRACE}-{CALLER}-01"))],
    )
    .await;
    let meta2 = &m2["result"]["structuredContent"]["meta"];
    let tp2 = meta2["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("the stdio upstream got _meta.traceparent: {m2}"));
    assert_eq!(
        meta2["com.example/keep"],
        json!([1, "x"]),
        "other _meta members are kept: {meta2}"
    );

    // 3. A tool error, no incoming context: a new trace.
    let (_id3, m3) = call_with(&c, "web_fail", None, &[]).await;
    assert_eq!(m3["result"]["isError"], true, "{m3}");

    // 5. A server→client request relayed: the web upstream asks for roots during a call.
    let (id5, reply) = c
        .start("tools/call", json!({ "name": "web_list_roots", "arguments": {} }))
        .await;
    let mut stream = reply.stream();
    let asked = stream
        .expect("a roots/list request", |m| is_request(m, "roots/list"))
        .await;
    assert_eq!(
        c.respond(&asked["id"], json!({ "roots": [] })).await,
        reqwest::StatusCode::ACCEPTED
    );
    let m5 = stream.response(&id5).await;
    assert!(m5.get("result").is_some(), "{m5}");

    // 4. Legacy HTTP+SSE downstream: the /message POST's traceparent header is the parent.
    let base = gw.mcp_url.trim_end_matches("/mcp").to_owned();
    let mut legacy = LegacyClient::open(&base).await;
    legacy.initialize("2024-11-05").await;
    let id4 = json!(4004);
    let body = json!({ "jsonrpc": "2.0", "id": id4, "method": "tools/call", "params": { "name": "web_echo_meta", "arguments": {} } });
    let status = http_client()
        .post(&legacy.post_url)
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{LEGACY_TRACE}-{CALLER}-01"))
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    let m4 = legacy.stream.response(&id4).await;
    let tp4 = m4["result"]["structuredContent"]["meta"]["traceparent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    drop(legacy);

    if spans_before_stop {
        eventually("the batch exporter to send the spans", || {
            received
                .spans()
                .iter()
                .filter(|s| s.name.starts_with("tools/call"))
                .count()
                >= 6
        })
        .await;
    }
    gw.stop().await;
    eventually("the spans to reach the receiver", || {
        received
            .spans()
            .iter()
            .filter(|s| s.name.starts_with("tools/call"))
            .count()
            >= 6
    })
    .await;
    let keys = received.keys.lock().unwrap().clone();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == "s3cret"),
        "every export carries the configured header: {keys:?}"
    );

    // --- 1: server span continues the caller's trace; client span is its child.
    let server = received.one_in(TRACE, "tools/call web_echo_meta", SpanKind::Server);
    assert_eq!(
        (server.trace_id.as_str(), server.parent.as_str()),
        (TRACE, CALLER),
        "{server:#?}"
    );
    assert_eq!(server.attr("mcp.method.name"), "tools/call");
    assert_eq!(server.attr("gen_ai.tool.name"), "web_echo_meta");
    assert_eq!(server.attr("gen_ai.operation.name"), "execute_tool");
    assert_eq!(server.attr("jsonrpc.request.id"), id1.to_string());
    assert_eq!(server.attr("mcp.session.id"), session);
    assert_eq!(server.attr("mcp.protocol.version"), LATEST);
    assert_eq!(server.attr("network.transport"), "tcp");
    assert_eq!(server.attr("network.protocol.name"), "http");
    assert_eq!(server.attr("mcpgate.target"), "web");
    assert_eq!(server.attr("mcpgate.downstream.transport"), "streamable_http");
    assert_eq!(server.status, SpanStatus::Unset as i32);
    assert_eq!(server.service, "mcpgate-test");
    let client = received.child(&server);
    assert_eq!(client.name, "tools/call echo_meta");
    assert_eq!(client.attr("mcpgate.target"), "web");
    assert_eq!(client.trace_id, TRACE);
    assert_eq!(client.attr("gen_ai.tool.name"), "echo_meta");
    assert_eq!(client.attr("network.transport"), "tcp");
    assert_eq!(client.attr("server.address"), "127.0.0.1");
    assert_eq!(client.attr("server.port"), web.addr().port().to_string());
    assert!(!client.attr("mcp.session.id").is_empty());
    assert!(client.attr("jsonrpc.request.id").parse::<u64>().is_ok());
    // The upstream got the client span's context, in _meta and as the POST's header.
    let expected = format!("00-{TRACE}-{}-01", client.span_id);
    assert_eq!(tp1, expected);
    assert!(
        web.server().traceparents().contains(&expected),
        "the upstream POST carried traceparent {expected}: {:?}",
        web.server().traceparents()
    );

    // --- 4: the legacy SSE request's server span and its client span.
    let server4 = received.one_in(LEGACY_TRACE, "tools/call web_echo_meta", SpanKind::Server);
    assert_eq!(server4.parent, CALLER);
    assert_eq!(server4.attr("mcpgate.downstream.transport"), "sse");
    assert_eq!(server4.attr("mcp.protocol.version"), "2024-11-05");
    assert_eq!(server4.attr("jsonrpc.request.id"), "4004");
    let client4 = received.child(&server4);
    assert_eq!(tp4, format!("00-{LEGACY_TRACE}-{}-01", client4.span_id));

    // --- 5: the relayed roots/list is a server span under the call's client span.
    let relay = received.one("roots/list", SpanKind::Server);
    let call5 = received.one_in(&relay.trace_id, "tools/call list_roots", SpanKind::Client);
    assert_eq!(relay.parent, call5.span_id, "{relay:#?}");
    assert_eq!(relay.attr("mcpgate.target"), "web");
    assert_eq!(relay.attr("mcp.session.id"), session);
    assert_eq!(relay.attr("mcp.method.name"), "roots/list");
    assert_eq!(relay.status, SpanStatus::Unset as i32);

    // --- 2: parent from _meta, the header's span as a link; stdio client span.
    let server2 = received.one("tools/call local_echo_meta", SpanKind::Server);
    assert_eq!(
        (server2.trace_id.as_str(), server2.parent.as_str()),
        (META_TRACE, META_PARENT)
    );
    assert_eq!(server2.links, vec![(TRACE.to_owned(), CALLER.to_owned())]);
    let client2 = received.child(&server2);
    assert_eq!(client2.name, "tools/call echo_meta");
    assert_eq!(client2.trace_id, META_TRACE);
    assert_eq!(client2.attr("mcpgate.target"), "local");
    assert_eq!(client2.attr("network.transport"), "pipe");
    assert!(!client2.attrs.contains_key("server.address"), "{client2:#?}");
    assert_eq!(tp2, format!("00-{META_TRACE}-{}-01", client2.span_id));

    // --- 3: tool errors mark both spans.
    let server3 = received.one("tools/call web_fail", SpanKind::Server);
    assert!(server3.parent.is_empty(), "a new trace: {server3:#?}");
    assert_eq!(server3.attr("error.type"), "tool_error");
    assert_eq!(server3.status, SpanStatus::Error as i32);
    assert_eq!(server3.status_message, "the tool reported an error");
    let client3 = received.child(&server3);
    assert_eq!(client3.name, "tools/call fail");
    assert_eq!(client3.attr("error.type"), "tool_error");
    assert_eq!(client3.status, SpanStatus::Error as i32);

    // --- The list fan-out: one client span per target under the request that filled it.
    let list = received.one("tools/list", SpanKind::Server);
    let list_clients = received.children(&list);
    let mut targets: Vec<&str> = list_clients.iter().map(|s| s.attr("mcpgate.target")).collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets, ["local", "web"], "{list_clients:#?}");
    assert!(
        list_clients
            .iter()
            .all(|s| s.name == "tools/list" && s.trace_id == list.trace_id)
    );
    // initialize has a server span with the session it created.
    let inits: Vec<Span> = received
        .spans()
        .into_iter()
        .filter(|s| s.name == "initialize" && s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(inits.len(), 2, "{inits:#?}");
    let init = inits
        .iter()
        .find(|s| s.attrs.get("mcp.session.id") == Some(&session))
        .expect("the session's initialize");
    assert_eq!(init.attr("mcpgate.downstream.transport"), "streamable_http");
    assert_eq!(init.status, SpanStatus::Unset as i32);
    assert!(
        inits
            .iter()
            .any(|s| s.attrs.get("mcpgate.downstream.transport").map(String::as_str) == Some("sse"))
    );
}

#[tokio::test]
async fn spans_and_context_over_otlp_grpc() {
    let received = Received::default();
    let endpoint = grpc_receiver(received.clone()).await;
    // A short batch delay: spans arrive while the gateway runs.
    scenario("grpc", &received, &endpoint, 100, true).await;
}

#[tokio::test]
async fn spans_over_otlp_http_are_flushed_at_shutdown() {
    let received = Received::default();
    let endpoint = http_receiver(received.clone()).await;
    // A batch delay far beyond the test: only the flush on SIGTERM can deliver the spans.
    scenario("http/protobuf", &received, &endpoint, 600_000, false).await;
}
