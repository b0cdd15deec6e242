//! The stateless generation of MCP (2026-07-28, "modern"), transport-independent: telling a
//! modern request apart, validating its `params._meta`, the errors that revision defines,
//! `server/discover`, and the dispatcher that answers a modern request (the session
//! dispatcher's answers with `resultType` and cache hints added, multi-round-trip tools, and
//! `subscriptions/listen`).
//!
//! Written from the specification pages basic/versioning, basic/patterns/* and
//! server/discover of revision 2026-07-28.

use std::borrow::Cow;

use bytes::Bytes;
use mcpgate_proto::modern as proto;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::jsonrpc::{self, Incoming, Kind, METHOD_NOT_FOUND, Method, Msg, RpcError};
use crate::options::Era;
use crate::server::{self, Ctx, Shared};
use crate::session::{InflightGuard, LogLevel, SUPPORTED_VERSIONS, caps};
use crate::{COUNTER_URI, listen, mrtr};

/// -32020 HeaderMismatch.
pub const HEADER_MISMATCH: i32 = proto::HEADER_MISMATCH.0 as i32;
/// -32021 MissingRequiredClientCapability.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 = proto::MISSING_REQUIRED_CLIENT_CAPABILITY.0 as i32;
/// -32022 UnsupportedProtocolVersion.
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = proto::UNSUPPORTED_PROTOCOL_VERSION.0 as i32;

/// The one stateless revision this server speaks.
pub const VERSION: &str = proto::V2026_07_28;

/// What a modern request declared in its `_meta`, for the handlers that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReqMeta {
    /// Client capability bits ([`caps`]) from `io.modelcontextprotocol/clientCapabilities`.
    pub caps: u8,
    /// `io.modelcontextprotocol/logLevel`: without it no `notifications/message` is sent.
    pub log_level: Option<LogLevel>,
}

/// The protocol versions this server lists in `server/discover` and in
/// `UnsupportedProtocolVersion` errors.
pub fn supported_versions(era: Era) -> Vec<&'static str> {
    let mut v = vec![VERSION];
    if era.session() {
        v.extend(SUPPORTED_VERSIONS);
    }
    v
}

#[derive(Deserialize)]
struct MetaOnly<'a> {
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MetaFields<'a> {
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<&'a RawValue>,
    #[serde(default, rename = "io.modelcontextprotocol/clientCapabilities")]
    capabilities: Option<Value>,
    #[serde(borrow, default, rename = "io.modelcontextprotocol/logLevel")]
    log_level: Option<&'a RawValue>,
}

fn meta_fields(msg: &Incoming) -> Option<MetaFields<'_>> {
    let m: MetaOnly<'_> = serde_json::from_str(msg.params()?).ok()?;
    serde_json::from_str(m.meta?.get()).ok()
}

/// Whether a request carries modern per-request metadata (a protocol version in `_meta`):
/// the dual-era server's test for "serve this statelessly".
pub fn has_modern_meta(msg: &Incoming) -> bool {
    meta_fields(msg).is_some_and(|m| m.version.is_some())
}

/// The `_meta` of a modern request, checked: the protocol version (returned), the client
/// capabilities and the optional log level. A missing or malformed field is -32602.
pub fn parse_meta(msg: &Incoming) -> Result<(String, ReqMeta), RpcError> {
    let Some(m) = meta_fields(msg) else {
        return Err(RpcError::invalid_params(
            "params._meta is required in protocol 2026-07-28: it must carry io.modelcontextprotocol/protocolVersion \
             and io.modelcontextprotocol/clientCapabilities",
        ));
    };
    let version = match m.version.map(|r| serde_json::from_str::<String>(r.get())) {
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            return Err(RpcError::invalid_params(
                "_meta io.modelcontextprotocol/protocolVersion must be a string",
            ));
        }
        None => {
            return Err(RpcError::invalid_params(
                "_meta io.modelcontextprotocol/protocolVersion is required",
            ));
        }
    };
    let c = match m.capabilities {
        Some(Value::Object(c)) => c,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "_meta io.modelcontextprotocol/clientCapabilities must be an object",
            ));
        }
        None => {
            return Err(RpcError::invalid_params(
                "_meta io.modelcontextprotocol/clientCapabilities is required (an empty object declares none)",
            ));
        }
    };
    let mut bits = 0;
    if c.contains_key("sampling") {
        bits |= caps::SAMPLING;
    }
    if c.contains_key("roots") {
        bits |= caps::ROOTS;
    }
    if let Some(Value::Object(e)) = c.get("elicitation")
        && (e.is_empty() || e.contains_key("form"))
    {
        bits |= caps::ELICIT_FORM;
    }
    let log_level = match m.log_level {
        None => None,
        Some(raw) => {
            let name: Option<String> = serde_json::from_str(raw.get()).ok();
            match name.as_deref().and_then(LogLevel::parse) {
                Some(l) => Some(l),
                None => {
                    return Err(RpcError::invalid_params(format!(
                        "_meta io.modelcontextprotocol/logLevel {} is not a log level",
                        raw.get()
                    )));
                }
            }
        }
    };
    Ok((version, ReqMeta { caps: bits, log_level }))
}

