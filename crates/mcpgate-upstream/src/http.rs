//! The shared HTTP client and the HTTP helpers both HTTP transports use: sending with
//! same-origin 307/308 redirects followed, bounded body reads, truncated error bodies,
//! content-type checks and an incremental SSE event reader.
//!
//! The client is hyper-util's pooled client over rustls (`ring`, platform roots), HTTP/1.1
//! and HTTP/2 by ALPN; the TLS side is built on the first `https://` request, so a gateway
//! whose upstreams are all plain HTTP never loads the platform's roots. It was chosen over reqwest by measurement: on loopback on a quiet
//! machine, raw POST round trips ran about twice as fast sequentially and three times as fast
//! with 32 in flight (`benches/http_client.rs`). This module knows nothing about MCP sessions; [`crate::sse`]
//! and [`crate::streamable`] build the protocol on top of it.

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mcpgate_proto::sse::{DecodeError, Decoder, Event};

use crate::UpstreamError;

/// How much of an error response body is kept for [`UpstreamError::Http`].
const ERROR_BODY_LIMIT: usize = 512;
/// How long reading an error body may take before we give up on it.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// Same-origin 307/308 redirects followed per request.
const MAX_REDIRECTS: usize = 5;

type Tls = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
type Plain = Client<HttpConnector, Full<Bytes>>;

/// The gateway's HTTP client for upstreams: one connection pool shared by every HTTP target.
/// Cheap to clone.
#[derive(Clone)]
pub struct HttpClient(Arc<Inner>);

struct Inner {
    /// `http://` upstreams.
    plain: Plain,
    /// `https://` upstreams. Built on first use unless a TLS config was given: loading the
    /// platform's roots takes milliseconds of start-up that a gateway with only plain-HTTP
    /// upstreams should not spend before it answers its first client.
    tls: OnceLock<Tls>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// A client with HTTP/1.1 and HTTP/2 (ALPN), rustls with the `ring` provider and the
    /// platform's roots, `TCP_NODELAY`, a 10 s TCP connect timeout, 90 s idle pooled
    /// connections, no proxy, and no overall request timeout (SSE streams are long-lived;
    /// callers bound their calls).
    pub fn new() -> Self {
        // Cheap, unlike loading the roots; others in the process may rely on it being done.
        install_crypto_provider();
        HttpClient(Arc::new(Inner {
            plain: plain_client(),
            tls: OnceLock::new(),
        }))
    }

    /// A client that trusts what `tls` says (custom roots, client certificates). Its ALPN
    /// protocols must be empty; they are set here.
    pub fn with_tls_config(tls: rustls::ClientConfig) -> Self {
        HttpClient(Arc::new(Inner {
            plain: plain_client(),
            tls: OnceLock::from(tls_client(tls)),
        }))
    }

    /// The client for `uri`: the TLS one for `https`, the plain one otherwise.
    fn client_for(&self, uri: &Uri) -> ClientRef<'_> {
        let inner = &*self.0;
        if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            ClientRef::Tls(inner.tls.get_or_init(|| tls_client(platform_tls_config())))
        } else {
            ClientRef::Plain(&inner.plain)
        }
    }

    /// Sends a request, following same-origin 307/308 redirects (method and body kept). The
    /// headers are borrowed: most callers send prebuilt ones, cloned once per attempt here.
    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut redirected: Option<Uri> = None;
        for _ in 0..=MAX_REDIRECTS {
            let target = redirected.as_ref().unwrap_or(uri);
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = method.clone();
            *req.uri_mut() = target.clone();
            *req.headers_mut() = headers.clone();
            let resp = match self.client_for(target) {
                ClientRef::Plain(c) => c.request(req).await,
                ClientRef::Tls(c) => c.request(req).await,
            }
            .map_err(UpstreamError::connect)?;
            let status = resp.status();
            if status != StatusCode::TEMPORARY_REDIRECT && status != StatusCode::PERMANENT_REDIRECT {
                return Ok(resp);
            }
            match redirect_target(target, resp.headers()) {
                Some(next) => {
                    tracing::debug!(from = %target, to = %next, "Following an upstream redirect.");
                    redirected = Some(next);
                }
                None => return Ok(resp),
            }
        }
        Err(UpstreamError::Protocol(format!("more than {MAX_REDIRECTS} redirects")))
    }
}

