//! How an MCP request ended, as one bounded label value.

/// How an MCP request ended. The `outcome` label of the request and tool-call metrics and
/// the `outcome` field of the access log.
///
/// The federation core maps every `GatewayError` onto one of these with an exhaustive match,
/// so a new error kind has to pick its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Outcome {
    /// A result (for `tools/call`: one without `isError: true`).
    #[default]
    Ok,
    /// `tools/call` answered with a result carrying `isError: true` (the tool ran and failed).
    ToolError,
    /// The upstream answered with a JSON-RPC error of its own.
    UpstreamError,
    /// The upstream sent something that is not valid MCP.
    BadResponse,
    /// The target is down, restarting or unreachable.
    Unavailable,
    /// The upstream did not answer in time.
    Timeout,
    /// Refused by an authorization policy (the client sees an unknown name).
    Denied,
    /// Refused by a rate limit.
    RateLimited,
    /// Refused because the target's circuit breaker is open.
    CircuitOpen,
    /// Refused because a concurrency limit was reached.
    Overloaded,
    /// The client's mistake: unknown name or method, invalid parameters.
    InvalidRequest,
    /// The client cancelled the request or its session ended first.
    Cancelled,
    /// The gateway failed (a bug or a panic in the handling).
    InternalError,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 13] = [
        Outcome::Ok,
        Outcome::ToolError,
        Outcome::UpstreamError,
        Outcome::BadResponse,
        Outcome::Unavailable,
        Outcome::Timeout,
        Outcome::Denied,
        Outcome::RateLimited,
        Outcome::CircuitOpen,
        Outcome::Overloaded,
        Outcome::InvalidRequest,
        Outcome::Cancelled,
        Outcome::InternalError,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::BadResponse => "bad_response",
            Outcome::Unavailable => "unavailable",
            Outcome::Timeout => "timeout",
            Outcome::Denied => "denied",
            Outcome::RateLimited => "rate_limited",
            Outcome::CircuitOpen => "circuit_open",
            Outcome::Overloaded => "overloaded",
            Outcome::InvalidRequest => "invalid_request",
            Outcome::Cancelled => "cancelled",
            Outcome::InternalError => "internal_error",
        }
    }

    /// Position in [`Outcome::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// Did the request succeed (including a tool that ran and reported its own failure)?
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::ToolError)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{o}");
        }
    }
}
