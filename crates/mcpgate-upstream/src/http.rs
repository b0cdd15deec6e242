//! The shared HTTP client and the HTTP helpers both HTTP transports use: bounded body reads,
//! truncated error bodies, content-type checks and an incremental SSE event reader.
//!
//! This module knows nothing about MCP sessions; [`crate::sse`] and [`crate::streamable`]
//! build the protocol on top of it.

use std::sync::Once;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use mcpgate_proto::sse::{DecodeError, Decoder, Event};

use crate::UpstreamError;

/// How much of an error response body is kept for [`UpstreamError::Http`].
const ERROR_BODY_LIMIT: usize = 512;

/// How long reading an error body may take before we give up on it.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// The gateway's HTTP client for upstreams: one connection pool shared by every HTTP target.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient(pub(crate) reqwest::Client);

impl HttpClient {
    /// A client with HTTP/1.1 and HTTP/2 (ALPN), rustls with the `ring` provider and the
    /// platform's roots, `TCP_NODELAY`, a 10 s TCP/TLS connect timeout, no proxy, and no
    /// overall request timeout (SSE streams are long-lived; callers bound their calls).
    pub fn new() -> Self {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .no_proxy()
            .build()
            .expect("building the HTTP client cannot fail once a crypto provider is installed");
        HttpClient(client)
    }

    /// Wraps a client configured elsewhere (custom roots, client certificates, proxies).
    pub fn from_reqwest(client: reqwest::Client) -> Self {
        HttpClient(client)
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Installs rustls' `ring` provider as the process default, once. A provider installed
/// earlier by someone else is kept.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The media type of a response (`text/event-stream`, `application/json`) without its
/// parameters; empty when absent.
pub(crate) fn media_type(headers: &HeaderMap) -> &str {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("")
}

/// Is this `text/event-stream`?
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    media_type(headers).eq_ignore_ascii_case("text/event-stream")
}

/// Is this `application/json` (or a `+json` type)?
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let m = media_type(headers).as_bytes();
    m.eq_ignore_ascii_case(b"application/json") || (m.len() > 5 && m[m.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// Reads a whole body of at most `limit` bytes. A body in one chunk is returned without a copy.
pub(crate) async fn read_limited(resp: &mut reqwest::Response, limit: usize) -> Result<Bytes, UpstreamError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(UpstreamError::TooLarge(limit));
    }
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(UpstreamError::io)? {
        let have = first.as_ref().map_or(0, Bytes::len) + rest.len();
        if have + chunk.len() > limit {
            return Err(UpstreamError::TooLarge(limit));
        }
        if first.is_none() && rest.is_empty() {
            first = Some(chunk);
        } else {
            if let Some(f) = first.take() {
                rest.extend_from_slice(&f);
            }
            rest.extend_from_slice(&chunk);
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

/// Reads and discards a (small) body so the connection can be reused; gives up past `limit`.
pub(crate) async fn drain(mut resp: reqwest::Response, limit: usize) {
    let mut seen = 0;
    while let Ok(Some(chunk)) = resp.chunk().await {
        seen += chunk.len();
        if seen > limit {
            break;
        }
    }
}

/// Turns a non-success response into [`UpstreamError::Http`] with the start of its body.
pub(crate) async fn status_error(mut resp: reqwest::Response) -> UpstreamError {
    let status = resp.status().as_u16();
    let mut buf = Vec::new();
    let read = async {
        while buf.len() < ERROR_BODY_LIMIT {
            match resp.chunk().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(ERROR_BODY_TIMEOUT, read).await;
    buf.truncate(ERROR_BODY_LIMIT);
    let body = String::from_utf8_lossy(&buf).trim().to_owned();
    UpstreamError::Http { status, body }
}

/// Reads SSE events from a response body as they arrive, each bounded in size.
pub(crate) struct EventStream {
    resp: reqwest::Response,
    decoder: Decoder,
}

impl EventStream {
    pub(crate) fn new(resp: reqwest::Response, max_event: usize) -> Self {
        EventStream {
            resp,
            decoder: Decoder::new(max_event),
        }
    }

    /// The next event; `None` when the stream ended.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, UpstreamError> {
        loop {
            match self.decoder.next_event() {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => {}
                Err(DecodeError::TooLarge(n)) => return Err(UpstreamError::TooLarge(n)),
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.decoder.push(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => return Err(UpstreamError::io(e)),
            }
        }
    }
}

/// Does this event carry a JSON-RPC message (a `message` event with non-blank data)?
/// Priming events (an id and empty data) and unknown event types carry none.
pub(crate) fn carries_message(event: &Event) -> bool {
    event.kind() == "message" && event.data.iter().any(|b| !b.is_ascii_whitespace())
}
