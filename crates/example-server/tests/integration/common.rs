//! Test clients: a newline-delimited JSON-RPC client (for the spawned binary and for
//! in-process `serve_io`), and a small HTTP client for Streamable HTTP and legacy SSE.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub const BIN: &str = env!("CARGO_BIN_EXE_mcpgate-example-server");

/// A line-oriented JSON-RPC client.
pub struct LineClient {
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    lines: mpsc::UnboundedReceiver<String>,
    next_id: i64,
    /// Non-response messages seen while waiting for responses.
    pub seen: Vec<Value>,
    pub child: Option<Child>,
    pub stderr: Option<mpsc::UnboundedReceiver<String>>,
}

impl LineClient {
    /// Spawns the binary with these flags.
    pub fn spawn(args: &[&str]) -> LineClient {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn example server");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (etx, erx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let _ = etx.send(l);
            }
        });
        let mut c = LineClient::new(stdin, stdout);
        c.child = Some(child);
        c.stderr = Some(erx);
        c
    }

    /// A client over any reader/writer pair.
    pub fn new<W, R>(writer: W, reader: R) -> LineClient
    where
        W: AsyncWrite + Unpin + Send + 'static,
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        LineClient {
            writer: Box::new(writer),
            lines: rx,
            next_id: 1,
            seen: Vec::new(),
            child: None,
            stderr: None,
        }
    }

    pub async fn send_raw(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.unwrap();
        self.writer.write_all(b"\n").await.unwrap();
        self.writer.flush().await.unwrap();
    }

    pub async fn send(&mut self, v: &Value) {
        self.send_raw(&v.to_string()).await;
    }

    /// Closes our end of the input stream (dropping it: a child's stdin pipe only closes on
    /// drop).
    pub async fn close_input(&mut self) {
        self.writer.shutdown().await.unwrap();
        self.writer = Box::new(tokio::io::sink());
    }

    /// The next raw line, or None at end of output.
    pub async fn next_line(&mut self) -> Option<String> {
        tokio::time::timeout(WAIT, self.lines.recv())
            .await
            .expect("timed out waiting for a line")
    }

    /// The next line as JSON.
    pub async fn next(&mut self) -> Value {
        let line = self.next_line().await.expect("output ended");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends a request and returns its id.
    pub async fn start(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
            .await;
        id
    }

    /// Reads messages until the response with this id; others are kept in `seen`.
    pub async fn wait_for(&mut self, id: i64) -> Value {
        loop {
            let v = self.next().await;
            if v.get("method").is_none() && v["id"] == json!(id) {
                return v;
            }
            self.seen.push(v);
        }
    }

    /// Sends a request and waits for its response.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start(method, params).await;
        self.wait_for(id).await
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc":"2.0","method":method,"params":params}))
            .await;
    }

    /// initialize + notifications/initialized.
    pub async fn initialize(&mut self, version: &str, capabilities: Value) -> Value {
        let r = self
            .request(
                "initialize",
                json!({"protocolVersion":version,"capabilities":capabilities,
                       "clientInfo":{"name":"test","version":"0"}}),
            )
            .await;
        self.notify("notifications/initialized", json!({})).await;
        r
    }

    pub async fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name":tool,"arguments":args})).await
    }

    /// Waits for the child to exit and returns its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("not a spawned client");
        tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("server did not exit")
            .unwrap()
            .code()
    }
}

/// The text of the first content block of a tool result response.
pub fn text(resp: &Value) -> &str {
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {resp}"))
}

/// A parsed HTTP response with its whole body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// SSE events as (event name, data).
    pub fn events(&self) -> Vec<(String, String)> {
        parse_sse(std::str::from_utf8(&self.body).unwrap())
    }

    /// The JSON-RPC messages of a JSON or SSE response.
    pub fn messages(&self) -> Vec<Value> {
        if self.content_type().starts_with("text/event-stream") {
            self.events()
                .into_iter()
                .map(|(_, d)| serde_json::from_str(&d).unwrap())
                .collect()
        } else {
            vec![self.json()]
        }
    }

    /// The last message (the response, for requests).
    pub fn response(&self) -> Value {
        self.messages().pop().expect("no message")
    }
}

/// Parses complete SSE events from text.
pub fn parse_sse(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut event = String::from("message");
            let mut data = Vec::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// An SSE stream read incrementally.
pub struct SseStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
    buf: String,
}

