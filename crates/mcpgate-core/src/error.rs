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
    /// An authorization policy refused the request. The client is told exactly what it would
    /// be told for an unknown name (the boxed error), so a denial reveals nothing; only
    /// metrics and logs know the difference.
    #[error(transparent)]
    Denied(Box<GatewayError>),
    /// A new session was refused: the gateway is shutting down, or a session limit is
    /// reached (issue 4). Answered with HTTP `status` (503 or 429).
    #[error("{message}")]
    SessionRefused {
        /// What was refused and why, naming the limit.
        message: String,
        /// HTTP status of the answer.
        status: u16,
        /// The limit that refused it (`draining`, `max_sessions`, `max_sessions_per_identity`),
        /// for metrics.
        limit: &'static str,
    },
    // ---- Traffic management (issue 4) ----
    /// A rate limit refused the request (JSON-RPC -32005, `data.retryAfterMs`).
    #[error("rate limit exceeded ({scope} limit {rate}); retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// `global`, `identity`, `target` or `tool`.
        scope: &'static str,
        /// The limit as written, e.g. `10/s`.
        rate: String,
        /// The target, for target and tool limits.
        target: Option<String>,
        /// When a request would be accepted.
        retry_after: std::time::Duration,
    },
    /// The target's concurrency limit is reached and no slot freed in time (-32005).
    #[error("target `{target}` is at its concurrency limit ({max} in flight); retry later")]
    Overloaded {
        /// Target name.
        target: String,
        /// The limit.
        max: usize,
    },
    /// The target's circuit breaker is open: it failed repeatedly and is not tried for a
    /// while (-32001 with `data.circuit = "open"`).
    #[error("target `{target}` is unavailable: circuit open after repeated failures; retry in {} ms", retry_after.as_millis())]
    CircuitOpen {
        /// Target name.
        target: String,
        /// When a probe request will be let through.
        retry_after: std::time::Duration,
    },
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
            GatewayError::Denied(shown) => shown.code(),
            GatewayError::SessionRefused { .. } => ErrorCode::UPSTREAM_UNAVAILABLE,
            GatewayError::RateLimited { .. } | GatewayError::Overloaded { .. } => ErrorCode::RATE_LIMITED,
            GatewayError::CircuitOpen { .. } => ErrorCode::UPSTREAM_UNAVAILABLE,
        }
    }

    /// Could the same request succeed if retried later?
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::Unavailable { .. }
                | GatewayError::Timeout { .. }
                | GatewayError::SessionRefused { .. }
                | GatewayError::RateLimited { .. }
                | GatewayError::Overloaded { .. }
                | GatewayError::CircuitOpen { .. }
        )
    }

    /// The operations limit behind a refused session, if this is one.
    pub fn refused_by(&self) -> Option<&'static str> {
        match self {
            GatewayError::SessionRefused { limit, .. } => Some(limit),
            _ => None,
        }
    }

    /// The HTTP status for errors answered outside a JSON-RPC 200 (session admission).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            GatewayError::SessionRefused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How a request that failed with this error ended, for metrics and the access log.
    /// Exhaustive on purpose: a new kind of error must choose its outcome.
    pub fn outcome(&self) -> mcpgate_telemetry::Outcome {
        use mcpgate_telemetry::Outcome;
        match self {
            GatewayError::Unavailable { .. } => Outcome::Unavailable,
            GatewayError::Timeout { .. } => Outcome::Timeout,
            GatewayError::Upstream { .. } => Outcome::UpstreamError,
            GatewayError::BadResponse { .. } => Outcome::BadResponse,
            GatewayError::NotFound(_)
            | GatewayError::ResourceNotFound(_)
            | GatewayError::InvalidParams(_)
            | GatewayError::MethodNotFound(_) => Outcome::InvalidRequest,
            GatewayError::Cancelled => Outcome::Cancelled,
            GatewayError::Denied(_) => Outcome::Denied,
            GatewayError::SessionRefused { .. } => Outcome::Overloaded,
            GatewayError::RateLimited { .. } => Outcome::RateLimited,
            GatewayError::Overloaded { .. } => Outcome::Overloaded,
            GatewayError::CircuitOpen { .. } => Outcome::CircuitOpen,
        }
    }

    /// A denial that looks like `shown` to the client.
    pub(crate) fn denied(shown: GatewayError) -> Self {
        GatewayError::Denied(Box::new(shown))
    }

    /// The error response to request `id`.
    pub fn to_response(&self, id: RawJson) -> Message {
        if let GatewayError::Denied(shown) = self {
            return shown.to_response(id);
        }
        let data = match self {
            GatewayError::ResourceNotFound(uri) => Some(RawJson::from_value(&serde_json::json!({ "uri": uri }))),
            GatewayError::Unavailable { target, .. }
            | GatewayError::Timeout { target }
            | GatewayError::Upstream { target, .. }
            | GatewayError::BadResponse { target, .. } => {
                Some(RawJson::from_value(&serde_json::json!({ "target": target })))
            }
            GatewayError::RateLimited {
                scope,
                target,
                retry_after,
                ..
            } => {
                let mut d = serde_json::json!({ "scope": scope, "retryAfterMs": retry_after_ms(*retry_after) });
                if let Some(t) = target {
                    d["target"] = serde_json::Value::String(t.clone());
                }
                Some(RawJson::from_value(&d))
            }
            GatewayError::Overloaded { target, .. } => Some(RawJson::from_value(
                &serde_json::json!({ "scope": "concurrency", "target": target }),
            )),
            GatewayError::CircuitOpen { target, retry_after } => Some(RawJson::from_value(&serde_json::json!({
                "target": target,
                "circuit": "open",
                "retryAfterMs": retry_after_ms(*retry_after),
            }))),
            _ => None,
        };
        Message::error(id, self.code(), &self.to_string(), data)
    }
}

/// Milliseconds to wait, rounded up so a client that waits exactly that long gets through.
fn retry_after_ms(d: std::time::Duration) -> u64 {
    d.as_micros().div_ceil(1000).max(1) as u64
}
