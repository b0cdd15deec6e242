//! The JSON-RPC 2.0 envelope, parsed once.
//!
//! [`Message::parse`] reads the envelope members (`id`, `method`, `params`, `result`,
//! `error`) as zero-copy slices of the received bytes and validates the framing rules of
//! JSON-RPC 2.0. Nothing inside `params`, `result` or `error` is decoded here; members this
//! crate does not know are kept in [`Message::extra`] and written back unchanged.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::raw::{JsonStr, RawJson, write_json_string};

/// JSON-RPC and MCP error codes used by the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub i64);

impl ErrorCode {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: Self = Self(-32700);
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: Self = Self(-32600);
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: Self = Self(-32601);
    /// Invalid method parameters.
    pub const INVALID_PARAMS: Self = Self(-32602);
    /// Internal error.
    pub const INTERNAL_ERROR: Self = Self(-32603);
    /// MCP: the requested resource does not exist.
    pub const RESOURCE_NOT_FOUND: Self = Self(-32002);
    /// MCP (2025-11-25+): the request needs a URL elicitation first.
    pub const URL_ELICITATION_REQUIRED: Self = Self(-32042);
    /// mcpgate: the target that owns the request is unavailable (down, restarting, unreachable).
    pub const UPSTREAM_UNAVAILABLE: Self = Self(-32001);
    /// mcpgate: the upstream did not answer in time.
    pub const UPSTREAM_TIMEOUT: Self = Self(-32003);
    /// mcpgate: the upstream answered with something that is not valid MCP.
    pub const UPSTREAM_BAD_RESPONSE: Self = Self(-32004);
    /// mcpgate: a rate limit or a target's concurrency limit refused the request;
    /// `data.retryAfterMs` (when known) says when to try again.
    pub const RATE_LIMITED: Self = Self(-32005);
    /// mcpgate: the request was cancelled or the session closed before it completed.
    pub const REQUEST_CANCELLED: Self = Self(-32800);
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which of the four JSON-RPC message shapes a [`Message`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Has `method` and a non-null `id`.
    Request,
    /// Has `method` and no `id`.
    Notification,
    /// Has `result`.
    Response,
    /// Has `error`.
    Error,
}

/// Why bytes could not be read as a JSON-RPC message.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all (JSON-RPC -32700).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON, but not a JSON-RPC 2.0 message (-32600). Carries the id when one was readable.
    #[error("invalid JSON-RPC message: {reason}")]
    Invalid {
        /// What was wrong.
        reason: &'static str,
        /// The request id, if one could be read.
        id: Option<RawJson>,
    },
    /// Arrays and objects nested deeper than the receiver's limit (-32600).
    #[error("invalid request: JSON nested deeper than the limit of {0} levels (listen.max_json_depth)")]
    TooDeep(usize),
}

impl ParseError {
    /// The JSON-RPC error code this failure maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::Json(_) => ErrorCode::PARSE_ERROR,
            ParseError::Invalid { .. } | ParseError::TooDeep(_) => ErrorCode::INVALID_REQUEST,
        }
    }

    /// The id to answer with (`null` when unknown).
    pub fn id(&self) -> RawJson {
        match self {
            ParseError::Invalid { id: Some(id), .. } => id.clone(),
            _ => RawJson::from_static("null"),
        }
    }

    /// The error response for this failure.
    pub fn to_response(&self) -> Message {
        Message::error(self.id(), self.code(), &self.to_string(), None)
    }
}

/// One JSON-RPC 2.0 message with its members kept as raw JSON.
#[derive(Clone, Default)]
pub struct Message {
    /// `id` (absent for notifications; may be `null` in an error response).
    pub id: Option<RawJson>,
    /// `method` of a request or notification.
    pub method: Option<JsonStr>,
    /// `params` of a request or notification.
    pub params: Option<RawJson>,
    /// `result` of a successful response.
    pub result: Option<RawJson>,
    /// `error` of an error response.
    pub error: Option<RawJson>,
    /// Members JSON-RPC does not define, kept verbatim.
    pub extra: Vec<(JsonStr, RawJson)>,
}

