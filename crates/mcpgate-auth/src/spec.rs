//! The `auth:` and `policies:` sections of the config file as written (serde types).
//!
//! They live here rather than in `mcpgate-config` because building them (parsing keys,
//! compiling CEL) is this crate's business; `mcpgate-config` embeds them in its file spec and
//! calls [`crate::Authenticator::build`] and [`crate::Policy::build`] while validating, so
//! errors still carry the file position. Every struct rejects unknown fields.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// `auth:` — how callers are authenticated, and the protected-resource metadata.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// `required` (the default once this section exists): requests without valid credentials
    /// get 401. `optional`: credentials are checked when present, anonymous callers are
    /// allowed through (policies see no claims). `none`: authentication off.
    #[serde(default)]
    pub mode: Option<ModeSpec>,
    /// JWT bearer tokens.
    #[serde(default)]
    pub jwt: Option<JwtSpec>,
    /// API keys for machine clients, stored as SHA-256 hashes
    /// (`printf %s "$KEY" | sha256sum`). Sent as `Authorization: Bearer <key>` or `X-API-Key`.
    #[serde(default)]
    pub api_keys: Vec<ApiKeySpec>,
    /// RFC 9728 protected-resource metadata and the `WWW-Authenticate` challenge.
    #[serde(default)]
    pub resource: ResourceSpec,
    /// Hide tools, prompts and resources the caller may not use from list results (default
    /// `true`, the secure choice). `false` lists everything and only refuses the calls (the
    /// seed guide's "list shows it, call fails" flow).
    #[serde(default = "yes")]
    pub hide_denied: bool,
}

fn yes() -> bool {
    true
}

/// Authentication mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSpec {
    /// Credentials are required.
    Required,
    /// Credentials are checked when sent; anonymous callers pass.
    Optional,
    /// No authentication.
    None,
}

/// `auth.jwt`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    /// Accepted `iss` values (empty: any issuer, not recommended).
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted `aud` values; a token must name at least one (empty: `aud` not checked).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Where the verification keys come from.
    #[serde(default)]
    pub jwks: Option<JwksSpec>,
    /// Clock skew tolerated for `exp` and `nbf`: `30s`, `2m`, or seconds. Default `30s`.
    #[serde(default)]
    pub leeway: Option<DurationSpec>,
    /// Accepted algorithms (default: every asymmetric one — ES256, ES384, RS256, RS384,
    /// RS512, PS256, PS384, PS512, EdDSA). HS256/384/512 need `hs_secret`.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Shared secret for HS256/384/512 tokens: `{env: NAME}` or `{file: PATH}`. Never
    /// used to verify asymmetric tokens, and JWKS keys never verify HS tokens.
    #[serde(default)]
    pub hs_secret: Option<SecretRefSpec>,
}

/// `auth.jwt.jwks`: exactly one of `file`, `inline`, `url`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSpec {
    /// A file holding a JWK Set (`{"keys": [...]}`) or a single JWK object (relative paths
    /// are relative to the config file). Re-read on config reload.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// A JWK Set or a single JWK written in the config.
    #[serde(default)]
    pub inline: Option<serde_json::Value>,
    /// An `https://` (or loopback `http://`) JWKS endpoint: fetched at start, refreshed in
    /// the background every `refresh`, refetched (at most every `min_refetch`) when a token
    /// names an unknown `kid`; the last good key set is kept when the endpoint fails.
    #[serde(default)]
    pub url: Option<String>,
    /// Background refresh interval for `url`. Default `5m`.
    #[serde(default)]
    pub refresh: Option<DurationSpec>,
    /// Least time between two fetches triggered by unknown `kid`s. Default `30s`.
    #[serde(default)]
    pub min_refetch: Option<DurationSpec>,
}

