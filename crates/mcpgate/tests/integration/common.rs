//! The harness: the gateway in-process on `127.0.0.1:0` from a YAML string, fixture
//! upstreams (the example server over Streamable HTTP, legacy SSE and stdio, plus two tiny
//! hand-written HTTP servers: one that records what reaches it, one that answers garbage),
//! and MCP clients for Streamable HTTP and legacy SSE written from the transport spec.
//!
//! Nothing here sleeps to synchronise: every wait polls a condition or reads a stream under
//! a deadline ([`WAIT`]), so every test is bounded in time.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpgate_example_server::{ExampleServer, HttpFixture, Options};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Upper bound of any single wait (a response, an event, a condition).
pub const WAIT: Duration = Duration::from_secs(10);

/// The mcpgate binary; `mcpgate example-server` is the stdio fixture upstream.
pub const MCPGATE: &str = env!("CARGO_BIN_EXE_mcpgate");

/// The newest protocol revision.
pub const LATEST: &str = "2025-11-25";

/// `fut`, or a panic naming `what` after [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// Polls `check` until it holds, or panics naming `what` after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Logs of the gateway and fixtures, shown for failing tests when `MCPGATE_TEST_LOG` is set
/// to a tracing filter (e.g. `MCPGATE_TEST_LOG=debug`).
fn init_logging() {
    if let Ok(filter) = std::env::var("MCPGATE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------------------------

/// A gateway serving on an ephemeral loopback port.
pub struct Gateway {
    /// The federation core (target status, session count).
    pub core: mcpgate_core::Gateway,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _task: JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// Starts a gateway from YAML (its `listen.address` is replaced by `127.0.0.1:0`) and
    /// waits until every target is up.
    pub async fn start(yaml: &str) -> Gateway {
        let gw = Gateway::start_unsettled(yaml).await;
        gw.wait_up_all().await;
        gw
    }

    /// Starts a gateway without waiting for its targets.
    pub async fn start_unsettled(yaml: &str) -> Gateway {
        init_logging();
        let mut config = mcpgate_config::Config::from_str(yaml, "test.yaml", false)
            .unwrap_or_else(|e| panic!("test config does not load: {e}\n{yaml}"));
        config.listen.address = "127.0.0.1:0".parse().expect("an address");
        let listener = TcpListener::bind(config.listen.address)
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let core = mcpgate_core::Gateway::start(config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(mcpgate_http::serve(listener, core.clone(), async move {
            let _ = stopped.await;
        }));
        Gateway {
            core,
            addr,
            stop: Some(stop),
            _task: task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Streamable HTTP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base())
    }

    /// The state (`up`, `down`, `connecting`) of target `name`.
    pub fn target_state(&self, name: &str) -> &'static str {
        self.core
            .target_status()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no target {name}"))
            .state
    }

    /// Restarts of target `name` so far.
    pub fn restarts(&self, name: &str) -> u64 {
        self.core
            .target_status()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no target {name}"))
            .restarts
    }

    /// Waits until target `name` is in `state`.
    pub async fn wait_state(&self, name: &str, state: &str) {
        eventually(&format!("target {name} to be {state}"), || {
            self.target_state(name) == state
        })
        .await;
    }

    /// Waits until every target is up.
    pub async fn wait_up_all(&self) {
        let what = "every target to be up";
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = self.core.target_status();
            if status.iter().all(|t| t.state == "up") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A client without a session.
    pub fn client(&self) -> Client {
        Client::new(&self.mcp_url())
    }

    /// A client with an initialized session (latest version, every client capability).
    pub async fn connect(&self) -> Client {
        let mut c = self.client();
        c.initialize(LATEST, all_client_capabilities()).await;
        c
    }

    /// A legacy HTTP+SSE client with an initialized session.
    pub async fn connect_legacy(&self) -> LegacyClient {
        let mut c = LegacyClient::open(&self.base()).await;
        c.initialize("2024-11-05").await;
        c
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let core = self.core.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { core.shutdown().await });
        }
    }
}

/// Client capabilities declaring sampling, elicitation and roots.
pub fn all_client_capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": { "form": {} }, "roots": { "listChanged": true } })
}

