//! The MCP client side of the load generator: one HTTP/1.1 connection per session worker on
//! a bare hyper client (keep-alive, no pool, no TLS), plus the legacy HTTP+SSE and stdio
//! transports.
//!
//! Every session initializes the way a real client does (`initialize`, then
//! `notifications/initialized`), carries `Mcp-Session-Id` and `MCP-Protocol-Version`, and
//! checks every answer: the status, the content type, and a JSON-RPC response with the
//! request's id and a `result`. Nothing here measures time; [`crate::load`] does.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

use crate::sse::{SseParser, parse_all};

/// The protocol version the bench asks for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// Why one request failed. [`ClientError::kind`] names the bucket it is counted in.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP connect or socket I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP connection failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// A status other than the one expected.
    #[error("http status {0}")]
    Status(u16),
    /// A JSON-RPC error response.
    #[error("json-rpc error: {0}")]
    Rpc(String),
    /// An answer that is not what the protocol says.
    #[error("protocol: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// The error bucket for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Io(_) => "io",
            ClientError::Http(_) => "http",
            ClientError::Status(_) => "status",
            ClientError::Rpc(_) => "jsonrpc",
            ClientError::Protocol(_) => "protocol",
            ClientError::Timeout => "timeout",
        }
    }

    /// Is the session unusable after this error (so the worker opens a new one)?
    pub fn breaks_session(&self) -> bool {
        !matches!(self, ClientError::Rpc(_))
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A successful answer.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// Size of the `result` in bytes.
    pub result_bytes: usize,
    /// When the last byte of the answer arrived (before the bench parsed it), so the
    /// client's own parsing is not counted as server latency.
    pub received: tokio::time::Instant,
}

/// Which response formats a Streamable HTTP client accepts on POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Accept {
    /// `application/json, text/event-stream`, as the spec asks (the server picks).
    Both,
    /// `application/json` only.
    Json,
    /// `text/event-stream` only: every answer is an SSE stream.
    Sse,
}

impl Accept {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Accept::Both => "application/json, text/event-stream",
            Accept::Json => "application/json",
            Accept::Sse => "text/event-stream",
        })
    }
}

/// An HTTP endpoint on this machine: where to connect and what to put in the request line.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Socket address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: HeaderValue,
    /// Path (and query) of the endpoint.
    pub path: String,
    /// `Authorization: Bearer …` to send, if any.
    pub bearer: Option<HeaderValue>,
}

impl Endpoint {
    /// Parses `http://HOST:PORT/PATH`. Only plain HTTP: the bench measures loopback.
    pub fn parse(url: &str, bearer: Option<&str>) -> anyhow::Result<Endpoint> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("only http:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = authority
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow::anyhow!("cannot resolve {authority}"))?;
        let bearer = bearer
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()?;
        Ok(Endpoint {
            addr,
            host: HeaderValue::from_str(authority)?,
            path: path.to_owned(),
            bearer,
        })
    }

    /// The same server, another path.
    pub fn with_path(&self, path: &str) -> Endpoint {
        Endpoint {
            path: path.to_owned(),
            ..self.clone()
        }
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(t) = &self.bearer {
            b = b.header(AUTHORIZATION, t.clone());
        }
        b
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct HttpConn {
    tx: http1::SendRequest<Full<Bytes>>,
}

impl HttpConn {
    /// Connects (with `TCP_NODELAY`) and spawns the connection's driver task.
    pub async fn open(addr: SocketAddr) -> Result<HttpConn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (tx, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn { tx })
    }

    /// Sends one request (waiting for the previous response body to be read).
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>> {
        self.tx.ready().await?;
        Ok(self.tx.send_request(req).await?)
    }

    /// Is the connection still usable?
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A JSON-RPC response, borrowed from its bytes.
#[derive(Deserialize)]
struct RpcResponse<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// Checks that `body` is the successful response to request `id`. `Ok(None)` when it is a
/// message about something else (a notification, another id).
fn check_response<'a>(body: &'a [u8], id: u64) -> Result<Option<&'a RawValue>> {
    let r: RpcResponse<'a> =
        serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("not a JSON-RPC message: {e}")))?;
    let Some(rid) = r.id else { return Ok(None) };
    if rid.get().parse::<u64>().ok() != Some(id) {
        if r.error.is_some() && rid.get() == "null" {
            return Err(ClientError::Rpc(
                r.error.map(|e| e.get().to_owned()).unwrap_or_default(),
            ));
        }
        return Ok(None);
    }
    if let Some(e) = r.error {
        return Err(ClientError::Rpc(e.get().chars().take(200).collect()));
    }
    match r.result {
        Some(res) => Ok(Some(res)),
        None => Ok(None),
    }
}

