//! Stateless (2026-07-28) requests on the Streamable HTTP endpoint: era detection, the
//! header checks (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` against the body), and
//! the response (JSON, or an SSE stream when progress or requested log messages come first;
//! no session, no event ids, no resumption). Closing the response stream cancels the request.
//! The semantics are in `mcpgate_core::modern`.

// Early-return helpers give back the finished HTTP error response; it is the cold path.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use mcpgate_core::modern::{self, Reply, Status};
use mcpgate_proto::modern::{self as wire, meta};
use mcpgate_proto::raw::{member, str_member};
use mcpgate_proto::{ErrorCode, Message, MessageKind, RawJson, sse};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Does this POST come from a stateless client? Per the spec's backward-compatibility
/// section: a request on a session (`Mcp-Session-Id`) or a session-based `initialize` (with
/// `params.protocolVersion`) is session-based; one that names a stateless protocol version
/// in `MCP-Protocol-Version` or carries `_meta["io.modelcontextprotocol/protocolVersion"]`
/// is stateless; anything else keeps today's session-based handling.
pub(crate) fn is_modern(headers: &HeaderMap, msg: &Message) -> bool {
    if headers.contains_key(super::streamable::SESSION_HEADER) {
        return false;
    }
    let params = msg.params.as_ref();
    if msg.method() == "initialize" && params.and_then(|p| member(p, "protocolVersion")).is_some() {
        return false;
    }
    if let Some(v) = headers
        .get(wire::header::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        && wire::is_modern_version(v)
    {
        return true;
    }
    params
        .and_then(|p| member(p, "_meta"))
        .and_then(|m| member(&m, meta::PROTOCOL_VERSION))
        .is_some()
}

fn mismatch(id: &RawJson, message: String) -> Reply {
    Reply::error(id.clone(), wire::HEADER_MISMATCH, &message, None, Status::BadRequest)
}

/// The header checks of the stateless transport (spec: Server Validation), before `_meta`.
fn check_headers(headers: &HeaderMap, msg: &Message) -> Result<(), Reply> {
    let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
    let method = match headers.get(wire::header::METHOD) {
        None => {
            return Err(mismatch(
                &id,
                "Header mismatch: required header Mcp-Method is missing".into(),
            ));
        }
        Some(v) => v.to_str().unwrap_or(""),
    };
    if method != msg.method() {
        return Err(mismatch(
            &id,
            format!(
                "Header mismatch: Mcp-Method header value '{method}' does not match body value '{}'",
                msg.method()
            ),
        ));
    }
    let body_version = msg
        .params
        .as_ref()
        .and_then(|p| member(p, "_meta"))
        .and_then(|m| str_member(&m, meta::PROTOCOL_VERSION));
    match headers.get(wire::header::PROTOCOL_VERSION) {
        None => {
            return Err(mismatch(
                &id,
                "Header mismatch: required header MCP-Protocol-Version is missing".into(),
            ));
        }
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            if let Some(b) = body_version.as_deref()
                && b != v
            {
                return Err(mismatch(
                    &id,
                    format!(
                        "Header mismatch: MCP-Protocol-Version header value '{v}' does not match _meta value '{b}'"
                    ),
                ));
            }
        }
    }
    if let Some(key) = wire::name_member(msg.method()) {
        let body = msg.params.as_ref().and_then(|p| str_member(p, key));
        match headers.get(wire::header::NAME) {
            None => {
                return Err(mismatch(
                    &id,
                    format!(
                        "Header mismatch: required header Mcp-Name is missing for {}",
                        msg.method()
                    ),
                ));
            }
            Some(v) => {
                let Some(h) = modern::decode_header_value(v.as_bytes()) else {
                    return Err(mismatch(&id, "Header mismatch: Mcp-Name has invalid characters".into()));
                };
                if body.as_deref() != Some(h.as_str()) {
                    return Err(mismatch(
                        &id,
                        format!(
                            "Header mismatch: Mcp-Name header value '{h}' does not match body value '{}'",
                            body.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The `Mcp-Param-*` checks of a `tools/call` (spec: Custom Headers from Tool Parameters):
/// the headers of the tool's `x-mcp-header` parameters must agree with its arguments. Tools
/// without annotations (nearly all) cost one lookup; headers that name no annotated
/// parameter are ignored.
async fn check_param_headers(
    state: &AppState,
    identity: Option<&mcpgate_auth::Identity>,
    headers: &HeaderMap,
    msg: &Message,
) -> Result<(), Reply> {
    let Some(params) = msg.params.as_ref() else {
        return Ok(());
    };
    let Some(name) = str_member(params, "name") else {
        return Ok(());
    };
    let Some(xparams) = state.gw.tool_header_params(&name, identity).await else {
        return Ok(());
    };
    let args = member(params, "arguments");
    mcpgate_proto::xheader::validate(&xparams, headers, args.as_ref()).map_err(|e| {
        let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
        mismatch(&id, e.to_string())
    })
}

fn status(s: Status) -> StatusCode {
    match s {
        Status::Ok => StatusCode::OK,
        Status::BadRequest => StatusCode::BAD_REQUEST,
        Status::NotFound => StatusCode::NOT_FOUND,
    }
}

fn json_reply(reply: Reply) -> Response {
    (
        status(reply.status),
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        reply.message.to_bytes(),
    )
        .into_response()
}

fn sse_event(msg: &Message) -> Bytes {
    let mut buf = BytesMut::new();
    sse::write_event(&mut buf, None, None, &msg.to_bytes());
    buf.freeze()
}

/// An SSE response fed by `rx`; dropping it (the client went away) fires `cancel`.
fn sse_body(rx: mpsc::Receiver<Bytes>, cancel: CancellationToken, keep_alive: std::time::Duration) -> Response {
    struct St {
        rx: mpsc::Receiver<Bytes>,
        _guard: tokio_util::sync::DropGuard,
        ticker: tokio::time::Interval,
    }
    let start = tokio::time::Instant::now() + keep_alive;
    let st = St {
        rx,
        _guard: cancel.drop_guard(),
        ticker: tokio::time::interval_at(start, keep_alive),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        tokio::select! {
            biased;
            m = st.rx.recv() => m.map(|b| (Ok::<_, Infallible>(b), st)),
            _ = st.ticker.tick() => Some((Ok(Bytes::from_static(sse::KEEP_ALIVE)), st)),
        }
    });
    crate::response::event_stream(Body::from_stream(stream))
}

/// A `subscriptions/listen` response stream: the acknowledgment and the notifications as they
/// come, keep-alive comments while idle; when the gateway ends the subscription, the final
/// response. The client closing it ends the subscription (dropping `listen`).
fn listen_stream(listen: modern::listen::Listen, keep_alive: std::time::Duration) -> Response {
    struct St {
        listen: Option<modern::listen::Listen>,
        ticker: tokio::time::Interval,
    }
    let start = tokio::time::Instant::now() + keep_alive;
    let st = St {
        listen: Some(listen),
        ticker: tokio::time::interval_at(start, keep_alive),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        let listen = st.listen.as_mut()?;
        let closed = listen.closed.clone();
        tokio::select! {
            biased;
            m = listen.rx.recv() => m.map(|m| (Ok::<_, Infallible>(sse_event(&m)), st)),
            _ = closed.cancelled() => {
                let last = sse_event(&listen.final_response());
                st.listen = None;
                Some((Ok(last), st))
            }
            _ = st.ticker.tick() => Some((Ok(Bytes::from_static(sse::KEEP_ALIVE)), st)),
        }
    });
    crate::response::event_stream(Body::from_stream(stream))
}

/// One stateless POST.
pub(crate) async fn post(
    state: AppState,
    identity: Option<Arc<mcpgate_auth::Identity>>,
    headers: HeaderMap,
    msg: Message,
    accept_sse: bool,
) -> Response {
    match msg.kind() {
        MessageKind::Request => {}
        // 2026-07-28 defines no client notifications over HTTP (closing the stream cancels).
        MessageKind::Notification => return StatusCode::ACCEPTED.into_response(),
        _ => {
            return crate::jsonrpc_error(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                "Bad Request: a 2026-07-28 client sends no JSON-RPC responses",
            );
        }
    }
    let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
    if let Err(r) = check_headers(&headers, &msg) {
        return json_reply(r);
    }
    let meta = match modern::parse_meta(&msg) {
        Ok(m) => m,
        Err(r) => return json_reply(*r),
    };
    if modern::Method::of(msg.method()).is_none() {
        return json_reply(modern::method_not_found(id, msg.method()));
    }
    if msg.method() == "tools/call"
        && let Err(r) = check_param_headers(&state, identity.as_deref(), &headers, &msg).await
    {
        return json_reply(r);
    }
    if msg.method() == "subscriptions/listen" {
        return match state.gw.modern_listen(msg, meta, identity).await {
            Ok(listen) => listen_stream(listen, state.gw.config().listen.keep_alive),
            Err(r) => json_reply(*r),
        };
    }
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let cancel = CancellationToken::new();
    let gw = state.gw.clone();
    let work_cancel = cancel.clone();
    let mut work = Box::pin(async move { gw.modern_request(msg, meta, identity, tx, work_cancel).await });
    // Cancels the request if this handler is dropped before it answers (client gone).
    let guard = cancel.clone().drop_guard();
    tokio::select! {
        biased;
        Some(first) = rx.recv(), if accept_sse => {
            guard.disarm();
            let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
            let _ = out_tx.try_send(sse_event(&first));
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        biased;
                        Some(m) = rx.recv() => {
                            if out_tx.send(sse_event(&m)).await.is_err() {
                                break;
                            }
                        }
                        reply = &mut work => {
                            while let Ok(m) = rx.try_recv() {
                                let _ = out_tx.send(sse_event(&m)).await;
                            }
                            let _ = out_tx.send(sse_event(&reply.message)).await;
                            break;
                        }
                    }
                }
            });
            sse_body(out_rx, cancel, state.gw.config().listen.keep_alive)
        }
        reply = &mut work => {
            guard.disarm();
            // Messages the request sent in the same poll that produced its answer (a log
            // message drained just before the result) still precede it: an SSE response.
            let mut before = Vec::new();
            while accept_sse && let Ok(m) = rx.try_recv() {
                before.push(m);
            }
            if before.is_empty() {
                return json_reply(reply);
            }
            let (out_tx, out_rx) = mpsc::channel::<Bytes>(before.len() + 1);
            for m in before.iter().chain(std::iter::once(&reply.message)) {
                let _ = out_tx.try_send(sse_event(m));
            }
            drop(out_tx);
            sse_body(out_rx, CancellationToken::new(), state.gw.config().listen.keep_alive)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(method: &str, params: serde_json::Value) -> Message {
        Message::request(RawJson::from_static("1"), method, Some(RawJson::from_value(&params)))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn era_detection() {
        let meta = serde_json::json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        // Per-request _meta without a session: stateless.
        assert!(is_modern(&HeaderMap::new(), &msg("tools/list", meta.clone())));
        // The same on a session: session-based.
        assert!(!is_modern(
            &headers(&[("mcp-session-id", "abc")]),
            &msg("tools/list", meta)
        ));
        // A session-based initialize, even with a 2026 header, stays session-based.
        let init = serde_json::json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {}});
        assert!(!is_modern(
            &headers(&[("mcp-protocol-version", "2026-07-28")]),
            &msg("initialize", init)
        ));
        // A stateless header alone is enough (then the missing _meta is reported as such).
        assert!(is_modern(
            &headers(&[("mcp-protocol-version", "2026-07-28")]),
            &msg("ping", serde_json::json!({}))
        ));
        // A session-based header without _meta: session-based (today's behaviour).
        assert!(!is_modern(
            &headers(&[("mcp-protocol-version", "2025-06-18")]),
            &msg("tools/list", serde_json::json!({}))
        ));
    }

    #[test]
    fn header_checks() {
        let call = msg(
            "tools/call",
            serde_json::json!({"name": "echo", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
        );
        let base = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call")];
        let code = |h: &[(&'static str, &str)]| {
            check_headers(&headers(h), &call)
                .err()
                .map(|r| (ErrorCode(r.message.error_object().unwrap().code), r.status))
        };
        let mismatch = Some((wire::HEADER_MISMATCH, Status::BadRequest));
        assert_eq!(code(&[base[0], base[1], ("mcp-name", "echo")]), None);
        assert_eq!(code(&[base[0], base[1], ("mcp-name", "=?base64?ZWNobw==?=")]), None);
        assert_eq!(
            code(&[base[0], base[1]]),
            mismatch,
            "Mcp-Name is required for tools/call"
        );
        assert_eq!(code(&[base[0], base[1], ("mcp-name", "other")]), mismatch);
        assert_eq!(
            code(&[base[0], ("mcp-method", "tools/list"), ("mcp-name", "echo")]),
            mismatch
        );
        assert_eq!(
            code(&[base[0], ("mcp-name", "echo")]),
            mismatch,
            "Mcp-Method is required"
        );
        assert_eq!(
            code(&[base[1], ("mcp-name", "echo")]),
            mismatch,
            "MCP-Protocol-Version is required"
        );
        assert_eq!(
            code(&[("mcp-protocol-version", "2025-11-25"), base[1], ("mcp-name", "echo")]),
            mismatch,
            "header and _meta versions must agree"
        );
    }
}