// ---------------------------------------------------------------------------------------------
// Targets for YAML configs
// ---------------------------------------------------------------------------------------------

/// Target lines selecting one upstream session shared by every client.
pub const SHARED: &str = "    session: shared\n";

/// A YAML string literal.
pub fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

/// A stdio target running `mcpgate example-server --name NAME ARGS…`, plus `extra` YAML lines
/// (indented like target fields, e.g. `"    session: per_client"`).
pub fn stdio_target(name: &str, args: &[&str], extra: &str) -> String {
    let mut all = vec!["example-server", "--name", name];
    all.extend_from_slice(args);
    let args: Vec<String> = all.iter().map(|a| q(a)).collect();
    format!(
        "  - name: {name}\n    stdio:\n      command: {}\n      args: [{}]\n{extra}",
        q(MCPGATE),
        args.join(", ")
    )
}

/// A Streamable HTTP target.
pub fn http_target(name: &str, url: &str, extra: &str) -> String {
    format!("  - name: {name}\n    streamable_http:\n      url: {}\n{extra}", q(url))
}

/// A legacy SSE target.
pub fn sse_target(name: &str, url: &str, extra: &str) -> String {
    format!("  - name: {name}\n    sse:\n      url: {}\n{extra}", q(url))
}

/// A config with `head` (top-level YAML, may be empty) and these targets.
pub fn config(head: &str, targets: &[String]) -> String {
    let mut y = String::from(head);
    if !y.is_empty() && !y.ends_with('\n') {
        y.push('\n');
    }
    y.push_str("targets:\n");
    for t in targets {
        y.push_str(t);
        if !t.ends_with('\n') {
            y.push('\n');
        }
    }
    y
}

/// An example server on Streamable HTTP and legacy SSE.
pub async fn fixture(opts: Options) -> HttpFixture {
    mcpgate_example_server::spawn_http(opts)
        .await
        .expect("spawn the example server")
}

/// An example server with default options named `name`.
pub async fn named_fixture(name: &str) -> HttpFixture {
    fixture(Options {
        name: name.into(),
        ..Default::default()
    })
    .await
}

/// An example server served on a listener the test controls, so it can be stopped and a new
/// one started on the same port (an upstream restart: every session it had is gone).
pub struct RestartableFixture {
    /// The bound address.
    pub addr: SocketAddr,
    /// The running server.
    pub server: ExampleServer,
    task: JoinHandle<std::io::Result<()>>,
}

impl RestartableFixture {
    /// Starts one on an ephemeral port.
    pub async fn start(opts: Options) -> RestartableFixture {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, opts)
    }

    fn serve(listener: TcpListener, opts: Options) -> RestartableFixture {
        let addr = listener.local_addr().expect("addr");
        let server = ExampleServer::new(opts);
        let s = server.clone();
        let task = tokio::spawn(async move { s.serve_http(listener).await });
        RestartableFixture { addr, server, task }
    }

    /// `http://ADDR/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops this server (its sessions are gone) and starts a fresh one on the same port.
    pub async fn restart(mut self) -> RestartableFixture {
        let opts = self.server.options().clone();
        self.server.shutdown();
        within("the old fixture to stop", &mut self.task).await.ok();
        let listener = within("rebinding the fixture's port", async {
            loop {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => return l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        })
        .await;
        Self::serve(listener, opts)
    }
}

impl Drop for RestartableFixture {
    fn drop(&mut self) {
        self.server.shutdown();
        self.task.abort();
    }
}

/// A loopback URL nothing listens on.
pub async fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/mcp")
}

// ---------------------------------------------------------------------------------------------
// Hand-written HTTP upstreams
// ---------------------------------------------------------------------------------------------

/// One HTTP request as a raw server saw it.
pub struct RawRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The body.
    pub body: Vec<u8>,
}

