//! JWT validation: structure and header checks of our own, then `jsonwebtoken` for the
//! signature and the registered claims.
//!
//! The header is inspected before any key is chosen: sizes are bounded, `alg: none` and
//! unknown algorithms are refused, `crit` is refused (no extension is understood), and the
//! key must be of the algorithm's own family — an HS token is only ever checked against the
//! configured `hs_secret`, never against a JWKS public key (the classic confusion attack).

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::Value;

use crate::jwks::KeySource;

/// Largest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest encoded JOSE header accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 1024;
/// Largest `kid` accepted.
const MAX_KID_BYTES: usize = 256;
/// Keys tried for a token without `kid`.
const MAX_CANDIDATES: usize = 8;

/// Why a JWT was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, bad JSON, bad claim types…
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Token longer than [`MAX_TOKEN_BYTES`].
    #[error("token too large")]
    TooLarge,
    /// Header longer than [`MAX_HEADER_BYTES`].
    #[error("token header too large")]
    HeaderTooLarge,
    /// `alg: none`.
    #[error("unsigned tokens (alg none) are not accepted")]
    AlgNone,
    /// An algorithm not configured (or unknown).
    #[error("algorithm {0} is not accepted")]
    AlgorithmNotAllowed(String),
    /// No key with the token's `kid`.
    #[error("unknown key id")]
    UnknownKid,
    /// No key fits the token's algorithm.
    #[error("no key for the token's algorithm")]
    NoKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` not accepted.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` not accepted.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is missing.
    #[error("missing claim {0}")]
    MissingClaim(String),
}

impl JwtError {
    /// A short, bounded label for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Malformed(_) => "malformed",
            JwtError::TooLarge => "too_large",
            JwtError::HeaderTooLarge => "header_too_large",
            JwtError::AlgNone => "alg_none",
            JwtError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            JwtError::UnknownKid => "unknown_kid",
            JwtError::NoKey => "no_key",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::MissingClaim(_) => "missing_claim",
        }
    }
}

/// The parts of a compact JWS, checked for shape and size (not decoded).
pub fn split_token(token: &str) -> Result<(&str, &str, &str), JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    if h.len() > MAX_HEADER_BYTES {
        return Err(JwtError::HeaderTooLarge);
    }
    if h.is_empty() || p.is_empty() {
        return Err(JwtError::Malformed("empty part"));
    }
    let b64 = |t: &str| t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !b64(h) || !b64(p) || !b64(s) {
        return Err(JwtError::Malformed("parts must be base64url without padding"));
    }
    Ok((h, p, s))
}

/// What the gateway reads from a JOSE header before choosing a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    /// The algorithm.
    pub alg: Algorithm,
    /// The key id.
    pub kid: Option<String>,
}

/// Parses and checks the header of `token` (shape, size, `alg`, `kid`, `crit`).
pub fn parse_header(token: &str) -> Result<TokenHeader, JwtError> {
    let (h, _, _) = split_token(token)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| JwtError::Malformed("header is not base64url"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed("header is not JSON"))?;
    let obj = v.as_object().ok_or(JwtError::Malformed("header is not an object"))?;
    let alg = obj
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed("header has no alg"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(JwtError::AlgNone);
    }
    let alg = Algorithm::from_str(alg).map_err(|_| JwtError::AlgorithmNotAllowed(truncate(alg)))?;
    if obj.contains_key("crit") {
        return Err(JwtError::Malformed("crit header parameters are not supported"));
    }
    let kid = match obj.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.len() <= MAX_KID_BYTES => Some(k.clone()),
        Some(_) => return Err(JwtError::Malformed("kid must be a short string")),
    };
    Ok(TokenHeader { alg, kid })
}

fn truncate(s: &str) -> String {
    s.chars().take(16).collect()
}

/// A configured JWT validator.
#[derive(Debug, Clone)]
pub struct JwtValidator {
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: u64,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) keys: KeySource,
    pub(crate) hs: Option<HsKey>,
}

/// The HMAC secret (never printed).
#[derive(Clone)]
pub(crate) struct HsKey(pub DecodingKey);

impl std::fmt::Debug for HsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hs secret>")
    }
}

/// The asymmetric algorithms accepted by default.
pub(crate) const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

impl JwtValidator {
    /// The generation of the verification keys in force (see [`crate::jwks::KeySet::generation`]).
    pub(crate) fn keys_generation(&self) -> u64 {
        self.keys.generation()
    }

