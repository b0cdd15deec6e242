//! Verified-token cache: a JWT seen and verified recently is accepted with one keyed hash of
//! its bytes, one map lookup and one comparison of the whole token.
//!
//! An entry is used only while all of these hold:
//! - the token's `exp` has not passed (the validator's leeway is not extended to cached
//!   entries, so a cached token stops working at `exp` exactly);
//! - it is younger than [`MAX_AGE`];
//! - the verification keys in force are the very key set the token was verified with: every
//!   change of the JWKS (a remote refresh that brings a different document, a new key) has a
//!   new generation, and entries of an older generation are not used. A config reload builds a
//!   new `Authenticator` with an empty cache.
//!
//! Failures are not cached. The map is keyed by the token itself (SipHash with a per-process
//! random key, so an attacker cannot aim collisions at a bucket) and compared in full, so two
//! different tokens never share an entry; no cryptographic digest is computed on the hot path.
//! It is split into [`SHARDS`] shards so that concurrent requests rarely meet on one lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Identity;

/// Longest time a verified token is trusted without re-verification.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// Entries kept in all; when a shard is full, its stale entries are dropped, then all of it.
const CAPACITY: usize = 10_000;
/// Independent locks.
const SHARDS: usize = 8;

struct Entry {
    identity: Arc<Identity>,
    until: Instant,
    exp: u64,
    keys: u64,
}

impl Entry {
    fn usable(&self, now: Instant, unix: u64, keys: u64) -> bool {
        now < self.until && unix < self.exp && self.keys == keys
    }
}

type Shard = Mutex<HashMap<Arc<str>, Entry>>;

pub(crate) struct TokenCache {
    shards: [Shard; SHARDS],
}

impl Default for TokenCache {
    fn default() -> TokenCache {
        TokenCache {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCache({} entries)", self.len())
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenCache {
    /// The shard of a token, from its last byte and length: a verified token ends in its
    /// signature, whose bytes are as good as random, and only verified tokens are stored.
    fn shard(&self, token: &str) -> &Shard {
        let b = token.as_bytes();
        let i = b.last().map_or(0, |&x| x as usize) ^ b.len();
        &self.shards[i % SHARDS]
    }

    /// The identity of `token` if it was verified with the key set of generation `keys` and
    /// its entry is still good.
    pub(crate) fn get(&self, token: &str, keys: u64) -> Option<Arc<Identity>> {
        let map = self.shard(token).lock();
        let e = map.get(token)?;
        e.usable(Instant::now(), unix_now(), keys).then(|| e.identity.clone())
    }

    /// Remembers that `token` verified as `identity` with the key set of generation `keys`;
    /// good until `exp` (unix seconds) and at most [`MAX_AGE`].
    pub(crate) fn insert(&self, token: Arc<str>, identity: Arc<Identity>, exp: u64, keys: u64) {
        let now = Instant::now();
        let unix = unix_now();
        if unix >= exp {
            return;
        }
        let mut map = self.shard(&token).lock();
        if map.len() >= CAPACITY / SHARDS {
            map.retain(|_, e| e.usable(now, unix, keys));
            if map.len() >= CAPACITY / SHARDS {
                map.clear();
            }
        }
        map.insert(
            token,
            Entry {
                identity,
                until: now + MAX_AGE,
                exp,
                keys,
            },
        );
    }

    /// Entries held (fresh or not).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    fn id(sub: &str) -> Arc<Identity> {
        Arc::new(Identity {
            subject: sub.into(),
            claims: serde_json::json!({ "sub": sub }),
            source: Source::Jwt,
            bearer: None,
        })
    }

    #[test]
    fn entries_need_the_same_token_the_same_keys_and_an_unexpired_exp() {
        let c = TokenCache::default();
        let later = unix_now() + 3600;
        c.insert(Arc::from("a.b.sig1"), id("alice"), later, 7);
        assert_eq!(c.get("a.b.sig1", 7).unwrap().subject, "alice");
        // Another token, even one that differs in its last byte only, is not served.
        assert!(c.get("a.b.sig2", 7).is_none());
        assert!(c.get("a.b.sig", 7).is_none());
        assert!(c.get("a.b.sig1 ", 7).is_none());
        // Another key set: not served (a JWKS change).
        assert!(c.get("a.b.sig1", 8).is_none());
        // An `exp` that has passed is never stored, nor served.
        c.insert(Arc::from("a.b.old"), id("bob"), unix_now(), 7);
        assert!(c.get("a.b.old", 7).is_none());
        assert_eq!(c.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_last_at_most_max_age() {
        let c = TokenCache::default();
        c.insert(Arc::from("a.b.c"), id("alice"), unix_now() + 3600, 1);
        tokio::time::advance(MAX_AGE - Duration::from_secs(1)).await;
        assert!(c.get("a.b.c", 1).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(c.get("a.b.c", 1).is_none());
    }

    #[test]
    fn a_full_shard_is_emptied_not_grown() {
        let c = TokenCache::default();
        let later = unix_now() + 3600;
        for i in 0..3 * CAPACITY {
            c.insert(Arc::from(format!("t.{i}.x")), id("a"), later, 1);
        }
        assert!(c.len() <= CAPACITY, "{} entries", c.len());
        assert!(c.len() > 0);
    }
}