/// The body of a POST: one message or a batch (2025-03-26 allowed batches).
pub enum Parsed {
    /// One message.
    Single(Message),
    /// A JSON array of messages; each element parsed on its own.
    Batch(Vec<Result<Message, ParseError>>),
}

/// The decoded `error` member of an error response.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ErrorObject {
    /// Error code.
    pub code: i64,
    /// Human-readable message.
    pub message: String,
    /// Optional additional data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Message {
    /// Parses a single message (a batch is an error here).
    pub fn parse(bytes: Bytes) -> Result<Message, ParseError> {
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let (m, problem) = de.deserialize_map(EnvelopeVisitor(&bytes)).map_err(json_err)?;
        de.end().map_err(json_err)?;
        // Well-formed JSON that is not a JSON-RPC 2.0 envelope is an invalid request (-32600),
        // not a parse error; the whole body was read first, so broken JSON still wins.
        if let Some(reason) = problem {
            let id =
                m.id.filter(|id| matches!(id.as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9')));
            return Err(ParseError::Invalid { reason, id });
        }
        m.validate()
    }

    /// [`Message::parse_any`] for untrusted input: arrays and objects nested deeper than
    /// `max_depth` are refused before any parsing (a linear scan of the bytes, so a hostile
    /// body costs no parser recursion or allocation).
    pub fn parse_any_limited(bytes: Bytes, max_depth: usize) -> Result<Parsed, ParseError> {
        if crate::raw::nesting_exceeds(&bytes, max_depth) {
            return Err(ParseError::TooDeep(max_depth));
        }
        Self::parse_any(bytes)
    }

    /// [`Message::parse`] with the nesting limit of [`Message::parse_any_limited`].
    pub fn parse_limited(bytes: Bytes, max_depth: usize) -> Result<Message, ParseError> {
        if crate::raw::nesting_exceeds(&bytes, max_depth) {
            return Err(ParseError::TooDeep(max_depth));
        }
        Self::parse(bytes)
    }

    /// Parses a message or a batch of messages.
    pub fn parse_any(bytes: Bytes) -> Result<Parsed, ParseError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if first != Some(b'[') {
            return Self::parse(bytes).map(Parsed::Single);
        }
        struct Seq<'b>(&'b Bytes);
        impl<'de> Visitor<'de> for Seq<'_> {
            type Value = Vec<Result<Message, ParseError>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of JSON-RPC messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(el) = seq.next_element::<&'de RawValue>()? {
                    out.push(Message::parse(self.0.slice_ref(el.get().as_bytes())));
                }
                Ok(out)
            }
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let items = de.deserialize_seq(Seq(&bytes)).map_err(json_err)?;
        de.end().map_err(json_err)?;
        if items.is_empty() {
            return Err(ParseError::Invalid {
                reason: "empty batch",
                id: None,
            });
        }
        Ok(Parsed::Batch(items))
    }

    fn validate(self) -> Result<Message, ParseError> {
        let invalid = |reason, id: &Option<RawJson>| Err(ParseError::Invalid { reason, id: id.clone() });
        if let Some(id) = &self.id {
            let b = id.as_bytes().first().copied();
            let ok = matches!(b, Some(b'"') | Some(b'-') | Some(b'0'..=b'9')) || id.is_null();
            if !ok {
                return invalid("id must be a string or a number", &None);
            }
        }
        match (&self.method, &self.result, &self.error) {
            (Some(_), None, None) => {
                if self.id.as_ref().is_some_and(RawJson::is_null) {
                    return invalid("request id must not be null", &None);
                }
                if let Some(p) = &self.params
                    && !matches!(p.as_bytes().first(), Some(b'{') | Some(b'['))
                {
                    return invalid("params must be an object or an array", &self.id);
                }
                Ok(self)
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                if self.id.is_none() {
                    return invalid("response without id", &None);
                }
                Ok(self)
            }
            (None, None, None) => invalid("message has neither method nor result nor error", &self.id),
            _ => invalid("message mixes method, result and error", &self.id),
        }
    }

    /// The message's shape. Only meaningful for messages that passed [`Message::parse`] or
    /// were built with the constructors.
    pub fn kind(&self) -> MessageKind {
        if self.method.is_some() {
            if self.id.is_some() {
                MessageKind::Request
            } else {
                MessageKind::Notification
            }
        } else if self.error.is_some() {
            MessageKind::Error
        } else {
            MessageKind::Response
        }
    }

    /// Is this a request?
    pub fn is_request(&self) -> bool {
        self.kind() == MessageKind::Request
    }

    /// Is this a notification?
    pub fn is_notification(&self) -> bool {
        self.kind() == MessageKind::Notification
    }

    /// Is this a response (successful or error)?
    pub fn is_response(&self) -> bool {
        matches!(self.kind(), MessageKind::Response | MessageKind::Error)
    }

    /// The method name, or `""` for responses.
    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    /// A request.
    pub fn request(id: RawJson, method: &str, params: Option<RawJson>) -> Message {
        Message {
            id: Some(id),
            method: Some(JsonStr::new(method)),
            params,
            ..Default::default()
        }
    }

    /// A notification.
    pub fn notification(method: &str, params: Option<RawJson>) -> Message {
        Message {
            method: Some(JsonStr::new(method)),
            params,
            ..Default::default()
        }
    }

    /// A successful response.
    pub fn response(id: RawJson, result: RawJson) -> Message {
        Message {
            id: Some(id),
            result: Some(result),
            ..Default::default()
        }
    }

    /// An error response.
    pub fn error(id: RawJson, code: ErrorCode, message: &str, data: Option<RawJson>) -> Message {
        let mut buf = BytesMut::with_capacity(message.len() + 48);
        buf.put_slice(b"{\"code\":");
        buf.put_slice(code.0.to_string().as_bytes());
        buf.put_slice(b",\"message\":");
        write_json_string(&mut buf, message);
        if let Some(d) = data {
            buf.put_slice(b",\"data\":");
            buf.put_slice(d.as_bytes());
        }
        buf.put_u8(b'}');
        Message {
            id: Some(id),
            error: Some(RawJson::from_trusted(buf.freeze())),
            ..Default::default()
        }
    }

    /// Decodes the `error` member.
    pub fn error_object(&self) -> Option<ErrorObject> {
        self.error.as_ref()?.decode().ok()
    }

    /// Is this a result with `isError: true` (a `tools/call` result reporting the tool's own
    /// failure)?
    pub fn is_tool_error(&self) -> bool {
        self.result
            .as_ref()
            .and_then(|r| crate::raw::member(r, "isError"))
            .is_some_and(|v| v.as_bytes() == b"true")
    }

    /// Serializes into `buf`.
    pub fn write(&self, buf: &mut BytesMut) {
        buf.reserve(self.encoded_len_hint());
        buf.put_slice(b"{\"jsonrpc\":\"2.0\"");
        if let Some(id) = &self.id {
            buf.put_slice(b",\"id\":");
            buf.put_slice(id.as_bytes());
        }
        if let Some(m) = &self.method {
            buf.put_slice(b",\"method\":");
            write_json_string(buf, m);
        }
        for (key, v) in [
            (&b",\"params\":"[..], &self.params),
            (b",\"result\":", &self.result),
            (b",\"error\":", &self.error),
        ] {
            if let Some(v) = v {
                buf.put_slice(key);
                buf.put_slice(v.as_bytes());
            }
        }
        for (k, v) in &self.extra {
            buf.put_u8(b',');
            write_json_string(buf, k);
            buf.put_u8(b':');
            buf.put_slice(v.as_bytes());
        }
        buf.put_u8(b'}');
    }

    /// Serializes as a sequence of buffers whose concatenation is [`Message::to_bytes`]: a
    /// member of at least [`Message::SHARED_MEMBER_BYTES`] (typically a large `result`) is handed
    /// on as the very buffer it was parsed from, without a copy; the envelope around it goes
    /// into small buffers of its own. For a response body that is relayed, not rewritten.
    pub fn to_chunks(&self) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(3);
        let mut cur = BytesMut::with_capacity(64 + self.id.as_ref().map_or(0, |i| i.as_bytes().len()));
        fn put_raw(cur: &mut BytesMut, out: &mut Vec<Bytes>, v: &RawJson) {
            if v.as_bytes().len() >= Message::SHARED_MEMBER_BYTES {
                if !cur.is_empty() {
                    out.push(cur.split().freeze());
                }
                out.push(v.bytes().clone());
            } else {
                cur.put_slice(v.as_bytes());
            }
        }
        cur.put_slice(b"{\"jsonrpc\":\"2.0\"");
        if let Some(id) = &self.id {
            cur.put_slice(b",\"id\":");
            put_raw(&mut cur, &mut out, id);
        }
        if let Some(m) = &self.method {
            cur.put_slice(b",\"method\":");
            write_json_string(&mut cur, m);
        }
        for (key, v) in [
            (&b",\"params\":"[..], &self.params),
            (b",\"result\":", &self.result),
            (b",\"error\":", &self.error),
        ] {
            if let Some(v) = v {
                cur.put_slice(key);
                put_raw(&mut cur, &mut out, v);
            }
        }
        for (k, v) in &self.extra {
            cur.put_u8(b',');
            write_json_string(&mut cur, k);
            cur.put_u8(b':');
            put_raw(&mut cur, &mut out, v);
        }
        cur.put_u8(b'}');
        out.push(cur.freeze());
        out
    }

    /// Members this large are shared, not copied, by [`Message::to_chunks`].
    pub const SHARED_MEMBER_BYTES: usize = 8 * 1024;

    /// Serializes into a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.write(&mut buf);
        buf.freeze()
    }

    fn encoded_len_hint(&self) -> usize {
        let l = |r: &Option<RawJson>| r.as_ref().map_or(0, |r| r.as_bytes().len() + 12);
        24 + l(&self.id)
            + l(&self.params)
            + l(&self.result)
            + l(&self.error)
            + self.method.as_ref().map_or(0, |m| m.len() + 12)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        f.write_str(&String::from_utf8_lossy(&b))
    }
}

