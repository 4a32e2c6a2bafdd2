//! The account record stored under `StateKey::Account`.
//!
//! Every address with a balance, a used nonce or code has one. A user account has no
//! `code_hash`; a contract account has the SHA-256 of its code, stored under
//! `StateKey::Code`. An address with no record reads as [`Account::default`] (zero balance,
//! next nonce 0, no code): creating a record never changes what a reader observes.

use bastion_crypto::Digest;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Native tokens held.
    pub balance: u64,
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
    /// SHA-256 of the contract code, for contract accounts.
    pub code_hash: Option<Digest>,
}

impl Account {
    pub fn is_contract(&self) -> bool {
        self.code_hash.is_some()
    }
}