/// The result of request `id` in a whole response body, JSON or SSE. Returns the result's
/// size in bytes.
fn answer_in_body(body: &[u8], is_sse: bool, id: u64) -> Result<usize> {
    if !is_sse {
        return match check_response(body, id)? {
            Some(r) => Ok(r.get().len()),
            None => Err(ClientError::Protocol("the body does not answer the request".into())),
        };
    }
    for ev in parse_all(body) {
        if ev.kind != "message" || ev.data.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(r) = check_response(&ev.data, id)? {
            return Ok(r.get().len());
        }
    }
    Err(ClientError::Protocol(
        "the SSE stream ended without the response".into(),
    ))
}

fn is_sse(resp: &Response<Incoming>) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

async fn read_body(resp: Response<Incoming>) -> Result<Bytes> {
    Ok(resp.into_body().collect().await?.to_bytes())
}

/// A JSON-RPC request body.
pub fn request_body(id: u64, method: &str, params: Option<&str>) -> Bytes {
    match params {
        Some(p) => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{p}}}"#),
        None => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#),
    }
    .into()
}

fn initialize_body(id: u64) -> Bytes {
    request_body(
        id,
        "initialize",
        Some(&format!(
            r#"{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"mcpgate-bench","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        )),
    )
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// The negotiated protocol version in an `initialize` result.
fn negotiated_version(result: &RawValue) -> Result<HeaderValue> {
    #[derive(Deserialize)]
    struct Init<'a> {
        #[serde(rename = "protocolVersion", borrow)]
        protocol_version: &'a str,
    }
    let init: Init =
        serde_json::from_str(result.get()).map_err(|e| ClientError::Protocol(format!("bad initialize result: {e}")))?;
    HeaderValue::from_str(init.protocol_version).map_err(|_| ClientError::Protocol("bad protocolVersion".into()))
}

/// A Streamable HTTP session's identity: what every later request carries.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// `Mcp-Session-Id` (absent for a stateless server).
    pub id: Option<HeaderValue>,
    /// `MCP-Protocol-Version`.
    pub version: HeaderValue,
}

/// A connection to a Streamable HTTP endpoint; sessions are opened and used over it.
pub struct McpHttp {
    ep: Arc<Endpoint>,
    conn: HttpConn,
}

impl McpHttp {
    /// Connects to `ep`.
    pub async fn connect(ep: Arc<Endpoint>) -> Result<McpHttp> {
        let conn = HttpConn::open(ep.addr).await?;
        Ok(McpHttp { ep, conn })
    }

    /// Is the connection still usable?
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    fn post(&self, session: Option<&SessionInfo>, accept: Accept, body: Bytes) -> Request<Full<Bytes>> {
        let mut b = self
            .ep
            .request(Method::POST, &self.ep.path)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, accept.header());
        if let Some(s) = session {
            if let Some(id) = &s.id {
                b = b.header(SESSION_HEADER, id.clone());
            }
            b = b.header(VERSION_HEADER, s.version.clone());
        }
        b.body(Full::new(body)).expect("valid request")
    }

    /// Opens a session: `initialize`, then `notifications/initialized`.
    pub async fn initialize(&mut self, accept: Accept) -> Result<SessionInfo> {
        let resp = self.conn.send(self.post(None, accept, initialize_body(0))).await?;
        if resp.status() != StatusCode::OK {
            let status = resp.status().as_u16();
            let _ = read_body(resp).await;
            return Err(ClientError::Status(status));
        }
        let id = resp.headers().get(SESSION_HEADER).cloned();
        let sse = is_sse(&resp);
        let body = read_body(resp).await?;
        let version = if sse {
            let mut found = None;
            for ev in parse_all(&body) {
                if ev.kind == "message"
                    && !ev.data.is_empty()
                    && let Some(r) = check_response(&ev.data, 0)?
                {
                    found = Some(negotiated_version(r)?);
                    break;
                }
            }
            found.ok_or_else(|| ClientError::Protocol("no initialize response on the stream".into()))?
        } else {
            match check_response(&body, 0)? {
                Some(r) => negotiated_version(r)?,
                None => return Err(ClientError::Protocol("the body does not answer initialize".into())),
            }
        };
        let info = SessionInfo { id, version };
        self.notify(&info, INITIALIZED).await?;
        Ok(info)
    }

    /// POSTs a notification (202 expected).
    pub async fn notify(&mut self, session: &SessionInfo, body: &'static str) -> Result<()> {
        let resp = self
            .conn
            .send(self.post(Some(session), Accept::Both, Bytes::from_static(body.as_bytes())))
            .await?;
        let status = resp.status();
        read_body(resp).await?;
        if !status.is_success() {
            return Err(ClientError::Status(status.as_u16()));
        }
        Ok(())
    }

    /// Sends request `id` and checks its answer.
    pub async fn request(
        &mut self,
        session: &SessionInfo,
        accept: Accept,
        id: u64,
        method: &str,
        params: Option<&str>,
    ) -> Result<Answer> {
        let resp = self
            .conn
            .send(self.post(Some(session), accept, request_body(id, method, params)))
            .await?;
        let status = resp.status();
        let sse = is_sse(&resp);
        let body = read_body(resp).await?;
        let received = tokio::time::Instant::now();
        if status != StatusCode::OK {
            return Err(ClientError::Status(status.as_u16()));
        }
        Ok(Answer {
            result_bytes: answer_in_body(&body, sse, id)?,
            received,
        })
    }

    /// Sends request `id` and returns the whole answer body (for checks on its content).
    pub async fn request_body(&mut self, session: &SessionInfo, id: u64, method: &str) -> Result<Bytes> {
        let resp = self
            .conn
            .send(self.post(Some(session), Accept::Json, request_body(id, method, None)))
            .await?;
        let status = resp.status();
        let body = read_body(resp).await?;
        if status != StatusCode::OK {
            return Err(ClientError::Status(status.as_u16()));
        }
        Ok(body)
    }

    /// Ends a session with DELETE (405 from a server without sessions is fine).
    pub async fn delete(&mut self, session: &SessionInfo) -> Result<()> {
        let Some(id) = &session.id else { return Ok(()) };
        let req = self
            .ep
            .request(Method::DELETE, &self.ep.path)
            .header(SESSION_HEADER, id.clone())
            .header(VERSION_HEADER, session.version.clone())
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        let resp = self.conn.send(req).await?;
        let status = resp.status();
        read_body(resp).await?;
        if !status.is_success() && status != StatusCode::METHOD_NOT_ALLOWED && status != StatusCode::NOT_FOUND {
            return Err(ClientError::Status(status.as_u16()));
        }
        Ok(())
    }

    /// Opens the session's GET stream on this connection and returns it unread; the
    /// connection carries nothing else while the stream is open.
    pub async fn open_get(mut self, session: &SessionInfo) -> Result<OpenStream> {
        let mut b = self
            .ep
            .request(Method::GET, &self.ep.path)
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .header(VERSION_HEADER, session.version.clone());
        if let Some(id) = &session.id {
            b = b.header(SESSION_HEADER, id.clone());
        }
        let resp = self
            .conn
            .send(b.body(Full::new(Bytes::new())).expect("valid request"))
            .await?;
        if resp.status() != StatusCode::OK || !is_sse(&resp) {
            return Err(ClientError::Status(resp.status().as_u16()));
        }
        Ok(OpenStream {
            _conn: self.conn,
            _body: resp,
        })
    }
}

