//! The client side of the stateless generation (MCP 2026-07-28) for one upstream.
//!
//! A [`crate::Connection`] to a modern server has no `initialize` and no session. What it does
//! instead, all here:
//!
//! - **Era discovery** ([`classify`]): `server/discover` is sent first, with the 2026-07-28
//!   version in `_meta` (and the `MCP-Protocol-Version`/`Mcp-Method` headers on HTTP). A
//!   `DiscoverResult` naming 2026-07-28, or a recognized 2026 error, means a modern server;
//!   any other answer — another error, an HTTP 4xx whose body is not a 2026 error, or silence
//!   within [`PROBE_TIMEOUT`] on stdio — means a session-based one, and the connection falls
//!   back to `initialize` (basic/versioning "Backward Compatibility", stdio and Streamable HTTP
//!   "Backward Compatibility").
//! - **Per-request metadata** ([`stamp_meta`]): every request carries
//!   `_meta["io.modelcontextprotocol/protocolVersion"]`, and the client capabilities and
//!   clientInfo (the caller's own when it put them there, else the connection's defaults).
//! - **Request headers** ([`RequestHeaders`]): `Mcp-Method`, `Mcp-Name` (Base64 sentinel
//!   when the value is not plain visible ASCII) on Streamable HTTP.
//! - **Session-shaped methods** that 2026-07-28 removed are mapped so the router above need
//!   not know the era: `ping` becomes a `server/discover` round trip, `logging/setLevel` is
//!   accepted (the level travels per request), `resources/subscribe`/`unsubscribe` edit the
//!   URI set of the connection's `subscriptions/listen` stream, which is reopened with it.
//! - **The listen stream** ([`listen_loop`]): one `subscriptions/listen` per connection, for
//!   the list changes the server announces and the subscribed resources; its notifications
//!   reach the inbound handler like a session-based server's; reopened with backoff when it
//!   ends, and a reopening after a break announces every list as changed (what was missed
//!   is unknown).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use mcpgate_proto::modern::{self as wire, meta};
use mcpgate_proto::raw::{elements, member, str_member};
use mcpgate_proto::xheader;
use mcpgate_proto::{ErrorCode, Message, ObjectEdit, RawJson};
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::{InitializeResult, UpstreamError};

/// How long a `server/discover` probe waits before concluding the server is session-based
/// (stdio servers of that generation may ignore a request sent before `initialize`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a `resources/subscribe` mapped onto the listen stream waits for the reopened
/// stream's acknowledgment.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// First and largest wait before reopening a listen stream that failed.
const LISTEN_BACKOFF_START: Duration = Duration::from_millis(500);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Which protocol generation to speak to a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Generation {
    /// Probe with `server/discover`, fall back to `initialize` (the default).
    #[default]
    Auto,
    /// Session-based only: `initialize` straight away (no probe).
    Session,
    /// 2026-07-28 only: the probe must find a modern server.
    Stateless,
}

impl Generation {
    /// The name used in configuration, logs and status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::Auto => "auto",
            Generation::Session => "session",
            Generation::Stateless => "stateless",
        }
    }
}

/// Verdict of a `server/discover` probe.
pub(crate) enum Probe {
    /// A modern server speaking 2026-07-28; what it said, shaped like an `initialize` result.
    Modern(InitializeResult),
    /// A session-based server: go on with `initialize`. Why, for the log.
    Legacy(String),
}