/// A raw HTTP/1.1 server (one request per connection) answering with `handler`'s
/// `(status, content type, body)`. Loopback, ephemeral port; stops with the test's runtime.
pub async fn raw_http_server(
    handler: impl Fn(RawRequest) -> (u16, &'static str, Vec<u8>) + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let method = head.split(' ').next().unwrap_or("").to_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = buf[head_end..head_end + len].to_vec();
                let (status, ctype, out) = handler(RawRequest { method, body });
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    out.len()
                );
                if !ctype.is_empty() {
                    resp.push_str(&format!("Content-Type: {ctype}\r\n"));
                }
                resp.push_str("\r\n");
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(&out).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

/// An HTTP server that answers every request with `200 application/json` and a body that is
/// not JSON.
pub async fn garbage_server() -> String {
    let addr = raw_http_server(|_| (200, "application/json", b"<html>this is not JSON }{".to_vec())).await;
    format!("http://{addr}/mcp")
}

/// What the recording server saw.
#[derive(Clone, Default)]
pub struct Recorded(Arc<Mutex<Vec<Value>>>);

impl Recorded {
    /// Every JSON-RPC message received so far.
    pub fn messages(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    /// The last received request with this method.
    pub fn last_request(&self, method: &str) -> Option<Value> {
        self.messages().into_iter().rev().find(|m| m["method"] == method)
    }
}

/// The tool the recording server lists: every optional and unknown field a server might send.
pub fn recorder_tool() -> Value {
    json!({
        "name": "inspect",
        "title": "Inspect",
        "description": "Returns what it received.",
        "inputSchema": { "type": "object", "properties": { "x": { "type": "integer" } }, "x-schema-extension": true },
        "outputSchema": { "type": "object" },
        "annotations": { "readOnlyHint": true, "destructiveHint": false, "x-vendor-hint": { "level": 3 } },
        "icons": [{ "src": "https://example.com/icon.png", "mimeType": "image/png", "sizes": ["16x16"] }],
        "_meta": { "com.example/owner": "team-a", "nested": { "list": [1, 2.5, "three", null, true] } },
        "x-future-field": { "a": [1, { "b": "c" }] }
    })
}

/// The result the recording server returns for `tools/call` (`received` is filled with the
/// params it got).
pub fn recorder_call_result(received: &Value) -> Value {
    json!({
        "content": [{ "type": "text", "text": "ok", "annotations": { "audience": ["user"], "priority": 0.5 }, "x-block-extra": 1 }],
        "structuredContent": { "received": received },
        "isError": false,
        "_meta": { "com.example/trace": "abc", "deep": { "k": [{ "v": 1 }] } },
        "x-result-extra": { "unicode": "é😀\u{1}", "big": 12345678901234567u64, "float": 1.5e-7 }
    })
}

/// A stateless Streamable HTTP MCP server (no session id, no GET stream) that records every
/// message, lists [`recorder_tool`], answers `tools/call` with [`recorder_call_result`] and
/// any other method it does not know with `{"method": …, "params": …}`, so tests can see
/// exactly what the gateway forwarded.
pub async fn recording_server() -> (String, Recorded) {
    let rec = Recorded::default();
    let seen = rec.clone();
    let addr = raw_http_server(move |req| {
        if req.method != "POST" {
            return (405, "", Vec::new());
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&req.body) else {
            return (400, "", Vec::new());
        };
        seen.0.lock().unwrap().push(msg.clone());
        let Some(id) = msg.get("id").cloned() else {
            return (202, "", Vec::new());
        };
        let Some(method) = msg.get("method").and_then(Value::as_str) else {
            return (202, "", Vec::new());
        };
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        let result = match method {
            "initialize" => json!({
                "protocolVersion": params["protocolVersion"],
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "recorder", "version": "1" },
                "instructions": "The recorder."
            }),
            "tools/list" => json!({ "tools": [recorder_tool()] }),
            "tools/call" => recorder_call_result(&params),
            "ping" => json!({}),
            other => json!({ "method": other, "params": params }),
        };
        let body = serde_json::to_vec(&json!({ "jsonrpc": "2.0", "id": id, "result": result })).unwrap();
        (200, "application/json", body)
    })
    .await;
    (format!("http://{addr}/mcp"), rec)
}

// ---------------------------------------------------------------------------------------------
// SSE
// ---------------------------------------------------------------------------------------------

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// `id:`
    pub id: Option<String>,
    /// `event:`
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// A reader of a `text/event-stream` response body, parsing events as the SSE standard
/// describes (fields, comments, multi-line data, CRLF or LF line ends).
pub struct SseStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    done: bool,
    /// The last event id seen.
    pub last_id: Option<String>,
    /// Every event id seen, in order.
    pub ids: Vec<String>,
    /// Comment lines (keep-alives) seen.
    pub comments: usize,
    /// Messages read while looking for another one.
    stash: VecDeque<Value>,
}

