//! Stateless (2026-07-28, "modern") clients in front of session-based upstreams.
//!
//! A modern request carries everything about its client in its own `_meta` (protocol
//! version, capabilities, clientInfo, log level); there is no session. The gateway does not
//! register a downstream session for it: it builds a short-lived [`Session`] value that lives
//! exactly as long as the request (so routing of progress, logs and server→client requests,
//! authorization and list filtering work unchanged), and sends it upstream over the target's
//! **main** upstream session, whatever the target's `session` mode — opening a per-client
//! upstream session per stateless request would cost an `initialize` round trip (and for
//! stdio a process) per request. See docs/protocol.md for the reasoning and its limits.
//!
//! A server→client request that a session-based upstream sends during such a call
//! (`sampling/createMessage`, `elicitation/create`, `roots/list`) becomes an
//! `input_required` result; the upstream call is held ([`mrtr`]) until the client retries
//! with `inputResponses` and the sealed `requestState`.
//!
//! This module owns the semantics; `mcpgate-http` owns the headers and the streams.

pub(crate) mod bridge;
pub mod listen;
pub(crate) mod mrtr;

use std::sync::Arc;

use mcpgate_auth::Identity;
use mcpgate_proto::modern::{self as wire, meta};
use mcpgate_proto::raw::{member, str_member};
use mcpgate_proto::{ErrorCode, Message, ObjectEdit, RawJson};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::gateway::{Gateway, Inner};
use crate::session::{DownstreamKind, LOG_LEVELS, Outbound, Session};
use crate::target::{ListKind, MainState, has_capability};

/// Default freshness (`ttlMs`) of merged lists and of `server/discover` when no upstream gave
/// a hint: session-based upstreams give none, and the gateway itself re-fetches a target's
/// list only when the target announces `list_changed` (which listen streams relay).
pub const DEFAULT_LIST_TTL_MS: u64 = 60_000;

/// `ttlMs` of `resources/read` results from upstreams that give no hint: contents may change
/// at any time and session-based upstreams announce changes only to subscribers, so they
/// are immediately stale.
pub const DEFAULT_READ_TTL_MS: u64 = 0;

/// Methods a stateless client may call, and what the gateway does with each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `server/discover`: answered by the gateway.
    Discover,
    /// A merged list.
    List(ListKind),
    /// `tools/call`, `prompts/get`, `resources/read`: may need input (MRTR).
    Call,
    /// `completion/complete`.
    Complete,
    /// `subscriptions/listen`: a long-lived stream ([`listen`]; the transport drives it).
    Listen,
}

impl Method {
    /// The stateless method named `m`, or `None` (removed or unknown: -32601, HTTP 404).
    pub fn of(m: &str) -> Option<Method> {
        Some(match m {
            "server/discover" => Method::Discover,
            "tools/list" => Method::List(ListKind::Tools),
            "prompts/list" => Method::List(ListKind::Prompts),
            "resources/list" => Method::List(ListKind::Resources),
            "resources/templates/list" => Method::List(ListKind::Templates),
            "tools/call" | "prompts/get" | "resources/read" => Method::Call,
            "completion/complete" => Method::Complete,
            "subscriptions/listen" => Method::Listen,
            _ => return None,
        })
    }
}

/// A request's per-request protocol fields, read from `params._meta`.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// `io.modelcontextprotocol/protocolVersion`.
    pub protocol_version: String,
    /// `io.modelcontextprotocol/clientCapabilities` (an object).
    pub client_capabilities: RawJson,
    /// `io.modelcontextprotocol/clientInfo` (`{}` when absent: it is a SHOULD).
    pub client_info: RawJson,
    /// Rank in [`LOG_LEVELS`] of `io.modelcontextprotocol/logLevel`, when set.
    pub log_level: Option<usize>,
}