/// Interprets the outcome of the `server/discover` probe.
pub(crate) fn classify(outcome: Result<Message, UpstreamError>) -> Result<Probe, UpstreamError> {
    let message = match outcome {
        Ok(m) => m,
        // Unreachable, or the process could not start: not a question of generation.
        Err(e @ (UpstreamError::Connect(_) | UpstreamError::Spawn(_) | UpstreamError::TooLarge(_))) => return Err(e),
        Err(UpstreamError::Http { status, body }) => {
            // Streamable HTTP: a modern server answers 400 with a 2026 error in the body.
            if let Ok(m) = Message::parse(bytes::Bytes::from(body.clone()))
                && let Some(err) = &m.error
                && is_modern_error(err)
            {
                return modern_error(err);
            }
            return Ok(Probe::Legacy(format!("HTTP {status} to server/discover")));
        }
        Err(e) => return Ok(Probe::Legacy(format!("server/discover failed: {e}"))),
    };
    if let Some(err) = &message.error {
        if is_modern_error(err) {
            return modern_error(err);
        }
        return Ok(Probe::Legacy(format!("server/discover answered {}", err.as_str())));
    }
    let Some(result) = message.result else {
        return Ok(Probe::Legacy(
            "server/discover answered neither result nor error".into(),
        ));
    };
    let versions = member(&result, "supportedVersions")
        .and_then(|v| elements(&v))
        .unwrap_or_default();
    let names: Vec<String> = versions
        .iter()
        .filter_map(|v| v.as_json_str().map(|s| s.as_str().to_owned()))
        .collect();
    if !names.iter().any(|v| v == wire::V2026_07_28) {
        return Ok(Probe::Legacy(format!(
            "server/discover lists {names:?}, without {}",
            wire::V2026_07_28
        )));
    }
    Ok(Probe::Modern(discover_as_init(result)))
}

/// A JSON-RPC error only a 2026-07-28 server sends (header mismatch, missing capability,
/// unsupported version).
fn is_modern_error(err: &RawJson) -> bool {
    member(err, "code")
        .and_then(|c| c.as_i64())
        .is_some_and(|c| wire::is_stateless_error(ErrorCode(c)))
}

/// A modern server refused the probe. It does not take `initialize`, so there is no
/// fallback: either it speaks a version mcpgate does not, or it refused our request.
fn modern_error(err: &RawJson) -> Result<Probe, UpstreamError> {
    let message = str_member(err, "message")
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let supported = member(err, "data")
        .and_then(|d| member(&d, "supported"))
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "not stated".into());
    Err(UpstreamError::Protocol(format!(
        "the upstream speaks the stateless generation but refused server/discover for {}: {message} (it supports {supported})",
        wire::V2026_07_28
    )))
}

/// The `server/discover` result in the shape of an `initialize` result, which is what the
/// router reads (capabilities, serverInfo, instructions).
fn discover_as_init(result: RawJson) -> InitializeResult {
    let object = |raw: Option<RawJson>| {
        raw.filter(RawJson::is_object)
            .unwrap_or_else(|| RawJson::from_static("{}"))
    };
    let server_info = member(&result, "_meta")
        .and_then(|m| member(&m, meta::SERVER_INFO))
        .or_else(|| member(&result, "serverInfo"));
    InitializeResult {
        protocol_version: wire::V2026_07_28.to_owned(),
        capabilities: object(member(&result, "capabilities")),
        server_info: object(server_info),
        instructions: str_member(&result, "instructions").map(|s| s.as_str().to_owned()),
        raw: result,
    }
}

/// `params` with the 2026-07-28 `_meta` keys: the protocol version always, the client
/// capabilities and clientInfo unless the caller already put its own there. Params that have
/// all three already (the router stamps each client's own) are passed on as they are, without
/// being copied.
pub(crate) fn stamp_meta(params: Option<&RawJson>, capabilities: &RawJson, client_info: &RawJson) -> RawJson {
    if let Some(p) = params
        && let Some(m) = member(p, "_meta")
        && str_member(&m, meta::PROTOCOL_VERSION).is_some_and(|v| v.as_str() == wire::V2026_07_28)
        && member(&m, meta::CLIENT_CAPABILITIES).is_some_and(|c| c.is_object())
        && member(&m, meta::CLIENT_INFO).is_some()
    {
        return p.clone();
    }
    let mut p = params.and_then(|p| ObjectEdit::parse(p).ok()).unwrap_or_default();
    let mut m = p
        .get("_meta")
        .and_then(|m| ObjectEdit::parse(m).ok())
        .unwrap_or_default();
    m.set(meta::PROTOCOL_VERSION, RawJson::string(wire::V2026_07_28));
    if m.get(meta::CLIENT_CAPABILITIES).is_none_or(|c| !c.is_object()) {
        m.set(meta::CLIENT_CAPABILITIES, capabilities.clone());
    }
    if m.get(meta::CLIENT_INFO).is_none() {
        m.set(meta::CLIENT_INFO, client_info.clone());
    }
    p.set("_meta", m.to_raw());
    p.to_raw()
}

