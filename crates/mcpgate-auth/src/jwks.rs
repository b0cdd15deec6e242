//! JWKS: verification keys from a file, inline, or a remote URL kept fresh in the background.
//!
//! A document is either a JWK Set (`{"keys": [...]}`) or one JWK object (the seed's
//! `jwks.json`). Symmetric (`oct`) keys are refused: HS tokens are verified only with the
//! configured `hs_secret`, so a public key can never double as an HMAC secret. Keys marked
//! `"use": "enc"` are skipped.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

/// One verification key.
#[derive(Clone)]
pub struct Key {
    /// `kid`, when the JWK has one.
    pub kid: Option<String>,
    /// The JWK's own `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    /// RSA, EC or Ed — never HMAC.
    pub family: AlgorithmFamily,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Key(kid={:?}, alg={:?}, family={:?})",
            self.kid, self.alg, self.family
        )
    }
}

/// A parsed key set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// The usable keys, in document order.
    pub keys: Vec<Key>,
    /// Unique to each parse (0 for the empty default set): the verified-token cache uses a
    /// token's entry only while the set it was verified with is still the one in force.
    generation: u64,
}

/// Generations handed out so far.
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl KeySet {
    /// Parses a JWK Set or a single JWK.
    pub fn parse(doc: &Value) -> Result<KeySet, String> {
        let items: Vec<&Value> = match doc {
            Value::Object(o) if o.contains_key("keys") => match &o["keys"] {
                Value::Array(a) => a.iter().collect(),
                _ => return Err("`keys` must be an array of JWKs".into()),
            },
            Value::Object(o) if o.contains_key("kty") => vec![doc],
            _ => return Err("not a JWK Set (`{\"keys\": [...]}`) nor a JWK (an object with `kty`)".into()),
        };
        let mut keys = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            if item.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
                continue;
            }
            let kid = item.get("kid").and_then(Value::as_str).map(str::to_owned);
            let what = kid
                .as_deref()
                .map_or_else(|| format!("key {i}"), |k| format!("key `{k}`"));
            if item.get("kty").and_then(Value::as_str) == Some("oct") {
                return Err(format!(
                    "{what}: symmetric (`oct`) keys are not accepted in a JWKS; configure `hs_secret` for HS tokens"
                ));
            }
            let alg = match item.get("alg").and_then(Value::as_str) {
                Some(a) => Some(Algorithm::from_str(a).map_err(|_| format!("{what}: unsupported `alg` `{a}`"))?),
                None => None,
            };
            let jwk: Jwk = serde_json::from_value(item.clone()).map_err(|e| format!("{what}: {e}"))?;
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{what}: {e}"))?;
            let family = decoding.family();
            if family == AlgorithmFamily::Hmac {
                return Err(format!("{what}: symmetric keys are not accepted in a JWKS"));
            }
            if let Some(a) = alg
                && a.family() != family
            {
                return Err(format!("{what}: `alg` {a:?} does not fit a {family:?} key"));
            }
            keys.push(Key {
                kid,
                alg,
                family,
                decoding,
            });
        }
        if keys.is_empty() {
            return Err("no signing keys".into());
        }
        let generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Ok(KeySet { keys, generation })
    }

    /// This set's generation: different for every parsed document, so a key set that
    /// replaced another never shares its generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Parses JSON text.
    pub fn parse_text(text: &str) -> Result<KeySet, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        KeySet::parse(&v)
    }

    /// Keys a token with `kid` and `alg` may be verified with: the key with that `kid`, or
    /// (no `kid`) every key of the algorithm's family. A key whose own `alg` differs is never
    /// used.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>, alg: Algorithm) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            let kid_ok = match kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            };
            kid_ok && k.family == alg.family() && k.alg.is_none_or(|a| a == alg)
        })
    }

    /// Is a key with this `kid` present?
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// A remote JWKS endpoint with its last good key set.
pub struct RemoteJwks {
    url: url::Url,
    refresh: Duration,
    min_refetch: Duration,
    keys: ArcSwap<KeySet>,
    /// The document the keys in force were parsed from: a refresh that brings the same bytes
    /// keeps the set (and its generation, so verified tokens stay cached).
    document: parking_lot::Mutex<Option<Vec<u8>>>,
    /// When the last fetch was attempted (for the unknown-`kid` rate limit).
    last_attempt: parking_lot::Mutex<Option<tokio::time::Instant>>,
    fetching: tokio::sync::Mutex<()>,
    started: std::sync::atomic::AtomicBool,
    client: reqwest::Client,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteJwks({})", self.url)
    }
}

/// Largest JWKS document fetched.
const MAX_JWKS_BYTES: usize = 1 << 20;

impl RemoteJwks {
    /// A remote key source; nothing is fetched until [`RemoteJwks::start`] or a token needs it.
    pub fn new(url: url::Url, refresh: Duration, min_refetch: Duration) -> RemoteJwks {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        RemoteJwks {
            url,
            refresh,
            min_refetch,
            keys: ArcSwap::from_pointee(KeySet::default()),
            document: parking_lot::Mutex::new(None),
            last_attempt: parking_lot::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            started: std::sync::atomic::AtomicBool::new(false),
            client,
        }
    }

