//! The authenticator: credentials of a request → [`Identity`], built once from `auth:`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use crate::apikey::{self, ApiKeys};
use crate::cache::TokenCache;
use crate::jwks::{KeySet, KeySource, RemoteJwks};
use crate::jwt::{DEFAULT_ALGORITHMS, HsKey, JwtValidator};
use crate::metadata::ResourceMetadata;
use crate::spec::{AuthSpec, ModeSpec, SecretRefSpec};
use crate::{AuthError, Identity, JwtError, Source};

/// A config value that cannot be built, with where it is (for `mcpgate-config` to position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// The field's path, e.g. `auth.jwt.jwks.file`.
    pub field: String,
    /// Text that occurs on the offending line, to locate it.
    pub needle: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl BuildError {
    pub(crate) fn new(field: impl Into<String>, needle: Option<&str>, message: impl Into<String>) -> BuildError {
        BuildError {
            field: field.into(),
            needle: needle.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Whether credentials are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Requests without valid credentials get 401.
    Required,
    /// Credentials are checked when present; anonymous requests pass.
    Optional,
    /// No authentication.
    None,
}

/// The credentials an HTTP request carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `X-API-Key` header.
    pub api_key: Option<&'a str>,
}

/// Authenticates requests. Built at config load; cheap to share.
#[derive(Debug)]
pub struct Authenticator {
    mode: AuthMode,
    jwt: Option<JwtValidator>,
    api_keys: ApiKeys,
    required_scopes: Vec<String>,
    cache: TokenCache,
    /// What the gateway says about itself as a protected resource.
    pub metadata: ResourceMetadata,
    /// Hide denied items from lists.
    pub hide_denied: bool,
}

impl Authenticator {
    /// Authentication off.
    pub fn disabled() -> Authenticator {
        Authenticator {
            mode: AuthMode::None,
            jwt: None,
            api_keys: ApiKeys::default(),
            required_scopes: vec![],
            cache: TokenCache::default(),
            metadata: ResourceMetadata::default(),
            hide_denied: true,
        }
    }

    /// Builds from the `auth:` section; files are relative to `base`.
    pub fn build(spec: &AuthSpec, base: Option<&Path>) -> Result<Authenticator, BuildError> {
        let mode = match spec.mode {
            None | Some(ModeSpec::Required) => AuthMode::Required,
            Some(ModeSpec::Optional) => AuthMode::Optional,
            Some(ModeSpec::None) => AuthMode::None,
        };
        let jwt = match &spec.jwt {
            Some(j) => Some(build_jwt(j, base)?),
            None => None,
        };
        let mut api_keys = ApiKeys::default();
        for (i, k) in spec.api_keys.iter().enumerate() {
            if k.subject.is_empty() {
                return Err(BuildError::new(
                    format!("auth.api_keys[{i}].subject"),
                    Some(&k.hash),
                    "must not be empty",
                ));
            }
            api_keys
                .insert(&k.hash, apikey::identity(&k.subject, k.claims.clone()))
                .map_err(|m| BuildError::new(format!("auth.api_keys[{i}].hash"), Some(&k.hash), m))?;
        }
        if mode != AuthMode::None && jwt.is_none() && api_keys.is_empty() {
            return Err(BuildError::new(
                "auth",
                Some("auth:"),
                "authentication is on but neither `jwt` nor `api_keys` is configured (set `mode: none` to turn it off)",
            ));
        }
        let r = &spec.resource;
        if let Some(b) = &r.base_url
            && !url::Url::parse(b).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(BuildError::new(
                "auth.resource.base_url",
                Some(b),
                format!("`{b}` is not an http(s) URL like https://mcp.example.com"),
            ));
        }
        for s in r.scopes.iter().chain(&r.required_scopes) {
            if s.is_empty() || s.contains([' ', '"', '\\']) {
                return Err(BuildError::new(
                    "auth.resource.scopes",
                    Some(s),
                    format!("`{s}` is not a valid scope token"),
                ));
            }
        }
        Ok(Authenticator {
            mode,
            jwt,
            api_keys,
            required_scopes: r.required_scopes.clone(),
            cache: TokenCache::default(),
            metadata: ResourceMetadata {
                base_url: r.base_url.as_ref().map(|b| b.trim_end_matches('/').to_owned()),
                authorization_servers: r.authorization_servers.clone(),
                scopes: r.scopes.clone(),
                name: r.name.clone(),
            },
            hide_denied: spec.hide_denied,
        })
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Is authentication on (`required` or `optional`)?
    pub fn is_enabled(&self) -> bool {
        self.mode != AuthMode::None
    }

    /// Starts background work (remote JWKS refresh). Needs a Tokio runtime.
    pub fn start(&self) {
        if let Some(JwtValidator {
            keys: KeySource::Remote(r),
            ..
        }) = &self.jwt
        {
            r.start();
        }
    }

    /// Authenticates a request: `Ok(None)` for an anonymous caller where that is allowed.
    pub async fn authenticate(&self, creds: Credentials<'_>) -> Result<Option<Arc<Identity>>, AuthError> {
        if self.mode == AuthMode::None {
            return Ok(None);
        }
        let token = match (creds.authorization, creds.api_key) {
            (Some(h), _) => Some(bearer(h).ok_or(AuthError::Jwt(JwtError::Malformed(
                "expected `Authorization: Bearer <token>`",
            )))?),
            (None, Some(k)) => Some(k.trim()),
            (None, None) => None,
        };
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return match self.mode {
                AuthMode::Optional => Ok(None),
                _ => Err(AuthError::Missing),
            };
        };
        // A JWT verified before, with the keys still in force: no hash, no signature check.
        if let Some(jwt) = &self.jwt
            && let Some(id) = self.cache.get(token, jwt.keys_generation())
        {
            return Ok(Some(id));
        }
        if !self.api_keys.is_empty()
            && let Some(id) = self.api_keys.lookup(&apikey::hash(token))
        {
            return Ok(Some(id));
        }
        let Some(jwt) = &self.jwt else {
            return Err(AuthError::UnknownApiKey);
        };
        if !token.contains('.') && !self.api_keys.is_empty() {
            return Err(AuthError::UnknownApiKey);
        }
        let (claims, keys) = jwt.validate(token).await?;
        self.check_scopes(&claims)?;
        // `exp` is required and checked by the validator; a fractional one counts down to
        // the second. A token without a readable `exp` is not cached.
        let exp = claims.get("exp").and_then(|e| {
            e.as_u64()
                .or_else(|| e.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        });
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        let bearer: Arc<str> = Arc::from(token);
        let id = Arc::new(Identity {
            subject,
            claims,
            source: Source::Jwt,
            bearer: Some(bearer.clone()),
        });
        if let Some(exp) = exp {
            self.cache.insert(bearer, id.clone(), exp, keys);
        }
        Ok(Some(id))
    }

    fn check_scopes(&self, claims: &Value) -> Result<(), AuthError> {
        if self.required_scopes.is_empty() {
            return Ok(());
        }
        let has = |want: &str| {
            ["scope", "scp"].iter().any(|c| match claims.get(*c) {
                Some(Value::String(s)) => s.split_ascii_whitespace().any(|x| x == want),
                Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(want)),
                _ => false,
            })
        };
        if self.required_scopes.iter().all(|s| has(s)) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope(self.required_scopes.join(" ")))
        }
    }

    #[cfg(test)]
    pub(crate) fn cached(&self) -> usize {
        self.cache.len()
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(h: &str) -> Option<&str> {
    let h = h.trim();
    if h.eq_ignore_ascii_case("bearer") {
        return Some("");
    }
    let (scheme, rest) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn build_jwt(j: &crate::spec::JwtSpec, base: Option<&Path>) -> Result<JwtValidator, BuildError> {
    let leeway = match &j.leeway {
        Some(d) => d
            .parse()
            .map_err(|m| BuildError::new("auth.jwt.leeway", Some("leeway"), m))?
            .as_secs(),
        None => 30,
    };
    let hs = match &j.hs_secret {
        Some(s) => {
            let secret =
                read_secret(s, base).map_err(|m| BuildError::new("auth.jwt.hs_secret", Some("hs_secret"), m))?;
            if secret.len() < 32 {
                return Err(BuildError::new(
                    "auth.jwt.hs_secret",
                    Some("hs_secret"),
                    "an HS secret must be at least 32 bytes",
                ));
            }
            Some(HsKey(DecodingKey::from_secret(secret.as_bytes())))
        }
        None => None,
    };
    let algorithms: Vec<Algorithm> = if j.algorithms.is_empty() {
        let mut a = DEFAULT_ALGORITHMS.to_vec();
        if hs.is_some() {
            a.extend([Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]);
        }
        a
    } else {
        let mut out = Vec::new();
        for a in &j.algorithms {
            let alg: Algorithm = a.parse().map_err(|_| {
                BuildError::new(
                    "auth.jwt.algorithms",
                    Some(a),
                    format!("`{a}` is not a supported algorithm (ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA, HS256, HS384, HS512)"),
                )
            })?;
            if alg.family() == AlgorithmFamily::Hmac && hs.is_none() {
                return Err(BuildError::new(
                    "auth.jwt.algorithms",
                    Some(a),
                    format!("`{a}` needs `hs_secret`"),
                ));
            }
            out.push(alg);
        }
        out
    };
    let keys = match &j.jwks {
        None => KeySource::None,
        Some(k) => {
            let n = k.file.is_some() as u8 + k.inline.is_some() as u8 + k.url.is_some() as u8;
            if n != 1 {
                return Err(BuildError::new(
                    "auth.jwt.jwks",
                    Some("jwks"),
                    "must have exactly one of `file`, `inline`, `url`",
                ));
            }
            if let Some(f) = &k.file {
                let path = match base {
                    Some(b) if f.is_relative() && !b.as_os_str().is_empty() => b.join(f),
                    _ => f.clone(),
                };
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    BuildError::new(
                        "auth.jwt.jwks.file",
                        Some(&f.display().to_string()),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let set = KeySet::parse_text(&text).map_err(|m| {
                    BuildError::new(
                        "auth.jwt.jwks.file",
                        Some(&f.display().to_string()),
                        format!("{}: {m}", path.display()),
                    )
                })?;
                KeySource::Static(Arc::new(set))
            } else if let Some(v) = &k.inline {
                let set = KeySet::parse(v).map_err(|m| BuildError::new("auth.jwt.jwks.inline", Some("inline"), m))?;
                KeySource::Static(Arc::new(set))
            } else {
                let u = k.url.as_deref().unwrap_or_default();
                let url = url::Url::parse(u)
                    .map_err(|e| BuildError::new("auth.jwt.jwks.url", Some(u), format!("`{u}` is not a URL: {e}")))?;
                let loopback = url.host_str().is_some_and(|h| {
                    h == "localhost"
                        || h.trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                });
                if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
                    return Err(BuildError::new(
                        "auth.jwt.jwks.url",
                        Some(u),
                        "must be https:// (http:// only for loopback addresses)",
                    ));
                }
                let dur = |d: &Option<crate::spec::DurationSpec>,
                           field: &str,
                           default: u64|
                 -> Result<Duration, BuildError> {
                    match d {
                        Some(d) => d
                            .parse()
                            .map_err(|m| BuildError::new(field, Some(field.rsplit('.').next().unwrap_or(field)), m)),
                        None => Ok(Duration::from_secs(default)),
                    }
                };
                let refresh = dur(&k.refresh, "auth.jwt.jwks.refresh", 300)?.max(Duration::from_secs(1));
                let min_refetch = dur(&k.min_refetch, "auth.jwt.jwks.min_refetch", 30)?;
                KeySource::Remote(Arc::new(RemoteJwks::new(url, refresh, min_refetch)))
            }
        }
    };
    let asymmetric = algorithms.iter().any(|a| a.family() != AlgorithmFamily::Hmac);
    if asymmetric && matches!(keys, KeySource::None) && hs.is_none() {
        return Err(BuildError::new(
            "auth.jwt",
            Some("jwt:"),
            "needs `jwks` (or `hs_secret` for HS tokens)",
        ));
    }
    Ok(JwtValidator {
        issuers: j.issuers.clone(),
        audiences: j.audiences.clone(),
        leeway,
        algorithms,
        keys,
        hs,
    })
}

fn read_secret(s: &SecretRefSpec, base: Option<&Path>) -> Result<String, String> {
    match (&s.env, &s.file) {
        (Some(name), None) => std::env::var(name).map_err(|_| format!("environment variable `{name}` is not set")),
        (None, Some(f)) => {
            let path = match base {
                Some(b) if f.is_relative() && !b.as_os_str().is_empty() => b.join(f),
                _ => f.clone(),
            };
            std::fs::read_to_string(&path)
                .map(|v| v.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        _ => Err("use exactly one of `env` or `file`".into()),
    }
}

#[cfg(test)]
mod tests;
