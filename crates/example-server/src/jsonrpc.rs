//! JSON-RPC 2.0 framing: parsing incoming messages once, without copying, and writing
//! responses, notifications and requests straight into the bytes that go on the wire.
//!
//! An [`Incoming`] keeps the received buffer and byte ranges into it for `id` and `params`, so
//! the request id is echoed back verbatim and parameters are decoded only by the handler that
//! needs them. This module knows nothing about MCP methods beyond naming them ([`Method`]).

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Invalid JSON was received.
pub const PARSE_ERROR: i32 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i32 = -32602;
/// MCP: the resource URI is unknown.
pub const RESOURCE_NOT_FOUND: i32 = -32002;

/// The methods this server knows, so dispatch and per-method counters never compare strings
/// twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Method {
    Initialize,
    Ping,
    ToolsList,
    ToolsCall,
    PromptsList,
    PromptsGet,
    ResourcesList,
    ResourcesTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    CompletionComplete,
    LoggingSetLevel,
    Initialized,
    Cancelled,
    Progress,
    RootsListChanged,
    /// 2026-07-28: `server/discover`.
    ServerDiscover,
    /// 2026-07-28: `subscriptions/listen`.
    SubscriptionsListen,
    /// Anything else (answered with -32601 when it is a request, ignored as a notification).
    Other,
}

impl Method {
    /// Number of variants, for per-method counter arrays.
    pub const COUNT: usize = Method::Other as usize + 1;

    /// Every variant, in counter order.
    #[cfg(test)]
    pub const ALL: [Method; Method::COUNT] = [
        Method::Initialize,
        Method::Ping,
        Method::ToolsList,
        Method::ToolsCall,
        Method::PromptsList,
        Method::PromptsGet,
        Method::ResourcesList,
        Method::ResourcesTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::CompletionComplete,
        Method::LoggingSetLevel,
        Method::Initialized,
        Method::Cancelled,
        Method::Progress,
        Method::RootsListChanged,
        Method::ServerDiscover,
        Method::SubscriptionsListen,
        Method::Other,
    ];

    /// Maps a wire method name to its variant.
    pub fn parse(name: &str) -> Method {
        match name {
            "initialize" => Method::Initialize,
            "ping" => Method::Ping,
            "tools/list" => Method::ToolsList,
            "tools/call" => Method::ToolsCall,
            "prompts/list" => Method::PromptsList,
            "prompts/get" => Method::PromptsGet,
            "resources/list" => Method::ResourcesList,
            "resources/templates/list" => Method::ResourcesTemplatesList,
            "resources/read" => Method::ResourcesRead,
            "resources/subscribe" => Method::ResourcesSubscribe,
            "resources/unsubscribe" => Method::ResourcesUnsubscribe,
            "completion/complete" => Method::CompletionComplete,
            "logging/setLevel" => Method::LoggingSetLevel,
            "notifications/initialized" => Method::Initialized,
            "notifications/cancelled" => Method::Cancelled,
            "notifications/progress" => Method::Progress,
            "notifications/roots/list_changed" => Method::RootsListChanged,
            "server/discover" => Method::ServerDiscover,
            "subscriptions/listen" => Method::SubscriptionsListen,
            _ => Method::Other,
        }
    }

    /// The wire name (`"other"` for unknown methods).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::ResourcesList => "resources/list",
            Method::ResourcesTemplatesList => "resources/templates/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::CompletionComplete => "completion/complete",
            Method::LoggingSetLevel => "logging/setLevel",
            Method::Initialized => "notifications/initialized",
            Method::Cancelled => "notifications/cancelled",
            Method::Progress => "notifications/progress",
            Method::RootsListChanged => "notifications/roots/list_changed",
            Method::ServerDiscover => "server/discover",
            Method::SubscriptionsListen => "subscriptions/listen",
            Method::Other => "other",
        }
    }

    /// True for methods answered at once, without sending anything else first; the
    /// transports answer those inline instead of spawning a task.
    pub fn is_instant(self) -> bool {
        !matches!(self, Method::ToolsCall | Method::Initialize)
    }
}

