//! The legacy HTTP+SSE transport (protocol 2024-11-05).
//!
//! One long-lived GET on the SSE URL carries every server message as a `message` event; its
//! first `endpoint` event names the URL (same origin, resolved against the SSE URL) to which
//! each client message is POSTed. The end of the GET stream is the end of the session.
//! Responses are matched by [`crate::pending`]; this module only moves bytes.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use url::Url;

use crate::connection::{Shared, TraceHeaders};
use crate::http::{EventStream, carries_message, drain, is_event_stream, media_type, status_error, to_uri};
use crate::pending::Driver;
use crate::{HttpClient, UpstreamError};

/// How much of a POST answer body is read (and discarded) so the connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;

/// The client side of a legacy SSE server. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SseTransport(Arc<Inner>);

struct Inner {
    http: HttpClient,
    endpoint: Uri,
    /// Configured headers plus `Content-Type: application/json`.
    post_headers: HeaderMap,
    shared: Arc<Shared>,
}

impl SseTransport {
    /// Opens the SSE stream, waits for the `endpoint` event and starts the reader task.
    pub(crate) async fn connect(
        http: &HttpClient,
        url: &Url,
        headers: &HeaderMap,
        shared: Arc<Shared>,
    ) -> Result<Self, UpstreamError> {
        let mut get_headers = headers.clone();
        get_headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let resp = http
            .send(Method::GET, &to_uri(url)?, &get_headers, Bytes::new())
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        if !is_event_stream(resp.headers()) {
            return Err(UpstreamError::Protocol(format!(
                "the SSE endpoint answered `{}`, not text/event-stream",
                media_type(resp.headers())
            )));
        }
        let mut events = EventStream::new(resp, shared.max_message_bytes);
        let endpoint = loop {
            let Some(event) = events.next().await? else {
                return Err(UpstreamError::Closed(
                    "the SSE stream ended before the endpoint event".into(),
                ));
            };
            if event.kind() == "endpoint" {
                break resolve_endpoint(url, &event.data)?;
            }
            if carries_message(&event) {
                dispatch(&shared, event.data);
            }
        };
        tracing::debug!(target = %shared.target, endpoint = %endpoint, "Upstream SSE session open.");
        tokio::spawn(read_stream(events, shared.clone()));
        let mut post_headers = headers.clone();
        post_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(SseTransport(Arc::new(Inner {
            http: http.clone(),
            endpoint: to_uri(&endpoint)?,
            post_headers,
            shared,
        })))
    }

    /// POSTs one message; the answer (if any) arrives on the SSE stream.
    pub(crate) async fn post(&self, body: Bytes) -> Result<(), UpstreamError> {
        self.post_traced(body, None).await
    }

    async fn post_traced(&self, body: Bytes, trace: Option<TraceHeaders>) -> Result<(), UpstreamError> {
        let inner = &self.0;
        let headers = match &trace {
            None => std::borrow::Cow::Borrowed(&inner.post_headers),
            Some(t) => {
                let mut h = inner.post_headers.clone();
                t.apply(&mut h);
                std::borrow::Cow::Owned(h)
            }
        };
        let resp = inner.http.send(Method::POST, &inner.endpoint, &headers, body).await?;
        let status = resp.status();
        if status.is_success() {
            drain(resp, DRAIN_LIMIT).await;
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND {
            // The server no longer knows the session in the endpoint URL.
            inner.shared.finish(Some(UpstreamError::SessionExpired));
            return Err(UpstreamError::SessionExpired);
        }
        Err(status_error(resp).await)
    }

    /// A driver that POSTs a request.
    pub(crate) fn post_driver(&self, body: Bytes, trace: Option<TraceHeaders>) -> Driver {
        let this = self.clone();
        Box::pin(async move { this.post_traced(body, trace).await })
    }
}

/// Resolves the `endpoint` event's URL and refuses one on another origin (a server must not
/// be able to send our credentials elsewhere).
fn resolve_endpoint(base: &Url, data: &[u8]) -> Result<Url, UpstreamError> {
    let text = std::str::from_utf8(data)
        .map_err(|_| UpstreamError::Protocol("the endpoint event is not UTF-8".into()))?
        .trim();
    let endpoint = base
        .join(text)
        .map_err(|e| UpstreamError::Protocol(format!("the endpoint event `{text}` is not a URL: {e}")))?;
    if endpoint.origin() != base.origin() {
        return Err(UpstreamError::Protocol(format!(
            "the endpoint event names another origin ({})",
            endpoint.origin().ascii_serialization()
        )));
    }
    Ok(endpoint)
}

fn dispatch(shared: &Shared, data: Bytes) {
    if let Err(e) = shared.dispatch_bytes(data, None, None) {
        tracing::warn!(target = %shared.target, error = %e, "Skipped an SSE event that is not a JSON-RPC message.");
    }
}

async fn read_stream(mut events: EventStream, shared: Arc<Shared>) {
    loop {
        let next = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            next = events.next() => next,
        };
        match next {
            Ok(Some(event)) => {
                if carries_message(&event) {
                    dispatch(&shared, event.data);
                }
            }
            Ok(None) => {
                shared.finish(Some(UpstreamError::Closed("the SSE stream ended".into())));
                return;
            }
            Err(e) => {
                shared.finish(Some(e));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_resolution() {
        let base = Url::parse("http://127.0.0.1:8080/mcp/sse").unwrap();
        assert_eq!(
            resolve_endpoint(&base, b"/messages?sessionId=abc").unwrap().as_str(),
            "http://127.0.0.1:8080/messages?sessionId=abc"
        );
        assert_eq!(
            resolve_endpoint(&base, b" message?s=1\n").unwrap().as_str(),
            "http://127.0.0.1:8080/mcp/message?s=1"
        );
        assert!(resolve_endpoint(&base, b"http://127.0.0.1:8080/m").is_ok());
        for bad in [
            &b"http://evil.example/m"[..],
            b"http://127.0.0.1:8081/m",
            b"https://127.0.0.1:8080/m",
        ] {
            assert!(matches!(resolve_endpoint(&base, bad), Err(UpstreamError::Protocol(_))));
        }
    }
}