/// The headers a 2026-07-28 request carries on Streamable HTTP besides the fixed ones.
#[derive(Clone, Debug)]
pub(crate) struct RequestHeaders(pub(crate) Vec<(HeaderName, HeaderValue)>);

impl RequestHeaders {
    /// `Mcp-Method`, `Mcp-Name` when the method names something, and `MCP-Protocol-Version`
    /// (needed on the probe, before the connection's fixed headers know the version).
    pub(crate) fn for_request(method: &str, params: Option<&RawJson>) -> RequestHeaders {
        let mut out = Vec::with_capacity(3);
        out.push((
            HeaderName::from_static(wire::header::METHOD),
            xheader::encode_value(method),
        ));
        if let Some(key) = wire::name_member(method)
            && let Some(name) = params.and_then(|p| str_member(p, key))
        {
            out.push((
                HeaderName::from_static(wire::header::NAME),
                xheader::encode_value(name.as_str()),
            ));
        }
        out.push((
            HeaderName::from_static(wire::header::PROTOCOL_VERSION),
            HeaderValue::from_static(wire::V2026_07_28),
        ));
        RequestHeaders(out)
    }

    pub(crate) fn apply(&self, h: &mut http::HeaderMap) {
        for (k, v) in &self.0 {
            h.insert(k.clone(), v.clone());
        }
    }
}

/// The `x-mcp-header` parameters of a server's tools, learnt from the `tools/list` results
/// that pass through ([`xheader::ToolHeaders`]): a Streamable HTTP client MUST mirror the
/// annotated arguments of a `tools/call` into `Mcp-Param-*` headers, and the server MUST
/// reject a call whose value is in the body but not in a header. Shared by every connection
/// to one target, so per-client connections know what the main one listed.
#[derive(Default)]
pub struct ToolHeaders(Mutex<xheader::ToolHeaders>);

impl std::fmt::Debug for ToolHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolHeaders").finish_non_exhaustive()
    }
}

impl ToolHeaders {
    /// Learns the annotated tools of one `tools/list` result page.
    pub(crate) fn record(&self, result: &RawJson) {
        // Invalid tools are reported (and left out) where the merged list is built.
        let _ = self.0.lock().learn_page(result);
    }

    /// The `Mcp-Param-*` headers of a `tools/call` with these params.
    pub(crate) fn headers_for(&self, params: Option<&RawJson>) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        self.0.lock().for_call(params).map_err(|e| e.to_string())
    }
}

/// What a modern connection keeps besides its transport.
pub(crate) struct ModernState {
    /// Defaults for requests that carry no capabilities/clientInfo of their own.
    pub(crate) capabilities: RawJson,
    pub(crate) client_info: RawJson,
    /// The server's capabilities (from `server/discover`).
    pub(crate) server_capabilities: RawJson,
    /// Resource URIs subscribed through the listen stream.
    pub(crate) subscriptions: Mutex<BTreeSet<String>>,
    /// Reopen the listen stream (its filter changed).
    pub(crate) reopen: Notify,
    /// Number of the last listen stream acknowledged, and its acknowledged URIs.
    pub(crate) acked: watch::Sender<(u64, Vec<String>)>,
    /// The upstream id of the open listen request, if any (not counted as in flight).
    pub(crate) listen_id: Mutex<Option<u64>>,
    /// `x-mcp-header` parameters of the server's tools.
    pub(crate) tool_headers: Arc<ToolHeaders>,
}

