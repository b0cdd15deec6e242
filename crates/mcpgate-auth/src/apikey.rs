//! API keys: stored as SHA-256 hashes, each mapped to a subject and claims.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::{Identity, Source};

/// The configured API keys, by the SHA-256 of the key.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiKeys {
    by_hash: HashMap<[u8; 32], Arc<Identity>>,
}

impl ApiKeys {
    pub(crate) fn insert(&mut self, hash_hex: &str, identity: Identity) -> Result<(), String> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hash_hex.trim(), &mut hash)
            .map_err(|_| format!("`{hash_hex}` is not a SHA-256 hex digest (64 hex digits)"))?;
        if self.by_hash.insert(hash, Arc::new(identity)).is_some() {
            return Err(format!("the key hash `{hash_hex}` is listed twice"));
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The identity of the key whose hash is `hash`.
    pub(crate) fn lookup(&self, hash: &[u8; 32]) -> Option<Arc<Identity>> {
        self.by_hash.get(hash).cloned()
    }
}

/// SHA-256 of a credential.
pub(crate) fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The identity an API key stands for.
pub(crate) fn identity(subject: &str, claims: serde_json::Map<String, serde_json::Value>) -> Identity {
    let mut claims = claims;
    claims.insert("sub".into(), serde_json::Value::String(subject.to_owned()));
    Identity {
        subject: subject.to_owned(),
        claims: serde_json::Value::Object(claims),
        source: Source::ApiKey,
        bearer: None,
    }
}
