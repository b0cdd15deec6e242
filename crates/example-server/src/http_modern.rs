//! Streamable HTTP as revision 2026-07-28 defines it, at the same `/mcp` endpoint: one POST per
//! message, no sessions (`Mcp-Session-Id` is ignored and never minted), no GET stream (a
//! modern-only server answers GET and DELETE with 405), and the request metadata headers
//! (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) checked against the body (-32020
//! HeaderMismatch, HTTP 400). A request is answered with JSON, or with an SSE stream when it
//! asked for messages before its response (`_meta.progressToken`, `_meta` log level), when it
//! is `subscriptions/listen`, or with `--sse-responses`. Closing the response (stream) before
//! the answer is the request's cancellation.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use mcpgate_proto::modern::{self as proto, header as h};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::http::{Body, OnClose, SseBody, crash, header_str, json_response, sse_event, sse_response, status_response};
use crate::jsonrpc::{self, INVALID_REQUEST, Incoming, Kind, Method, Msg, RpcError};
use crate::modern::{self, ReqMeta};
use crate::options::Era;
use crate::server::{Ctx, Shared};
use crate::session::Version;

/// Whether the dual-era server serves this POST statelessly: it has no `Mcp-Session-Id`
/// (checked by the caller), is a single request that is not `initialize`, and carries
/// modern metadata (`_meta` protocol version), or names a non-session revision in its
/// `MCP-Protocol-Version` header.
pub fn is_modern(headers: &HeaderMap, msgs: &[Incoming], batch: bool) -> bool {
    if batch || msgs.len() != 1 {
        return false;
    }
    let msg = &msgs[0];
    if msg.method() == Some(Method::Initialize) {
        return false;
    }
    modern::has_modern_meta(msg) || header_str(headers, h::PROTOCOL_VERSION).is_some_and(proto::is_modern_version)
}

/// Whether the header version alone sends a dual-era POST to the modern path (before the body
/// is read): a version that is not a session-based one.
pub fn header_is_modern(headers: &HeaderMap) -> bool {
    header_str(headers, h::PROTOCOL_VERSION).is_some_and(|v| Version::parse(v).is_none())
}

fn error_reply(status: StatusCode, id: Option<&str>, e: &RpcError) -> Response<Body> {
    json_response(status, jsonrpc::error(id, e))
}

fn mismatch(id: Option<&str>, message: String) -> Response<Body> {
    error_reply(StatusCode::BAD_REQUEST, id, &modern::header_mismatch(message))
}

/// Decodes an `Mcp-Name`/`Mcp-Param-*` value: plain, or `=?base64?…?=` (UTF-8 inside).
pub fn decode_header_value(v: &str) -> Result<String, String> {
    match v
        .strip_prefix(h::BASE64_PREFIX)
        .and_then(|rest| rest.strip_suffix(h::BASE64_SUFFIX))
    {
        None => Ok(v.to_owned()),
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("its Base64 value does not decode ({e})"))?;
            String::from_utf8(bytes).map_err(|_| "its Base64 value is not UTF-8".to_owned())
        }
    }
}

/// A header as text: `Ok(None)` when absent, `Err` when not visible ASCII.
fn header_text<'a>(headers: &'a HeaderMap, name: &str, shown: &str) -> Result<Option<&'a str>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| format!("Header mismatch: the {shown} header contains invalid characters")),
    }
}

/// The `Mcp-Name` check: the header must be present and (decoded) equal the body's
/// `params.name` (tools/call, prompts/get) or `params.uri` (resources/read).
fn check_name(headers: &HeaderMap, msg: &Incoming) -> Result<(), String> {
    let Some(member) = proto::name_member(msg.method_name()) else {
        return Ok(());
    };
    #[derive(Deserialize)]
    struct P {
        name: Option<serde_json::Value>,
        uri: Option<serde_json::Value>,
    }
    let p: Option<P> = msg.parse_params().ok();
    let body = p
        .and_then(|p| if member == "uri" { p.uri } else { p.name })
        .and_then(|v| v.as_str().map(str::to_owned));
    let Some(header) = header_text(headers, h::NAME, "Mcp-Name")? else {
        return Err(format!(
            "Header mismatch: the Mcp-Name header is required for {}",
            msg.method_name()
        ));
    };
    let decoded = decode_header_value(header).map_err(|e| format!("Header mismatch: the Mcp-Name header: {e}"))?;
    match body {
        Some(b) if b == decoded => Ok(()),
        Some(b) => Err(format!(
            "Header mismatch: Mcp-Name header value {decoded:?} does not match body value {b:?}"
        )),
        None => Err(format!(
            "Header mismatch: Mcp-Name header value {decoded:?} does not match the body, which has no params.{member}"
        )),
    }
}