fn json_err(e: serde_json::Error) -> ParseError {
    if e.classify() == serde_json::error::Category::Data {
        // Valid JSON of the wrong type (a string, a number, …) where a message object belongs.
        return ParseError::Invalid {
            reason: "a JSON-RPC message must be a JSON object",
            id: None,
        };
    }
    ParseError::Json(e.to_string())
}

struct EnvelopeVisitor<'b>(&'b Bytes);

impl<'de> Visitor<'de> for EnvelopeVisitor<'_> {
    /// The message, and the first reason it is not a valid JSON-RPC 2.0 envelope, if any.
    type Value = (Message, Option<&'static str>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut m = Message::default();
        let mut version_ok = false;
        let mut problem = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            let raw = RawJson::from_trusted(self.0.slice_ref(value.get().as_bytes()));
            let slot = match key.as_ref() {
                "jsonrpc" => {
                    version_ok = raw.as_bytes() == b"\"2.0\"";
                    continue;
                }
                "id" => &mut m.id,
                "method" => {
                    match raw.as_json_str() {
                        Some(s) => m.method = Some(s),
                        None => {
                            problem.get_or_insert("method must be a string");
                        }
                    }
                    continue;
                }
                "params" => &mut m.params,
                "result" => &mut m.result,
                "error" => &mut m.error,
                other => {
                    m.extra.push((JsonStr::new(other), raw));
                    continue;
                }
            };
            if slot.is_some() {
                problem.get_or_insert("duplicate member");
                continue;
            }
            *slot = Some(raw);
        }
        if !version_ok {
            problem.get_or_insert("`jsonrpc` must be \"2.0\"");
        }
        Ok((m, problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Message, ParseError> {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn chunks_are_the_bytes_and_share_large_members() {
        let big = format!(
            "{{\"content\":[{{\"type\":\"text\",\"text\":\"{}\"}}]}}",
            "x".repeat(100_000)
        );
        let upstream = Bytes::from(format!(r#"{{"jsonrpc":"2.0","id":41,"result":{big},"x-ext":[1]}}"#));
        let m = parse(std::str::from_utf8(&upstream).unwrap()).unwrap();
        let m = Message {
            id: Some(RawJson::parse(Bytes::from_static(b"\"client-7\"")).unwrap()),
            ..m
        };
        let chunks = m.to_chunks();
        assert_eq!(chunks.concat(), m.to_bytes());
        assert_eq!(chunks.len(), 3, "envelope, the result as it came, the rest");
        let result = m.result.as_ref().unwrap().bytes();
        assert_eq!(chunks[1].as_ptr(), result.as_ptr(), "the result is not copied");
        assert_eq!(chunks[1].len(), big.len());
        // Small messages stay one buffer; every kind of member round-trips.
        for s in [
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/x"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"m\"q","params":[1,2],"z":null}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}"#,
        ] {
            let m = parse(s).unwrap();
            let chunks = m.to_chunks();
            assert_eq!(chunks.len(), 1, "{s}");
            assert_eq!(chunks[0], m.to_bytes(), "{s}");
        }
        // Large params and a large extra member are shared too.
        let p = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{big},"y":{big}}}"#);
        let m = parse(&p).unwrap();
        let chunks = m.to_chunks();
        assert_eq!(chunks.concat(), m.to_bytes());
        assert_eq!(chunks.len(), 5);
    }

    #[test]
    fn request_round_trips_with_unknown_members() {
        let m = parse(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{ "a" : 1 }},"x-ext":[1]}"#).unwrap();
        assert_eq!(m.kind(), MessageKind::Request);
        assert_eq!(m.method(), "tools/call");
        assert_eq!(m.id.as_ref().unwrap().as_i64(), Some(7));
        assert_eq!(
            m.to_bytes(),
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{ "a" : 1 }},"x-ext":[1]}"#
        );
    }

    #[test]
    fn kinds() {
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .unwrap()
                .kind(),
            MessageKind::Notification
        );
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap().kind(),
            MessageKind::Response
        );
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m"}}"#)
                .unwrap()
                .kind(),
            MessageKind::Error
        );
    }

    #[test]
    fn rejects_bad_envelopes() {
        for bad in [
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":1}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","method":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#,
            r#"[1,2"#,
            r#"{"jsonrpc":"2.0","method":"x"} trailing"#,
        ] {
            assert!(parse(bad).is_err(), "accepted {bad}");
        }
        assert_eq!(parse("nope").unwrap_err().code(), ErrorCode::PARSE_ERROR);
        assert_eq!(
            parse(r#"{"jsonrpc":"2.0","id":1"#).unwrap_err().code(),
            ErrorCode::PARSE_ERROR
        );
        // Valid JSON that is not a JSON-RPC envelope is an invalid request, not a parse error.
        for invalid in [
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","method":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#,
            r#""a string""#,
            "42",
        ] {
            assert_eq!(
                parse(invalid).unwrap_err().code(),
                ErrorCode::INVALID_REQUEST,
                "{invalid}"
            );
        }
        assert_eq!(
            parse(r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#)
                .unwrap_err()
                .id()
                .as_str(),
            "3"
        );
        let e = parse(r#"{"jsonrpc":"2.0","id":5,"method":"x","params":3}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::INVALID_REQUEST);
        assert_eq!(e.id().as_str(), "5");
    }

    #[test]
    fn batch() {
        let p = Message::parse_any(Bytes::from_static(
            br#" [{"jsonrpc":"2.0","id":1,"method":"ping"}, {"bad":1}]"#,
        ))
        .unwrap();
        match p {
            Parsed::Batch(v) => {
                assert!(v[0].is_ok());
                assert!(v[1].is_err());
            }
            Parsed::Single(_) => panic!("expected batch"),
        }
        assert!(Message::parse_any(Bytes::from_static(b"[]")).is_err());
    }

    #[test]
    fn error_builder_escapes() {
        let m = Message::error(
            RawJson::from_static("1"),
            ErrorCode::INVALID_PARAMS,
            "bad \"name\"",
            None,
        );
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["error"]["message"], "bad \"name\"");
        assert_eq!(v["error"]["code"], -32602);
        assert_eq!(m.error_object().unwrap().code, -32602);
    }
}