impl SseStream {
    /// The next event, or None when the stream ends.
    pub async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..pos + 2).collect();
                return parse_sse(&raw).pop();
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("timed out waiting for an SSE event");
            match frame {
                None => return None,
                Some(Err(e)) => panic!("stream failed: {e}"),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.push_str(std::str::from_utf8(&d).unwrap());
                    }
                }
            }
        }
    }

    /// The next event's data as JSON.
    pub async fn next_json(&mut self) -> Option<Value> {
        let (_, data) = self.next_event().await?;
        Some(serde_json::from_str(&data).unwrap())
    }

    /// Back to a whole response (to read the rest at once).
    pub fn into_response(self) -> hyper::Response<hyper::body::Incoming> {
        let mut b = hyper::Response::builder().status(self.status);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        assert!(self.buf.is_empty(), "part of the body was read already");
        b.body(self.body).unwrap()
    }
}

/// A Streamable HTTP test client with session handling.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    pub url: String,
    pub session: Option<String>,
    pub version: Option<String>,
    next_id: i64,
}

impl HttpClient {
    pub fn new(url: &str) -> HttpClient {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: url.to_owned(),
            session: None,
            version: None,
            next_id: 1,
        }
    }

    fn builder(&self, method: Method, url: &str) -> http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(s) = &self.session {
            b = b.header("mcp-session-id", s);
        }
        if let Some(v) = &self.version {
            b = b.header("mcp-protocol-version", v);
        }
        b
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> hyper::Response<hyper::body::Incoming> {
        tokio::time::timeout(WAIT, self.client.request(req))
            .await
            .expect("HTTP request timed out")
            .expect("HTTP request failed")
    }

    pub async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> Reply {
        let (parts, body) = resp.into_parts();
        let body = tokio::time::timeout(WAIT, body.collect())
            .await
            .expect("body timed out")
            .expect("body failed")
            .to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// POSTs raw text to the MCP URL and reads the whole response.
    pub async fn post_raw(&self, body: &str) -> Reply {
        let req = self
            .builder(Method::POST, &self.url)
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .unwrap();
        HttpClient::collect(self.send(req).await).await
    }

    pub async fn post(&self, v: &Value) -> Reply {
        self.post_raw(&v.to_string()).await
    }

    /// POSTs with extra request headers (and the client's own) and reads the whole response.
    pub async fn post_with(&self, v: &Value, headers: &[(&str, &str)]) -> Reply {
        HttpClient::collect(self.post_stream_with(v, headers).await.into_response()).await
    }

    /// POSTs with extra request headers and returns the response as a stream.
    pub async fn post_stream_with(&self, v: &Value, headers: &[(&str, &str)]) -> SseStream {
        let mut b = self.builder(Method::POST, &self.url);
        for (k, val) in headers {
            b = b.header(*k, *val);
        }
        let req = b.body(Full::new(Bytes::from(v.to_string()))).unwrap();
        let (parts, body) = self.send(req).await.into_parts();
        SseStream {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: String::new(),
        }
    }

    /// Sends a request with any method to any URL (GET, DELETE … of the 2026-07-28 tests).
    pub async fn send_method(&self, method: Method, url: &str) -> Reply {
        let req = self.builder(method, url).body(Full::new(Bytes::new())).unwrap();
        HttpClient::collect(self.send(req).await).await
    }

    /// POSTs and returns the response as a stream (for interaction mid-request).
    pub async fn post_stream(&self, v: &Value) -> SseStream {
        let req = self
            .builder(Method::POST, &self.url)
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap();
        let (parts, body) = self.send(req).await.into_parts();
        SseStream {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: String::new(),
        }
    }

    pub fn request_value(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        json!({"jsonrpc":"2.0","id":id,"method":method,"params":params})
    }

    /// Sends a request and returns the whole reply.
    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        let v = self.request_value(method, params);
        self.post(&v).await
    }

    pub async fn call(&mut self, tool: &str, args: Value) -> Reply {
        self.request("tools/call", json!({"name":tool,"arguments":args})).await
    }

    pub async fn notify(&self, method: &str, params: Value) -> Reply {
        self.post(&json!({"jsonrpc":"2.0","method":method,"params":params}))
            .await
    }

    /// initialize (+ notifications/initialized); keeps the session id and version.
    pub async fn initialize(&mut self, version: &str, capabilities: Value) -> Reply {
        let r = self
            .request(
                "initialize",
                json!({"protocolVersion":version,"capabilities":capabilities,
                       "clientInfo":{"name":"test","version":"0"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        self.session = r.headers.get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
        self.version = r.response()["result"]["protocolVersion"].as_str().map(str::to_owned);
        let n = self.notify("notifications/initialized", json!({})).await;
        assert_eq!(n.status, StatusCode::ACCEPTED);
        r
    }

    /// Opens the GET stream of the session (or any GET URL).
    pub async fn get_stream(&self, url: &str) -> SseStream {
        let req = self
            .builder(Method::GET, url)
            .header("accept", "text/event-stream")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (parts, body) = self.send(req).await.into_parts();
        SseStream {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: String::new(),
        }
    }

    pub async fn delete(&self) -> StatusCode {
        let req = self
            .builder(Method::DELETE, &self.url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(req).await.status()
    }
}