/// -32022 UnsupportedProtocolVersion with `data: {supported, requested}`.
pub fn unsupported_version(era: Era, requested: &str) -> RpcError {
    let supported = supported_versions(era);
    RpcError {
        code: UNSUPPORTED_PROTOCOL_VERSION,
        message: format!(
            "Unsupported protocol version {requested:?}: this server supports {}",
            supported.join(", ")
        )
        .into(),
        data: Some(json!({ "supported": supported, "requested": requested })),
    }
}

/// Checks that a modern request's version is one this server serves statelessly.
pub fn check_version(era: Era, version: &str) -> Result<(), RpcError> {
    if version == VERSION {
        Ok(())
    } else {
        Err(unsupported_version(era, version))
    }
}

/// The answer of a modern-only server to `initialize`: the spec leaves the code to the
/// implementation and asks that the error name the supported versions, so it is
/// UnsupportedProtocolVersion (-32022) for the version the client asked for, with
/// `data.supported` — which is also what a dual-era client reads as "this server is modern".
pub fn initialize_refused(msg: &Incoming) -> RpcError {
    #[derive(Deserialize)]
    struct P {
        #[serde(default, rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    let requested = msg
        .parse_params::<P>()
        .ok()
        .and_then(|p| p.protocol_version)
        .unwrap_or_default();
    let mut e = unsupported_version(Era::Modern, &requested);
    e.message = format!(
        "This server speaks only MCP {VERSION}, which has no initialize (use server/discover and per-request _meta); \
         it does not support protocol version {requested:?}"
    )
    .into();
    e
}

/// -32020 HeaderMismatch.
pub fn header_mismatch(message: String) -> RpcError {
    RpcError::new(HEADER_MISMATCH, message)
}

/// -32021 MissingRequiredClientCapability with `data.requiredCapabilities`.
pub fn missing_capability(name: &str, required: Value) -> RpcError {
    RpcError {
        code: MISSING_REQUIRED_CLIENT_CAPABILITY,
        message: format!("This request needs the client capability {name}, which _meta clientCapabilities lacks")
            .into(),
        data: Some(json!({ "requiredCapabilities": required })),
    }
}

/// Whether a modern server implements `method` (everything else is -32601).
pub fn implements(method: Method) -> bool {
    matches!(
        method,
        Method::ServerDiscover
            | Method::SubscriptionsListen
            | Method::ToolsList
            | Method::ToolsCall
            | Method::PromptsList
            | Method::PromptsGet
            | Method::ResourcesList
            | Method::ResourcesTemplatesList
            | Method::ResourcesRead
            | Method::CompletionComplete
    )
}

/// -32601 for a method 2026-07-28 does not have (or this server does not implement).
pub fn method_not_found(msg: &Incoming) -> RpcError {
    let name = msg.method_name();
    let removed = matches!(
        msg.method(),
        Some(
            Method::Ping
                | Method::LoggingSetLevel
                | Method::ResourcesSubscribe
                | Method::ResourcesUnsubscribe
                | Method::Initialize
        )
    );
    if removed {
        RpcError::new(
            METHOD_NOT_FOUND,
            format!("Method not found: {name} (not part of protocol {VERSION})"),
        )
    } else {
        RpcError::method_not_found(name)
    }
}

/// Whether a modern request is answered at once without a task (nothing sent before its
/// response, nothing to wait for).
pub fn runs_inline(shared: &Shared, msg: &Incoming) -> bool {
    match msg.method() {
        Some(Method::SubscriptionsListen) => false,
        Some(Method::ServerDiscover) => shared.opts.slow_start().is_zero(),
        Some(Method::ToolsCall) => shared.runs_inline(msg),
        _ => true,
    }
}

/// Whether the request asked for messages before its response (`progressToken` or
/// `logLevel` in `_meta`): an HTTP server then answers with an SSE stream.
pub fn wants_stream(msg: &Incoming, meta: &ReqMeta) -> bool {
    #[derive(Deserialize)]
    struct M<'a> {
        #[serde(borrow, default, rename = "progressToken")]
        progress: Option<&'a RawValue>,
    }
    if meta.log_level.is_some() || msg.method() == Some(Method::SubscriptionsListen) {
        return true;
    }
    serde_json::from_str::<MetaOnly<'_>>(msg.params().unwrap_or("{}"))
        .ok()
        .and_then(|m| m.meta)
        .and_then(|m| serde_json::from_str::<M<'_>>(m.get()).ok())
        .is_some_and(|m| m.progress.is_some())
}

/// The checks a request must pass before it runs, after the transport's own: method known,
/// and (multi-round-trip tools) the client capability the first round needs. On HTTP these
/// come back with status 400/404, so they are made before any stream starts.
pub fn precheck(msg: &Incoming, meta: &ReqMeta) -> Result<(), RpcError> {
    let method = msg.method().unwrap_or(Method::Other);
    if !implements(method) {
        return Err(method_not_found(msg));
    }
    if method == Method::ToolsCall {
        mrtr::precheck(msg, meta)?;
    }
    Ok(())
}

/// `cacheScope` of this server's cacheable results.
fn cache_scope(shared: &Shared) -> &'static str {
    if shared.opts.cache_private { "private" } else { "public" }
}