/// The `Mcp-Param-*` check of a `tools/call` whose tool marks parameters with
/// `x-mcp-header` (the `--xheader-tools` fixtures): each header must agree with its argument,
/// and an argument that is present needs its header. Other `Mcp-Param-*` headers are ignored.
fn check_params(shared: &Shared, headers: &HeaderMap, msg: &Incoming) -> Result<(), String> {
    if msg.method() != Some(Method::ToolsCall) {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct P<'a> {
        #[serde(borrow)]
        name: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        arguments: Option<&'a serde_json::value::RawValue>,
    }
    let Ok(P {
        name: Some(name),
        arguments,
    }) = msg.parse_params::<P<'_>>()
    else {
        return Ok(());
    };
    let params = shared.tools.header_params(&name);
    if params.is_empty() {
        return Ok(());
    }
    let arguments =
        arguments.and_then(|a| mcpgate_proto::RawJson::parse(Bytes::copy_from_slice(a.get().as_bytes())).ok());
    mcpgate_proto::xheader::validate(&params, headers, arguments.as_ref()).map_err(|m| m.to_string())
}

/// Serves one POST of the stateless revision (`msgs` parsed from its body).
pub async fn serve(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    mut msgs: Vec<Incoming>,
    batch: bool,
    abort: &CancellationToken,
) -> Response<Body> {
    if batch || msgs.len() != 1 {
        let e = RpcError::new(
            INVALID_REQUEST,
            "JSON-RPC batches are not part of protocol 2026-07-28: send one message per POST",
        );
        return error_reply(StatusCode::BAD_REQUEST, None, &e);
    }
    let msg = msgs.remove(0);
    let id = msg.id().map(str::to_owned);
    let id = id.as_deref();
    let method = match msg.kind {
        Kind::Request { method, .. } => method,
        Kind::Notification { .. } => {
            shared.on_notification(&shared.stateless, &msg);
            return status_response(StatusCode::ACCEPTED);
        }
        Kind::Response { .. } => {
            // Clients send no responses in 2026-07-28 (there are no server→client requests).
            shared.stats.count_response();
            return status_response(StatusCode::ACCEPTED);
        }
        Kind::Invalid { .. } => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                id,
                &RpcError::new(INVALID_REQUEST, "Invalid Request"),
            );
        }
    };
    if method == Method::Initialize && shared.opts.era == Era::Modern {
        if !shared.admit(method) {
            return crash(abort).await;
        }
        return error_reply(StatusCode::BAD_REQUEST, id, &modern::initialize_refused(&msg));
    }
    // Request metadata headers, then `_meta`, then the version.
    let header_version = match header_text(headers, h::PROTOCOL_VERSION, "MCP-Protocol-Version") {
        Ok(Some(v)) => v,
        Ok(None) => {
            return mismatch(
                id,
                "Header mismatch: the MCP-Protocol-Version header is required".into(),
            );
        }
        Err(e) => return mismatch(id, e),
    };
    match header_text(headers, h::METHOD, "Mcp-Method") {
        Ok(Some(m)) if m == msg.method_name() => {}
        Ok(Some(m)) => {
            return mismatch(
                id,
                format!(
                    "Header mismatch: Mcp-Method header value {m:?} does not match body value {:?}",
                    msg.method_name()
                ),
            );
        }
        Ok(None) => return mismatch(id, "Header mismatch: the Mcp-Method header is required".into()),
        Err(e) => return mismatch(id, e),
    }
    let (version, meta) = match modern::parse_meta(&msg) {
        Ok(v) => v,
        Err(e) => return error_reply(StatusCode::BAD_REQUEST, id, &e),
    };
    if header_version != version {
        return mismatch(
            id,
            format!(
                "Header mismatch: MCP-Protocol-Version header value {header_version:?} does not match _meta value {version:?}"
            ),
        );
    }
    if let Err(e) = modern::check_version(shared.opts.era, &version) {
        return error_reply(StatusCode::BAD_REQUEST, id, &e);
    }
    if let Err(e) = check_name(headers, &msg) {
        return mismatch(id, e);
    }
    if let Err(e) = check_params(shared, headers, &msg) {
        return mismatch(id, e);
    }
    if let Err(e) = modern::precheck(&msg, &meta) {
        return error_reply(status_of(&e), id, &e);
    }
    if !shared.admit(method) {
        return crash(abort).await;
    }
    run(shared, msg, meta).await
}