impl SseStream {
    /// Wraps a response (asserting it is an event stream).
    pub fn new(resp: reqwest::Response) -> SseStream {
        let ctype = content_type(resp.headers());
        assert_eq!(ctype, "text/event-stream", "expected an SSE response");
        SseStream {
            resp,
            buf: Vec::new(),
            done: false,
            last_id: None,
            ids: Vec::new(),
            comments: 0,
            stash: VecDeque::new(),
        }
    }

    fn parse_one(&mut self) -> Option<Event> {
        let mut pos = 0;
        let mut ev = Event::default();
        let mut data: Option<String> = None;
        let mut fields = false;
        let mut comments = 0;
        loop {
            let nl = self.buf[pos..].iter().position(|b| *b == b'\n')?;
            let mut line = &self.buf[pos..pos + nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8(line.to_vec()).expect("SSE is UTF-8");
            pos += nl + 1;
            if line.is_empty() {
                // Lines are consumed (and comments counted) only once their block is complete.
                self.buf.drain(..pos);
                self.comments += std::mem::take(&mut comments);
                if fields {
                    ev.data = data.unwrap_or_default();
                    if let Some(id) = &ev.id {
                        self.last_id = Some(id.clone());
                        self.ids.push(id.clone());
                    }
                    return Some(ev);
                }
                pos = 0;
                continue;
            }
            if line.starts_with(':') {
                comments += 1;
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()),
                None => (line.clone(), String::new()),
            };
            fields = true;
            match field.as_str() {
                "data" => match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(&value);
                    }
                    None => data = Some(value),
                },
                "id" => ev.id = Some(value),
                "event" => ev.event = Some(value),
                _ => {}
            }
        }
    }

    /// The next event; `None` when the stream ended. Panics after [`WAIT`].
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.parse_one() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            match within("the next SSE chunk", self.resp.chunk()).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) | Err(_) => self.done = true,
            }
        }
    }

    /// Reads until `n` comment lines (keep-alives) have been seen, stashing any messages.
    pub async fn wait_for_comments(&mut self, n: usize) {
        loop {
            while let Some(ev) = self.parse_one() {
                if !ev.data.is_empty() {
                    let m = serde_json::from_str(&ev.data).expect("SSE data is JSON");
                    self.stash.push_back(m);
                }
            }
            if self.comments >= n {
                return;
            }
            assert!(!self.done, "the stream ended after {} comments", self.comments);
            match within("an SSE keep-alive", self.resp.chunk()).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) | Err(_) => self.done = true,
            }
        }
    }

    /// The next JSON-RPC message (stashed ones first), skipping events without data.
    pub async fn next_message(&mut self) -> Option<Value> {
        if let Some(m) = self.stash.pop_front() {
            return Some(m);
        }
        loop {
            let ev = self.next_event().await?;
            if ev.data.is_empty() {
                continue;
            }
            if ev.event.as_deref().is_some_and(|e| e != "message") {
                continue;
            }
            return Some(serde_json::from_str(&ev.data).unwrap_or_else(|e| panic!("bad SSE data {:?}: {e}", ev.data)));
        }
    }

    /// Reads until a message matching `pred` (keeping the others for later); panics if the
    /// stream ends first.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.stash.iter().position(&pred) {
            return self.stash.remove(i).expect("index is valid");
        }
        let mut skipped = Vec::new();
        loop {
            let Some(ev) = self.next_event().await else {
                panic!("the stream ended before {what}; other messages: {skipped:?}");
            };
            if ev.data.is_empty() || ev.event.as_deref().is_some_and(|e| e != "message") {
                continue;
            }
            let m: Value = serde_json::from_str(&ev.data).expect("SSE data is JSON");
            if pred(&m) {
                self.stash.extend(skipped);
                return m;
            }
            skipped.push(m);
        }
    }

    /// Every message read and not consumed so far, plus those up to the one matching `pred`
    /// (included).
    pub async fn collect_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out: Vec<Value> = self.stash.drain(..).collect();
        if out.iter().any(&pred) {
            return out;
        }
        loop {
            let Some(m) = self.next_message().await else {
                panic!("the stream ended before {what}; got {out:?}");
            };
            let stop = pred(&m);
            out.push(m);
            if stop {
                return out;
            }
        }
    }

    /// The response to request `id`.
    pub async fn response(&mut self, id: &Value) -> Value {
        let id = id.clone();
        self.expect(&format!("the response to {id}"), |m| is_response_to(m, &id))
            .await
    }

    /// Reads to the end of the stream, returning every message left.
    pub async fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(m) = self.next_message().await {
            out.push(m);
        }
        out
    }

    /// Is the stream at its end (reads on to find out)?
    pub async fn ended(&mut self) -> bool {
        self.next_event().await.is_none()
    }
}