/// An open GET stream (and its connection), held idle; dropping it closes the connection.
pub struct OpenStream {
    _conn: HttpConn,
    _body: Response<Incoming>,
}

/// A legacy HTTP+SSE (2024-11-05) session: the GET stream on one connection, POSTs on
/// another; answers arrive on the stream.
pub struct LegacySession {
    ep: Arc<Endpoint>,
    post: HttpConn,
    post_path: String,
    rx: mpsc::Receiver<Vec<u8>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for LegacySession {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl LegacySession {
    /// Opens `GET ep.path`, waits for the `endpoint` event, and initializes.
    pub async fn open(ep: Arc<Endpoint>) -> Result<LegacySession> {
        let mut get = HttpConn::open(ep.addr).await?;
        let req = ep
            .request(Method::GET, &ep.path)
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .body(Full::new(Bytes::new()))
            .expect("valid request");
        let resp = get.send(req).await?;
        if resp.status() != StatusCode::OK {
            return Err(ClientError::Status(resp.status().as_u16()));
        }
        let (tx, rx) = mpsc::channel::<Vec<u8>>(1024);
        let (endpoint_tx, endpoint_rx) = tokio::sync::oneshot::channel::<String>();
        let reader = tokio::spawn(async move {
            let _get = get;
            let mut body = resp.into_body();
            let mut parser = SseParser::new();
            let mut endpoint_tx = Some(endpoint_tx);
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(chunk) = frame.into_data() else { continue };
                parser.push(&chunk);
                while let Some(ev) = parser.next_event() {
                    if ev.kind == "endpoint" {
                        if let Some(t) = endpoint_tx.take() {
                            let _ = t.send(String::from_utf8_lossy(&ev.data).into_owned());
                        }
                    } else if ev.kind == "message" && tx.send(ev.data).await.is_err() {
                        return;
                    }
                }
            }
        });
        let endpoint = endpoint_rx
            .await
            .map_err(|_| ClientError::Protocol("the SSE stream ended before the endpoint event".into()))?;
        // The endpoint may be a path or an absolute URL on the same server.
        let post_path = match endpoint
            .strip_prefix("http://")
            .and_then(|r| r.find('/').map(|i| &r[i..]))
        {
            Some(p) => p.to_owned(),
            None => endpoint,
        };
        let post = HttpConn::open(ep.addr).await?;
        let mut s = LegacySession {
            ep,
            post,
            post_path,
            rx,
            reader,
        };
        s.send(initialize_body(0)).await?;
        s.wait_answer(0).await?;
        s.send(Bytes::from_static(INITIALIZED.as_bytes())).await?;
        Ok(s)
    }

    async fn send(&mut self, body: Bytes) -> Result<()> {
        let req = self
            .ep
            .request(Method::POST, &self.post_path)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))
            .expect("valid request");
        let resp = self.post.send(req).await?;
        let status = resp.status();
        read_body(resp).await?;
        if !status.is_success() {
            return Err(ClientError::Status(status.as_u16()));
        }
        Ok(())
    }

    async fn wait_answer(&mut self, id: u64) -> Result<Answer> {
        loop {
            let Some(data) = self.rx.recv().await else {
                return Err(ClientError::Protocol("the SSE stream ended".into()));
            };
            let received = tokio::time::Instant::now();
            if let Some(r) = check_response(&data, id)? {
                return Ok(Answer {
                    result_bytes: r.get().len(),
                    received,
                });
            }
        }
    }

    /// Sends request `id` and waits for its answer on the stream.
    pub async fn request(&mut self, id: u64, method: &str, params: Option<&str>) -> Result<Answer> {
        self.send(request_body(id, method, params)).await?;
        self.wait_answer(id).await
    }
}