    /// The current key set (empty before the first successful fetch).
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Starts the background refresh (once; needs a Tokio runtime). The task ends when the
    /// last reference to `self` is dropped (a config reload builds a new source).
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(me) = weak.upgrade() else { return };
                me.fetch_now().await;
                let wait = me.refresh;
                drop(me);
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// Fetches unless a fetch was attempted within `min_refetch` (unknown-`kid` path).
    /// Returns whether a fetch was made.
    pub async fn refetch_limited(&self) -> bool {
        {
            let last = self.last_attempt.lock();
            if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
                return false;
            }
        }
        self.fetch_now().await;
        true
    }

    /// Fetches the document now; on failure the last good keys stay.
    pub async fn fetch_now(&self) {
        let _one = self.fetching.lock().await;
        *self.last_attempt.lock() = Some(tokio::time::Instant::now());
        match self.fetch().await {
            Ok(None) => tracing::debug!(url = %self.url, "Fetched the JWKS; unchanged."),
            Ok(Some(set)) => {
                tracing::debug!(url = %self.url, keys = set.keys.len(), "Fetched the JWKS.");
                self.keys.store(Arc::new(set));
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, kept = self.keys.load().keys.len(), "Cannot fetch the JWKS; keeping the last good keys.");
            }
        }
    }

    /// The new key set, or `None` when the document is byte for byte the one in force.
    async fn fetch(&self) -> Result<Option<KeySet>, String> {
        let resp = self
            .client
            .get(self.url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        if resp.content_length().is_some_and(|l| l as usize > MAX_JWKS_BYTES) {
            return Err("document too large".into());
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("document too large".into());
        }
        let mut document = self.document.lock();
        if document.as_deref() == Some(&body[..]) {
            return Ok(None);
        }
        let text = std::str::from_utf8(&body).map_err(|_| "not UTF-8".to_string())?;
        let set = KeySet::parse_text(text)?;
        *document = Some(body.to_vec());
        Ok(Some(set))
    }
}

/// Where a validator gets its keys.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Loaded at config load (file or inline).
    Static(Arc<KeySet>),
    /// A remote endpoint.
    Remote(Arc<RemoteJwks>),
    /// No JWKS (only `hs_secret`).
    None,
}

impl KeySource {
    /// The generation of the keys in force (see [`KeySet::generation`]), without cloning them.
    pub fn generation(&self) -> u64 {
        match self {
            KeySource::Static(k) => k.generation,
            KeySource::Remote(r) => r.keys.load().generation,
            KeySource::None => 0,
        }
    }

    /// The keys in force.
    pub fn keys(&self) -> Arc<KeySet> {
        match self {
            KeySource::Static(k) => k.clone(),
            KeySource::Remote(r) => r.keys(),
            KeySource::None => Arc::new(KeySet::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SEED_JWK: &str = r#"{ "use": "sig", "kty": "EC", "kid": "XhO06x8JjWH1wwkWkyeEUxsooGEWoEdidEpwyd_hmuI", "crv": "P-256", "alg": "ES256", "x": "XZHF8Em5LbpqfgewAalpSEH4Ka2I2xjcxxUt2j6-lCo", "y": "g3DFz45A7EOUMgmsNXatrXw1t-PG5xsbkxUs851RxSE" }"#;

    #[test]
    fn single_jwk_and_set() {
        let one = KeySet::parse_text(SEED_JWK).unwrap();
        assert_eq!(one.keys.len(), 1);
        assert_eq!(one.keys[0].family, AlgorithmFamily::Ec);
        let set = KeySet::parse_text(&format!(r#"{{"keys":[{SEED_JWK}]}}"#)).unwrap();
        assert!(set.has_kid("XhO06x8JjWH1wwkWkyeEUxsooGEWoEdidEpwyd_hmuI"));
        assert_eq!(set.candidates(None, Algorithm::ES256).count(), 1);
        assert_eq!(
            set.candidates(None, Algorithm::ES384).count(),
            0,
            "alg pinned by the key"
        );
        assert_eq!(set.candidates(None, Algorithm::HS256).count(), 0);
        assert_eq!(set.candidates(Some("other"), Algorithm::ES256).count(), 0);
    }

    #[test]
    fn refusals() {
        assert!(
            KeySet::parse_text(r#"{"kty":"oct","k":"c2VjcmV0"}"#)
                .unwrap_err()
                .contains("symmetric")
        );
        assert!(
            KeySet::parse_text(r#"{"keys":[]}"#)
                .unwrap_err()
                .contains("no signing keys")
        );
        assert!(KeySet::parse_text(r#"[1]"#).is_err());
        assert!(KeySet::parse_text("nope").is_err());
        let enc = SEED_JWK.replace(r#""use": "sig""#, r#""use": "enc""#);
        assert!(KeySet::parse_text(&enc).unwrap_err().contains("no signing keys"));
        let wrong_alg = SEED_JWK.replace(r#""alg": "ES256""#, r#""alg": "RS256""#);
        assert!(KeySet::parse_text(&wrong_alg).is_err());
    }
}