/// Is `m` a response (result or error) to `id`?
pub fn is_response_to(m: &Value, id: &Value) -> bool {
    m.get("method").is_none() && m.get("id") == Some(id) && (m.get("result").is_some() || m.get("error").is_some())
}

/// Is `m` a notification with this method?
pub fn is_notification(m: &Value, method: &str) -> bool {
    m["method"] == method && m.get("id").is_none()
}

/// Is `m` a request with this method?
pub fn is_request(m: &Value, method: &str) -> bool {
    m["method"] == method && m.get("id").is_some()
}

/// The media type of a response.
pub fn content_type(h: &HeaderMap) -> String {
    h.get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP client
// ---------------------------------------------------------------------------------------------

/// What a POST returned.
pub enum Reply {
    /// `application/json`: one message.
    Json(StatusCode, Value),
    /// `text/event-stream`.
    Sse(Box<SseStream>),
    /// Anything else (202, errors without JSON bodies).
    Other(StatusCode, String),
}

impl Reply {
    /// The HTTP status.
    pub async fn into_message(self, id: &Value) -> Value {
        match self {
            Reply::Json(status, v) => {
                assert_eq!(status, StatusCode::OK, "a JSON response to a request: {v}");
                v
            }
            Reply::Sse(mut s) => s.response(id).await,
            Reply::Other(status, body) => panic!("expected a response to {id}, got HTTP {status}: {body}"),
        }
    }

    /// The SSE stream, or a panic.
    pub fn stream(self) -> SseStream {
        match self {
            Reply::Sse(s) => *s,
            Reply::Json(s, v) => panic!("expected an SSE stream, got JSON ({s}): {v}"),
            Reply::Other(s, b) => panic!("expected an SSE stream, got HTTP {s}: {b}"),
        }
    }
}

/// A Streamable HTTP MCP client.
pub struct Client {
    http: reqwest::Client,
    /// The MCP endpoint.
    pub url: String,
    /// `Mcp-Session-Id`, once issued.
    pub session: Option<String>,
    /// `MCP-Protocol-Version` sent on requests after initialize.
    pub version: Option<String>,
    next_id: AtomicI64,
}

/// A plain reqwest client with bounded connects (the gateway installed the TLS provider).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(WAIT)
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

impl Client {
    /// A client for this endpoint, without a session.
    pub fn new(url: &str) -> Client {
        Client {
            http: http_client(),
            url: url.to_owned(),
            session: None,
            version: None,
            next_id: AtomicI64::new(1),
        }
    }

    /// A fresh request id.
    pub fn next_id(&self) -> Value {
        json!(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Headers every POST carries: Accept, Content-Type, the session and version once known.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if let Some(s) = &self.session {
            h.insert("mcp-session-id", HeaderValue::from_str(s).expect("visible ASCII"));
        }
        if let Some(v) = &self.version {
            h.insert("mcp-protocol-version", HeaderValue::from_str(v).expect("ASCII"));
        }
        h
    }

    /// POSTs raw bytes with these headers.
    pub async fn post_raw(&self, headers: HeaderMap, body: impl Into<reqwest::Body>) -> reqwest::Response {
        within("a POST", self.http.post(&self.url).headers(headers).body(body).send())
            .await
            .expect("the POST is sent")
    }

    /// POSTs one JSON value and classifies the answer.
    pub async fn post(&self, body: &Value) -> Reply {
        let resp = self.post_raw(self.headers(), serde_json::to_vec(body).unwrap()).await;
        classify(resp).await
    }

    /// Sends `initialize` then `notifications/initialized`; returns the whole response and
    /// remembers the session id and the negotiated version.
    pub async fn initialize(&mut self, version: &str, capabilities: Value) -> Value {
        let id = self.next_id();
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": capabilities,
                "clientInfo": { "name": "mcpgate-integration-tests", "version": "1.0" }
            }
        });
        let resp = self.post_raw(self.headers(), serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "initialize answered HTTP {}",
            resp.status()
        );
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().expect("a visible-ASCII session id").to_owned());
        }
        let msg = classify(resp).await.into_message(&id).await;
        let negotiated = msg["result"]["protocolVersion"].as_str().expect("a protocol version");
        self.version = Some(negotiated.to_owned());
        let status = self.notify("notifications/initialized", None).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "notifications/initialized is accepted with 202"
        );
        msg
    }

    /// Sends a request and returns the POST's reply without reading it (for streams).
    pub async fn start(&self, method: &str, params: Value) -> (Value, Reply) {
        let id = self.next_id();
        let reply = self
            .post(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        (id, reply)
    }

    /// Sends a request; returns the full response message.
    pub async fn request(&self, method: &str, params: Value) -> Value {
        let (id, reply) = self.start(method, params).await;
        reply.into_message(&id).await
    }

    /// Sends a request; returns its `result` (panics on an error).
    pub async fn result(&self, method: &str, params: Value) -> Value {
        let m = self.request(method, params).await;
        assert!(m.get("error").is_none(), "{method} failed: {m}");
        m["result"].clone()
    }

    /// Sends a request; returns its `error` (panics on a result).
    pub async fn error(&self, method: &str, params: Value) -> Value {
        let m = self.request(method, params).await;
        assert!(m.get("result").is_none(), "{method} was expected to fail: {m}");
        m["error"].clone()
    }

    /// `tools/call`; returns the result.
    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        self.result("tools/call", json!({ "name": tool, "arguments": arguments }))
            .await
    }

    /// `tools/call` of a tool answering with text; returns the first text block.
    pub async fn call_text(&self, tool: &str, arguments: Value) -> String {
        let r = self.call(tool, arguments).await;
        r["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text in {r}"))
            .to_owned()
    }

    /// Every item of a list method, following `nextCursor`.
    pub async fn list_all(&self, method: &str, key: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let r = self.result(method, params).await;
            out.extend(
                r[key]
                    .as_array()
                    .unwrap_or_else(|| panic!("no {key} in {r}"))
                    .iter()
                    .cloned(),
            );
            match r["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
        panic!("{method} never ended");
    }

    /// Names of every tool.
    pub async fn tool_names(&self) -> Vec<String> {
        names(&self.list_all("tools/list", "tools").await)
    }

    /// Sends a notification; returns the HTTP status.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> StatusCode {
        let mut body = json!({ "jsonrpc": "2.0", "method": method });
        if let Some(p) = params {
            body["params"] = p;
        }
        self.post_raw(self.headers(), serde_json::to_vec(&body).unwrap())
            .await
            .status()
    }

    /// Answers a server→client request; returns the HTTP status.
    pub async fn respond(&self, id: &Value, result: Value) -> StatusCode {
        let body = json!({ "jsonrpc": "2.0", "id": id, "result": result });
        self.post_raw(self.headers(), serde_json::to_vec(&body).unwrap())
            .await
            .status()
    }

    /// GETs the endpoint with the session headers plus `extra`.
    pub async fn get_raw(&self, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut h = self.headers();
        h.remove("content-type");
        h.insert("accept", HeaderValue::from_static("text/event-stream"));
        for (k, v) in extra {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        within("a GET", self.http.get(&self.url).headers(h).send())
            .await
            .expect("the GET is sent")
    }

    /// Opens the session's GET stream.
    pub async fn listen(&self) -> SseStream {
        let resp = self.get_raw(&[]).await;
        assert_eq!(resp.status(), StatusCode::OK, "the GET stream opens");
        SseStream::new(resp)
    }

    /// Resumes a stream with `Last-Event-ID`.
    pub async fn resume(&self, last_event_id: &str) -> SseStream {
        let resp = self.get_raw(&[("last-event-id", last_event_id)]).await;
        assert_eq!(resp.status(), StatusCode::OK, "the resumption GET succeeds");
        SseStream::new(resp)
    }

    /// DELETEs the session; returns the status.
    pub async fn delete(&self) -> StatusCode {
        let mut h = self.headers();
        h.remove("content-type");
        within("a DELETE", self.http.delete(&self.url).headers(h).send())
            .await
            .expect("the DELETE is sent")
            .status()
    }
}