impl ModernState {
    pub(crate) fn new(
        capabilities: RawJson,
        client_info: RawJson,
        server_capabilities: RawJson,
        tool_headers: Arc<ToolHeaders>,
    ) -> Self {
        ModernState {
            tool_headers,
            capabilities,
            client_info,
            server_capabilities,
            subscriptions: Mutex::new(BTreeSet::new()),
            reopen: Notify::new(),
            acked: watch::Sender::new((0, Vec::new())),
            listen_id: Mutex::new(None),
        }
    }

    /// Does the server announce changes of `list` (`tools`, `prompts`, `resources`)?
    fn list_changes(&self, list: &str) -> bool {
        member(&self.server_capabilities, list)
            .and_then(|c| member(&c, "listChanged"))
            .is_some_and(|v| v.as_str() == "true")
    }

    fn subscribable(&self) -> bool {
        member(&self.server_capabilities, "resources")
            .and_then(|c| member(&c, "subscribe"))
            .is_some_and(|v| v.as_str() == "true")
    }

    /// Is a listen stream worth opening at all?
    pub(crate) fn wants_listen(&self) -> bool {
        ["tools", "prompts", "resources"].iter().any(|l| self.list_changes(l))
            || (self.subscribable() && !self.subscriptions.lock().is_empty())
    }

    /// The `subscriptions/listen` params for the current filter.
    fn listen_params(&self) -> RawJson {
        let mut n = ObjectEdit::new();
        for (list, key) in [
            ("tools", "toolsListChanged"),
            ("prompts", "promptsListChanged"),
            ("resources", "resourcesListChanged"),
        ] {
            if self.list_changes(list) {
                n.set(key, RawJson::from_static("true"));
            }
        }
        let uris: Vec<String> = self.subscriptions.lock().iter().cloned().collect();
        if !uris.is_empty() {
            n.set("resourceSubscriptions", RawJson::from_value(&uris));
        }
        let mut p = ObjectEdit::new();
        p.set("notifications", n.to_raw());
        p.to_raw()
    }
}

/// Is `message` a notification of a listen stream (it carries a subscription id)?
/// The acknowledgment is consumed here; others go on to the handler, unrelated to any
/// request (they belong to the connection, not to whichever call is in flight).
pub(crate) fn on_subscription_notification(state: &ModernState, message: &Message) -> Option<bool> {
    let params = message.params.as_ref()?;
    let sub = member(params, "_meta").and_then(|m| member(&m, meta::SUBSCRIPTION_ID))?;
    if message.method() != "notifications/subscriptions/acknowledged" {
        return Some(false);
    }
    let Some(id) = sub.as_i64().map(|i| i as u64) else {
        return Some(true);
    };
    if *state.listen_id.lock() != Some(id) {
        return Some(true);
    }
    let uris = member(params, "notifications")
        .and_then(|n| member(&n, "resourceSubscriptions"))
        .and_then(|u| elements(&u))
        .unwrap_or_default()
        .iter()
        .filter_map(|u| u.as_json_str().map(|s| s.as_str().to_owned()))
        .collect();
    state.acked.send_modify(|a| *a = (a.0 + 1, uris));
    Some(true)
}

