//! Building HTTP responses: JSON-RPC error bodies, JSON messages, SSE bodies with keep-alive.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use mcpgate_proto::{ErrorCode, Message, RawJson, sse};
use tokio_util::sync::CancellationToken;

use crate::streams::Live;

/// An HTTP error whose body is a JSON-RPC error response without id.
pub fn jsonrpc_error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = Message::error(RawJson::from_static("null"), code, message, None).to_bytes();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// One JSON-RPC message as an `application/json` response. A large member (a relayed
/// result) is sent from the buffer the upstream's answer was read into, not copied into a
/// new body (see [`Message::to_chunks`]).
pub fn json_message(msg: &Message) -> Response {
    let mut chunks = msg.to_chunks();
    let body = match chunks.len() {
        1 => Body::from(chunks.pop().unwrap_or_default()),
        _ => Body::new(Chunks::new(chunks)),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// A body of a few buffers sent one after another, its exact length known up front (so it
/// goes out with `Content-Length`, and hyper writes each buffer as it is).
struct Chunks {
    parts: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    fn new(parts: Vec<Bytes>) -> Chunks {
        let remaining = parts.iter().map(|p| p.len() as u64).sum();
        Chunks {
            parts: parts.into(),
            remaining,
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let next = self.parts.pop_front().map(|b| {
            self.remaining -= b.len() as u64;
            Ok(http_body::Frame::data(b))
        });
        std::task::Poll::Ready(next)
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// An SSE response fed by `live`, with keep-alive comments while idle; `on_idle` runs at each
/// keep-alive (to keep the session from expiring); ends when `live` ends or `stop` fires.
pub fn sse_response(
    live: Live,
    first: Option<Bytes>,
    keep_alive: Duration,
    stop: CancellationToken,
    on_idle: impl Fn() + Send + 'static,
) -> Response {
    let start = tokio::time::Instant::now() + keep_alive;
    let ticker = tokio::time::interval_at(start, keep_alive);
    struct St<F> {
        live: Live,
        first: Option<Bytes>,
        ticker: tokio::time::Interval,
        stop: CancellationToken,
        on_idle: F,
    }
    let st = St {
        live,
        first,
        ticker,
        stop,
        on_idle,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if let Some(f) = st.first.take() {
            return Some((Ok::<_, Infallible>(f), st));
        }
        tokio::select! {
            biased;
            m = st.live.recv() => m.map(|b| (Ok(b), st)),
            _ = st.stop.cancelled() => None,
            _ = st.ticker.tick() => {
                (st.on_idle)();
                Some((Ok(Bytes::from_static(sse::KEEP_ALIVE)), st))
            }
        }
    });
    event_stream(Body::from_stream(stream))
}

/// A `text/event-stream` response with `body`, uncached and not buffered by proxies.
pub(crate) fn event_stream(body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