fn discover(shared: &Shared, id: &str) -> Bytes {
    let result = json!({
        "resultType": proto::RESULT_COMPLETE,
        "supportedVersions": supported_versions(shared.opts.era),
        "capabilities": {
            "tools": { "listChanged": true },
            "prompts": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "logging": {},
            "completions": {},
        },
        "_meta": {
            proto::meta::SERVER_INFO: {
                "name": shared.opts.name,
                "title": "mcpgate example server",
                "version": env!("CARGO_PKG_VERSION"),
            }
        },
        "instructions": server::INSTRUCTIONS,
        "ttlMs": shared.opts.ttl_ms,
        "cacheScope": cache_scope(shared),
    });
    jsonrpc::result(id, &result)
}

/// Answers one modern request (already validated by [`parse_meta`]/[`check_version`];
/// `ctx.meta` is set). `None` means no response is due.
pub async fn handle(ctx: &Ctx, msg: &Incoming) -> Option<Msg> {
    let Kind::Request { method, .. } = msg.kind else {
        return None;
    };
    let id = msg.id().unwrap_or("null");
    let meta = ctx.meta.unwrap_or(ReqMeta {
        caps: 0,
        log_level: None,
    });
    if let Err(e) = precheck(msg, &meta) {
        return Some(Msg::response(jsonrpc::error(Some(id), &e)));
    }
    match method {
        Method::ServerDiscover => {
            // The slow-start fault delays the first thing a modern client asks, as it delays
            // `initialize` for a session-based one.
            let delay = ctx.shared.opts.slow_start();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some(Msg::response(discover(&ctx.shared, id)))
        }
        Method::SubscriptionsListen => listen::listen(ctx, msg, id).await,
        Method::PromptsGet | Method::ResourcesRead if has_request_state(msg) => {
            // This server never asks for input on these, so any state is not one it issued.
            let e = RpcError::invalid_params("Unknown requestState: this server issued none for this request");
            Some(Msg::response(jsonrpc::error(Some(id), &e)))
        }
        _ => {
            let reply = server::handle_request(ctx, msg).await?;
            Some(finish(&ctx.shared, msg, reply))
        }
    }
}

fn has_request_state(msg: &Incoming) -> bool {
    #[derive(Deserialize)]
    struct P<'a> {
        #[serde(borrow, default, rename = "requestState")]
        state: Option<&'a RawValue>,
    }
    msg.parse_params::<P<'_>>().is_ok_and(|p| p.state.is_some())
}

