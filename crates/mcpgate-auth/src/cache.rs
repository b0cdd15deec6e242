//! Verified-token cache: a token seen and verified recently is accepted with one hash and one
//! map lookup. Entries last until the token's `exp` (never beyond) and at most [`MAX_AGE`],
//! so a key removed from the JWKS stops working within that time. Failures are not cached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Identity;

/// Longest time a verified token is trusted without re-verification.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// Entries kept; when full, expired entries are dropped, then everything.
const CAPACITY: usize = 10_000;

struct Entry {
    identity: Arc<Identity>,
    until: Instant,
    exp: Option<u64>,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCache({} entries)", self.map.lock().len())
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenCache {
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Arc<Identity>> {
        let map = self.map.lock();
        let e = map.get(key)?;
        let fresh = Instant::now() < e.until && e.exp.is_none_or(|exp| unix_now() < exp);
        fresh.then(|| e.identity.clone())
    }

    pub(crate) fn insert(&self, key: [u8; 32], identity: Arc<Identity>, exp: Option<u64>) {
        let mut map = self.map.lock();
        if map.len() >= CAPACITY {
            let now = Instant::now();
            map.retain(|_, e| now < e.until);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(
            key,
            Entry {
                identity,
                until: Instant::now() + MAX_AGE,
                exp,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}
