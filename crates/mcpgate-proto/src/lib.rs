//! MCP wire formats shared by every mcpgate layer.
//!
//! This crate owns the parts of the protocol that are about bytes: the JSON-RPC envelope
//! ([`jsonrpc`]), shallow edits of JSON objects without decoding their values ([`raw`]),
//! Server-Sent Events framing ([`sse`]), the session-based protocol revisions the gateway
//! speaks ([`version`]), the stateless generation's wire names ([`modern`]) and its tool
//! parameters mirrored into `Mcp-Param-*` headers ([`xheader`]).
//! It knows nothing about sessions, targets or HTTP.

pub mod jsonrpc;
pub mod modern;
pub mod raw;
pub mod sse;
pub mod version;
pub mod xheader;

pub use jsonrpc::{ErrorCode, Message, MessageKind, ParseError};
pub use raw::{JsonStr, ObjectEdit, RawJson};
