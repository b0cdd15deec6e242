//! Errors of the upstream client: what can go wrong talking to one MCP server, whether a retry
//! could help, and which JSON-RPC error a downstream client should see for it.
//!
//! This module does not decide *whether* to retry (the router does, knowing whether the call is
//! idempotent); it only says whether trying again could succeed.

use std::sync::Arc;

use mcpgate_proto::ErrorCode;

/// A boxed, shareable error source.
pub type BoxError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why an exchange with an upstream MCP server failed.
///
/// Cheap to clone: one failure (a crashed process, an expired session) fails every request
/// that was waiting on the connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The stdio server process could not be started.
    #[error("could not start the upstream process: {0}")]
    Spawn(#[source] Arc<std::io::Error>),
    /// The HTTP server could not be reached (DNS, TCP, TLS, or the request could not be sent).
    #[error("could not reach the upstream: {0}")]
    Connect(#[source] BoxError),
    /// The connect (spawn/connect plus `initialize`) did not finish in time.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// The connection is gone (process exited, stream lost, closed by us); says why.
    #[error("the upstream connection is closed: {0}")]
    Closed(String),
    /// The server answered 404 to a request carrying our session id: the session is gone and a
    /// new one must be initialized.
    #[error("the upstream session expired")]
    SessionExpired,
    /// The server answered with an unexpected HTTP status; `body` is truncated.
    #[error("the upstream answered HTTP {status}: {body}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The start of the response body, for the log.
        body: String,
    },
    /// The server sent something that is not valid MCP (not JSON, not JSON-RPC, wrong content
    /// type, an unsupported protocol version, a rejected `initialize`).
    #[error("the upstream broke the protocol: {0}")]
    Protocol(String),
    /// One message (or SSE event, or HTTP body) exceeded the configured bound.
    #[error("an upstream message exceeded {0} bytes")]
    TooLarge(usize),
    /// Reading from or writing to the transport failed mid-exchange.
    #[error("upstream transport I/O failed: {0}")]
    Io(#[source] BoxError),
}

impl UpstreamError {
    /// Could the same call succeed if tried again (possibly on a new connection)?
    ///
    /// True for transient transport failures, an expired session (after re-initializing) and
    /// the HTTP statuses that mean "try later"; false for failures that would repeat
    /// (a command that cannot start, protocol violations, oversized messages, other statuses).
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Connect(_)
            | UpstreamError::Timeout
            | UpstreamError::Closed(_)
            | UpstreamError::SessionExpired
            | UpstreamError::Io(_) => true,
            UpstreamError::Http { status, .. } => matches!(status, 408 | 429 | 502 | 503 | 504),
            UpstreamError::Spawn(_) | UpstreamError::Protocol(_) | UpstreamError::TooLarge(_) => false,
        }
    }

    /// The JSON-RPC error code a downstream client gets for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            UpstreamError::Timeout => ErrorCode::UPSTREAM_TIMEOUT,
            UpstreamError::Protocol(_) | UpstreamError::TooLarge(_) => ErrorCode::UPSTREAM_BAD_RESPONSE,
            _ => ErrorCode::UPSTREAM_UNAVAILABLE,
        }
    }

    pub(crate) fn connect(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        UpstreamError::Connect(Arc::new(e))
    }

    pub(crate) fn io(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        UpstreamError::Io(Arc::new(e))
    }

    /// The error handed to requests that were waiting when the connection ended for this reason.
    pub(crate) fn for_pending(&self) -> UpstreamError {
        match self {
            UpstreamError::SessionExpired | UpstreamError::Closed(_) => self.clone(),
            other => UpstreamError::Closed(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_and_codes() {
        assert!(UpstreamError::SessionExpired.is_retryable());
        assert!(
            UpstreamError::Http {
                status: 503,
                body: String::new()
            }
            .is_retryable()
        );
        assert!(
            !UpstreamError::Http {
                status: 400,
                body: String::new()
            }
            .is_retryable()
        );
        assert!(!UpstreamError::Protocol("x".into()).is_retryable());
        assert_eq!(UpstreamError::Timeout.code(), ErrorCode::UPSTREAM_TIMEOUT);
        assert_eq!(UpstreamError::TooLarge(1).code(), ErrorCode::UPSTREAM_BAD_RESPONSE);
        assert!(matches!(
            UpstreamError::TooLarge(5).for_pending(),
            UpstreamError::Closed(m) if m.contains("5 bytes")
        ));
    }
}