/// What kind of JSON-RPC message was received.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A request: answer it.
    Request {
        /// The raw `id`.
        id: Range<usize>,
        /// The method.
        method: Method,
    },
    /// A notification: never answered.
    Notification {
        /// The method.
        method: Method,
    },
    /// A response to a request this server sent.
    Response {
        /// The raw `id`.
        id: Range<usize>,
        /// `Ok(result)` or `Err(error)`, both raw.
        outcome: Result<Range<usize>, Range<usize>>,
    },
    /// Not a JSON-RPC message: answered with -32600 when it carries an id (or always, with
    /// id null, when it is not even an object).
    Invalid {
        /// The raw `id`, when there was one.
        id: Option<Range<usize>>,
    },
}

/// One received JSON-RPC message, borrowing nothing: the buffer plus ranges into it.
#[derive(Debug, Clone)]
pub struct Incoming {
    buf: Bytes,
    /// The kind of message.
    pub kind: Kind,
    params: Option<Range<usize>>,
    /// The method name for [`Method::Other`] (kept for the error message only).
    other_name: Option<Box<str>>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// A body that is not valid JSON at all (answered with -32700 and id null).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error: {0}")]
pub struct ParseError(pub String);

/// Parses one message or a batch (a JSON array, allowed by protocol 2025-03-26 and earlier).
///
/// Returns the messages and whether the input was a batch. An empty batch yields one
/// [`Kind::Invalid`] message, as JSON-RPC requires.
pub fn parse(buf: Bytes) -> Result<(Vec<Incoming>, bool), ParseError> {
    let first = buf.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'[') {
        let items: Vec<&RawValue> = serde_json::from_slice(&buf).map_err(|e| ParseError(e.to_string()))?;
        if items.is_empty() {
            return Ok((vec![Incoming::invalid(buf.clone(), None)], true));
        }
        let base = buf.as_ptr() as usize;
        let ranges: Vec<Range<usize>> = items.iter().map(|r| range_of(base, r)).collect();
        let out = ranges
            .into_iter()
            .map(|r| Incoming::from_slice(buf.clone(), r))
            .collect();
        Ok((out, true))
    } else {
        // Validate the whole body is one JSON value first so trailing junk is a parse error.
        let _: &RawValue = serde_json::from_slice(&buf).map_err(|e| ParseError(e.to_string()))?;
        let len = buf.len();
        Ok((vec![Incoming::from_slice(buf, 0..len)], false))
    }
}

fn range_of(base: usize, raw: &RawValue) -> Range<usize> {
    let s = raw.get();
    let start = s.as_ptr() as usize - base;
    start..start + s.len()
}

impl Incoming {
    fn invalid(buf: Bytes, id: Option<Range<usize>>) -> Self {
        Incoming {
            buf,
            kind: Kind::Invalid { id },
            params: None,
            other_name: None,
        }
    }