/// A stdio MCP server started for one session (newline-delimited JSON-RPC).
pub struct StdioSession {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: Vec<u8>,
}

impl StdioSession {
    /// Starts `command[0] command[1..]` and initializes.
    pub async fn open(command: &[String]) -> Result<StdioSession> {
        let (prog, args) = command
            .split_first()
            .ok_or_else(|| ClientError::Protocol("empty stdio command".into()))?;
        let mut child = Command::new(prog)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::with_capacity(256 * 1024, child.stdout.take().expect("piped"));
        let mut s = StdioSession {
            child,
            stdin,
            stdout,
            line: Vec::with_capacity(4096),
        };
        s.write(&initialize_body(0)).await?;
        s.wait_answer(0).await?;
        s.write(INITIALIZED.as_bytes()).await?;
        Ok(s)
    }

    async fn write(&mut self, msg: &[u8]) -> Result<()> {
        let mut line = Vec::with_capacity(msg.len() + 1);
        line.extend_from_slice(msg);
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn wait_answer(&mut self, id: u64) -> Result<Answer> {
        loop {
            self.line.clear();
            let n = self.stdout.read_until(b'\n', &mut self.line).await?;
            if n == 0 {
                return Err(ClientError::Protocol("the server closed stdout".into()));
            }
            let received = tokio::time::Instant::now();
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Some(r) = check_response(&self.line, id)? {
                return Ok(Answer {
                    result_bytes: r.get().len(),
                    received,
                });
            }
        }
    }

    /// Sends request `id` and waits for its answer.
    pub async fn request(&mut self, id: u64, method: &str, params: Option<&str>) -> Result<Answer> {
        self.write(&request_body(id, method, params)).await?;
        self.wait_answer(id).await
    }

    /// Closes stdin and waits (briefly) for the process to exit.
    pub async fn close(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(std::time::Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// How the bench reaches the server under test.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Streamable HTTP at an endpoint.
    Streamable {
        /// The MCP endpoint.
        ep: Arc<Endpoint>,
        /// Accepted response formats.
        accept: Accept,
    },
    /// Legacy HTTP+SSE; the endpoint is the SSE stream's URL.
    Legacy {
        /// The SSE endpoint.
        ep: Arc<Endpoint>,
    },
    /// A stdio server process per session.
    Stdio {
        /// Program and arguments.
        command: Vec<String>,
    },
}

impl Transport {
    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Streamable { .. } => "streamable_http",
            Transport::Legacy { .. } => "sse",
            Transport::Stdio { .. } => "stdio",
        }
    }
}

/// One initialized session on any transport.
pub enum Session {
    /// Streamable HTTP.
    Streamable {
        /// Its connection.
        conn: McpHttp,
        /// Its identity.
        info: SessionInfo,
        /// Accepted formats.
        accept: Accept,
    },
    /// Legacy SSE.
    Legacy(Box<LegacySession>),
    /// stdio.
    Stdio(Box<StdioSession>),
}

impl Session {
    /// Connects and initializes.
    pub async fn open(t: &Transport) -> Result<Session> {
        Ok(match t {
            Transport::Streamable { ep, accept } => {
                let mut conn = McpHttp::connect(ep.clone()).await?;
                let info = conn.initialize(*accept).await?;
                Session::Streamable {
                    conn,
                    info,
                    accept: *accept,
                }
            }
            Transport::Legacy { ep } => Session::Legacy(Box::new(LegacySession::open(ep.clone()).await?)),
            Transport::Stdio { command } => Session::Stdio(Box::new(StdioSession::open(command).await?)),
        })
    }