/// Classifies a POST's answer by content type.
pub async fn classify(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    match content_type(resp.headers()).as_str() {
        "text/event-stream" => Reply::Sse(Box::new(SseStream::new(resp))),
        "application/json" => {
            let bytes = within("a JSON body", resp.bytes()).await.expect("the body");
            let v: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("invalid JSON body ({e}): {}", String::from_utf8_lossy(&bytes)));
            Reply::Json(status, v)
        }
        _ => {
            let text = within("a body", resp.text()).await.unwrap_or_default();
            Reply::Other(status, text)
        }
    }
}

/// The `name` of each item.
pub fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|t| t["name"].as_str().expect("a name").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Legacy HTTP+SSE client
// ---------------------------------------------------------------------------------------------

/// A legacy HTTP+SSE (2024-11-05) client: `GET /sse`, the `endpoint` event, POSTs to it.
pub struct LegacyClient {
    http: reqwest::Client,
    /// Where messages are POSTed (from the `endpoint` event).
    pub post_url: String,
    /// The server's stream: every response and notification arrives here.
    pub stream: SseStream,
    next_id: AtomicI64,
}

impl LegacyClient {
    /// Opens the SSE stream and reads the `endpoint` event.
    pub async fn open(base: &str) -> LegacyClient {
        let http = http_client();
        let resp = within(
            "GET /sse",
            http.get(format!("{base}/sse"))
                .header("accept", "text/event-stream")
                .send(),
        )
        .await
        .expect("GET /sse");
        assert_eq!(resp.status(), StatusCode::OK);
        let mut stream = SseStream::new(resp);
        let ev = stream.next_event().await.expect("an endpoint event");
        assert_eq!(
            ev.event.as_deref(),
            Some("endpoint"),
            "the first event names the endpoint"
        );
        let post_url = if ev.data.starts_with("http") {
            ev.data.clone()
        } else {
            format!("{base}{}", ev.data)
        };
        LegacyClient {
            http,
            post_url,
            stream,
            next_id: AtomicI64::new(1),
        }
    }

    /// POSTs one message; returns the HTTP status.
    pub async fn post(&self, body: &Value) -> StatusCode {
        within(
            "a legacy POST",
            self.http
                .post(&self.post_url)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).unwrap())
                .send(),
        )
        .await
        .expect("the POST is sent")
        .status()
    }

    /// Sends a request (asserting 202) and returns its id.
    pub async fn send(&self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id.fetch_add(1, Ordering::Relaxed));
        let status = self
            .post(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "legacy POST of {method}");
        id
    }

    /// Sends a request and reads its response from the stream.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        self.stream.response(&id).await
    }

    /// A request's `result`.
    pub async fn result(&mut self, method: &str, params: Value) -> Value {
        let m = self.request(method, params).await;
        assert!(m.get("error").is_none(), "{method} failed: {m}");
        m["result"].clone()
    }

    /// `initialize` + `notifications/initialized`.
    pub async fn initialize(&mut self, version: &str) -> Value {
        let r = self
            .request(
                "initialize",
                json!({ "protocolVersion": version, "capabilities": all_client_capabilities(),
                        "clientInfo": { "name": "legacy-test", "version": "1" } }),
            )
            .await;
        let status = self
            .post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        r
    }
}
