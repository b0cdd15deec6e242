//! The stateless generation of MCP (2026-07-28 and later, "modern"): the names it puts on the
//! wire — its version, the reserved `_meta` keys every request and result carries, the HTTP
//! headers that mirror the body, and the error codes it defines. What the gateway does with
//! them lives in `mcpgate-core::modern` and `mcpgate-http`.

use crate::ErrorCode;

/// 2026-07-28: no sessions, no `initialize`; per-request `_meta`, `server/discover`,
/// multi-round-trip results, `subscriptions/listen`.
pub const V2026_07_28: &str = "2026-07-28";

/// Stateless revisions the gateway serves, newest first.
pub const SUPPORTED: &[&str] = &[V2026_07_28];

/// Is `v` a stateless revision the gateway serves?
pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// Every revision the gateway speaks (stateless first, then session-based), as listed in
/// `server/discover` and in `UnsupportedProtocolVersion` errors.
pub fn all_supported() -> Vec<&'static str> {
    SUPPORTED.iter().chain(crate::version::SUPPORTED).copied().collect()
}

/// Is `v` the name of a revision that uses per-request metadata rather than a session?
/// Dates from 2026-07-28 on are; anything that is not a session-based revision the gateway
/// knows is treated as one too, so the client gets `UnsupportedProtocolVersion` (which it can
/// act on) rather than a session error.
pub fn is_modern_version(v: &str) -> bool {
    !crate::version::is_supported(v)
}

/// Reserved `_meta` keys.
pub mod meta {
    /// The request's protocol version (required on every request).
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The client's name and version (should be on every request).
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    /// The capabilities the client declares for this request (required).
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// The lowest log level the client wants `notifications/message` at, for this request.
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// On every message of a `subscriptions/listen` stream: the listen request's id.
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
    /// On results: the server's name and version.
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
}

/// HTTP headers of the stateless Streamable HTTP transport (lower case, as `http` wants them).
pub mod header {
    /// Mirrors the request's `method` (required on every request).
    pub const METHOD: &str = "mcp-method";
    /// Mirrors `params.name` (tools/call, prompts/get) or `params.uri` (resources/read).
    pub const NAME: &str = "mcp-name";
    /// The protocol version (required on every request; must equal the `_meta` one).
    pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
    /// Prefix of the headers that mirror tool arguments marked `x-mcp-header`.
    pub const PARAM_PREFIX: &str = "mcp-param-";
    /// Start of a Base64-encoded header value (`=?base64?…?=`).
    pub const BASE64_PREFIX: &str = "=?base64?";
    /// End of a Base64-encoded header value.
    pub const BASE64_SUFFIX: &str = "?=";
}

/// The HTTP headers do not match the body, or a required one is missing or malformed.
pub const HEADER_MISMATCH: ErrorCode = ErrorCode(-32020);
/// Processing the request needs a client capability the request did not declare.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: ErrorCode = ErrorCode(-32021);
/// The request's protocol version is not one the server implements; `data` carries
/// `{supported, requested}`.
pub const UNSUPPORTED_PROTOCOL_VERSION: ErrorCode = ErrorCode(-32022);

/// Is `code` one of the errors only the stateless generation defines (header mismatch,
/// missing client capability, unsupported version)? Over Streamable HTTP they come with
/// status 400, and a dual-generation client takes them as "this server is modern".
pub fn is_stateless_error(code: ErrorCode) -> bool {
    matches!(
        code,
        HEADER_MISMATCH | MISSING_REQUIRED_CLIENT_CAPABILITY | UNSUPPORTED_PROTOCOL_VERSION
    )
}

/// `resultType` of an ordinary result.
pub const RESULT_COMPLETE: &str = "complete";
/// `resultType` of a multi-round-trip interim result.
pub const RESULT_INPUT_REQUIRED: &str = "input_required";

/// Methods a stateless client may send that name a tool, prompt or resource, and so need
/// the `Mcp-Name` header: the body member it must match.
pub fn name_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(is_supported("2026-07-28"));
        assert!(!is_supported("2025-11-25"));
        assert!(is_modern_version("2026-07-28"));
        assert!(is_modern_version("v999.0.0"));
        assert!(!is_modern_version("2025-06-18"));
        assert_eq!(all_supported()[0], "2026-07-28");
        assert!(all_supported().contains(&"2024-11-05"));
    }

    #[test]
    fn spec_error_codes() {
        assert_eq!(HEADER_MISMATCH.0, -32020);
        assert_eq!(MISSING_REQUIRED_CLIENT_CAPABILITY.0, -32021);
        assert_eq!(UNSUPPORTED_PROTOCOL_VERSION.0, -32022);
        assert!(is_stateless_error(ErrorCode(-32021)));
        assert!(!is_stateless_error(ErrorCode(-32602)));
    }

    #[test]
    fn name_headers() {
        assert_eq!(name_member("tools/call"), Some("name"));
        assert_eq!(name_member("resources/read"), Some("uri"));
        assert_eq!(name_member("tools/list"), None);
    }
}
