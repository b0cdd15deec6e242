//! A scriptable in-process MCP server for transport tests: Streamable HTTP on `/mcp` and the
//! legacy HTTP+SSE transport on `/sse` + `/message`, on 127.0.0.1:0.
//!
//! Each JSON-RPC method name selects one behaviour (`echo`, `stream`, `ask`, `drop`,
//! `garbage`, `huge`, `expire`, …) so a test says what it wants by the method it calls. The
//! fixture records every HTTP request it saw (method, JSON-RPC method, headers).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// One HTTP request the fixture received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `POST`, `GET` or `DELETE`.
    pub http: &'static str,
    /// The JSON-RPC method, `response` for a client response, `None` for GET/DELETE.
    pub rpc: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

type Sink = mpsc::UnboundedSender<Bytes>;

/// Fixture state and knobs.
pub struct St {
    /// Assign an `Mcp-Session-Id` on initialize (and require it afterwards).
    pub assign_session: AtomicBool,
    /// Answer plain requests (`echo`) with JSON rather than SSE.
    pub json_responses: AtomicBool,
    /// Offer the GET stream (else 405).
    pub get_allowed: AtomicBool,
    /// The protocol version `initialize` answers (the requested one when `None`).
    pub answer_version: Mutex<Option<String>>,
    /// Override of the legacy `endpoint` event's data.
    pub legacy_endpoint: Mutex<Option<String>>,
    /// Released by tests to let `stream` send its response.
    pub gate: Notify,
    sessions: Mutex<HashSet<String>>,
    counter: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    get_sink: Mutex<Option<Sink>>,
    get_opens: AtomicUsize,
    get_seq: AtomicUsize,
    deletes: AtomicUsize,
    replay: Mutex<HashMap<String, Vec<Bytes>>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    legacy: Mutex<HashMap<String, Sink>>,
    legacy_expired: Mutex<Vec<Sink>>,
}

/// A running fixture server; dropping it stops the server.
pub struct Fixture {
    pub addr: SocketAddr,
    pub st: Arc<St>,
    task: JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fixture {
    pub async fn start() -> Fixture {
        let st = Arc::new(St {
            assign_session: AtomicBool::new(true),
            json_responses: AtomicBool::new(false),
            get_allowed: AtomicBool::new(true),
            answer_version: Mutex::new(None),
            legacy_endpoint: Mutex::new(None),
            gate: Notify::new(),
            sessions: Mutex::default(),
            counter: AtomicUsize::new(0),
            seen: Mutex::default(),
            get_sink: Mutex::default(),
            get_opens: AtomicUsize::new(0),
            get_seq: AtomicUsize::new(0),
            deletes: AtomicUsize::new(0),
            replay: Mutex::default(),
            waiting: Mutex::default(),
            legacy: Mutex::default(),
            legacy_expired: Mutex::default(),
        });
        let app = Router::new()
            .route("/mcp", post(mcp_post).get(mcp_get).delete(mcp_delete))
            .route("/sse", get(legacy_get))
            .route("/message", post(legacy_post))
            .route("/moved", axum::routing::any(moved))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fixture { addr, st, task }
    }

    pub fn mcp_url(&self) -> url::Url {
        format!("http://{}/mcp", self.addr).parse().unwrap()
    }

    pub fn sse_url(&self) -> url::Url {
        format!("http://{}/sse", self.addr).parse().unwrap()
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.st.seen.lock().unwrap().clone()
    }

    /// Requests seen with this JSON-RPC method.
    pub fn seen_rpc(&self, rpc: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.rpc.as_deref() == Some(rpc))
            .collect()
    }

