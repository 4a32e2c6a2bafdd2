//! The well-known development accounts `dev0` … `dev9`.
//!
//! Like anvil's default accounts, these keys are PUBLISHED and identical on every local
//! testnet, so scripts and docs can name them: anyone can sign with them, so they must never
//! hold anything of value outside a local testnet. The seed of `dev<i>` is
//!
//! ```text
//! seed_i = SHA-256("bastion/dev-key/v1" || i as one byte)      (i = 0..=9)
//! ```
//!
//! and the key pair is the ed25519 key with that 32-byte seed. Changing this formula
//! changes every dev address, so a test pins `dev0`'s public key.

use bastion_crypto::{sha256, KeyPair};
use bastion_ledger::Address;

/// How many dev accounts there are (`dev0` … `dev9`).
pub const DEV_KEY_COUNT: u8 = 10;

/// What each dev account holds at genesis on a local testnet.
pub const DEV_BALANCE: u64 = 1_000_000_000_000;

/// The prefix hashed with the index byte to make a dev seed.
pub const DEV_SEED_PREFIX: &[u8] = b"bastion/dev-key/v1";

/// The published seed of `dev<index>`.
pub fn dev_seed(index: u8) -> [u8; 32] {
    let mut preimage = DEV_SEED_PREFIX.to_vec();
    preimage.push(index);
    sha256(&preimage).0
}

/// The key pair of `dev<index>`, or `None` past `dev9`.
pub fn dev_key(index: u8) -> Option<KeyPair> {
    (index < DEV_KEY_COUNT).then(|| KeyPair::from_seed(dev_seed(index)))
}

/// The key pair named `dev0` … `dev9`, or `None` for any other name.
pub fn dev_key_by_name(name: &str) -> Option<KeyPair> {
    let digits = name.strip_prefix("dev")?;
    // Exactly one digit: "dev01" or "dev+1" are not dev keys.
    if digits.len() != 1 {
        return None;
    }
    dev_key(digits.parse().ok()?)
}

/// `("dev0", key) … ("dev9", key)`.
pub fn dev_keys() -> Vec<(String, KeyPair)> {
    (0..DEV_KEY_COUNT).filter_map(|i| dev_key(i).map(|key| (format!("dev{i}"), key))).collect()
}

/// The dev accounts' addresses, in order.
pub fn dev_addresses() -> Vec<Address> {
    dev_keys().iter().map(|(_, key)| Address::from_public_key(&key.public())).collect()
}

/// How many load-test accounts a local testnet funds besides the dev accounts.
pub const BENCH_KEY_COUNT: u16 = 64;

/// The prefix hashed with the index (2 bytes, big-endian) to make a load-test seed.
pub const BENCH_SEED_PREFIX: &[u8] = b"bastion/bench-key/v1";

/// The key pair of load-test account `index` (`bastion bench` signs with these after
/// dev0 … dev9), or `None` past the last one. Published like the dev keys: never hold value.
pub fn bench_key(index: u16) -> Option<KeyPair> {
    (index < BENCH_KEY_COUNT).then(|| {
        let mut preimage = BENCH_SEED_PREFIX.to_vec();
        preimage.extend_from_slice(&index.to_be_bytes());
        KeyPair::from_seed(sha256(&preimage).0)
    })
}

/// Every account a local testnet funds at genesis: dev0 … dev9, then the load-test ones.
pub fn funded_addresses() -> Vec<Address> {
    let bench = (0..BENCH_KEY_COUNT).filter_map(bench_key).map(|key| Address::from_public_key(&key.public()));
    dev_addresses().into_iter().chain(bench).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: if this changes, every published dev address changed.
    const DEV0_PUBLIC_KEY: &str = "0951120bacd9a850d711cb1141c3658b8a7b15b4d6e374b9d31549aa3c1d3c91";

    #[test]
    fn dev0_public_key_is_pinned() {
        assert_eq!(dev_key(0).map(|k| k.public().to_hex()).as_deref(), Some(DEV0_PUBLIC_KEY));
    }

    #[test]
    fn seed_follows_the_published_formula() {
        let mut preimage = b"bastion/dev-key/v1".to_vec();
        preimage.push(7);
        assert_eq!(dev_seed(7), sha256(&preimage).0);
    }

    #[test]
    fn names_resolve_only_dev0_to_dev9() {
        assert_eq!(dev_key_by_name("dev3").map(|k| k.seed()), Some(dev_seed(3)));
        for name in ["dev10", "dev", "dev01", "dev+1", "Dev1", "alice"] {
            assert!(dev_key_by_name(name).is_none(), "{name}");
        }
        assert_eq!(dev_keys().len(), 10);
        let mut addresses = dev_addresses();
        addresses.dedup();
        assert_eq!(addresses.len(), 10);
    }

    #[test]
    fn bench_keys_are_distinct_from_each_other_and_the_dev_keys() {
        let mut funded = funded_addresses();
        assert_eq!(funded.len(), 10 + usize::from(BENCH_KEY_COUNT));
        funded.sort();
        funded.dedup();
        assert_eq!(funded.len(), 10 + usize::from(BENCH_KEY_COUNT));
        assert!(bench_key(BENCH_KEY_COUNT).is_none());
    }
}