/// How a reply should travel: the HTTP status the stateless transport gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200: a result, or an error about the request's subject (unknown tool, upstream error).
    Ok,
    /// 400: a malformed request (missing `_meta` fields, header mismatch, unsupported version,
    /// missing client capability, bad `requestState`).
    BadRequest,
    /// 404: the method does not exist in this revision.
    NotFound,
}

/// The answer to one stateless request.
#[derive(Debug)]
pub struct Reply {
    /// The JSON-RPC response (result or error) under the client's id.
    pub message: Message,
    /// HTTP status.
    pub status: Status,
}

impl Reply {
    fn ok(message: Message) -> Reply {
        Reply {
            message,
            status: Status::Ok,
        }
    }

    /// An error reply.
    pub fn error(id: RawJson, code: ErrorCode, message: &str, data: Option<RawJson>, status: Status) -> Reply {
        Reply {
            message: Message::error(id, code, message, data),
            status,
        }
    }
}

/// Reads and checks the per-request `_meta` of a stateless request. Missing or malformed
/// required fields are -32602 with HTTP 400 (spec: basic/index, per-request protocol fields);
/// a version the gateway does not serve is -32022 listing the versions it does.
pub fn parse_meta(msg: &Message) -> Result<RequestMeta, Box<Reply>> {
    let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
    let invalid = |what: &str| {
        Box::new(Reply::error(
            id.clone(),
            ErrorCode::INVALID_PARAMS,
            what,
            None,
            Status::BadRequest,
        ))
    };
    let params = msg.params.as_ref().filter(|p| p.is_object());
    let Some(m) = params.and_then(|p| member(p, "_meta")).filter(RawJson::is_object) else {
        return Err(invalid(
            "Invalid params: missing params._meta (required on every request)",
        ));
    };
    let Some(pv) = str_member(&m, meta::PROTOCOL_VERSION) else {
        return Err(invalid(&format!(
            "Invalid params: _meta is missing `{}`",
            meta::PROTOCOL_VERSION
        )));
    };
    let Some(caps) = member(&m, meta::CLIENT_CAPABILITIES).filter(RawJson::is_object) else {
        return Err(invalid(&format!(
            "Invalid params: _meta is missing `{}` (an object)",
            meta::CLIENT_CAPABILITIES
        )));
    };
    if !wire::is_supported(pv.as_str()) {
        return Err(Box::new(unsupported_version(id, pv.as_str())));
    }
    let log_level = match member(&m, meta::LOG_LEVEL) {
        None => None,
        Some(l) => {
            let name = l.as_json_str();
            match name.as_deref().and_then(|n| LOG_LEVELS.iter().position(|x| *x == n)) {
                Some(rank) => Some(rank),
                None => {
                    return Err(invalid(&format!(
                        "Invalid params: `{}` must be one of {}",
                        meta::LOG_LEVEL,
                        LOG_LEVELS.join(", ")
                    )));
                }
            }
        }
    };
    let client_info = member(&m, meta::CLIENT_INFO)
        .filter(RawJson::is_object)
        .map_or(RawJson::from_static("{}"), owned);
    Ok(RequestMeta {
        protocol_version: pv.to_string(),
        client_capabilities: owned(caps),
        client_info,
        log_level,
    })
}

/// The -32022 reply for `requested`.
pub fn unsupported_version(id: RawJson, requested: &str) -> Reply {
    let data = serde_json::json!({ "supported": wire::all_supported(), "requested": requested });
    Reply::error(
        id,
        wire::UNSUPPORTED_PROTOCOL_VERSION,
        &format!("Unsupported protocol version: {requested}"),
        Some(RawJson::from_value(&data)),
        Status::BadRequest,
    )
}

/// The -32601 reply (HTTP 404) for a method this revision does not have.
pub fn method_not_found(id: RawJson, method: &str) -> Reply {
    let why = match method {
        "initialize" | "notifications/initialized" => " (2026-07-28 has no initialize; call server/discover)",
        "ping" | "logging/setLevel" => " (removed in 2026-07-28)",
        "resources/subscribe" | "resources/unsubscribe" => " (removed in 2026-07-28; use subscriptions/listen)",
        _ => "",
    };
    Reply::error(
        id,
        ErrorCode::METHOD_NOT_FOUND,
        &format!("Method not found: {method}{why}"),
        None,
        Status::NotFound,
    )
}