enum ClientRef<'a> {
    Plain(&'a Plain),
    Tls(&'a Tls),
}

fn tcp_connector() -> HttpConnector {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(10)));
    tcp
}

fn client_builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new());
    b
}

fn plain_client() -> Plain {
    client_builder().build(tcp_connector())
}

fn tls_client(tls: rustls::ClientConfig) -> Tls {
    install_crypto_provider();
    let mut tcp = tcp_connector();
    tcp.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    client_builder().build(https)
}

/// rustls with the `ring` provider and the platform's verifier (its roots).
fn platform_tls_config() -> rustls::ClientConfig {
    install_crypto_provider();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.try_with_platform_verifier());
    match tls {
        Ok(b) => b.with_no_client_auth(),
        Err(e) => {
            tracing::warn!(error = %e, "The platform's certificate verifier is unavailable; HTTPS upstreams will fail.");
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        }
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// The same-origin target of a redirect, if any.
fn redirect_target(from: &Uri, headers: &HeaderMap) -> Option<Uri> {
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let base = url::Url::parse(&from.to_string()).ok()?;
    let next = base.join(location).ok()?;
    if next.origin() != base.origin() {
        return None;
    }
    next.as_str().parse().ok()
}

/// Installs rustls' `ring` provider as the process default, once (for anything else in the
/// process that builds a rustls config). A provider installed earlier is kept.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Converts a configured URL for the HTTP client.
pub(crate) fn to_uri(url: &url::Url) -> Result<Uri, UpstreamError> {
    url.as_str()
        .parse()
        .map_err(|e| UpstreamError::Protocol(format!("the URL {url} cannot be requested: {e}")))
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

/// The next data chunk of a body; `None` at its end (trailers are skipped).
pub(crate) async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, UpstreamError> {
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
            Some(Err(e)) => return Err(UpstreamError::io(e)),
            None => return Ok(None),
        }
    }
}

/// Reads a whole body of at most `limit` bytes. A body in one chunk is returned without a copy.
pub(crate) async fn read_limited(resp: Response<Incoming>, limit: usize) -> Result<Bytes, UpstreamError> {
    let declared = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(UpstreamError::TooLarge(limit));
    }
    let mut body = resp.into_body();
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    while let Some(chunk) = next_chunk(&mut body).await? {
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
pub(crate) async fn drain(resp: Response<Incoming>, limit: usize) {
    let mut body = resp.into_body();
    let mut seen = 0;
    while let Ok(Some(chunk)) = next_chunk(&mut body).await {
        seen += chunk.len();
        if seen > limit {
            break;
        }
    }
}

/// Turns a non-success response into [`UpstreamError::Http`] with the start of its body.
pub(crate) async fn status_error(resp: Response<Incoming>) -> UpstreamError {
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let read = async {
        while buf.len() < ERROR_BODY_LIMIT {
            match next_chunk(&mut body).await {
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
    body: Incoming,
    decoder: Decoder,
}

impl EventStream {
    pub(crate) fn new(resp: Response<Incoming>, max_event: usize) -> Self {
        EventStream {
            body: resp.into_body(),
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
            match next_chunk(&mut self.body).await? {
                Some(chunk) => self.decoder.push(&chunk),
                None => return Ok(None),
            }
        }
    }
}

/// Does this event carry a JSON-RPC message (a `message` event with non-blank data)?
/// Priming events (an id and empty data) and unknown event types carry none.
pub(crate) fn carries_message(event: &Event) -> bool {
    event.kind() == "message" && event.data.iter().any(|b| !b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_origin() {
        let from: Uri = "http://127.0.0.1:9/mcp".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(LOCATION, "/mcp/".parse().unwrap());
        assert_eq!(redirect_target(&from, &h).unwrap(), "http://127.0.0.1:9/mcp/");
        h.insert(LOCATION, "http://example.invalid/mcp".parse().unwrap());
        assert!(redirect_target(&from, &h).is_none());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, "Text/Event-Stream; charset=utf-8".parse().unwrap());
        assert!(is_event_stream(&h) && !is_json(&h));
        h.insert(CONTENT_TYPE, "application/vnd.api+json".parse().unwrap());
        assert!(is_json(&h));
    }
}