fn status_of(e: &RpcError) -> StatusCode {
    StatusCode::from_u16(modern::http_status_of(e.code)).unwrap_or(StatusCode::OK)
}

/// The status of a complete JSON answer: that of its error, if it is one.
fn reply_status(bytes: &Bytes) -> StatusCode {
    #[derive(Deserialize)]
    struct E {
        error: Option<C>,
    }
    #[derive(Deserialize)]
    struct C {
        code: i32,
    }
    match serde_json::from_slice::<E>(bytes) {
        Ok(E { error: Some(c) }) => StatusCode::from_u16(modern::http_status_of(c.code)).unwrap_or(StatusCode::OK),
        _ => StatusCode::OK,
    }
}

fn modern_sse(body: SseBody) -> Response<Body> {
    let mut resp = sse_response(body);
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

async fn run(shared: &Arc<Shared>, msg: Incoming, meta: ReqMeta) -> Response<Body> {
    let stream = shared.opts.sse_responses || modern::wants_stream(&msg, &meta);
    let listening = msg.method() == Some(Method::SubscriptionsListen);
    let mk_ctx = |out| Ctx {
        shared: shared.clone(),
        session: shared.stateless.clone(),
        out,
        version: Version::LATEST,
        meta: Some(meta),
    };
    if !stream && modern::runs_inline(shared, &msg) {
        return match modern::handle(&mk_ctx(shared.null_out()), &msg).await {
            Some(m) => json_response(reply_status(&m.bytes), m.bytes),
            None => status_response(StatusCode::ACCEPTED),
        };
    }
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    // Cancelled when the client goes away before the answer: the handler future (JSON) or
    // the response body (SSE) is dropped.
    let token = CancellationToken::new();
    tokio::spawn(modern::run(mk_ctx(tx), msg, token.clone(), true, None));
    let on_close = |token: CancellationToken| -> OnClose { Box::new(move |_| token.cancel()) };
    if stream {
        let mut body = SseBody::new(VecDeque::new(), rx, Some(1), Some(on_close(token)));
        if let Some(every) = shared.opts.listen_keep_alive.filter(|_| listening) {
            body = body.keep_alive(every);
        }
        return modern_sse(body);
    }
    let guard = token.clone().drop_guard();
    let resp = match rx.recv().await {
        Some(m) if m.is_response => json_response(reply_status(&m.bytes), m.bytes),
        Some(m) => {
            // Something must go out before the response: switch to SSE.
            modern_sse(SseBody::new(
                VecDeque::from([sse_event(&m.bytes)]),
                rx,
                Some(1),
                Some(on_close(token)),
            ))
        }
        None => status_response(StatusCode::ACCEPTED),
    };
    guard.disarm();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_sentinels() {
        assert_eq!(decode_header_value("us-west1").unwrap(), "us-west1");
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?=").unwrap(),
            "Hello, 世界"
        );
        assert_eq!(
            decode_header_value("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").unwrap(),
            "=?base64?literal?="
        );
        assert!(decode_header_value("=?base64?!!!?=").is_err());
        assert!(decode_header_value("=?base64?/w==?=").is_err());
    }
}
