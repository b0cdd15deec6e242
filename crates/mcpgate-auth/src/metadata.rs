//! RFC 9728 protected-resource metadata and the RFC 6750 `WWW-Authenticate` challenge.
//!
//! The gateway is a resource server only: the metadata names the organisation's own
//! authorization server(s), so MCP clients discover where to get a token, and the challenge
//! on every 401 points at the metadata document (`resource_metadata="…"`).

use serde_json::{Value, json};

use crate::AuthError;

/// The well-known path prefix (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// What the gateway publishes about itself.
#[derive(Debug, Clone, Default)]
pub struct ResourceMetadata {
    /// Public base URL (no trailing slash); `None`: derived from the request.
    pub base_url: Option<String>,
    /// `authorization_servers`.
    pub authorization_servers: Vec<String>,
    /// `scopes_supported`, also sent as the challenge's `scope`.
    pub scopes: Vec<String>,
    /// `resource_name`.
    pub name: Option<String>,
}

impl ResourceMetadata {
    /// The base URL for a request with this `Host` header.
    pub fn base(&self, host: Option<&str>) -> String {
        match (&self.base_url, host) {
            (Some(b), _) => b.clone(),
            (None, Some(h)) => format!("http://{h}"),
            (None, None) => "http://localhost".into(),
        }
    }

    /// The metadata URL for the resource at `path` (the path-suffixed form of RFC 9728 §3.1).
    pub fn url(&self, base: &str, path: &str) -> String {
        format!("{base}{WELL_KNOWN}{path}")
    }

    /// The metadata document for the resource `base` + `path`.
    pub fn document(&self, base: &str, path: &str) -> Value {
        let mut doc = json!({
            "resource": format!("{base}{path}"),
            "authorization_servers": self.authorization_servers,
            "bearer_methods_supported": ["header"],
        });
        if !self.scopes.is_empty() {
            doc["scopes_supported"] = json!(self.scopes);
        }
        if let Some(n) = &self.name {
            doc["resource_name"] = json!(n);
        }
        doc
    }

    /// The `WWW-Authenticate` value answering `err`.
    pub fn challenge(&self, metadata_url: &str, err: &AuthError) -> String {
        let mut out = format!("Bearer resource_metadata=\"{}\"", quote(metadata_url));
        let scope = match err {
            AuthError::InsufficientScope(s) => Some(s.clone()),
            _ if !self.scopes.is_empty() => Some(self.scopes.join(" ")),
            _ => None,
        };
        if let Some(s) = scope {
            out.push_str(&format!(", scope=\"{}\"", quote(&s)));
        }
        if let Some(code) = err.oauth_error() {
            out.push_str(&format!(", error=\"{code}\""));
            let desc = err.to_string();
            out.push_str(&format!(", error_description=\"{}\"", quote(&desc)));
        }
        out
    }
}

/// Escapes a quoted-string value (and drops control characters).
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JwtError;

    #[test]
    fn challenge_and_document() {
        let m = ResourceMetadata {
            base_url: None,
            authorization_servers: vec!["https://idp.example.com".into()],
            scopes: vec!["mcp:tools".into()],
            name: Some("gw".into()),
        };
        let base = m.base(Some("127.0.0.1:8080"));
        let url = m.url(&base, "/mcp");
        assert_eq!(url, "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp");
        assert_eq!(
            m.challenge(&url, &AuthError::Missing),
            "Bearer resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\""
        );
        let c = m.challenge(&url, &AuthError::Jwt(JwtError::Expired));
        assert!(
            c.ends_with(", error=\"invalid_token\", error_description=\"invalid token: token expired\""),
            "{c}"
        );
        let c = m.challenge(&url, &AuthError::InsufficientScope("a b".into()));
        assert!(
            c.contains("scope=\"a b\"") && c.contains("error=\"insufficient_scope\""),
            "{c}"
        );
        let d = m.document(&base, "/mcp");
        assert_eq!(d["resource"], "http://127.0.0.1:8080/mcp");
        assert_eq!(d["authorization_servers"][0], "https://idp.example.com");
        assert_eq!(d["scopes_supported"][0], "mcp:tools");
        assert_eq!(quote("a\"b\\c\n"), "a\\\"b\\\\c");
    }
}