    /// GET requests seen.
    pub fn seen_gets(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.http == "GET").collect()
    }

    pub fn get_opens(&self) -> usize {
        self.st.get_opens.load(Ordering::SeqCst)
    }

    pub fn deletes(&self) -> usize {
        self.st.deletes.load(Ordering::SeqCst)
    }

    /// Sends `message` on the standalone GET stream; false if none is open.
    pub fn push_get(&self, message: Value) -> bool {
        let n = self.st.get_seq.fetch_add(1, Ordering::SeqCst);
        let sink = self.st.get_sink.lock().unwrap();
        sink.as_ref()
            .is_some_and(|s| s.send(event(Some(&format!("g{n}")), &message)).is_ok())
    }

    /// Ends the standalone GET stream after telling the client to retry in `retry_ms`.
    pub fn end_get(&self, retry_ms: u64) {
        if let Some(sink) = self.st.get_sink.lock().unwrap().take() {
            let _ = sink.send(Bytes::from(format!("retry: {retry_ms}\n\n")));
        }
    }

    /// Sends `message` on every legacy SSE stream.
    pub fn push_legacy(&self, message: Value) {
        for sink in self.st.legacy.lock().unwrap().values() {
            let _ = sink.send(event(None, &message));
        }
    }

    /// Waits until the fixture has seen `n` requests matching `pred`.
    pub async fn wait_for(&self, n: usize, pred: impl Fn(&Seen) -> bool) {
        for _ in 0..500 {
            if self.seen().iter().filter(|s| pred(s)).count() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the fixture never saw the expected requests: {:#?}", self.seen());
    }
}

/// One SSE event.
pub fn event(id: Option<&str>, data: &Value) -> Bytes {
    let id = id.map(|i| format!("id: {i}\n")).unwrap_or_default();
    Bytes::from(format!("{id}data: {data}\n\n"))
}

fn sse(rx: mpsc::UnboundedReceiver<Bytes>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn json_body(v: &Value) -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn status(code: u16, body: &'static str) -> Response {
    (StatusCode::from_u16(code).unwrap(), body).into_response()
}

fn response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn progress(n: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": n}})
}

fn huge_notification(size: usize) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "A".repeat(size)}})
}

impl St {
    fn record(&self, http: &'static str, rpc: Option<String>, headers: &HeaderMap) {
        self.seen.lock().unwrap().push(Seen {
            http,
            rpc,
            headers: headers.clone(),
        });
    }

    fn initialize_result(&self, id: &Value, params: &Value) -> Value {
        let version = self
            .answer_version
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| params["protocolVersion"].as_str().unwrap().to_owned());
        response(
            id,
            json!({
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": true}, "logging": {}},
                "serverInfo": {"name": "fixture", "version": "1.0"},
                "instructions": "Use the tools.",
            }),
        )
    }

    /// Registers a server→client request and returns (its message, the answer receiver).
    fn ask(&self, id: &Value) -> (Value, oneshot::Receiver<Value>) {
        let key = format!("srv-{id}");
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(key.clone(), tx);
        let request = json!({"jsonrpc": "2.0", "id": key, "method": "sampling/createMessage",
            "params": {"messages": [], "maxTokens": 5}});
        (request, rx)
    }

    fn answered(&self, v: &Value) {
        let key = v["id"].as_str().unwrap_or_default().to_owned();
        if let Some(tx) = self.waiting.lock().unwrap().remove(&key) {
            let _ = tx.send(v.clone());
        }
    }
}