/// `raw` in a buffer of its own (not pinning the request's receive buffer).
fn owned(raw: RawJson) -> RawJson {
    RawJson::parse(bytes::Bytes::copy_from_slice(raw.as_bytes())).unwrap_or(raw)
}

/// Messages for a stateless request that are not related to it have nowhere to go.
struct Discard;

impl Outbound for Discard {
    fn send(&self, _msg: Message) -> bool {
        false
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Per-gateway state of the stateless side: held multi-round-trip calls and the key that
/// seals their `requestState`.
pub(crate) struct State {
    pub(crate) mrtr: mrtr::Held,
}

impl State {
    pub(crate) fn new(cfg: &mcpgate_config::Stateless) -> Self {
        let sealer = match &cfg.request_state_key {
            Some(k) => mcpgate_auth::seal::Sealer::with_key(k.expose().as_bytes()),
            None => mcpgate_auth::seal::Sealer::random(),
        };
        State {
            mrtr: mrtr::Held::new(sealer, cfg.input_wait, cfg.max_held_calls),
        }
    }
}

impl Gateway {
    /// Serves one stateless request (already checked by the transport: headers agree with
    /// the body, `_meta` parsed into `meta`). Progress and requested log messages for it go to
    /// `related`; `cancel` fires when the client gives up (closes the response stream).
    pub async fn modern_request(
        &self,
        msg: Message,
        meta: RequestMeta,
        identity: Option<Arc<Identity>>,
        related: mpsc::Sender<Message>,
        cancel: CancellationToken,
    ) -> Reply {
        let id = msg.id.clone().unwrap_or(RawJson::from_static("null"));
        let Some(method) = Method::of(msg.method()) else {
            return method_not_found(id, msg.method());
        };
        let reply = match method {
            Method::Listen => Reply::error(
                id,
                ErrorCode::INTERNAL_ERROR,
                "subscriptions/listen is opened with Gateway::modern_listen",
                None,
                Status::Ok,
            ),
            Method::Discover => Reply::ok(Message::response(id, self.inner.discover(identity.as_deref()).await)),
            Method::List(_) | Method::Complete => {
                let session = self.inner.ephemeral_session(&meta, identity);
                let msg = strip_modern_params(msg);
                let resp = self.handle(&session, msg, None).await;
                Reply::ok(resp.unwrap_or_else(|| Message::error(id, ErrorCode::INTERNAL_ERROR, "no response", None)))
            }
            Method::Call => mrtr::call(self, msg, meta, identity, related, cancel).await,
        };
        self.inner.finish_modern(reply, method)
    }
}

impl Inner {
    /// A session value for one stateless request: never registered, gone with the request.
    pub(crate) fn ephemeral_session(&self, meta: &RequestMeta, identity: Option<Arc<Identity>>) -> Arc<Session> {
        let s = Arc::new(Session::new(
            Arc::from("stateless"),
            DownstreamKind::Modern,
            wire::V2026_07_28,
            meta.client_info.clone(),
            meta.client_capabilities.clone(),
            Box::new(Discard),
            self.now_ms(),
        ));
        if let Some(identity) = identity {
            let _ = s.identity.set(identity);
        }
        s.state.lock().log_level = meta.log_level;
        s
    }

    /// Are lists filtered per identity (so their cache scope is `private`)?
    fn lists_filtered(&self) -> bool {
        let rt = self.runtime.load();
        !rt.config.policy.allows_everything() && rt.config.auth.hide_denied
    }

    /// The stateless shape of a reply: `resultType`, `serverInfo` and cache hints on results;
    /// the 2026-07-28 code for "resource not found" on errors.
    fn finish_modern(&self, mut reply: Reply, method: Method) -> Reply {
        let msg = &mut reply.message;
        if let Some(err) = msg.error.as_ref()
            && let Ok(mut e) = ObjectEdit::parse(err)
            && e.get("code").and_then(RawJson::as_i64) == Some(ErrorCode::RESOURCE_NOT_FOUND.0)
        {
            // 2026-07-28 replaced -32002 with -32602 (Invalid params) and forbids emitting -32002.
            e.set("code", RawJson::from_value(&ErrorCode::INVALID_PARAMS.0));
            msg.error = Some(e.to_raw());
            return reply;
        }
        let Some(result) = msg.result.as_ref() else {
            return reply;
        };
        let Ok(mut r) = ObjectEdit::parse(result) else {
            return reply;
        };
        let input_required =
            r.get("resultType").and_then(RawJson::as_json_str).as_deref() == Some(wire::RESULT_INPUT_REQUIRED);
        if !input_required {
            r.set("resultType", RawJson::string(wire::RESULT_COMPLETE));
            let filtered = self.lists_filtered();
            let scope = |private: bool| if filtered || private { "private" } else { "public" };
            let hints = match method {
                Method::Discover => Some(self.upstream_hints(None)),
                Method::List(kind) => Some(self.upstream_hints(Some(kind))),
                Method::Call if msg_is_read(&r) => Some((DEFAULT_READ_TTL_MS, false)),
                _ => None,
            }
            .map(|(ttl, private)| (ttl, scope(private)));
            if let Some((ttl, scope)) = hints {
                if r.get("ttlMs").is_none() {
                    r.set("ttlMs", RawJson::from_value(&ttl));
                }
                if r.get("cacheScope").is_none() {
                    r.set("cacheScope", RawJson::string(scope));
                }
            }
        }
        let mut m = r
            .get("_meta")
            .and_then(|m| ObjectEdit::parse(m).ok())
            .unwrap_or_default();
        m.set(meta::SERVER_INFO, server_info());
        r.set("_meta", m.to_raw());
        msg.result = Some(r.to_raw());
        reply
    }

    /// The freshness of a merged list (`kind`) or of `server/discover` (`None`): never longer
    /// than any contributor's (a 2026-07-28 upstream's own `ttlMs`; the gateway's default for
    /// the others), and private when any contributor said so.
    fn upstream_hints(&self, kind: Option<ListKind>) -> (u64, bool) {
        let rt = self.runtime.load();
        let mut ttl = DEFAULT_LIST_TTL_MS;
        let mut private = false;
        for t in rt.targets.iter().filter(|t| t.is_up()) {
            let hints = match kind {
                Some(k) => t.list_hints(k),
                None => match &*t.main.borrow() {
                    MainState::Up(u) if u.conn.generation() == mcpgate_upstream::Generation::Stateless => {
                        ObjectEdit::parse(&u.init.raw)
                            .ok()
                            .and_then(|e| crate::target::CacheHints::of(&e))
                    }
                    _ => None,
                },
            };
            if let Some(h) = hints {
                ttl = ttl.min(h.ttl_ms.unwrap_or(DEFAULT_LIST_TTL_MS));
                private |= h.private;
            }
        }
        (ttl, private)
    }

    /// The `server/discover` result for `identity`: the gateway's supported versions, and the
    /// capabilities of the targets that identity may use, merged.
    async fn discover(&self, identity: Option<&Identity>) -> RawJson {
        let rt = self.runtime.load_full();
        let filtered = self.lists_filtered();
        let mut usable = vec![!filtered; rt.targets.len()];
        if filtered {
            for kind in ListKind::ALL {
                let merged = self.merged(kind, &rt).await;
                let k = match kind {
                    ListKind::Tools => mcpgate_auth::Kind::Tool,
                    ListKind::Prompts => mcpgate_auth::Kind::Prompt,
                    _ => mcpgate_auth::Kind::Resource,
                };
                for o in &merged.owners {
                    if !usable[o.target]
                        && rt
                            .config
                            .policy
                            .visible(identity, k, rt.targets[o.target].name(), &o.name)
                    {
                        usable[o.target] = true;
                    }
                }
            }
        }
        let mut caps = serde_json::Map::new();
        let mut instructions = Vec::new();
        for (i, t) in rt.targets.iter().enumerate() {
            if !usable[i] {
                continue;
            }
            let MainState::Up(u) = &*t.main.borrow() else { continue };
            // `listChanged`: the gateway announces list changes (the target's, and targets
            // coming and going) on `subscriptions/listen` streams; `subscribe` when a target
            // that serves resources supports subscriptions.
            let subscribe = member(&u.init.capabilities, "resources")
                .and_then(|r| member(&r, "subscribe"))
                .is_some_and(|v| v.as_str() == "true");
            for (cap, value) in [
                ("tools", serde_json::json!({ "listChanged": true })),
                ("prompts", serde_json::json!({ "listChanged": true })),
                (
                    "resources",
                    serde_json::json!({ "listChanged": true, "subscribe": subscribe }),
                ),
                ("completions", serde_json::json!({})),
                ("logging", serde_json::json!({})),
            ] {
                if has_capability(&u.init.capabilities, cap) {
                    caps.entry(cap.to_owned())
                        .and_modify(|v| {
                            if subscribe && cap == "resources" {
                                v["subscribe"] = true.into();
                            }
                        })
                        .or_insert(value);
                }
            }
            if let Some(text) = u.init.instructions.as_deref().filter(|s| !s.trim().is_empty()) {
                instructions.push((t.name().clone(), text.trim().to_owned()));
            }
        }
        let mut result = serde_json::json!({
            "supportedVersions": wire::all_supported(),
            "capabilities": caps,
        });
        match instructions.as_slice() {
            [] => {}
            [(_, only)] => result["instructions"] = only.clone().into(),
            many => {
                let text: Vec<String> = many.iter().map(|(n, t)| format!("## {n}\n{t}")).collect();
                result["instructions"] = text.join("\n\n").into();
            }
        }
        RawJson::from_value(&result)
    }
}

fn msg_is_read(r: &ObjectEdit) -> bool {
    r.get("contents").is_some()
}

/// The gateway's `serverInfo`.
pub(crate) fn server_info() -> RawJson {
    RawJson::from_value(&serde_json::json!({
        "name": crate::SERVER_NAME,
        "title": "mcpgate MCP gateway",
        "version": crate::VERSION,
    }))
}

/// The request as a session-based upstream should see it: the stateless `_meta` keys and the
/// multi-round-trip members (`inputResponses`, `requestState`) removed; `progressToken` and
/// any other `_meta` kept.
pub(crate) fn strip_modern_params(msg: Message) -> Message {
    strip(msg, true)
}

/// The stateless `_meta` keys removed (the gateway puts the caller's own back for a
/// 2026-07-28 upstream), the multi-round-trip members kept: a retry meant for such an upstream.
pub(crate) fn strip_modern_meta(msg: Message) -> Message {
    strip(msg, false)
}

fn strip(mut msg: Message, mrtr: bool) -> Message {
    let Some(params) = msg.params.as_ref() else {
        return msg;
    };
    let Ok(mut p) = ObjectEdit::parse(params) else {
        return msg;
    };
    if mrtr {
        p.remove("inputResponses");
        p.remove("requestState");
    }
    if let Some(m) = p.get("_meta").and_then(|m| ObjectEdit::parse(m).ok()) {
        let mut m = m;
        for k in [
            meta::PROTOCOL_VERSION,
            meta::CLIENT_INFO,
            meta::CLIENT_CAPABILITIES,
            meta::LOG_LEVEL,
        ] {
            m.remove(k);
        }
        if m.is_empty() {
            p.remove("_meta");
        } else {
            p.set("_meta", m.to_raw());
        }
    }
    msg.params = Some(p.to_raw());
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(m: &Message) -> ErrorCode {
        ErrorCode(m.error_object().expect("an error").code)
    }

    fn req(params: serde_json::Value) -> Message {
        Message::request(
            RawJson::from_static("7"),
            "tools/list",
            Some(RawJson::from_value(&params)),
        )
    }

    #[test]
    fn meta_is_required_and_checked() {
        let err = |p| parse_meta(&req(p)).unwrap_err();
        let e = err(serde_json::json!({}));
        assert_eq!(
            (code(&e.message), e.status),
            (ErrorCode::INVALID_PARAMS, Status::BadRequest)
        );
        let e = err(serde_json::json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}));
        assert_eq!(code(&e.message), ErrorCode::INVALID_PARAMS);
        let e = err(serde_json::json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}));
        assert_eq!(code(&e.message), ErrorCode::INVALID_PARAMS);
        let e = err(serde_json::json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "1900-01-01",
            "io.modelcontextprotocol/clientCapabilities": {}}}));
        assert_eq!(
            (code(&e.message), e.status),
            (wire::UNSUPPORTED_PROTOCOL_VERSION, Status::BadRequest)
        );
        let data = e.message.error_object().unwrap().data.unwrap();
        assert_eq!(data["requested"], "1900-01-01");
        assert_eq!(data["supported"][0], "2026-07-28");
        let e = err(serde_json::json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/logLevel": "loud"}}));
        assert_eq!(code(&e.message), ErrorCode::INVALID_PARAMS);
        let ok = parse_meta(&req(serde_json::json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
            "io.modelcontextprotocol/logLevel": "warning"}})))
        .unwrap();
        assert_eq!(ok.log_level, Some(3));
        assert_eq!(ok.client_info.as_str(), "{}");
    }

    #[test]
    fn upstream_sees_no_stateless_fields() {
        let m = Message::request(
            RawJson::from_static("1"),
            "tools/call",
            Some(RawJson::from_value(&serde_json::json!({
                "name": "t", "requestState": "x", "inputResponses": {},
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                          "io.modelcontextprotocol/clientCapabilities": {}, "progressToken": 5}
            }))),
        );
        let p: serde_json::Value = strip_modern_params(m).params.unwrap().decode().unwrap();
        assert_eq!(p, serde_json::json!({"name": "t", "_meta": {"progressToken": 5}}));
    }

    #[test]
    fn methods() {
        assert_eq!(Method::of("ping"), None);
        assert_eq!(Method::of("initialize"), None);
        assert_eq!(Method::of("resources/subscribe"), None);
        assert_eq!(Method::of("resources/read"), Some(Method::Call));
        assert_eq!(Method::of("server/discover"), Some(Method::Discover));
    }
}

/// The value of an `Mcp-Name` or `Mcp-Param-*` header: plain visible ASCII as is, or the
/// UTF-8 inside the `=?base64?…?=` sentinel. `None` for a value that is neither (invalid
/// characters, bad Base64, not UTF-8). The decoder lives in [`mcpgate_proto::xheader`].
pub fn decode_header_value(v: &[u8]) -> Option<String> {
    mcpgate_proto::xheader::decode_value(v)
}

#[cfg(test)]
mod header_tests {
    use super::decode_header_value as d;

    #[test]
    fn header_values_per_spec_examples() {
        assert_eq!(d(b"us-west1").as_deref(), Some("us-west1"));
        assert_eq!(d(b"=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(), Some("Hello, 世界"));
        assert_eq!(d(b"=?base64?IHBhZGRlZCA=?=").as_deref(), Some(" padded "));
        assert_eq!(
            d(b"=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=").as_deref(),
            Some("=?base64?literal?=")
        );
        assert_eq!(d(b"=?base64?not base64!?="), None);
        assert_eq!(d(b"caf\xc3\xa9"), None);
    }
}