/// Keeps one `subscriptions/listen` stream open while the connection lives.
pub(crate) async fn listen_loop(conn: Weak<crate::connection::ConnInner>) {
    let mut backoff = LISTEN_BACKOFF_START;
    let mut broken = false;
    loop {
        let Some(inner) = conn.upgrade() else { return };
        let Some(state) = inner.shared.modern.get().cloned() else {
            return;
        };
        if inner.shared.is_closed() {
            return;
        }
        let cancel = inner.shared.cancel.clone();
        if !state.wants_listen() {
            drop(inner);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = state.reopen.notified() => continue,
            }
        }
        let pending = crate::connection::send_listen(&inner, state.listen_params());
        let listen_id = pending.id();
        *state.listen_id.lock() = Some(listen_id);
        let target = inner.shared.target.clone();
        let handler_shared = inner.shared.clone();
        drop(inner);
        let acked_before = state.acked.borrow().0;
        let mut acked = state.acked.subscribe();
        let resync = broken;
        let watch_ack = async {
            let _ = acked.wait_for(|a| a.0 > acked_before).await;
            if resync {
                // Whatever changed while the stream was down went unannounced.
                for kind in ["tools", "prompts", "resources"] {
                    if state.list_changes(kind) {
                        let msg = Message::notification(&format!("notifications/{kind}/list_changed"), None);
                        handler_shared.dispatch(msg, None);
                    }
                }
            }
            std::future::pending::<()>().await
        };
        let ended = tokio::select! {
            _ = cancel.cancelled() => return,
            r = pending => Some(r),
            _ = state.reopen.notified() => None,
            _ = watch_ack => None,
        };
        *state.listen_id.lock() = None;
        match ended {
            None => {
                // A new filter: end this stream (stdio: cancel it; HTTP: dropping the request
                // closed its response stream) and open the next one at once.
                if let Some(inner) = conn.upgrade() {
                    crate::connection::cancel_listen(&inner, listen_id).await;
                }
                broken = false;
                backoff = LISTEN_BACKOFF_START;
                continue;
            }
            Some(Ok(m)) if m.error.is_none() => {
                tracing::debug!(target = %target, "The upstream ended its subscriptions/listen stream; reopening.");
                broken = true;
                backoff = LISTEN_BACKOFF_START;
            }
            Some(Ok(m)) => {
                tracing::warn!(target = %target, error = ?m.error.map(|e| e.as_str().to_owned()), "The upstream refused subscriptions/listen; retrying later.");
                broken = true;
            }
            Some(Err(UpstreamError::Connect(e))) => {
                // Nothing listens any more: the server is gone. Closing the connection lets its
                // owner mark the target down and reconnect with backoff (as a session-based
                // server's lost GET stream does).
                tracing::warn!(target = %target, error = %e, "The upstream is unreachable; closing the connection.");
                handler_shared.finish(Some(UpstreamError::Closed(format!("upstream unreachable: {e}"))));
                return;
            }
            Some(Err(e)) => {
                tracing::debug!(target = %target, error = %e, "The upstream subscriptions/listen stream failed; reopening.");
                broken = true;
            }
        }
        let wait = backoff;
        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Waits until a listen stream opened after `since` is acknowledged; true when `uri` is in
/// its acknowledged filter.
pub(crate) async fn await_ack(state: &ModernState, since: u64, uri: &str) -> Result<bool, UpstreamError> {
    let mut rx = state.acked.subscribe();
    match tokio::time::timeout(ACK_TIMEOUT, rx.wait_for(|a| a.0 > since)).await {
        Ok(Ok(a)) => Ok(a.1.iter().any(|u| u == uri)),
        Ok(Err(_)) => Err(UpstreamError::Closed("the connection was closed".into())),
        Err(_) => Err(UpstreamError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(bytes::Bytes::from(s.to_owned())).unwrap()
    }

    #[test]
    fn probe_verdicts() {
        let modern = msg(
            r#"{"jsonrpc":"2.0","id":0,"result":{"resultType":"complete","supportedVersions":["2026-07-28"],
            "capabilities":{"tools":{"listChanged":true}},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}},
            "instructions":"hi"}}"#,
        );
        let Ok(Probe::Modern(init)) = classify(Ok(modern)) else {
            panic!("a DiscoverResult naming 2026-07-28 is a modern server")
        };
        assert_eq!(init.protocol_version, "2026-07-28");
        assert_eq!(init.server_info.as_str(), r#"{"name":"s","version":"1"}"#);
        assert_eq!(init.instructions.as_deref(), Some("hi"));

        let not_found = msg(r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32601,"message":"Method not found"}}"#);
        assert!(matches!(classify(Ok(not_found)), Ok(Probe::Legacy(_))));
        let invalid = msg(r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32602,"message":"not initialized"}}"#);
        assert!(matches!(classify(Ok(invalid)), Ok(Probe::Legacy(_))));
        assert!(matches!(classify(Err(UpstreamError::Timeout)), Ok(Probe::Legacy(_))));
        let other = msg(r#"{"jsonrpc":"2.0","id":0,"result":{"supportedVersions":["2027-01-01"]}}"#);
        assert!(matches!(classify(Ok(other)), Ok(Probe::Legacy(_))));

        let unsupported = msg(
            r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32022,"message":"no","data":{"supported":["2027-01-01"]}}}"#,
        );
        assert!(matches!(classify(Ok(unsupported)), Err(UpstreamError::Protocol(m)) if m.contains("2027-01-01")));
        let http_modern = UpstreamError::Http {
            status: 400,
            body: r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32020,"message":"Header mismatch"}}"#.into(),
        };
        assert!(classify(Err(http_modern)).is_err());
        let http_legacy = UpstreamError::Http {
            status: 400,
            body: r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: No valid session ID"}}"#
                .into(),
        };
        assert!(matches!(classify(Err(http_legacy)), Ok(Probe::Legacy(_))));
        assert!(
            classify(Err(UpstreamError::Connect(std::sync::Arc::new(std::io::Error::other(
                "refused"
            )))))
            .is_err()
        );
    }

    #[test]
    fn meta_is_stamped_without_overriding_the_callers() {
        let caps = RawJson::from_static(r#"{"sampling":{}}"#);
        let info = RawJson::from_static(r#"{"name":"mcpgate","version":"1"}"#);
        let p = stamp_meta(None, &caps, &info);
        let v: serde_json::Value = p.decode().unwrap();
        assert_eq!(v["_meta"][meta::PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(v["_meta"][meta::CLIENT_CAPABILITIES]["sampling"], serde_json::json!({}));
        let own = RawJson::from_static(
            r#"{"name":"t","_meta":{"progressToken":7,"io.modelcontextprotocol/protocolVersion":"2025-01-01",
            "io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},"io.modelcontextprotocol/clientInfo":{"name":"c"}}}"#,
        );
        let v: serde_json::Value = stamp_meta(Some(&own), &caps, &info).decode().unwrap();
        assert_eq!(v["name"], "t");
        assert_eq!(v["_meta"]["progressToken"], 7);
        assert_eq!(v["_meta"][meta::PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(
            v["_meta"][meta::CLIENT_CAPABILITIES],
            serde_json::json!({"elicitation":{}})
        );
        assert_eq!(v["_meta"][meta::CLIENT_INFO]["name"], "c");
        // Complete already (the router stamped the client's own): the very same bytes.
        let done = stamp_meta(Some(&own), &caps, &info);
        assert!(std::ptr::eq(
            stamp_meta(Some(&done), &caps, &info).as_bytes(),
            done.as_bytes()
        ));
    }

    #[test]
    fn request_headers_name_the_method_and_target() {
        let p = RawJson::from_static(r#"{"name":"héllo"}"#);
        let h = RequestHeaders::for_request("tools/call", Some(&p));
        let get = |n: &str| {
            h.0.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(get("mcp-method").as_deref(), Some("tools/call"));
        assert_eq!(get("mcp-name").as_deref(), Some("=?base64?aMOpbGxv?="));
        assert_eq!(get("mcp-protocol-version").as_deref(), Some("2026-07-28"));
        let h = RequestHeaders::for_request("tools/list", None);
        assert!(h.0.iter().all(|(k, _)| k != "mcp-name"));
    }
}
