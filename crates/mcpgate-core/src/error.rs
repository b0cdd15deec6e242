//! Errors of the federation layer, each mapped to exactly one JSON-RPC error.

use mcpgate_proto::{ErrorCode, Message, RawJson};
use mcpgate_upstream::UpstreamError;

/// Why the gateway could not complete a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// The target is down, restarting or unreachable.
    #[error("target `{target}` is unavailable: {reason}")]
    Unavailable {
        /// Target name.
        target: String,
        /// Why.
        reason: String,
    },
    /// The upstream did not answer in time.
    #[error("target `{target}` did not answer in time")]
    Timeout {
        /// Target name.
        target: String,
    },
    /// The upstream failed the request in a way that is not a JSON-RPC error of its own.
    #[error("target `{target}`: {message}")]
    Upstream {
        /// Target name.
        target: String,
        /// What happened.
        message: String,
    },
    /// The upstream answered with something that is not valid MCP.
    #[error("target `{target}` sent an invalid response: {message}")]
    BadResponse {
        /// Target name.
        target: String,
        /// What was wrong.
        message: String,
    },
    /// No exposed tool, prompt or resource by that name.
    #[error("{0}")]
    NotFound(String),
    /// The resource URI belongs to no target.
    #[error("Resource not found: {0}")]
    ResourceNotFound(String),
    /// Bad request parameters.
    #[error("{0}")]
    InvalidParams(String),
    /// The method is not handled.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// The client cancelled the request or ended the session.
    #[error("request cancelled")]
    Cancelled,
}

impl GatewayError {
    pub(crate) fn from_upstream(target: &str, e: UpstreamError) -> Self {
        match e {
            UpstreamError::Timeout => GatewayError::Timeout { target: target.into() },
            UpstreamError::Protocol(m) => GatewayError::BadResponse {
                target: target.into(),
                message: m,
            },
            UpstreamError::TooLarge(n) => GatewayError::BadResponse {
                target: target.into(),
                message: format!("message larger than {n} bytes"),
            },
            other => GatewayError::Unavailable {
                target: target.into(),
                reason: other.to_string(),
            },
        }
    }

    pub(crate) fn bad_response(target: &str, message: &str) -> Self {
        GatewayError::BadResponse {
            target: target.into(),
            message: message.into(),
        }
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            GatewayError::Unavailable { .. } | GatewayError::Upstream { .. } => ErrorCode::UPSTREAM_UNAVAILABLE,
            GatewayError::Timeout { .. } => ErrorCode::UPSTREAM_TIMEOUT,
            GatewayError::BadResponse { .. } => ErrorCode::UPSTREAM_BAD_RESPONSE,
            GatewayError::NotFound(_) | GatewayError::InvalidParams(_) => ErrorCode::INVALID_PARAMS,
            GatewayError::ResourceNotFound(_) => ErrorCode::RESOURCE_NOT_FOUND,
            GatewayError::MethodNotFound(_) => ErrorCode::METHOD_NOT_FOUND,
            GatewayError::Cancelled => ErrorCode::REQUEST_CANCELLED,
        }
    }

    /// Could the same request succeed if retried later?
    pub fn is_retryable(&self) -> bool {
        matches!(self, GatewayError::Unavailable { .. } | GatewayError::Timeout { .. })
    }

    /// The error response to request `id`.
    pub fn to_response(&self, id: RawJson) -> Message {
        let data = match self {
            GatewayError::ResourceNotFound(uri) => Some(RawJson::from_value(&serde_json::json!({ "uri": uri }))),
            GatewayError::Unavailable { target, .. }
            | GatewayError::Timeout { target }
            | GatewayError::Upstream { target, .. }
            | GatewayError::BadResponse { target, .. } => {
                Some(RawJson::from_value(&serde_json::json!({ "target": target })))
            }
            _ => None,
        };
        Message::error(id, self.code(), &self.to_string(), data)
    }
}