    /// Validates `token`; returns its claims (a JSON object) and the generation of the key
    /// set it was checked against (for an HS token: the set in force when it was checked).
    pub async fn validate(&self, token: &str) -> Result<(Value, u64), JwtError> {
        let header = parse_header(token)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(JwtError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
        }
        let validation = self.validation(header.alg);
        if header.alg.family() == AlgorithmFamily::Hmac {
            let Some(hs) = &self.hs else {
                return Err(JwtError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
            };
            let generation = self.keys.generation();
            return decode(token, &hs.0, &validation).map(|c| (c, generation));
        }
        let mut keys = self.keys.keys();
        if keys.keys.is_empty()
            && let KeySource::Remote(r) = &self.keys
            && r.refetch_limited().await
        {
            // Not fetched yet (or every fetch failed so far): try now, rate-limited.
            keys = r.keys();
        }
        if let Some(kid) = &header.kid
            && !keys.has_kid(kid)
        {
            if let KeySource::Remote(r) = &self.keys
                && r.refetch_limited().await
            {
                keys = r.keys();
            }
            if !keys.has_kid(kid) {
                return Err(JwtError::UnknownKid);
            }
        }
        let mut last = JwtError::NoKey;
        for key in keys.candidates(header.kid.as_deref(), header.alg).take(MAX_CANDIDATES) {
            // Belt and braces: `candidates` already keeps only the algorithm's family.
            if key.family != header.alg.family() {
                continue;
            }
            match decode(token, &key.decoding, &validation) {
                Err(JwtError::BadSignature) => last = JwtError::BadSignature,
                other => return other.map(|c| (c, keys.generation())),
            }
        }
        Err(last)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
            required.push("iss");
        }
        if self.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audiences);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Value, JwtError> {
    let data = jsonwebtoken::decode::<Value>(token, key, validation).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Provider(_) => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
        ErrorKind::InvalidAudience => JwtError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => JwtError::MissingClaim(truncate(c)),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            JwtError::AlgorithmNotAllowed("?".into())
        }
        _ => JwtError::Malformed("undecodable token"),
    })?;
    if !data.claims.is_object() {
        return Err(JwtError::Malformed("claims are not an object"));
    }
    if data.claims.get("sub").is_some_and(|s| !s.is_string()) {
        return Err(JwtError::Malformed("sub must be a string"));
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_checks() {
        let enc = |h: &str| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(h));
        assert_eq!(parse_header(&enc(r#"{"alg":"none"}"#)), Err(JwtError::AlgNone));
        assert_eq!(parse_header(&enc(r#"{"alg":"NoNe"}"#)), Err(JwtError::AlgNone));
        assert!(matches!(
            parse_header(&enc(r#"{"alg":"XS1"}"#)),
            Err(JwtError::AlgorithmNotAllowed(_))
        ));
        assert!(matches!(
            parse_header(&enc(r#"{"typ":"JWT"}"#)),
            Err(JwtError::Malformed(_))
        ));
        assert!(matches!(
            parse_header(&enc(r#"{"alg":"ES256","crit":["b64"]}"#)),
            Err(JwtError::Malformed(_))
        ));
        assert!(matches!(
            parse_header(&enc(r#"{"alg":"ES256","kid":7}"#)),
            Err(JwtError::Malformed(_))
        ));
        assert_eq!(
            parse_header(&enc(r#"{"alg":"ES256","kid":"k"}"#)).unwrap(),
            TokenHeader {
                alg: Algorithm::ES256,
                kid: Some("k".into())
            }
        );
        let big = format!(r#"{{"alg":"ES256","x":"{}"}}"#, "a".repeat(2000));
        assert_eq!(parse_header(&enc(&big)), Err(JwtError::HeaderTooLarge));
        assert_eq!(split_token(&"a".repeat(MAX_TOKEN_BYTES + 1)), Err(JwtError::TooLarge));
        assert!(matches!(split_token("a.b"), Err(JwtError::Malformed(_))));
        assert!(matches!(split_token("a.b.c.d"), Err(JwtError::Malformed(_))));
        assert!(matches!(split_token("a=.b.c"), Err(JwtError::Malformed(_))));
        assert!(matches!(split_token(".b.c"), Err(JwtError::Malformed(_))));
    }

    proptest! {
        // The token parser never panics, whatever the bytes.
        #[test]
        fn header_parser_survives_random_input(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_header(&s);
        }

        #[test]
        fn header_parser_survives_random_json_headers(h in "\\{(\"[a-z]{1,4}\":(\"[A-Za-z0-9]{0,6}\"|[0-9]{1,3}|null|\\[\\]),?){0,4}\\}") {
            let t = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(h.as_bytes()));
            let _ = parse_header(&t);
        }
    }
}