    /// Classifies the JSON value at `range` of `buf` (already known to be valid JSON).
    fn from_slice(buf: Bytes, range: Range<usize>) -> Self {
        let base = buf.as_ptr() as usize;
        let env: Envelope<'_> = match serde_json::from_slice(&buf[range]) {
            Ok(env) => env,
            Err(_) => return Incoming::invalid(buf, None),
        };
        let id = env.id.map(|r| range_of(base, r));
        let params = env.params.map(|r| range_of(base, r));
        let (kind, other_name) = match env.method {
            Some(name) => {
                let method = Method::parse(&name);
                let other = (method == Method::Other).then(|| Box::from(&*name));
                match id {
                    Some(id) => (Kind::Request { id, method }, other),
                    None => (Kind::Notification { method }, other),
                }
            }
            None => match (id, env.result, env.error) {
                (Some(id), Some(r), None) => (
                    Kind::Response {
                        id,
                        outcome: Ok(range_of(base, r)),
                    },
                    None,
                ),
                (Some(id), _, Some(e)) => (
                    Kind::Response {
                        id,
                        outcome: Err(range_of(base, e)),
                    },
                    None,
                ),
                (id, _, _) => (Kind::Invalid { id }, None),
            },
        };
        Incoming {
            buf,
            kind,
            params,
            other_name,
        }
    }

    /// The method of a request or notification.
    pub fn method(&self) -> Option<Method> {
        match self.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            _ => None,
        }
    }

    /// The raw JSON text of the id of a request or response.
    pub fn id(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { id, .. } | Kind::Response { id, .. } => Some(self.str_at(id)),
            Kind::Invalid { id: Some(id) } => Some(self.str_at(id)),
            _ => None,
        }
    }

    /// The raw `params`, if present.
    pub fn params(&self) -> Option<&str> {
        self.params.as_ref().map(|r| self.str_at(r))
    }

    /// The raw `result` (Ok) or `error` (Err) of a response.
    pub fn outcome(&self) -> Option<Result<&str, &str>> {
        match &self.kind {
            Kind::Response { outcome, .. } => Some(match outcome {
                Ok(r) => Ok(self.str_at(r)),
                Err(r) => Err(self.str_at(r)),
            }),
            _ => None,
        }
    }

    /// The method name as received (for error messages).
    pub fn method_name(&self) -> &str {
        match (&self.other_name, self.method()) {
            (Some(name), _) => name,
            (None, Some(m)) => m.as_str(),
            (None, None) => "",
        }
    }

    fn str_at(&self, r: &Range<usize>) -> &str {
        // The ranges come from `RawValue`s that serde_json validated as UTF-8 JSON.
        std::str::from_utf8(&self.buf[r.clone()]).unwrap_or("null")
    }

    /// Decodes `params` into `T`; absent params decode from `{}`.
    pub fn parse_params<'a, T: Deserialize<'a>>(&'a self) -> Result<T, RpcError> {
        serde_json::from_str(self.params().unwrap_or("{}"))
            .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, Serialize)]
pub struct RpcError {
    /// The error code.
    pub code: i32,
    /// A short description.
    pub message: Cow<'static, str>,
    /// Extra detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl RpcError {
    /// An error with no data.
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32602 Invalid params.
    pub fn invalid_params(message: impl Into<Cow<'static, str>>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }

    /// -32601 Method not found.
    pub fn method_not_found(name: &str) -> Self {
        RpcError::new(METHOD_NOT_FOUND, format!("Method not found: {name}"))
    }

    /// -32002 Resource not found, with the uri in `data` as the MCP specification shows.
    pub fn resource_not_found(uri: &str) -> Self {
        RpcError {
            code: RESOURCE_NOT_FOUND,
            message: "Resource not found".into(),
            data: Some(serde_json::json!({ "uri": uri })),
        }
    }
}

/// One message on its way to the client.
#[derive(Debug, Clone)]
pub struct Msg {
    /// The serialized JSON-RPC message (or garbage, under the garbage fault).
    pub bytes: Bytes,
    /// True for the response that finishes a client request.
    pub is_response: bool,
}

impl Msg {
    /// A response to a client request.
    pub fn response(bytes: Bytes) -> Self {
        Msg {
            bytes,
            is_response: true,
        }
    }

    /// A notification or server→client request.
    pub fn other(bytes: Bytes) -> Self {
        Msg {
            bytes,
            is_response: false,
        }
    }
}

/// Writes a success response in place: `{"jsonrpc":"2.0","id":ID,"result":` … `}`.
pub struct ResultWriter(Vec<u8>);

impl ResultWriter {
    /// Starts a response to request `id` (raw JSON), reserving about `hint` bytes for the result.
    pub fn new(id: &str, hint: usize) -> Self {
        let mut v = Vec::with_capacity(36 + id.len() + hint);
        v.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        v.extend_from_slice(id.as_bytes());
        v.extend_from_slice(b",\"result\":");
        ResultWriter(v)
    }

    /// Appends raw JSON text.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends a serialized value.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut Self {
        // Serializing plain data types into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, value);
        self
    }

    /// Closes the envelope.
    pub fn finish(mut self) -> Bytes {
        self.0.push(b'}');
        Bytes::from(self.0)
    }
}

/// A complete success response.
pub fn result<T: Serialize + ?Sized>(id: &str, value: &T) -> Bytes {
    let mut w = ResultWriter::new(id, 128);
    w.json(value);
    w.finish()
}

