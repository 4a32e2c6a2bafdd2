//! A bounded cache of decompressed public keys.
//!
//! Decompressing a key is about a fifth of a signature check, so validators and repeat
//! senders are worth keeping prepared. The cache never holds more than its capacity; on a
//! miss at capacity it evicts an arbitrary entry, which keeps the bound without an LRU's
//! per-hit bookkeeping. Keys that do not decompress are never cached.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::{CryptoError, PreparedKey, PublicKey};

/// A bounded, thread-safe cache of decompressed keys (repeat senders, validators).
pub struct KeyCache {
    capacity: usize,
    keys: Mutex<HashMap<PublicKey, PreparedKey>>,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        KeyCache { capacity: capacity.max(1), keys: Mutex::new(HashMap::new()) }
    }

    /// The prepared form of `key`, decompressing (and caching) it on a miss.
    pub fn prepare(&self, key: &PublicKey) -> Result<PreparedKey, CryptoError> {
        if let Some(prepared) = self.lock().get(key) {
            return Ok(*prepared);
        }
        // Decompress without holding the lock, so other threads' hits are not held up.
        let prepared = PreparedKey::new(key)?;
        let mut keys = self.lock();
        if keys.len() >= self.capacity && !keys.contains_key(key) {
            if let Some(victim) = keys.keys().next().copied() {
                keys.remove(&victim);
            }
        }
        keys.insert(*key, prepared);
        Ok(prepared)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A panic elsewhere cannot leave the map inconsistent (every update is one insert or
    /// remove), so a poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, HashMap<PublicKey, PreparedKey>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