    /// One request.
    pub async fn request(&mut self, id: u64, method: &str, params: Option<&str>) -> Result<Answer> {
        match self {
            Session::Streamable { conn, info, accept } => conn.request(info, *accept, id, method, params).await,
            Session::Legacy(s) => s.request(id, method, params).await,
            Session::Stdio(s) => s.request(id, method, params).await,
        }
    }

    /// Ends the session the way its transport does (DELETE, closing the stream, closing stdin).
    pub async fn close(self) {
        match self {
            Session::Streamable { mut conn, info, .. } => {
                if !conn.is_closed() {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn.delete(&info)).await;
                }
            }
            Session::Legacy(s) => drop(s),
            Session::Stdio(s) => (*s).close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_checks() {
        let ok = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#;
        assert_eq!(answer_in_body(ok, false, 7).unwrap(), 14);
        assert!(matches!(answer_in_body(ok, false, 8), Err(ClientError::Protocol(_))));
        let err = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"nope"}}"#;
        assert!(matches!(answer_in_body(err, false, 7), Err(ClientError::Rpc(_))));
        let sse = b"id: 1-0\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n";
        assert_eq!(answer_in_body(sse, true, 3).unwrap(), 2);
    }

    #[test]
    fn endpoint_urls() {
        let ep = Endpoint::parse("http://127.0.0.1:8080/mcp", Some("tok")).unwrap();
        assert_eq!(ep.addr.port(), 8080);
        assert_eq!(ep.path, "/mcp");
        assert_eq!(ep.bearer.unwrap(), "Bearer tok");
        assert!(Endpoint::parse("https://127.0.0.1/mcp", None).is_err());
    }
}
