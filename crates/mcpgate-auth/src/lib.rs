//! mcpgate's security layer: who is calling, and may they do this.
//!
//! - [`Authenticator`]: turns the credentials of an HTTP request (a JWT bearer token checked
//!   against JWKS keys, or an API key stored hashed) into an [`Identity`], with a cache of
//!   verified tokens so the hot path is one hash and one map lookup.
//! - [`Policy`]: allow and deny rules over tools, prompts, resources and methods named
//!   `target:name`, matched to identities by claim matchers and CEL expressions. Deny wins;
//!   without a matching allow rule the default decides.
//! - [`metadata`]: RFC 9728 protected-resource metadata and the `WWW-Authenticate` challenge.
//! - [`seal`]: HMAC-protected opaque tokens (multi-round-trip `requestState`).
//! - [`mint`]: test ES256 keys and tokens for the walkthrough (`mcpgate token`).
//!
//! Everything is built from the [`spec`] types at config load (keys parsed, CEL compiled), so a
//! bad file fails there and nothing here re-validates at request time. This crate knows
//! nothing about HTTP framing or MCP sessions: `mcpgate-http` calls [`Authenticator`] at the
//! edge and `mcpgate-core` calls [`Policy`] before every forwarded request.

mod apikey;
mod authn;
mod cache;
mod claims;
pub mod jwks;
mod jwt;
pub mod metadata;
pub mod mint;
mod pattern;
pub mod policy;
pub mod seal;
pub mod spec;

use std::sync::Arc;

pub use authn::{AuthMode, Authenticator, BuildError, Credentials};
pub use claims::{ClaimMatcher, claim_at};
pub use jwt::{JwtError, MAX_HEADER_BYTES, MAX_TOKEN_BYTES, TokenHeader, parse_header, split_token};
pub use pattern::Pattern;
pub use policy::{Decision, Kind, Policy, Request};

/// Who made a request, as established at the edge.
#[derive(Clone, PartialEq)]
pub struct Identity {
    /// The subject: the token's `sub` claim, or the API key's configured subject.
    pub subject: String,
    /// All claims (for API keys: the configured claims plus `sub`). Always a JSON object.
    pub claims: serde_json::Value,
    /// How the identity was established.
    pub source: Source,
    /// The bearer token itself (JWTs only), kept solely for targets that opt in with
    /// `forward_authorization`. Never printed.
    pub bearer: Option<Arc<str>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.subject)
            .field("claims", &self.claims)
            .field("source", &self.source)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How an [`Identity`] was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A JWT bearer token.
    Jwt,
    /// An API key.
    ApiKey,
}

impl Source {
    /// Short label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Jwt => "jwt",
            Source::ApiKey => "api_key",
        }
    }
}

impl Identity {
    /// Is `other` the same principal (same source, subject and, for JWTs, issuer)? A session
    /// started by one principal must not be used with another's credentials.
    pub fn same_principal(&self, other: &Identity) -> bool {
        self.source == other.source
            && self.subject == other.subject
            && self.claims.get("iss") == other.claims.get("iss")
    }
}

/// Why credentials were not accepted. Every variant is answered `401` with a
/// `WWW-Authenticate: Bearer` challenge, except [`AuthError::InsufficientScope`] (`403`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials were sent and they are required.
    #[error("authentication required")]
    Missing,
    /// A JWT was rejected.
    #[error("invalid token: {0}")]
    Jwt(#[from] JwtError),
    /// An API key (or an opaque bearer token) is not known.
    #[error("invalid token: unknown API key")]
    UnknownApiKey,
    /// The token is valid but lacks scopes the listener requires.
    #[error("insufficient scope: requires {0}")]
    InsufficientScope(String),
}

impl AuthError {
    /// The RFC 6750 `error` code (`None` when no credentials were sent).
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::InsufficientScope(_) => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::InsufficientScope(_) => 403,
            _ => 401,
        }
    }

    /// A short, bounded label for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Jwt(e) => e.reason(),
            AuthError::UnknownApiKey => "unknown_api_key",
            AuthError::InsufficientScope(_) => "insufficient_scope",
        }
    }
}

/// A shared identity, as attached to requests and sessions.
pub type SharedIdentity = Arc<Identity>;