/// A secret read at load time: `{env: NAME}` or `{file: PATH}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRefSpec {
    /// An environment variable of the gateway.
    #[serde(default)]
    pub env: Option<String>,
    /// A file (trailing newline trimmed; relative to the config file).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// One API key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// SHA-256 of the key, 64 hex digits.
    pub hash: String,
    /// The subject policies see.
    pub subject: String,
    /// Extra claims policies see (`sub` is set to `subject`).
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// `auth.resource`: what the gateway says about itself as an OAuth protected resource.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// The public base URL clients use (`https://mcp.example.com`). Default: taken from the
    /// request (`http://` + `Host`), which is right for loopback and plain deployments.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Authorization servers that issue tokens for this gateway (`authorization_servers`).
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes advertised as `scopes_supported` and in the 401 challenge's `scope`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes every token must carry (`scope`/`scp` claim); a valid token without them gets
    /// `403` with `error="insufficient_scope"`.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Human-readable `resource_name`.
    #[serde(default)]
    pub name: Option<String>,
}

/// A duration: `500ms`, `30s`, `5m`, `1h`, or a number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationSpec {
    /// Seconds.
    Seconds(u64),
    /// Text with a unit.
    Text(String),
}

impl DurationSpec {
    /// The duration, or why the text is not one.
    pub fn parse(&self) -> Result<std::time::Duration, String> {
        match self {
            DurationSpec::Seconds(s) => Ok(std::time::Duration::from_secs(*s)),
            DurationSpec::Text(t) => {
                let t = t.trim();
                let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let (n, unit) = t.split_at(split);
                let n: u64 = n.parse().map_err(|_| format!("`{t}` is not a duration like 30s"))?;
                let ms = match unit.trim() {
                    "ms" => n,
                    "" | "s" => n * 1000,
                    "m" => n * 60_000,
                    "h" => n * 3_600_000,
                    _ => return Err(format!("`{t}` is not a duration like 30s")),
                };
                Ok(std::time::Duration::from_millis(ms))
            }
        }
    }
}

/// One entry of `policies:`: an `allow` or a `deny` of some resources, for the callers that
/// `when` matches (every caller when `when` is absent).
///
/// ```yaml
/// policies:
///   - name: seed
///     allow: { tools: ["markitdown:convert_to_markdown"] }
///     when: { claims: { sub: me } }
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for logs (default `policies[i]`).
    #[serde(default)]
    pub name: Option<String>,
    /// Resources this rule grants.
    #[serde(default)]
    pub allow: Option<ResourcesSpec>,
    /// Resources this rule refuses (deny wins over any allow).
    #[serde(default)]
    pub deny: Option<ResourcesSpec>,
    /// Which callers the rule applies to.
    #[serde(default)]
    pub when: Option<WhenSpec>,
}

/// Resources named `target:name`; `*` matches any run of characters in either part, and
/// `*` alone matches everything.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    /// Tools by `target:upstream-tool-name`.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Prompts by `target:upstream-prompt-name`.
    #[serde(default)]
    pub prompts: Vec<String>,
    /// Resources by `target:uri` (URI patterns, e.g. `docs:file:///srv/docs/*`).
    #[serde(default)]
    pub resources: Vec<String>,
    /// Other methods relayed to a target (`target:method`, e.g. `a:tasks/*`).
    #[serde(default)]
    pub methods: Vec<String>,
}

/// Conditions on the caller; all present conditions must hold.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    /// Claim matchers by claim path (`sub`, `realm_access.roles`); all must match.
    #[serde(default)]
    pub claims: BTreeMap<String, ClaimMatchSpec>,
    /// A CEL expression over `claims`, `method`, `target`, `name` and `args` that must be
    /// `true`.
    #[serde(default)]
    pub cel: Option<String>,
}

/// A claim matcher: a plain value (equality) or one operator.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ClaimMatchSpec {
    /// `{equals: v}`, `{one_of: [..]}`, `{contains: v}` or `{exists: true|false}`.
    Op(ClaimOpSpec),
    /// A plain value: the claim must equal it.
    Value(serde_json::Value),
}

/// The operator form of a claim matcher (exactly one field).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimOpSpec {
    /// The claim equals this value.
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    /// The claim equals one of these values.
    #[serde(default)]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// The claim is an array holding this value, or a space-separated string (like `scope`)
    /// holding this word.
    #[serde(default)]
    pub contains: Option<serde_json::Value>,
    /// The claim is (`true`) or is not (`false`) present.
    #[serde(default)]
    pub exists: Option<bool>,
}
