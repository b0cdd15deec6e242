//! MCP protocol revisions and version negotiation.

/// 2024-11-05: the first revision; HTTP+SSE transport.
pub const V2024_11_05: &str = "2024-11-05";
/// 2025-03-26: Streamable HTTP, batching.
pub const V2025_03_26: &str = "2025-03-26";
/// 2025-06-18: structured tool output, elicitation, `MCP-Protocol-Version` header; no batching.
pub const V2025_06_18: &str = "2025-06-18";
/// 2025-11-25: URL elicitation, tasks, SSE polling.
pub const V2025_11_25: &str = "2025-11-25";

/// The newest session-based revision the gateway speaks.
pub const LATEST: &str = V2025_11_25;

/// Session-based revisions the gateway speaks, newest first.
pub const SUPPORTED: &[&str] = &[V2025_11_25, V2025_06_18, V2025_03_26, V2024_11_05];

/// Assumed when a Streamable HTTP request carries no `MCP-Protocol-Version` header and the
/// session gives no better answer (spec: "SHOULD assume 2025-03-26").
pub const DEFAULT_WITHOUT_HEADER: &str = V2025_03_26;

/// Is `v` a revision the gateway speaks?
pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// The version a server answers to a client's `initialize`: the client's own if supported,
/// otherwise the latest.
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED.iter().copied().find(|v| *v == requested).unwrap_or(LATEST)
}

/// Does this revision allow JSON-RPC batches? (only 2025-03-26)
pub fn allows_batches(v: &str) -> bool {
    v == V2025_03_26
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate("2025-06-18"), "2025-06-18");
        assert_eq!(negotiate("2099-01-01"), LATEST);
        assert!(is_supported("2024-11-05"));
        assert!(!is_supported("2025-01-01"));
    }
}