async fn mcp_post(State(st): State<Arc<St>>, headers: HeaderMap, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).expect("the client sent invalid JSON");
    let method = v.get("method").and_then(Value::as_str).map(str::to_owned);
    st.record(
        "POST",
        Some(method.clone().unwrap_or_else(|| "response".into())),
        &headers,
    );
    let session = headers.get("mcp-session-id").map(|h| h.to_str().unwrap().to_owned());
    if method.as_deref() != Some("initialize") {
        match &session {
            Some(s) if !st.sessions.lock().unwrap().contains(s) => return status(404, "unknown session"),
            None if st.assign_session.load(Ordering::SeqCst) => return status(400, "missing session id"),
            _ => {}
        }
    }
    let params = v.get("params").cloned().unwrap_or(json!({}));
    let (id, method) = match (v.get("id").cloned(), method) {
        (None, Some(_)) => return StatusCode::ACCEPTED.into_response(),
        (Some(_), None) => {
            st.answered(&v);
            return StatusCode::ACCEPTED.into_response();
        }
        (Some(id), Some(m)) => (id, m),
        (None, None) => return status(400, "not JSON-RPC"),
    };
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    match method.as_str() {
        "initialize" => {
            let mut resp = json_body(&st.initialize_result(&id, &params));
            if st.assign_session.load(Ordering::SeqCst) {
                let sid = format!("sess-{}", st.counter.fetch_add(1, Ordering::SeqCst));
                st.sessions.lock().unwrap().insert(sid.clone());
                resp.headers_mut()
                    .insert("mcp-session-id", HeaderValue::from_str(&sid).unwrap());
            }
            resp
        }
        "echo" => {
            let r = response(&id, json!({"echo": params}));
            if st.json_responses.load(Ordering::SeqCst) {
                json_body(&r)
            } else {
                let _ = tx.send(Bytes::from_static(b": hello\n\n"));
                let _ = tx.send(event(None, &r));
                sse(rx)
            }
        }
        "slow" => {
            let ms = params["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json_body(&response(&id, json!({"n": params["n"]})))
        }
        "stream" => {
            tokio::spawn(async move {
                let _ = tx.send(event(Some("s-1"), &progress(1)));
                let _ = tx.send(event(Some("s-2"), &progress(2)));
                st.gate.notified().await;
                let _ = tx.send(event(Some("s-3"), &response(&id, json!({"done": true}))));
            });
            sse(rx)
        }
        "ask" => {
            tokio::spawn(async move {
                let (request, answer) = st.ask(&id);
                let _ = tx.send(event(None, &request));
                if let Ok(a) = answer.await {
                    let _ = tx.send(event(None, &response(&id, json!({"answer": a["result"]}))));
                }
            });
            sse(rx)
        }
        "drop" => {
            let resumed = event(Some("d-3"), &response(&id, json!({"resumed": true})));
            st.replay.lock().unwrap().insert("d-2".into(), vec![resumed]);
            let _ = tx.send(Bytes::from_static(b"id: d-1\ndata:\n\n"));
            let _ = tx.send(event(Some("d-2"), &progress(1)));
            let _ = tx.send(Bytes::from_static(b"retry: 50\n\n"));
            drop(tx);
            sse(rx)
        }
        "drop_no_id" => {
            let _ = tx.send(event(None, &progress(1)));
            drop(tx);
            sse(rx)
        }
        "garbage" => Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .body(Body::from("this is not json"))
            .unwrap(),
        "garbage_event" => {
            let _ = tx.send(Bytes::from_static(b"data: {not json\n\n"));
            sse(rx)
        }
        "html" => Response::builder()
            .header(CONTENT_TYPE, "text/html")
            .body(Body::from("<html></html>"))
            .unwrap(),
        "huge" => {
            let size = params["size"].as_u64().unwrap() as usize;
            let _ = tx.send(event(None, &huge_notification(size)));
            let _ = tx.send(event(None, &response(&id, json!({}))));
            sse(rx)
        }
        "huge_json" => {
            let size = params["size"].as_u64().unwrap() as usize;
            json_body(&response(&id, json!({"blob": "A".repeat(size)})))
        }
        "other_id" => json_body(&response(&json!(999_999), json!({}))),
        "expire" => {
            if let Some(s) = &session {
                st.sessions.lock().unwrap().remove(s);
            }
            status(404, "session expired")
        }
        "fail" => status(params["status"].as_u64().unwrap() as u16, "nope"),
        "accepted" => StatusCode::ACCEPTED.into_response(),
        _ => json_body(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no such method"}})),
    }
}

/// Every method on `/moved` is redirected (307, method and body kept) to `/mcp`.
async fn moved() -> Response {
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header("location", "/mcp")
        .body(Body::empty())
        .unwrap()
}

async fn mcp_get(State(st): State<Arc<St>>, headers: HeaderMap) -> Response {
    st.record("GET", None, &headers);
    if !st.get_allowed.load(Ordering::SeqCst) {
        return status(405, "no GET stream");
    }
    if let Some(s) = headers.get("mcp-session-id")
        && !st.sessions.lock().unwrap().contains(s.to_str().unwrap())
    {
        return status(404, "unknown session");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let replay = headers
        .get("last-event-id")
        .and_then(|last| st.replay.lock().unwrap().remove(last.to_str().unwrap()));
    if let Some(events) = replay {
        for e in events {
            let _ = tx.send(e);
        }
        drop(tx);
        return sse(rx);
    }
    st.get_opens.fetch_add(1, Ordering::SeqCst);
    *st.get_sink.lock().unwrap() = Some(tx);
    sse(rx)
}

async fn mcp_delete(State(st): State<Arc<St>>, headers: HeaderMap) -> Response {
    st.record("DELETE", None, &headers);
    st.deletes.fetch_add(1, Ordering::SeqCst);
    if let Some(s) = headers.get("mcp-session-id") {
        st.sessions.lock().unwrap().remove(s.to_str().unwrap());
    }
    StatusCode::OK.into_response()
}

async fn legacy_get(State(st): State<Arc<St>>, headers: HeaderMap) -> Response {
    st.record("GET", None, &headers);
    let sid = format!("legacy-{}", st.counter.fetch_add(1, Ordering::SeqCst));
    let (tx, rx) = mpsc::unbounded_channel();
    let endpoint = st
        .legacy_endpoint
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| format!("/message?sessionId={sid}"));
    let _ = tx.send(Bytes::from(format!("event: endpoint\ndata: {endpoint}\n\n")));
    st.legacy.lock().unwrap().insert(sid, tx);
    sse(rx)
}

async fn legacy_post(
    State(st): State<Arc<St>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).expect("the client sent invalid JSON");
    let method = v.get("method").and_then(Value::as_str).map(str::to_owned);
    st.record(
        "POST",
        Some(method.clone().unwrap_or_else(|| "response".into())),
        &headers,
    );
    let sid = q.get("sessionId").cloned().unwrap_or_default();
    let Some(sink) = st.legacy.lock().unwrap().get(&sid).cloned() else {
        return status(404, "Could not find session");
    };
    let params = v.get("params").cloned().unwrap_or(json!({}));
    let (id, method) = match (v.get("id").cloned(), method) {
        (None, Some(_)) => return status(202, "Accepted"),
        (Some(_), None) => {
            st.answered(&v);
            return status(202, "Accepted");
        }
        (Some(id), Some(m)) => (id, m),
        (None, None) => return status(400, "not JSON-RPC"),
    };
    let st2 = st.clone();
    tokio::spawn(async move {
        let st = st2;
        match method.as_str() {
            "initialize" => {
                let _ = sink.send(event(None, &st.initialize_result(&id, &params)));
            }
            "echo" => {
                let _ = sink.send(event(None, &response(&id, json!({"echo": params}))));
            }
            "slow" => {
                let ms = params["ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = sink.send(event(None, &response(&id, json!({"n": params["n"]}))));
            }
            "notify" => {
                let _ = sink.send(event(None, &progress(7)));
                let _ = sink.send(event(None, &response(&id, json!({}))));
            }
            "ask" => {
                let (request, answer) = st.ask(&id);
                let _ = sink.send(event(None, &request));
                if let Ok(a) = answer.await {
                    let _ = sink.send(event(None, &response(&id, json!({"answer": a["result"]}))));
                }
            }
            "huge" => {
                let size = params["size"].as_u64().unwrap() as usize;
                let _ = sink.send(event(None, &huge_notification(size)));
            }
            "end" => {
                st.legacy.lock().unwrap().remove(&sid);
            }
            "expire" => {
                if let Some(s) = st.legacy.lock().unwrap().remove(&sid) {
                    st.legacy_expired.lock().unwrap().push(s);
                }
            }
            "hang" => {}
            _ => {
                let _ = sink.send(event(
                    None,
                    &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no such method"}}),
                ));
            }
        }
    });
    status(202, "Accepted")
}
