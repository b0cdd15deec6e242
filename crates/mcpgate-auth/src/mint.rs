//! Test keys and tokens (`mcpgate token`): an ES256 key pair with its JWKS, and tokens signed
//! with it, so the walkthrough works without an identity provider. Not for production
//! issuance: there is no key protection beyond file permissions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

const PEM_LABEL: &str = "PRIVATE KEY";

/// A generated key pair.
pub struct GeneratedKey {
    /// The private key, PKCS#8 PEM.
    pub private_pem: String,
    /// The public JWK (`kid` is its RFC 7638 thumbprint, `alg` ES256, `use` sig).
    pub public_jwk: Value,
}

/// Generates a P-256 key pair.
pub fn generate_es256() -> Result<GeneratedKey, String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "cannot generate a key".to_string())?;
    let der = pkcs8.as_ref();
    let public_jwk = public_jwk(der)?;
    Ok(GeneratedKey {
        private_pem: to_pem(der),
        public_jwk,
    })
}

/// The public JWK of a PKCS#8 P-256 private key.
pub fn public_jwk(pkcs8_der: &[u8]) -> Result<Value, String> {
    let key = EncodingKey::from_ec_der(pkcs8_der);
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).map_err(|e| format!("not a P-256 key: {e}"))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| format!("cannot compute the key id: {e}"))?;
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    serde_json::to_value(&jwk).map_err(|e| e.to_string())
}

fn to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    out
}

/// The DER inside a PKCS#8 PEM.
pub fn from_pem(pem: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let start = pem.find(&begin).ok_or("not a PKCS#8 PEM private key")? + begin.len();
    let stop = pem[start..].find(&end).ok_or("unterminated PEM")? + start;
    let b64: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).map_err(|_| "bad base64 in PEM".to_string())
}

/// Signs `claims` with an ES256 private key (PKCS#8 PEM); `kid` defaults to the key's
/// thumbprint.
pub fn sign_es256(private_pem: &str, kid: Option<&str>, claims: &Value) -> Result<String, String> {
    let der = from_pem(private_pem)?;
    let kid = match kid {
        Some(k) => k.to_owned(),
        None => public_jwk(&der)?["kid"].as_str().unwrap_or_default().to_owned(),
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&der)).map_err(|e| e.to_string())
}

/// Standard claims for a test token.
pub fn claims(sub: &str, iss: &str, aud: &[String], ttl_secs: u64, extra: Option<&Value>) -> Value {
    let now = crate::cache::unix_now();
    let mut c = json!({ "sub": sub, "iss": iss, "iat": now, "nbf": now, "exp": now + ttl_secs });
    match aud {
        [] => {}
        [one] => c["aud"] = json!(one),
        many => c["aud"] = json!(many),
    }
    if let Some(Value::Object(extra)) = extra {
        for (k, v) in extra {
            c[k] = v.clone();
        }
    }
    c
}