/// A complete error response (`id` None writes `null`).
pub fn error(id: Option<&str>, err: &RpcError) -> Bytes {
    let mut v = Vec::with_capacity(96);
    v.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    v.extend_from_slice(id.unwrap_or("null").as_bytes());
    v.extend_from_slice(b",\"error\":");
    let _ = serde_json::to_writer(&mut v, err);
    v.push(b'}');
    Bytes::from(v)
}

/// A notification.
pub fn notification<T: Serialize + ?Sized>(method: &str, params: &T) -> Bytes {
    #[derive(Serialize)]
    struct N<'a, P: ?Sized> {
        jsonrpc: &'static str,
        method: &'a str,
        params: &'a P,
    }
    Bytes::from(
        serde_json::to_vec(&N {
            jsonrpc: "2.0",
            method,
            params,
        })
        .unwrap_or_default(),
    )
}

/// A notification without params.
pub fn bare_notification(method: &str) -> Bytes {
    Bytes::from(format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{method}\"}}"))
}

/// A server→client request.
pub fn request<T: Serialize + ?Sized>(id: u64, method: &str, params: &T) -> Bytes {
    #[derive(Serialize)]
    struct R<'a, P: ?Sized> {
        jsonrpc: &'static str,
        id: u64,
        method: &'a str,
        params: &'a P,
    }
    Bytes::from(
        serde_json::to_vec(&R {
            jsonrpc: "2.0",
            id,
            method,
            params,
        })
        .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Incoming {
        let (mut v, batch) = parse(Bytes::copy_from_slice(s.as_bytes())).unwrap();
        assert!(!batch);
        v.pop().unwrap()
    }

    #[test]
    fn classifies_messages() {
        let m = one(r#"{"jsonrpc":"2.0","id":"a\"b","method":"tools/list","params":{"cursor":"x"},"extra":1}"#);
        assert!(matches!(
            m.kind,
            Kind::Request {
                method: Method::ToolsList,
                ..
            }
        ));
        assert_eq!(m.id(), Some(r#""a\"b""#));
        assert_eq!(m.params(), Some(r#"{"cursor":"x"}"#));

        let n = one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(
            n.kind,
            Kind::Notification {
                method: Method::Initialized
            }
        ));

        let r = one(r#"{"jsonrpc":"2.0","id":7,"result":{"x":1}}"#);
        assert_eq!(r.outcome(), Some(Ok(r#"{"x":1}"#)));
        let e = one(r#"{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"m"}}"#);
        assert!(matches!(e.outcome(), Some(Err(_))));

        let u = one(r#"{"jsonrpc":"2.0","id":1,"method":"nope/x"}"#);
        assert_eq!(u.method(), Some(Method::Other));
        assert_eq!(u.method_name(), "nope/x");

        let i = one(r#"{"jsonrpc":"2.0","id":3}"#);
        assert!(matches!(i.kind, Kind::Invalid { id: Some(_) }));
        let i = one("42");
        assert!(matches!(i.kind, Kind::Invalid { id: None }));
    }

    #[test]
    fn parses_batches_and_rejects_garbage() {
        let (v, batch) = parse(Bytes::from_static(
            br#" [{"jsonrpc":"2.0","id":1,"method":"ping"}, {"jsonrpc":"2.0","method":"x"}]"#,
        ))
        .unwrap();
        assert!(batch);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].id(), Some("1"));
        let (v, _) = parse(Bytes::from_static(b"[]")).unwrap();
        assert!(matches!(v[0].kind, Kind::Invalid { id: None }));
        assert!(parse(Bytes::from_static(b"{\"id\":")).is_err());
        assert!(parse(Bytes::from_static(b"{} trailing")).is_err());
    }

    #[test]
    fn writes_envelopes() {
        assert_eq!(
            &result("\"x\"", &serde_json::json!({}))[..],
            br#"{"jsonrpc":"2.0","id":"x","result":{}}"#
        );
        let e = error(None, &RpcError::new(PARSE_ERROR, "Parse error"));
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["id"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], -32700);
        assert_eq!(
            &bare_notification("notifications/tools/list_changed")[..],
            br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#
        );
        let names: Vec<_> = Method::ALL.iter().map(|m| Method::parse(m.as_str())).collect();
        assert_eq!(names, Method::ALL);
    }
}