/// Adds what 2026-07-28 results carry to a session-style answer: `resultType` (unless the
/// handler set one, as multi-round-trip results do), and `ttlMs`/`cacheScope` on the cacheable
/// results. Errors and bytes that are not JSON (the garbage faults) pass unchanged.
fn finish(shared: &Shared, msg: &Incoming, reply: Msg) -> Msg {
    let Ok(mut v) = serde_json::from_slice::<Value>(&reply.bytes) else {
        return reply;
    };
    let Some(result) = v.get_mut("result").and_then(Value::as_object_mut) else {
        return reply;
    };
    if result.contains_key("resultType") {
        return reply;
    }
    result.insert("resultType".into(), json!(proto::RESULT_COMPLETE));
    let cacheable = matches!(
        msg.method(),
        Some(Method::ToolsList | Method::PromptsList | Method::ResourcesList | Method::ResourcesTemplatesList)
    );
    if cacheable {
        result.insert("ttlMs".into(), json!(shared.opts.ttl_ms));
        result.insert("cacheScope".into(), json!(cache_scope(shared)));
    } else if msg.method() == Some(Method::ResourcesRead) {
        #[derive(Deserialize)]
        struct U<'a> {
            #[serde(borrow)]
            uri: Cow<'a, str>,
        }
        let live = msg.parse_params::<U<'_>>().is_ok_and(|u| u.uri == COUNTER_URI);
        result.insert("ttlMs".into(), json!(if live { 0 } else { shared.opts.ttl_ms }));
        result.insert("cacheScope".into(), json!(cache_scope(shared)));
    }
    Msg {
        bytes: Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
        is_response: reply.is_response,
    }
}

/// Runs a modern request as a task and sends its response to `ctx.out`, unless `token` is
/// cancelled first (HTTP: the client closed the response stream; stdio:
/// `notifications/cancelled`, through `guard`); then nothing more is sent. `count_cancel`
/// counts the cancellation here (HTTP; stdio counts it where the notification arrives).
pub async fn run(ctx: Ctx, msg: Incoming, token: CancellationToken, count_cancel: bool, guard: Option<InflightGuard>) {
    let res = tokio::select! {
        biased;
        _ = token.cancelled() => {
            if count_cancel {
                ctx.shared.stats.count_cancellation();
            }
            None
        }
        r = handle(&ctx, &msg) => r,
    };
    drop(guard);
    if let Some(m) = res {
        let _ = ctx.out.send(m).await;
    }
}

/// The HTTP status of a modern error response: 400 for the errors the transport page pins to
/// it (header mismatch, missing capability, unsupported version), 404 for an unknown method,
/// 200 otherwise (a JSON-RPC error about the request's content, e.g. an unknown tool).
pub fn http_status_of(code: i32) -> u16 {
    match code {
        c if c == HEADER_MISMATCH || c == MISSING_REQUIRED_CLIENT_CAPABILITY || c == UNSUPPORTED_PROTOCOL_VERSION => {
            400
        }
        METHOD_NOT_FOUND => 404,
        _ => 200,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(params: Value) -> Incoming {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":params});
        jsonrpc::parse(Bytes::from(body.to_string())).unwrap().0.pop().unwrap()
    }

    #[test]
    fn parses_and_rejects_meta() {
        let ok = req(json!({"_meta":{
            "io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":{"sampling":{},"elicitation":{"form":{}}},
            "io.modelcontextprotocol/logLevel":"warning"}}));
        assert!(has_modern_meta(&ok));
        let (v, m) = parse_meta(&ok).unwrap();
        assert_eq!(v, "2026-07-28");
        assert_eq!(m.caps, caps::SAMPLING | caps::ELICIT_FORM);
        assert_eq!(m.log_level, Some(LogLevel::Warning));
        for bad in [
            json!({}),
            json!({"_meta":{}}),
            json!({"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}),
            json!({"_meta":{"io.modelcontextprotocol/protocolVersion":7,
                            "io.modelcontextprotocol/clientCapabilities":{}}}),
            json!({"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities":[]}}),
            json!({"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities":{},
                            "io.modelcontextprotocol/logLevel":"loud"}}),
        ] {
            assert_eq!(
                parse_meta(&req(bad.clone())).unwrap_err().code,
                crate::jsonrpc::INVALID_PARAMS,
                "{bad}"
            );
        }
    }

    #[test]
    fn version_errors_name_the_supported_versions() {
        let e = check_version(Era::Modern, "1900-01-01").unwrap_err();
        assert_eq!(e.code, -32022);
        assert_eq!(
            e.data.unwrap(),
            json!({"supported":["2026-07-28"],"requested":"1900-01-01"})
        );
        let e = check_version(Era::Dual, "2025-11-25").unwrap_err();
        assert_eq!(e.data.unwrap()["supported"][1], "2025-11-25");
        assert!(check_version(Era::Modern, "2026-07-28").is_ok());
        assert_eq!(http_status_of(-32022), 400);
        assert_eq!(http_status_of(-32601), 404);
    }
}
